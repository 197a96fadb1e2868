"""The verdict `make reproduce` ends with (`study.runs.verdict`), its hook in `study.runs.reproduce`, and the draft's
Reproducibility section using it (`study.draft.reproducibility`)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from study import files
from study.runs import compare, history, reproduce, verdict
from study.draft import reproducibility
from tests import results_folder
from tests.runs import reference_run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return results_folder.build(tmp_path_factory.mktemp("verdict") / "results")


def move_cpu(results, factor: float = 10.0) -> str:
    """Table IX's first member's ΔCPU times `factor` in a new snapshot of `results`; returns the member."""
    path = results / "tables" / "table_ix_finetuning.csv"
    ix = pd.read_csv(path)
    ix.loc[0, "delta_cpu"] = ix.loc[0, "delta_cpu"] * factor
    files.write_csv(path, ix)
    reference_run.snapshot(results, reference_run.PROFILES["embedded"])
    return str(ix.loc[0, "model"])


def test_a_cell_moved_beyond_noise_is_moved_and_named_with_what_differs(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    info = json.loads((run.reference / history.INFO).read_text())
    info["machine"] = {**info["machine"], "cpu_model": "Reference CPU", "cores": 64}
    info["libraries"] = {**info["libraries"], "tensorflow": "0.0.1"}
    (run.reference / history.INFO).write_text(json.dumps(info))
    model = move_cpu(run.results)
    got = verdict.against(run.results, run.profile, ref=run.reference)
    assert got.status == "compared" and got.counts["moved"] == 1 and got.counts["flipped"] == 0
    (cell,) = got.changed.to_dict("records")
    assert (cell["table"], cell["row"], cell["column"], cell["label"]) == ("table_ix_finetuning", model, "delta_cpu",
                                                                           "moved")
    assert "CPU model differs" in cell["why"] and "cores differs" in cell["why"]
    assert "tensorflow 0.0.1 -> " in cell["why"] and "judged by noise 95%" in cell["why"]
    assert got.differences["CPU model"].startswith("Reference CPU -> ")
    assert got.differences["cores"].startswith("64 -> ")
    printed = "\n".join(got.lines())
    assert f"moved: table_ix_finetuning / {model} / delta_cpu" in printed and "Reference CPU" in printed

    out = verdict.write(got, run.results)
    written = json.loads((out / "verdict.json").read_text())
    assert written["counts"] == got.counts and written["reference_commit"] == info["commit"]
    assert written["reference_machine"]["cpu_model"] == "Reference CPU"
    assert pd.read_csv(out / "cells.csv")["row"].tolist() == [model]
    assert (out / "verdict.txt").read_text().splitlines() == got.lines()


def test_a_reference_made_under_another_definition_of_the_profile_is_named_as_the_difference(built, tmp_path):
    """Same profile name, another definition in study/profiles.py (e.g. other members): every moved cell names it,
    never "nothing recorded differs"."""
    run = reference_run.made(tmp_path, built)
    info = json.loads((run.reference / history.INFO).read_text())
    assert info["profile_definition"] == history.profile_definition(run.profile.name) != \
        history.profile_definition("smoke")  # recorded, and one profile's differs from another's
    info["profile_definition"] = "0" * 12  # the reference's profile was defined otherwise
    (run.reference / history.INFO).write_text(json.dumps(info))
    move_cpu(run.results)
    got = verdict.against(run.results, run.profile, ref=run.reference)
    assert got.differences["profile"] == f"{run.profile.name}: its definition changed since the reference " \
                                         "(study/profiles.py)"
    (cell,) = got.changed.to_dict("records")
    assert "its definition changed" in cell["why"] and "nothing recorded differs" not in cell["why"]


def test_no_shipped_reference_is_said(built, tmp_path):
    run = reference_run.made(tmp_path, built)
    got = verdict.against(run.results, run.profile, ref=tmp_path / "nowhere")
    assert got.status == "no reference" and "no shipped reference" in got.headline() and got.cells == 0


def test_reproduce_ends_with_the_verdict_printed_and_written(built, tmp_path, monkeypatch, capsys):
    run = reference_run.made(tmp_path, built)
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(run.results))
    move_cpu(run.results)
    got = reproduce.judge(run.profile, {}, run.reference)
    err = capsys.readouterr().err
    assert got is not None and got.counts["moved"] == 1
    assert f"[reproduce] verdict: {got.headline()}" in err and "1 moved" in err
    assert verdict.read(run.results)["counts"] == got.counts


def test_an_unreadable_reference_is_a_warning_not_a_failure(built, tmp_path, monkeypatch, capsys):
    run = reference_run.made(tmp_path, built)
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(run.results))
    (run.reference / "manifest.json").write_text("{damaged")
    assert reproduce.judge(run.profile, {}, run.reference) is None
    assert "warning: no verdict against the reference" in capsys.readouterr().err


def test_the_draft_uses_the_verdicts_reference_when_no_earlier_run_of_this_machine_exists(built, tmp_path, monkeypatch):
    run = reference_run.made(tmp_path, built)
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(run.results))
    shutil.rmtree(history.history_dir(run.results))  # a fresh clone: the reference came with the project
    move_cpu(run.results)
    assert len(history.snapshots(run.results)) == 1  # this run's own snapshot only
    got = reproduce.judge(run.profile, {}, run.reference)
    assert reproducibility.reference_folder(run.results) == run.reference
    tex = reproducibility.section_tex(run.results)
    assert f"{got.cells} cells" in tex and "1 moved" in tex and r"\label{tab:repro-changed}" in tex
    page1 = reproducibility.verdict_sentence(run.results)  # the abstract says it too
    assert page1.startswith("Against the shipped reference run (commit ") and f"{got.cells} compared cells" in page1
    assert "1 moved" in page1 and "flipped" not in page1
    # a stale reference: said, not compared
    info = json.loads((run.reference / history.INFO).read_text())
    info["table_versions"][compare.NUMBERS] = "0-older"
    (run.reference / history.INFO).write_text(json.dumps(info))
    reproduce.judge(run.profile, {}, run.reference)
    tex = reproducibility.section_tex(run.results)
    assert "is stale and was not compared" in tex and "longtable" not in tex
    assert reproducibility.verdict_sentence(run.results).startswith("The shipped reference run is stale")
