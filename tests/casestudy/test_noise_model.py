"""The noise model measured from repeats: per resource cv with a bootstrap interval, and the label that says which
noise model judged a value (`uncertainty.NoiseModel.label`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.casestudy import uncertainty
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
