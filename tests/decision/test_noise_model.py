"""The noise model measured from repeats: per resource cv with a bootstrap interval, and the label that says which
noise model judged a value (`uncertainty.NoiseModel.label`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.config import PROFILES
from study.decision import uncertainty
from study.errors import StudyError


def repeats(cv: dict[str, float], members: int = 4, runs: int = 5, seed: int = 0) -> pd.DataFrame:
    """`runs` repeats of `members` members whose resources scatter with relative standard deviation `cv`."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(members):
        level = {"delta_cpu": 20.0 + 10 * m, "delta_mem": 2.0 + m, "elapse": 30.0 + 15 * m}
        for r in range(runs):
            rows.append({"model": f"m{m}", "repeat": r, "accuracy": 0.5,
                         **{k: v * (1 + cv[k] * rng.standard_normal()) for k, v in level.items()}})
    return pd.DataFrame(rows)


def test_measured_cv_comes_with_a_bootstrap_interval_that_covers_the_truth():
    truth = {"delta_cpu": 0.05, "delta_mem": 0.02, "elapse": 0.10}
    covered = {k: 0 for k in truth}
    for seed in range(40):  # 40 data sets of 6 members x 8 repeats
        noise = uncertainty.NoiseModel.from_repeats(repeats(truth, members=6, runs=8, seed=seed), n_resamples=500)
        for column, cv in truth.items():
            est = noise.evidence[f"ix.{column}"]
            assert est.lo <= est.cv <= est.hi and (est.runs, est.members) == (48, 6)
            assert noise.cv_of(f"ix.{column}") == est.cv and 0.6 * cv < est.cv < 1.4 * cv
            covered[column] += est.lo < cv < est.hi
    assert min(covered.values()) >= 32, covered  # a 95 % interval; the median of sample cvs runs a little low
    again = uncertainty.NoiseModel.from_repeats(repeats(truth, members=6, runs=8, seed=39), n_resamples=500)
    assert again.evidence == noise.evidence  # the same seed, the same interval


def test_the_label_says_measured_or_assumed():
    noise = uncertainty.NoiseModel.from_repeats(repeats({"delta_cpu": 0.05, "delta_mem": 0.02, "elapse": 0.1}))
    est = noise.evidence["ix.delta_cpu"]
    label = noise.label("ix.delta_cpu")
    assert label.startswith("measured: cv ") and label.endswith("from 20 runs")
    assert f"{100 * est.lo:.2g}%" in label and f"{100 * est.hi:.2g}%" in label
    assert noise.label("x.cpu") == "assumed: cv 10%"  # Table X is measured once per member
    assert uncertainty.NoiseModel().label("ix.delta_cpu") == "assumed: cv 10%"
    assert uncertainty.NoiseModel(default_cv=0.025).label("ix.elapse") == "assumed: cv 2.5%"
    one_run = repeats({"delta_cpu": 0.05, "delta_mem": 0.02, "elapse": 0.1}, runs=1)
    assert uncertainty.NoiseModel.from_repeats(one_run).label("ix.delta_cpu") == "assumed: cv 10%"


def test_one_member_gives_its_cv_and_no_interval():
    """The interval resamples members: from one member it would have zero width (a false certainty), so it is NaN
    and the label says why; the cv is that member's own (computed here from its runs)."""
    one = repeats({"delta_cpu": 0.05, "delta_mem": 0.02, "elapse": 0.1}, members=1, runs=2, seed=3)
    noise = uncertainty.NoiseModel.from_repeats(one)
    cpu = one["delta_cpu"].to_numpy()
    est = noise.evidence["ix.delta_cpu"]
    assert est.cv == pytest.approx(cpu.std(ddof=1) / cpu.mean()) and (est.runs, est.members) == (2, 1)
    assert np.isnan(est.lo) and np.isnan(est.hi)
    assert noise.label("ix.delta_cpu") == f"measured: cv {100 * est.cv:.2g}% from 2 runs of one member (no interval)"
    back = uncertainty.NoiseModel.from_frame(noise.to_frame())  # what notebook 04 writes and `compare` reads
    assert back.label("ix.delta_cpu") == noise.label("ix.delta_cpu")


def test_a_saved_noise_model_reads_back_the_same():
    noise = uncertainty.NoiseModel.from_repeats(repeats({"delta_cpu": 0.05, "delta_mem": 0.02, "elapse": 0.1}),
                                                default_cv=0.08)
    frame = noise.to_frame()
    assert frame["resource"].tolist() == ["ix.delta_cpu", "ix.delta_mem", "ix.elapse", "*"]
    back = uncertainty.NoiseModel.from_frame(frame)
    assert back.cv == pytest.approx(dict(noise.cv)) and back.default_cv == 0.08
    assert [back.label(k) for k in frame["resource"]] == frame["label"].tolist()
    with pytest.raises(StudyError, match="lacks column"):
        uncertainty.NoiseModel.from_frame(frame.drop(columns="cv_lo"))


# --- the profile's repeated runs (study.casestudy.noise_runs) ------------------------------------------------

def test_the_embedded_profile_repeats_a_spread_of_members_and_smoke_stays_small():
    from study.assets import zoo
    from study.casestudy import noise_runs

    embedded, smoke = noise_runs.plan(PROFILES["embedded"]), noise_runs.plan(PROFILES["smoke"])
    assert len(embedded.members) >= 3 and embedded.repeats >= 3
    names = [m.name for m in zoo.members(PROFILES["embedded"])]
    assert set(embedded.members) <= set(names)
    widths = sorted(int(m.split("_")[2]) * int(m.split("_")[3]) ** 2 for m in embedded.members)
    assert widths[0] < widths[1] < widths[2]  # across the size range (width × input pixels)
    assert len(smoke.members) * smoke.repeats <= 4 and set(smoke.members) <= {m.name for m in zoo.members(PROFILES["smoke"])}
    assert embedded.cooldown_samples * embedded.interval >= 5.0  # the paper's 5 s interval has a cool-down sample
    assert noise_runs.plan(PROFILES["paper"]) is None
    assert noise_runs.default_out(PROFILES["smoke"]).name == "smoke-repeats"


def fake_sweep(out, runs: dict[str, list[float]], cpu_s: float | None = None):
    """A sweep folder of ok runs (records + samples/<member>.csv) whose delta_cpu per repeat is given."""
    import json

    from tests.casestudy.test_sampling_error import trace

    parts = {}
    for member, values in runs.items():
        for r, value in enumerate(values):
            rec = {"member": member, "repeat": r, "status": "ok", "elapse_s": 60.0 + r, "delta_cpu": value,
                   "delta_mem": 1.0 + r / 10, "accuracy": 0.5, "config": {"profile": "smoke"},
                   "worker": {"cpu_s": cpu_s} if cpu_s is not None else {}}
            path = out / "runs" / member / f"r{r}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rec))
            t = trace(before=30, run=100, after=30).assign(tree_cpu=lambda d: d["cpu"] / 2)
            parts.setdefault(member, []).append(t.assign(repeat=r))
    (out / "samples").mkdir(parents=True, exist_ok=True)
    for member, frames in parts.items():
        pd.concat(frames).to_csv(out / "samples" / f"{member}.csv", index=False)


def test_noise_and_sampling_error_from_a_sweep_folder(tmp_path):
    from study.casestudy import noise_runs, sampling_error

    fake_sweep(tmp_path, {"a": [50.0, 55.0, 45.0], "b": [20.0, 22.0, 18.0], "c": [10.0, 10.5, 9.5]}, cpu_s=2.0)
    repeats = uncertainty.sweep_repeats(tmp_path)
    noise = uncertainty.NoiseModel.from_repeats(repeats)
    assert noise.evidence["ix.delta_cpu"].runs == 9 and noise.cv_of("ix.delta_cpu") == pytest.approx(0.1)
    reading = noise_runs.noise_reading(noise, repeats)
    assert "measured from 9 runs of 3 members" in reading and "delta_cpu measured: cv 10%" in reading
    errors = noise_runs.sampling_errors(tmp_path, intervals=(1.0, 5.0))
    assert set(errors["run"]) == {f"{m}/r{r}" for m in "abc" for r in range(3)}
    table = sampling_error.error_table(errors)
    assert (table["runs"] == 9).all()
    check = noise_runs.cpu_check(tmp_path)
    # the trace's tree burns half a core for 4 of every 10 fine samples over 10 s of running: 2 CPU-seconds on the
    # Sampler's all-cores scale times the cores
    import psutil

    assert check["integrated_cpu_s"].iloc[0] == pytest.approx(0.5 * 0.4 * 10 * psutil.cpu_count())
    assert check["ratio"].iloc[0] == pytest.approx(check["integrated_cpu_s"].iloc[0] / 2.0)
    text = noise_runs.sampling_reading(table, check)
    assert "From 9 runs" in text and "kernel" in text
    no_kernel = noise_runs.cpu_check(tmp_path.parent / "none")
    assert no_kernel.empty


def test_without_repeats_the_reading_says_the_default_judges():
    from study.casestudy import noise_runs

    noise = uncertainty.NoiseModel.from_repeats(None)
    assert "stated default (assumed: cv 10%)" in noise_runs.noise_reading(noise, None)


def test_a_notebook_takes_notebook_04s_noise_model_as_a_named_input(outdirs):
    from study.report import Report

    assert uncertainty.noise_model_input("", "smoke")[0].label("ix.delta_cpu") == "assumed: cv 10%"
    with pytest.raises(StudyError, match="run that notebook first"):
        uncertainty.noise_model_input("04:noise_model", "smoke")
    measured = uncertainty.NoiseModel.from_repeats(repeats({"delta_cpu": 0.05, "delta_mem": 0.05, "elapse": 0.05}))
    Report("04_case_study_finetuning", {"profile": "smoke"}).table(measured.to_frame(), "noise_model")
    got, inputs = uncertainty.noise_model_input("04:noise_model", "smoke")
    assert got.label("ix.delta_cpu") == measured.label("ix.delta_cpu") and inputs[0].name == "noise_model.csv"
    assert "04:noise_model (smoke profile)" in got.source
    with pytest.raises(StudyError, match="profile"):
        uncertainty.noise_model_input("04:noise_model", "embedded")
    reading = uncertainty.noise_reading(got, ["ix.delta_cpu", "x.cpu", "x.memory"])
    assert "ix.delta_cpu measured: cv" in reading and "x.cpu, x.memory assumed: cv 10%" in reading
