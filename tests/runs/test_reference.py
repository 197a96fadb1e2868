"""The shipped reference run (`study.runs.reference`): made from a run's snapshot, stale when its table versions are
not this code's, and the references this project ships are fresh."""
from __future__ import annotations

import json

import pytest

from study.config import PROFILES
from study.errors import StudyError
from study.runs import compare, history, reference, verdict
from tests.runs import reference_run
from tests import results_folder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return results_folder.build(tmp_path_factory.mktemp("reference") / "results")


def test_a_reference_is_the_snapshot_with_a_readme_saying_how_it_was_made(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    shipped = {p.relative_to(run.reference).as_posix() for p in run.reference.rglob("*") if p.is_file()}
    kept = {p.relative_to(run.snapshot).as_posix() for p in run.snapshot.rglob("*") if p.is_file()}
    assert shipped == kept | {reference.README}
    info = history.read_info(run.reference)
    assert info["table_versions"] == compare.table_versions() and info["reference"]["from"] == run.snapshot.name
    assert info["machine"] and info["libraries"] and info["commit"]
    readme = (run.reference / reference.README).read_text()
    assert "make reference PROFILE=embedded" in readme and run.snapshot.name in readme and info["commit"] in readme


def test_a_results_folder_against_the_reference_made_from_it_is_identical_in_every_cell(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    got = verdict.against(run.results, run.profile, ref=run.reference)
    assert got.status == "compared" and got.cells > 200
    assert got.counts == {label: (got.cells if label == "identical" else 0) for label in compare.LABELS}
    assert got.changed.empty and got.differences == {}
    assert "identical" in got.headline() and got.reference_info["commit"][:12] in got.headline()


def test_a_reference_written_by_an_older_table_version_is_stale_and_not_compared(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    info = json.loads((run.reference / history.INFO).read_text())
    info["table_versions"]["table_ix_finetuning"] = "0-older"
    (run.reference / history.INFO).write_text(json.dumps(info))
    fresh = reference.freshness(run.reference)
    assert fresh.stale == [f"table table_ix_finetuning: version 0-older in the reference, "
                           f"{compare.table_versions()['table_ix_finetuning']} in this code"]
    got = verdict.against(run.results, run.profile, ref=run.reference)
    assert got.status == "stale" and got.counts == {} and got.comparison is None
    assert "stale and was not compared" in got.headline() and "table_ix_finetuning" in got.headline()
    assert any("make reference" in line for line in got.lines())


def test_a_reference_recording_no_table_versions_is_stale(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    info = json.loads((run.reference / history.INFO).read_text())
    del info["table_versions"]
    (run.reference / history.INFO).write_text(json.dumps(info))
    stale = reference.freshness(run.reference).stale
    assert stale == [f"{run.reference} records no table versions (made by older code)"]
    assert verdict.against(run.results, run.profile, ref=run.reference).status == "stale"


def test_notebooks_whose_code_changed_since_the_reference_are_named(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    info = json.loads((run.reference / history.INFO).read_text())
    (run.reference / history.INFO).write_text(json.dumps(info | {"code": {"04_case_study_finetuning": "old",
                                                                           "06_decision_analysis": "same"}}))
    code = {"04_case_study_finetuning": "new", "06_decision_analysis": "same"}
    assert reference.freshness(run.reference, code).code_changed == ["04_case_study_finetuning"]
    got = verdict.against(run.results, run.profile, ref=run.reference, code=code)
    assert got.status == "compared" and got.differences["code"].endswith("04_case_study_finetuning")


def test_make_refuses_a_snapshot_of_another_profile_or_without_versions(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    with pytest.raises(StudyError, match="snapshot of a embedded run, not smoke"):
        reference.make(PROFILES["smoke"], source=run.snapshot, root=tmp_path / "other")
    info = json.loads((run.snapshot / history.INFO).read_text())
    del info["table_versions"]
    (run.snapshot / history.INFO).write_text(json.dumps(info))
    with pytest.raises(StudyError, match="records no table versions"):
        reference.make(run.profile, source=run.snapshot, root=tmp_path / "other")
    with pytest.raises(StudyError, match="holds no snapshot of a smoke run"):
        reference.make(PROFILES["smoke"], results=run.results, root=tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_every_shipped_reference_is_fresh_and_the_smoke_one_is_shipped():
    shipped = sorted(p for p in reference.REFERENCE_ROOT.iterdir() if p.is_dir())
    assert reference.folder(PROFILES["smoke"]) in shipped
    for folder in shipped:
        assert folder.name in PROFILES and not PROFILES[folder.name].online  # offline profiles only
        assert reference.freshness(folder).stale == [], f"{folder} is stale: run `make reference PROFILE={folder.name}`"
        assert (folder / reference.README).is_file() and history.read_info(folder)["profile"] == folder.name
        opened = compare.ResultsFolder.open(folder, "A")
        assert opened.table("table_ix_finetuning") is not None and opened.numbers()


def test_a_run_with_unchanged_files_after_a_snapshot_without_versions_adds_a_versioned_one(built, tmp_path):
    results = tmp_path / "results"
    results_folder.build(results)
    old = history.snapshot(results, tables=compare.table_names(), profile="embedded")  # as older code wrote it
    assert "table_versions" in history.read_info(old) and not history.read_info(old)["table_versions"]
    new = reference_run.snapshot(results, reference_run.PROFILES["embedded"])
    assert new != old and history.read_info(new)["table_versions"] == compare.table_versions()
    assert history.snapshot(results, tables=compare.table_names(), profile="embedded",
                            versions=compare.table_versions()) is None  # nothing new since
    assert reference.make(reference_run.PROFILES["embedded"], results=results, root=tmp_path / "ref").is_dir()
