"""Noise that covers a re-run (`study.runs.drift`): the spread of earlier runs of this machine in results/history/."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from study import files
from study.decision import uncertainty
from study.runs import compare, drift, history
from tests import results_folder
from tests.runs import reference_run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return results_folder.build(tmp_path_factory.mktemp("drift") / "results")


def test_the_spread_of_earlier_runs_of_this_machine_widens_the_noise(built, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(built, results)
    profile = reference_run.PROFILES["embedded"]
    snaps = []
    for factor in (1.0, 1.25, 0.8, 1.2):  # readings x1, x1.25, x1, x1.2: four runs whose CPU drifted by up to 25 %
        results_folder.scale_table_ix(results, "delta_cpu", factor)
        snaps.append(reference_run.snapshot(results, profile))
    machine = history.read_info(snaps[-1])["machine"]
    assert drift.same_machine(snaps, machine, "embedded") == snaps
    assert drift.same_machine(snaps, {**machine, "cores": 999}, "embedded") == []
    assert drift.same_machine(snaps, machine, "smoke") == []
    between = drift.between_runs(snaps[:-1])
    assert between is not None and between.cv_of("ix.delta_cpu") > 0.1
    assert between.evidence["ix.delta_cpu"].runs == 3 and "between-run spread of 3 earlier runs" in between.source
    assert drift.between_runs(snaps[:2]) is None  # fewer than MIN_RUNS

    within = uncertainty.NoiseModel({"ix.delta_cpu": 0.01}, source="repeats")
    combined = drift.combine(within, between)
    assert combined.cv_of("ix.delta_cpu") == between.cv_of("ix.delta_cpu")
    assert "widened by the between-run" in combined.source
    assert drift.combine(within, None) is within

    # the last two runs, judged by a 1 % within-run noise: moved; with the history's spread: within noise
    a, b = snaps[-2], snaps[-1]
    files.write_csv(a / "tables" / f"{compare.NOISE_TABLE}.csv", within.to_frame())
    assert results_folder.table_ix_labels(compare.compare(a, b), "delta_cpu") == {"moved"}
    judged = compare.compare(a, b, noise=drift.judging(a, b, snaps[:-1]))
    assert results_folder.table_ix_labels(judged, "delta_cpu") == {"within noise"}


def test_an_unstable_choice_says_so_instead_of_flipping(built, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(built, a)
    shutil.copytree(built, b)
    path = b / "tables" / "decision_ours_beside_paper.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    i = df.index[df["tables"] == "ours"][0]  # a choice the fixture's stability table does not cover
    row = df.loc[i]
    others = [m for m in pd.read_csv(a / "tables" / "table_ix_finetuning.csv")["model"] if m != row["selected"]]
    df.loc[i, "selected"] = others[0]
    files.write_csv(path, df)
    key = (row["tables"], row["priority"])
    flipped = compare.compare(a, b).rows
    assert flipped[flipped["label"] == "flipped"]["row"].tolist() == [" / ".join(key)]
    stability = pd.DataFrame({"tables": [key[0]] * 2, "priority": [key[1]] * 2, "model": [row["selected"], others[0]],
                              "frequency": [0.6, 0.4], "point_choice": [True, False]})
    for folder in (a, b):
        files.write_csv(folder / "tables" / f"{compare.STABILITY_TABLE}.csv", stability)
    rows = compare.compare(a, b).rows
    cell = rows[(rows["table"] == "decision_ours_beside_paper") & (rows["row"] == " / ".join(key))
                & (rows["column"] == "selected")].iloc[0]
    assert cell["label"] == "within noise" and "unstable choice" in cell["interval"] and "40%" in cell["interval"]
    assert "flipped" not in set(rows["label"])
    rare = stability.assign(frequency=[0.99, 0.01])  # another member chosen in 1 % of resamples: a real flip
    for folder in (a, b):
        files.write_csv(folder / "tables" / f"{compare.STABILITY_TABLE}.csv", rare)
    assert "flipped" in set(compare.compare(a, b).rows["label"])
