"""Decisions under uncertainty: intervals, separability, resampled decision stability and `decide --bootstrap`."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from study import paper
from study.cli import main
from study.decision import choice, uncertainty
from study.decision.choice import CaseStudyTables, uses_less_than
from study.errors import StudyError


def table_ix(accuracy=(0.9, 0.5, 0.4), delta_cpu=(10.0, 50.0, 60.0)) -> pd.DataFrame:
    return pd.DataFrame({"model": ["a", "b", "c"], "delta_cpu": list(delta_cpu), "delta_mem": [1.0, 2.0, 3.0],
                         "elapse": ["0:01:00", "0:02:00", "0:03:00"], "accuracy": list(accuracy)})


# --- intervals -----------------------------------------------------------------------------------

def test_wilson_matches_newcombes_worked_examples():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81/263 -> 0.2553-0.3662, 15/148 -> 0.0624-0.1605
    lo, hi = uncertainty.wilson([81, 15, 0], [263, 148, 10])
    assert lo[:2] == pytest.approx([0.2553, 0.0624], abs=5e-5)
    assert hi[:2] == pytest.approx([0.3662, 0.1605], abs=5e-5)
    assert lo[2] == pytest.approx(0.0) and hi[2] == pytest.approx(0.2775, abs=5e-5)  # 0/10: no negative limit
    assert np.isnan(uncertainty.wilson(1, 0)[0])


def test_difference_interval_is_newcombes_method_10():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80 -> +0.0524 to +0.3339
    (l1, u1), (l2, u2) = (uncertainty.wilson(56, 70), uncertainty.wilson(48, 80))
    lo, hi = uncertainty.difference_interval(56 / 70, l1, u1, 48 / 80, l2, u2)
    assert (float(lo), float(hi)) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_separable_versus_within_noise_on_364_test_images():
    n = uncertainty.test_images()
    assert n == paper.flower_split()["testing"].sum() == 364
    k = np.array([0.9 * n, 0.5 * n, 227, 226]).round()  # 0.9 vs 0.5: far apart; 0.6236 vs 0.6209: one image
    lo, hi = uncertainty.wilson(k, n)
    p = k / n
    assert uncertainty.separable(p[0], lo[0], hi[0], p[1], lo[1], hi[1])
    assert not uncertainty.separable(p[2], lo[2], hi[2], p[3], lo[3], hi[3])
    assert (hi[2] - lo[2]) / 2 == pytest.approx(0.05, abs=0.005)  # the "about ±0.05"


def test_bootstrap_interval_is_reproducible_by_seed():
    values = [10.0, 12.0, 11.0, 15.0, 9.0]
    first = uncertainty.bootstrap_interval(values, seed=7)
    assert first == uncertainty.bootstrap_interval(values, seed=7)
    assert first != uncertainty.bootstrap_interval(values, seed=8)
    assert min(values) <= first[0] < np.mean(values) < first[1] <= max(values)
    assert all(np.isnan(uncertainty.bootstrap_interval([3.0])))


def test_the_papers_tables_get_accuracy_intervals_and_say_single_run():
    out = uncertainty.with_intervals(paper.finetuning(), "IX")
    assert (out["n_test"] == 364).all() and (out["resource_interval"] == uncertainty.NO_INTERVAL).all()
    assert (out["accuracy_lo"] < out["accuracy"]).all() and (out["accuracy"] < out["accuracy_hi"]).all()
    assert out[["delta_cpu_lo", "elapse_hi"]].isna().all().all()
    x = uncertainty.with_intervals(paper.testing(), "X", n_test={"mobilenet_v1_025_224": 301})
    row = x.set_index("model").loc["mobilenet_v1_025_224"]
    assert row["n_test"] == 301 and {"gpu_lo", "gpu_memory_hi"} <= set(x.columns)


def test_repeats_give_bootstrap_intervals_and_one_repeat_says_so():
    repeats = pd.DataFrame({"model": ["a", "a", "a", "b"], "repeat": [0, 1, 2, 0], "delta_cpu": [9.0, 10.0, 11.0, 50.0],
                            "delta_mem": [1.0, 1.1, 0.9, 2.0], "elapse": [59.0, 60.0, 61.0, 120.0],
                            "accuracy": [0.9, 0.9, 0.9, 0.5]})
    out = uncertainty.with_intervals(table_ix(), "IX", n_test=100, repeats=repeats).set_index("model")
    assert out.loc["a", "resource_interval"] == "bootstrap over 3 repeats (95%)"
    assert out.loc["a", "delta_cpu_lo"] < 10.0 < out.loc["a", "delta_cpu_hi"]
    assert out.loc["b", "resource_interval"] == out.loc["c", "resource_interval"] == uncertainty.NO_INTERVAL
    assert np.isnan(out.loc["b", "delta_cpu_lo"])
    noise = uncertainty.NoiseModel.from_repeats(repeats)
    assert noise.cv_of("ix.delta_cpu") == pytest.approx(0.1) and noise.cv_of("x.cpu") == uncertainty.DEFAULT_CV
    assert "1 members" in noise.source


# --- decision stability --------------------------------------------------------------------------

def test_a_clear_winner_is_always_chosen_and_a_near_tie_splits():
    clear = CaseStudyTables(table_ix(), label="clear")
    freq = uncertainty.stability(clear, {"acc": ["max:accuracy"]}, n_resamples=200, seed=1, n_test=364)
    assert freq.set_index("model").loc["a", "frequency"] == 1.0
    close = CaseStudyTables(table_ix(accuracy=(0.6236, 0.6209, 0.40)), label="close")
    freq = uncertainty.stability(close, {"acc": ["max:accuracy"]}, n_resamples=200, seed=1, n_test=364).set_index("model")
    assert 0.2 < freq.loc["a", "frequency"] < 0.8 and 0.2 < freq.loc["b", "frequency"] < 0.8
    assert freq.loc["a", "point_choice"] and freq["frequency"].sum() == pytest.approx(1.0)
    sentence = uncertainty.robustness(freq.reset_index())  # its numbers are the computed frequencies
    assert sentence == f"Over 200 resamples, the choice is kept: close tables: a (acc) in {freq.loc['a', 'frequency']:.0%}."


def test_resources_move_within_the_noise_model():
    tables = CaseStudyTables(table_ix(accuracy=(0.5, 0.5, 0.5), delta_cpu=(10.0, 10.5, 40.0)))
    rule = {"cpu": ["min:delta_cpu"]}
    none = uncertainty.stability(tables, rule, n_resamples=100, noise=uncertainty.NoiseModel(default_cv=0.0))
    assert none.set_index("model").loc["a", "frequency"] == 1.0  # no noise: the printed order every time
    noisy = uncertainty.stability(tables, rule, n_resamples=300, noise=uncertainty.NoiseModel(default_cv=0.1))
    f = noisy.set_index("model")["frequency"]
    assert 0.1 < f["b"] < 0.9 and "c" not in f.index  # 10 vs 10.5 within noise, 40 never the smallest


def test_stability_is_reproducible_by_seed():
    tables = CaseStudyTables.paper()
    rule = {k: v for k, v in list(choice.PAPER_PRIORITIES.items())[1:]}
    one = uncertainty.stability(tables, rule, n_resamples=40, seed=5)
    assert one.equals(uncertainty.stability(tables, rule, n_resamples=40, seed=5))
    assert not one["selected"].equals(uncertainty.stability(tables, rule, n_resamples=40, seed=6)["selected"])
    assert one["selected"].sum() == 40 and one["point_choice"].sum() == 1


def test_per_image_predictions_are_resampled_paired():
    paths = [f"img{i}.jpg" for i in range(50)]
    labels = np.arange(50) % 5
    wrong = (labels + 1) % 5
    preds = {"a": pd.DataFrame({"path": paths, "label": labels, "prediction": np.where(np.arange(50) < 30, labels, wrong)}),
             "b": pd.DataFrame({"path": paths, "label": labels, "prediction": np.where(np.arange(50) < 31, labels, wrong)})}
    tables = CaseStudyTables(table_ix(accuracy=(0.6, 0.62, 0.1)))
    generated, info = uncertainty.draws(tables, n_resamples=100, seed=2, predictions=preds, n_test=50)
    acc = np.array([t.ix.set_index("model")["accuracy"].to_numpy() for t in generated])
    assert (acc[:, 1] - acc[:, 0] >= 0).all()  # b got every image a got right, on every resample: paired
    assert "per-image predictions" in info.methods["IX accuracy a"] and "Binomial" in info.methods["IX accuracy c"]


def test_bad_resample_counts_are_one_clear_error():
    with pytest.raises(StudyError, match="whole number >= 1"):
        uncertainty.draws(CaseStudyTables(table_ix()), n_resamples=0)
    with pytest.raises(StudyError, match=">= 0"):
        uncertainty.NoiseModel(default_cv=-0.1)
    with pytest.raises(StudyError, match="strict, or_equal"):
        uncertainty.stability(CaseStudyTables(table_ix()), {"x": ["min:training"]}, n_resamples=2, tie_rule="loose")


def test_the_vectorised_group_score_is_the_papers_count():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"model": [f"m{i}" for i in range(12)], "cpu": rng.integers(0, 5, 12).astype(float),
                      "elapse": [f"0:00:{s:02d}" for s in rng.integers(1, 4, 12)], "memory": rng.random(12),
                      "gpu": rng.integers(0, 3, 12).astype(float), "gpu_memory": rng.random(12), "accuracy": rng.random(12)})
    tables = CaseStudyTables(x=x)
    wide = tables.values()
    for rule in choice.TIE_RULES:
        expected = pd.concat([pd.Series({m: uses_less_than(wide[r.key], m, tie_rule=rule, denominator="others").percent
                                         / 100 for m in wide.index}) for r in tables.resources()], axis=1).mean(axis=1)
        assert choice.group_score(tables, "inference", tie_rule=rule).to_numpy() == pytest.approx(expected.to_numpy())


# --- a sweep folder and the CLI -------------------------------------------------------------------

def sweep_folder(tmp_path):
    out = tmp_path / "sweep"
    for m, accs in (("a", (0.8, 0.9)), ("b", (0.5,))):
        for r, acc in enumerate(accs):
            path = out / "runs" / m / f"r{r}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"member": m, "repeat": r, "status": "ok", "config": {"seed": 0},
                                        "delta_cpu": 10.0 + r, "delta_mem": 1.0, "elapse_s": 60.0 + r, "accuracy": acc}))
    (out / "predictions").mkdir()
    for m, right in (("a", 17), ("b", 10)):
        pd.DataFrame({"path": [f"{i}.jpg" for i in range(20)], "label": [0] * 20,
                      "prediction": [0] * right + [1] * (20 - right)}).to_csv(out / "predictions" / f"{m}.csv", index=False)
    pd.DataFrame({"model": ["a", "b"], "delta_cpu": [10.5, 10.0], "delta_mem": [1.0, 1.0], "elapse": ["0:01:00", "0:01:00"],
                  "accuracy": [0.85, 0.5], "repeats": [2, 1]}).to_csv(out / "table_ix.csv", index=False)
    return out


def test_sweep_repeats_and_predictions(tmp_path):
    out = sweep_folder(tmp_path)
    reps = uncertainty.sweep_repeats(out)
    assert reps.groupby("model").size().to_dict() == {"a": 2, "b": 1}
    assert reps.set_index(["model", "repeat"]).loc[("a", 1), "elapse"] == 61.0
    assert set(uncertainty.sweep_predictions(out)) == {"a", "b"}


def run_decide(capsys, *args) -> tuple[pd.DataFrame, str]:
    assert main(["decide", *args, "--csv", "-"]) == 0
    out = capsys.readouterr()
    return pd.read_csv(io.StringIO(out.out)), out.err


def test_decide_bootstrap_cli(capsys, tmp_path):
    first, err = run_decide(capsys, "--bootstrap", "30", "--seed", "3")
    again, _ = run_decide(capsys, "--bootstrap", "30", "--seed", "3")
    assert first.equals(again) and first["selected"].sum() == 30
    assert {"model", "selected", "frequency", "point_choice", "seed", "n_resamples"} <= set(first.columns)
    assert "30 resamples, seed 3" in err and "Binomial" in err
    out = sweep_folder(tmp_path)
    ours, err = run_decide(capsys, "--table-ix", str(out / "table_ix.csv"), "--bootstrap", "50", "--priority", "max:accuracy")
    assert ours.set_index("model").loc["a", "frequency"] > 0.9 and "per-image" in err and "repeats resampled" in err
    plain, _ = run_decide(capsys, "--priority", "max:accuracy")  # without --bootstrap: the evidence, as before
    assert "statement" in plain.columns
