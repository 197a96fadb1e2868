"""The draft's table layout rule (study.draft.floats): the smallest honest setting, tables tidied, never split when
they fit."""
from __future__ import annotations

import pytest

from study.draft import floats
from study.draft.floats import Tabular


def table(rows: int, cols: int, cell: str = "0.12", head: str = "c") -> Tabular:
    """`rows` x `cols`, the first column naming the row, every other cell `cell` (distinct per row and column)."""
    header = [[f"{head}{j:02d}" for j in range(cols)]]
    body = [[f"m{i}"] + [f"{cell}{i % 10}{j % 10}"[:max(len(cell), 1) + 2] for j in range(1, cols)]
            for i in range(rows)]
    return Tabular("l" + "r" * (cols - 1), header, body)


@pytest.mark.parametrize("rows", [2, 9, 40])
def test_five_columns_stay_portrait_in_one_part(rows):
    how = floats.layout(table(rows, 5))
    assert (how.setting, how.transposed) == ("portrait", False)


def test_twenty_five_columns_of_two_rows_are_transposed_into_portrait():
    how = floats.layout(table(2, 25))
    assert how.transposed and how.setting.startswith("portrait")
    tex = floats.longtable(table(2, 25), "T", "A wide table", "tab:t")
    assert "landscape" not in tex and "studywide" not in tex and "Transposed" in tex
    assert tex.count(r"\caption[") == 1 and r"\begin{table}" in tex  # one table, a float: it fits a page


def test_twenty_five_columns_of_nine_rows_transpose_into_portrait():
    how = floats.layout(table(9, 25))
    assert how.transposed and how.setting.startswith("portrait")
    wider = floats.layout(table(9, 25, cell="0.123456"))  # longer words: smaller type before landscape
    assert wider.transposed and wider.setting == "portrait, small type"


def test_twenty_five_columns_of_forty_rows_go_landscape_in_one_part_when_they_fit():
    tab = table(40, 25, cell="1")
    assert floats.fits(tab, "landscape") and not floats.fits(tab, "portrait, smallest type")
    how = floats.layout(tab)
    assert (how.setting, how.transposed) == ("landscape", False)
    tex = floats.longtable(tab, "T", "Many columns", "tab:t")
    assert "studywide" in tex and "part 1 of" not in tex.lower()


def test_eight_rows_of_sixteen_columns_go_portrait_in_the_smallest_type_before_landscape():
    # Table IX of the embedded run: 8 members, 16 columns; transposed it needs 6 pt, not a landscape page
    tab = table(8, 16, cell="0.12345678901")
    assert not floats.fits(floats.transpose(tab), "portrait, small type")
    assert floats.fits(floats.transpose(tab), "portrait, smallest type")
    how = floats.layout(tab)
    assert (how.setting, how.transposed) == ("portrait, smallest type", True)
    tex = floats.longtable(tab, "T", "Table IX", "tab:t")
    assert "studysmallest" in tex and "studywide" not in tex and r"\begin{table}" in tex


def test_a_table_no_landscape_line_holds_is_one_record_per_row_never_split_into_column_parts():
    tab = table(40, 25, cell="12345.678")
    assert not floats.fits(tab, "landscape") and not floats.fits(floats.transpose(tab), "landscape")
    how = floats.layout(tab)
    assert (how.setting, how.transposed) == (floats.RECORDS, False)
    tex = floats.longtable(tab, "T", "Deployment matrix", "tab:t")
    assert "studywide" not in tex and "of its columns" not in tex and tex.count(r"\caption[") == 1
    assert tex.count(r"\textbf{m") == 40  # every row, every non-empty cell under its header
    assert all(f"\\emph{{c{j:02d}}}" in tex for j in range(1, 25))


@pytest.mark.parametrize("rows,cols", [(2, 5), (9, 5), (40, 5), (2, 25), (9, 25), (40, 25)])
def test_a_table_is_one_table_in_one_setting(rows, cols):
    tex = floats.longtable(table(rows, cols, cell="1"), "T", "Caption", "tab:t")
    assert tex.count(r"\caption[") == 1 and tex.count("% layout:") == 1 and "of its columns" not in tex


def test_tidy_drops_empty_and_duplicate_columns_and_says_a_constant_once():
    tab = Tabular("lrrrll", [["Model", "Ours", "Paper", "Ours", "Empty", "Method"]],
                  [[f"m{i}", str(i), str(i), str(i), "--", "Wilson"] for i in range(4)])
    tidy, notes = floats.tidy(tab)
    assert tidy.header == [["Model", "Ours", "Paper"]]  # same values, other header: kept (they agree)
    assert notes == ["Method: Wilson (every row)"]
    tex = floats.longtable(tab, "T", "Caption", "tab:t", "Source: NB04 smoke.")
    assert "Method: Wilson (every row)." in tex and tex.index("Caption") < tex.index("Method") < tex.index("Source")


def test_a_short_table_keeps_its_constant_column():
    tab = Tabular("ll", [["Model", "Verdict"]], [["a", "yes"], ["b", "yes"]])
    assert floats.tidy(tab)[0].header == [["Model", "Verdict"]]


def test_member_and_file_names_are_set_as_code_other_keys_are_not():
    tex = floats.escape_with_code("mobilenet_v2_035_96 wrote table_ix.csv; noise_model")
    assert r"\texttt{mobilenet\_" in tex and r"\texttt{table\_" in tex
    assert r"\texttt{noise" not in tex


def test_a_header_breaks_after_a_slash_as_its_width_was_measured():
    # "(ms/image)" is measured as two words ("(ms/" and "image)"): the header must be allowed to break there, or a
    # narrow column overfills its line (a 3 pt Overfull box in the smoke draft's Table X)
    tab = Tabular("lr", [["Model", r"Latency (ms/image)"]], [["a", "1.0"], ["b", "2.0"]])
    tex = floats._one(tab, "short", "caption", "tab:x", "portrait")
    assert r"(ms/\allowbreak{}image)" in tex


def test_data_that_is_code_is_set_as_code_and_a_traceback_underline_is_cut():
    # what the embedded draft printed raw: a program's name, a call in a library's warning, a graph node's name
    for text, code in (("tensorflow_model_server is not installed", "tensorflow\\_\\allowbreak{}model"),
                       ("use `treespec.is_leaf()` instead", r"\texttt{treespec.is\_\allowbreak{}leaf}()"),
                       ("Mul node_mul", r"\texttt{node\_\allowbreak{}mul}"),
                       ("x = self._expand_conv(inputs) x", r"\texttt{self.\_\allowbreak{}expand\_\allowbreak{}conv}(inputs)")):
        assert code in floats.escape_with_code(text), text
    assert "plain words" == floats.escape_with_code("plain words")
    error = floats.latex_escape("RuntimeError: in model.py, line 96 " + "~" * 29 + "^" * 5 + " the rest")
    assert floats._cell_breaks(error).count(r"\ldots{}") == 1 and "textasciitilde" not in floats._cell_breaks(error)
