"""The transcribed tables against what the paper itself implies (counts, totals, percentages, its own text)."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from study import paper
from study.config import SHARED
from tests.conftest import needs_shared

PAPER_TEXT = SHARED / "paper" / "000_1c4d5bde1943f940.txt"


def test_every_table_loads_with_a_source():
    for key in paper.TABLES:
        df = paper.load(key)
        assert len(df) > 0
        assert df.attrs["source"].startswith(f"paper Table {key}")


def test_unknown_table_names_the_valid_ones():
    with pytest.raises(KeyError, match="valid: I-III"):
        paper.load("XII")


def test_tables_ix_and_x_have_the_38_case_study_models():
    ix, x = paper.finetuning(), paper.testing()
    assert len(ix) == len(x) == 38
    assert set(ix["model"]) == set(x["model"])
    assert ix["model"].is_unique
    # Section VII-C: MobileNet V1 and V2 feature vectors only
    assert ix["model"].str.match(r"^mobilenet_v[12]_\d{3}_\d{2,3}$").all()
    assert ix["accuracy"].between(0, 1).all()


def test_elapse_seconds_match_the_printed_text():
    for df in (paper.finetuning(), paper.testing()):
        assert (df["elapse"].map(paper.parse_elapse) == df["elapse_s"]).all()
        assert (df["elapse_s"].map(paper.format_elapse) == df["elapse"]).all()


@pytest.mark.parametrize("bad", ["2:48", "0:61:00", "a:b:c", ""])
def test_parse_elapse_rejects_malformed(bad):
    with pytest.raises(ValueError, match="H:MM:SS"):
        paper.parse_elapse(bad)


def test_table_xi_parts_add_up_to_totals():
    split = paper.flower_split()
    assert list(split["label"]) == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert (split[["training", "validation", "testing"]].sum(axis=1) == split["total"]).all()
    assert split["total"].sum() == 3670  # Flower Photos has 3,670 images


def test_family_rows_match_the_counts_stated_in_section_v():
    fam = paper.families()
    rows = fam.groupby("zoo").size().to_dict()
    assert rows == paper.STATED_FAMILY_COUNTS  # 20 AIHub rows, 28 PyTorch Hub rows
    assert (fam["members"] >= 2).all()  # "a family must have at least 2 members"
    aihub = fam[fam["zoo"] == "AIHub"].set_index("algorithm")
    assert aihub.loc["MobileNet V1", "members"] == 32 and aihub.loc["MobileNet V2", "members"] == 22
    torch_max = fam[fam["zoo"] == "PyTorch Hub"]["members"].max()
    assert torch_max == 8  # "VGG Nets family and BERT family have the largest number of members (8)"


def test_table_vi_percentages_follow_from_its_counts():
    vi = paper.version_statistics()
    printed = vi["percent_text"].str.rstrip("%").astype(float)
    assert ((100 * vi["share_ge2_versions"]).round(2) == printed).all()


def test_table_viii_rows():
    notes = paper.version_notes()
    assert len(notes) == 10
    assert notes.groupby("note_category").size().to_dict() == {
        "batch_norm_momentum": 5, "quantization_boundary": 1, "update_ops": 1, "variable_input_size": 3}


def _paper_rows(prefix: str, width: int) -> list[list[str]]:
    lines = PAPER_TEXT.read_text().splitlines()
    return [line.split("\t") for line in lines if re.match(prefix, line) and len(line.split("\t")) == width]


@needs_shared
def test_tables_ix_x_equal_the_paper_text():
    """Every number of Tables IX and X as printed in the paper's text."""
    for df, width in ((paper.finetuning(), 5), (paper.testing(), 7)):
        rows = _paper_rows(r"^mobilenet_v\d_\d+_\d+\t", width)
        printed = pd.DataFrame(rows, columns=[c for c in df.columns if c != "elapse_s"])
        ours = df.drop(columns="elapse_s")
        for col in ours.columns:
            if col in ("model", "elapse"):
                assert list(ours[col]) == list(printed[col]), col
            else:
                assert list(ours[col]) == pytest.approx([float(v) for v in printed[col]], abs=1e-9), col


@needs_shared
def test_table_xi_equals_the_paper_text():
    text = PAPER_TEXT.read_text()
    for row in paper.flower_split().itertuples():
        assert f"{row.label.capitalize()}\t{row.training}\t{row.validation}\t{row.testing}\t{row.total}" in text


def test_table_path_is_the_one_way_to_a_transcription():
    assert paper.table_path("XI").name == "table_xi_split.csv" and paper.table_path("XI").is_file()
    assert paper.table_paths() == [paper.table_path(k) for k in paper.TABLES]
    with pytest.raises(KeyError, match="no paper table 'XII'; valid: I-III"):
        paper.table_path("XII")
