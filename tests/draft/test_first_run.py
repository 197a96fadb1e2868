"""The first-run part of the Reproducibility section (study.draft.first_run): environment, seeds, time per
notebook, failures, the measured noise, synthetic inputs and the provenance record, from a results folder."""
from __future__ import annotations

import json

import pandas as pd

from study import files
from study.config import PROFILES
from study.draft import document, first_run
from study.report import Report
from study.runs.reproduce import notebooks
from tests import results_folder


def a_results_folder(tmp_path, profile="smoke"):
    results = results_folder.build(tmp_path / "results", profile=profile)
    stems = [nb.stem for nb in notebooks()]
    for i, stem in enumerate(stems[:-1]):  # the last notebook has no successful run
        files.write_text(results / "reproduce" / f"{stem}.json", json.dumps({
            "notebook": stem, "seconds": 10.0 * (i + 1), "finished": "2026-12-07T06:29:44+00:00",
            "parameters": {"profile": profile}, "components": {}}))
    Report("06_decision_analysis", {"profile": profile, "seed": 7}, results=results,
           figures=tmp_path / "figures").table(pd.DataFrame({"a": [1]}), "seeded")
    files.write_text(results / "finetune" / profile / "sweep.json", json.dumps({
        "config": {"profile": profile, "seed": 3}, "versions": {"python": "3.11.7", "tensorflow-cpu": "2.21.0"}}))
    report = Report("04_case_study_finetuning", {"profile": profile}, results=results,
                    figures=tmp_path / "figures")
    report.table(pd.DataFrame({"quantity": ["ix.delta_cpu", "ix.elapse"], "cv": [0.05, 0.01]}), "noise_model")
    report.table(pd.DataFrame({"model": ["a", "b", "c"], "status": ["ok", "failed", "timeout"],
                               "error": ["", "out of memory", ""]}), "failed_rows")
    return results, stems


def test_a_first_run_states_environment_seeds_times_failures_noise_and_synthetic_inputs(tmp_path):
    results, stems = a_results_folder(tmp_path)
    arts = [a for a in document.artifacts(results).values() if a.kind == "table"]
    tex = first_run.section_tex(results, PROFILES["smoke"], arts, pd.Series(["random", "random", "imagenet"]))
    assert "Environment." in tex and "tensorflow-cpu 2.21.0" in tex and "Python" in tex
    assert "Seed = 7 (notebook 06)" in tex and "sweep's seed = 3" in tex and "flowers' seed = 0" in tex
    times = first_run.timing_table(results)
    assert list(times["notebook"]) == stems and times["seconds"].iloc[-1] == "--"
    assert r"\label{tab:first-run-times}" in tex and "have no successful run" in tex
    assert "failed\\_\\allowbreak{}rows: 2 of 3 rows (out of memory)" in tex  # a table without a caption: its name
    assert r"\label{tab:first-run-noise}" in tex and "ix.delta" not in tex and r"IX $\Delta$CPU" in tex
    assert "flowers are generated" in tex and "2 random, 1 imagenet" in tex
    assert r"\label{tab:provenance}" in tex and "NB04 smoke" in tex


def test_the_provenance_table_has_one_row_per_tag_and_counts_its_floats(tmp_path):
    results, _ = a_results_folder(tmp_path)
    arts = [a for a in document.artifacts(results).values() if a.kind == "table"]
    table = first_run.provenance_table(arts)
    assert table["floats"].sum() == len(arts) and table["tag"].is_unique
    assert set(table["tag"]) == {first_run.tag(a.notebook, a.profile) for a in arts}


def test_without_records_or_noise_it_says_what_is_missing(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    tex = first_run.section_tex(results, PROFILES["embedded"])
    assert "no measured noise model" in tex and "No table of this run records a failed row" in tex
    assert f"{len(notebooks())} notebooks have no successful run" in tex
