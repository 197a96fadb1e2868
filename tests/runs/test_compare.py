"""`study compare A B`: two results folders, every generated number and compared cell labelled."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from study import files
from study.cli import main
from study.decision import uncertainty
from study.errors import StudyError
from study.runs import compare
from tests import results_folder


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return results_folder.build(tmp_path_factory.mktemp("compare") / "results")


@pytest.fixture
def pair(built, tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(built, a)
    shutil.copytree(built, b)
    return a, b


def edit(folder: Path, table: str, row: dict[str, str], **values) -> None:
    """Change cells of the rows matching `row` in `folder`'s table, leaving every other cell's text as it is."""
    path = folder / "tables" / f"{table}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    mask = pd.concat([df[k] == v for k, v in row.items()], axis=1).all(axis=1)
    assert mask.sum() == 1
    for column, value in values.items():
        df.loc[mask, column] = str(value)
    files.write_csv(path, df)


def cell(result: compare.Comparison, table: str, row: str, column: str) -> pd.Series:
    hit = result.rows[(result.rows["table"] == table) & (result.rows["row"] == row) & (result.rows["column"] == column)]
    assert len(hit) == 1, (table, row, column)
    return hit.iloc[0]


def not_identical(result: compare.Comparison) -> pd.DataFrame:
    return result.rows[result.rows["label"] != "identical"]


def test_a_folder_and_its_copy_are_identical_in_every_cell(pair):
    result = compare.compare(*pair)
    assert list(result.rows.columns) == compare.COLUMNS
    assert (result.rows["label"] == "identical").all()
    compared = set(result.rows["table"])
    written = {p.stem for p in (pair[0] / "tables").glob("*.csv")}
    assert {t.name for t in compare.TABLES} & written <= compared and compare.NUMBERS in compared
    assert len(result.rows) > 200 and not result.rows.duplicated(["table", "row", "column"]).any()
    assert all(line.split(": ", 1)[1].endswith("identical") for line in result.summary_lines())


def test_one_table_ix_accuracy_moved_by_three_intervals_is_the_one_moved_row(pair):
    a, b = pair
    ix = pd.read_csv(a / "tables" / "table_ix_finetuning.csv")
    model, acc = ix.loc[2, "model"], float(ix.loc[2, "accuracy"])
    lo, hi = uncertainty.wilson(round(acc * results_folder.N_TEST), results_folder.N_TEST)
    edit(b, "table_ix_finetuning", {"model": model}, accuracy=round(acc + 3 * float(hi - lo), 4))
    result = compare.compare(a, b)
    changed = not_identical(result)
    assert len(changed) == 1
    moved = changed.iloc[0]
    assert (moved["table"], moved["row"], moved["column"], moved["label"]) == ("table_ix_finetuning", model,
                                                                            "accuracy", "moved")
    assert moved["interval"] == f"Wilson 95% (n {results_folder.N_TEST})"  # notebook 06's n_test for the member
    assert moved["lo"] > 0 and moved["difference"] == pytest.approx(3 * float(hi - lo), abs=1e-4)


def test_a_small_accuracy_change_is_within_noise(pair):
    a, b = pair
    edit(b, "table_x_browser", {"model": pd.read_csv(a / "tables" / "table_x_browser.csv")["model"][0]},
         accuracy=0.5, n_images=400)
    edit(a, "table_x_browser", {"model": pd.read_csv(a / "tables" / "table_x_browser.csv")["model"][0]},
         accuracy=0.51, n_images=400)
    (row,) = not_identical(compare.compare(a, b)).itertuples()
    assert (row.column, row.label) == ("accuracy", "within noise") and row.lo < 0 < row.hi


def test_a_changed_audit_verdict_noise_label_or_decision_is_flipped(pair):
    a, b = pair
    edit(b, "audit_paper_claims", {"claim_id": "VII-00"}, reproduced="no")
    edit(b, "audit_paper_claims", {"claim_id": "VII-01"}, noise="contradicted")
    decision = json.loads((b / "numbers" / "decision_pick_accuracy.json").read_text())
    files.write_text(b / "numbers" / "decision_pick_accuracy.json", json.dumps({**decision, "value": "other"}))
    result = compare.compare(a, b)
    changed = not_identical(result).set_index(["table", "row", "column"])["label"].to_dict()
    assert changed == {("audit_paper_claims", "VII-00", "reproduced"): "flipped",
                       ("audit_paper_claims", "VII-01", "noise"): "flipped",
                       (compare.NUMBERS, "decision_pick_accuracy", "value"): "flipped"}
    assert cell(result, "audit_paper_claims", "VII-00", "reproduced")[["a", "b"]].tolist() == ["yes", "no"]


def test_resources_are_judged_by_the_assumed_then_the_measured_noise_model(pair):
    a, b = pair
    ix = pd.read_csv(a / "tables" / "table_ix_finetuning.csv")
    model, cpu = ix.loc[0, "model"], float(ix.loc[0, "delta_cpu"])
    edit(b, "table_ix_finetuning", {"model": model}, delta_cpu=round(cpu * 1.05, 4))
    assumed = cell(compare.compare(a, b), "table_ix_finetuning", model, "delta_cpu")
    assert assumed["label"] == "within noise" and assumed["interval"] == "noise 95%: assumed: cv 10%"

    repeats = pd.DataFrame({"model": ["m1"] * 3 + ["m2"] * 3 + ["m3"] * 3, "repeat": [0, 1, 2] * 3,
                            "delta_cpu": [50.0, 50.5, 49.5, 30.0, 30.3, 29.7, 40.0, 40.4, 39.6],
                            "delta_mem": 2.0, "elapse": 30.0, "accuracy": 0.5})
    measured = uncertainty.NoiseModel.from_repeats(repeats)
    files.write_csv(b / "tables" / f"{compare.NOISE_TABLE}.csv", measured.to_frame())
    result = compare.compare(a, b)
    judged = cell(result, "table_ix_finetuning", model, "delta_cpu")
    assert judged["label"] == "moved"  # a 5 % move is beyond a measured 1 % noise
    assert judged["interval"] == f"noise 95%: {measured.label('ix.delta_cpu')}"
    assert judged["interval"].startswith("noise 95%: measured: cv 1% [") and judged["interval"].endswith("from 9 runs")
    assert len(not_identical(result)) == 1  # the noise model table is read, not compared


def test_rows_columns_and_tables_in_one_folder_only(pair):
    a, b = pair
    ix = pd.read_csv(b / "tables" / "table_ix_finetuning.csv", dtype=str, keep_default_na=False)
    gone = ix["model"][1]
    files.write_csv(b / "tables" / "table_ix_finetuning.csv", ix[ix["model"] != gone])
    (b / "tables" / "rq1_fidelity_decision.csv").unlink()
    files.write_text(b / "numbers" / "new_number.json", json.dumps({"name": "new_number", "value": 3}))
    result = compare.compare(a, b)
    changed = not_identical(result)
    assert set(changed["label"]) == {"only in A", "only in B"}
    assert (changed.loc[changed["row"] == gone, "label"] == "only in A").all()
    assert (changed.loc[changed["table"] == "rq1_fidelity_decision", "label"] == "only in A").all()
    assert changed.loc[changed["row"] == "new_number", "label"].tolist() == ["only in B"]
    counts = result.counts().set_index("table")
    assert counts.loc["rq1_fidelity_decision", "only in A"] > 0


@pytest.mark.parametrize("damage, message", [
    ("missing", "does not exist"),
    ("no manifest", "is not a results folder: it has no manifest.json"),
    ("bad json", "manifest.json (B) is damaged (JSONDecodeError"),
    ("no artifacts", "lacks an `artifacts` object"),
    ("truncated table", "table_ix_finetuning.csv ends in the middle of a line"),
    ("bad number", "case_members.json (results folder B) is damaged"),
])
def test_bad_input_is_one_clear_error(pair, damage, message):
    a, b = pair
    if damage == "missing":
        shutil.rmtree(b)
    elif damage == "no manifest":
        (b / "manifest.json").unlink()
    elif damage == "bad json":
        (b / "manifest.json").write_text('{"artifacts": {')
    elif damage == "no artifacts":
        (b / "manifest.json").write_text('{"artefacts": {}}')
    elif damage == "truncated table":
        path = b / "tables" / "table_ix_finetuning.csv"
        path.write_text(path.read_text()[:-7])
    elif damage == "bad number":
        (b / "numbers" / "case_members.json").write_text("{")
    with pytest.raises(StudyError) as err:
        compare.compare(a, b)
    assert message in str(err.value) and str(b) in str(err.value)


def test_profiles_must_match_unless_allowed(built, tmp_path):
    other = results_folder.build(tmp_path / "paper", members=6, profile="paper")
    with pytest.raises(StudyError, match="profile embedded, B .* with paper.*--allow-profile-mismatch"):
        compare.compare(built, other)
    assert (compare.compare(built, other, allow_profile_mismatch=True).rows["label"] == "identical").all()


def test_cli_writes_every_cell_and_summarises_each_table_on_stderr(pair, capsys, tmp_path):
    a, b = pair
    edit(b, "audit_paper_claims", {"claim_id": "VII-02"}, reproduced="yes")
    assert main(["compare", str(a), str(b), "--csv", "-"]) == 0
    out, err = capsys.readouterr()
    rows = pd.read_csv(__import__("io").StringIO(out))
    assert list(rows.columns) == compare.COLUMNS and (rows["label"] == "flipped").sum() == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("[compare] ")]
    assert "audit (audit_paper_claims): 36 cells: 35 identical, 1 flipped" in err
    assert len(lines) == 1 + rows["table"].nunique()
    assert main(["compare", str(a), str(b)]) == 0
    assert "VII-02" in capsys.readouterr().out
    assert main(["compare", str(a), str(a)]) == 0
    assert capsys.readouterr().out.startswith("every one of")
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results folder B") and len(err.strip().splitlines()) == 1
    assert main(["compare", str(a)]) == 2
