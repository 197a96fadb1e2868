"""The results history (`study.runs.history`): compact snapshots after each reproduce, `study compare --previous`."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from study import files
from study.cli import main
from study.errors import StudyError
from study.runs import compare, history
from tests import results_folder

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


@pytest.fixture
def results(tmp_path) -> Path:
    return results_folder.build(tmp_path / "results")


def snap(results: Path, minutes: int = 0) -> Path | None:
    return history.snapshot(results, tables=compare.table_names(), profile="embedded",
                            notebooks=[{"notebook": "04_case_study_finetuning", "cached": False, "seconds": 1.0}],
                            now=T0 + dt.timedelta(minutes=minutes))


def test_a_snapshot_is_a_small_results_folder_with_its_provenance(results):
    # a model and an executed notebook in results/ are not kept
    files.write_bytes(results / "finetune" / "models" / "m" / "saved_model.pb", b"\0" * 200_000)
    files.write_text(results / "notebooks" / "04_case_study_finetuning.ipynb", "{}")
    path = snap(results)
    assert path == results / "history" / "20250102T030405Z"
    kept = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert "tables/table_ix_finetuning.csv" in kept and "numbers/case_members.json" in kept
    assert "tables/decision_ours_table_ix_intervals.csv" in kept  # the images of Table IX's accuracies
    assert not [k for k in kept if k.endswith((".tex", ".pb", ".ipynb"))]
    assert sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) < 100_000
    info = history.read_info(path)
    assert info["profile"] == "embedded" and info["created"] == T0.isoformat()
    assert {"commit", "machine", "digest", "notebooks"} <= set(info) and info["machine"]["cores"] >= 1
    manifest = json.loads((path / "manifest.json").read_text())["artifacts"]
    assert len(manifest) == info["files"] and all(e["notebook"] for e in manifest.values())
    assert (compare.compare(results, path).rows["label"] == "identical").all()  # a snapshot compares as its source


def test_unchanged_results_add_no_snapshot_and_previous_compares_the_last_two(results, capsys, monkeypatch):
    assert snap(results) is not None
    assert snap(results, 1) is None  # everything cached: nothing new
    with pytest.raises(StudyError, match="holds 1 snapshot.*needs two"):
        history.previous_pair(results)
    path = results / "tables" / "audit_paper_claims.csv"
    claims = pd.read_csv(path, dtype=str, keep_default_na=False)
    claims.loc[0, "reproduced"] = "no"
    files.write_csv(path, claims)
    second = snap(results, 2)
    first, latest = history.previous_pair(results)
    assert latest == second and first.name == "20250102T030405Z"
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(results))
    assert main(["compare", "--previous", "--csv", "-"]) == 0
    out, err = capsys.readouterr()
    assert "flipped" in out and "1 flipped" in err
    assert main(["compare", "--previous", str(results)]) == 2


def test_record_says_where_and_snapshots_share_a_second_without_clashing(results, capsys):
    class Run:
        notebook, cached, seconds = "07_paper_audit", False, 2.04

    path = history.record("embedded", [Run()], tables=compare.table_names(), results=results)
    assert f"snapshot {path}" in capsys.readouterr().err
    assert history.read_info(path)["notebooks"] == [{"notebook": "07_paper_audit", "cached": False, "seconds": 2.0}]
    files.write_text(results / "numbers" / "extra.json", json.dumps({"name": "extra", "value": 1}))
    again = history.snapshot(results, tables=compare.table_names(), profile="embedded",
                             now=dt.datetime.strptime(path.name, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc))
    assert again.name == f"{path.name}-2" and history.snapshots(results) == [path, again]
