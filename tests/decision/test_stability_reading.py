"""Notebook 06's reading of the decision under uncertainty, on the paper's own Tables IX and X (and a small sweep
folder of ours): intervals, what the accuracy intervals separate, selection frequencies and the draft's numbers."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from study import paper
from study.audit import section_vii
from study.decision import choice, stability_reading, uncertainty
from study.decision.choice import CaseStudyTables

N = 50  # resamples: enough to check the frames' properties, fast


@pytest.fixture(scope="module")
def inferred() -> dict[str, float]:
    return section_vii.inferred_images().set_index("model")["inferred"].dropna().to_dict()


@pytest.fixture(scope="module")
def paper_ci(inferred) -> dict[str, pd.DataFrame]:
    return stability_reading.paper_intervals(inferred)


@pytest.fixture
def sweep(tmp_path):
    """A sweep folder of ours: the paper's first six members, two repeats of the first, predictions of the second."""
    ix, x = paper.finetuning().head(6), paper.testing()
    x = x[x["model"].isin(ix["model"])]
    ix.to_csv(tmp_path / "table_ix.csv", index=False)
    x.to_csv(tmp_path / "table_x.csv", index=False)
    first, second = ix.iloc[0], ix.iloc[1]
    for k in range(2):
        (tmp_path / "runs" / first["model"]).mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / first["model"] / f"r{k}.json").write_text(json.dumps(
            {"member": first["model"], "repeat": k, "config": "c", "status": "ok", "accuracy": float(first["accuracy"]),
             "delta_cpu": float(first["delta_cpu"]) + k, "delta_mem": float(first["delta_mem"]) - k,
             "elapse_s": float(first["elapse_s"]) + k}))
    (tmp_path / "predictions").mkdir()
    pd.DataFrame({"path": [f"img{i}.jpg" for i in range(40)], "label": [0] * 40,
                  "prediction": [0] * 30 + [1] * 10}).to_csv(tmp_path / "predictions" / f"{second['model']}.csv",
                                                             index=False)
    tables, _ = choice.sweep_tables(tmp_path / "table_ix.csv", tmp_path / "table_x.csv")
    return tables, first["model"], second["model"]


# --- the tables with intervals -------------------------------------------------------------------

def test_paper_intervals_put_a_wilson_interval_round_every_accuracy_and_none_on_single_runs(paper_ci, inferred):
    assert set(paper_ci) == {"IX", "X"}
    assert len(paper_ci["IX"]) == len(paper.finetuning()) and len(paper_ci["X"]) == len(paper.testing())
    for df in paper_ci.values():
        assert ((df["accuracy_lo"] <= df["accuracy"]) & (df["accuracy"] <= df["accuracy_hi"])).all()
        assert (df["resource_interval"] == uncertainty.NO_INTERVAL).all()  # the paper ran every member once
    x = paper_ci["X"].set_index("model")
    assert all(x.loc[m, "n_test"] == int(n) for m, n in inferred.items())
    early = [m for m, n in inferred.items() if n < uncertainty.test_images()]  # runs that stopped early
    assert early and x.loc[early, "n_test"].lt(uncertainty.test_images()).all()


def test_accuracy_ranking_lists_the_most_accurate_first(paper_ci):
    top = stability_reading.accuracy_ranking(paper_ci["X"])
    assert len(top) == 8 and top["accuracy"].is_monotonic_decreasing
    assert top["model"].iloc[0] == paper.CHOICE_BEST_PERFORMING
    assert list(top.columns) == list(stability_reading.RANKING_COLUMNS)


def test_our_intervals_use_the_sweeps_repeats_and_test_split_for_table_ix_only(sweep):
    ours, repeated, predicted = sweep
    evidence = stability_reading.sweep_evidence(ours)
    assert evidence.n_test == {predicted: 40} and "2 ok runs" in evidence.note
    ci = stability_reading.our_intervals(ours, evidence.repeats, evidence.n_test, seed=0)
    ix, x = ci["IX"].set_index("model"), ci["X"].set_index("model")
    assert ix.loc[repeated, "resource_interval"].startswith("bootstrap over 2 repeats")
    assert ix.loc[repeated, "delta_cpu_lo"] < ix.loc[repeated, "delta_cpu_hi"]
    assert (ix.drop(repeated)["resource_interval"] == uncertainty.NO_INTERVAL).all()
    assert ix.loc[predicted, "n_test"] == 40 and x.loc[predicted, "n_test"] == uncertainty.test_images()
    assert (x["resource_interval"] == uncertainty.NO_INTERVAL).all()
    assert stability_reading.our_intervals(ours, seed=0)["IX"].equals(
        stability_reading.our_intervals(ours, seed=0)["IX"])  # seeded: the same table twice
    only_x = CaseStudyTables(x=ours.x)
    assert set(stability_reading.our_intervals(only_x)) == {"X"}


# --- what the accuracy intervals let us say ---------------------------------------------------------

def test_interval_reading_names_the_most_accurate_member_and_every_member_within_its_noise(paper_ci):
    sep = stability_reading.accuracy_separation(paper_ci["X"])
    assert sep.most_accurate == paper.CHOICE_BEST_PERFORMING
    assert 0 < sep.half_width < 0.5 and 0 <= sep.narrower <= 1
    assert len(sep.separability) == len(paper_ci["X"]) - 1 and sep.within_noise
    text = stability_reading.interval_reading(paper_ci["X"])
    assert f"`{paper.CHOICE_BEST_PERFORMING}`" in text and "nan" not in text
    assert f"±{sep.half_width:.3f}" in text and f"wider than {sep.narrower:.0%} of the gaps" in text
    assert f"{len(sep.within_noise)} of the {len(paper_ci['X']) - 1} other members" in text
    assert text.endswith(": " + ", ".join(sep.within_noise) + ".")


def test_well_separated_accuracies_leave_no_member_within_noise():
    table = uncertainty.with_intervals(pd.DataFrame({
        "model": ["a", "b", "c"], "cpu": [1.0, 2.0, 3.0], "elapse": ["0:00:01"] * 3, "memory": [1.0] * 3,
        "gpu": [1.0] * 3, "gpu_memory": [1.0] * 3, "accuracy": [0.9, 0.5, 0.4]}), "X", n_test=10_000)
    sep = stability_reading.accuracy_separation(table)
    assert (sep.most_accurate, sep.within_noise, sep.narrower) == ("a", [], 0.0)
    assert "0 of the 2 other members" in sep.text()


# --- decision stability ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_stability(inferred) -> pd.DataFrame:
    return stability_reading.stability_table(CaseStudyTables.paper(), noise=uncertainty.NoiseModel(), n_resamples=N,
                                             seed=0, inferred=inferred)


def test_stability_table_on_the_paper_alone_counts_every_resample_of_each_priority(paper_stability):
    assert set(paper_stability["tables"]) == {"paper"}
    assert set(paper_stability["priority"]) == set(choice.PAPER_PRIORITIES)
    assert (paper_stability.groupby("priority")["selected"].sum() == N).all()
    assert paper_stability.groupby("priority")["point_choice"].sum().eq(1).all()
    assert (paper_stability["n_resamples"] == N).all()


def test_stability_table_puts_ours_beside_the_paper_with_the_same_seed(sweep, inferred, paper_stability):
    ours, _, _ = sweep
    evidence = stability_reading.sweep_evidence(ours)
    both = stability_reading.stability_table(CaseStudyTables.paper(), ours, noise=uncertainty.NoiseModel(),
                                             n_resamples=N, seed=0, inferred=inferred, evidence=evidence)
    assert set(both["tables"]) == {"paper", ours.label}
    paper_part = both[both["tables"] == "paper"].reset_index(drop=True)
    pd.testing.assert_frame_equal(paper_part, paper_stability)  # ours does not change the paper's part
    mine = both[both["tables"] == ours.label]
    assert set(mine["priority"]) == set(choice.paper_like_priorities(ours))
    assert (mine.groupby("priority")["selected"].sum() == N).all()
    assert set(mine["model"]) - {"(none)"} <= set(ours.models)


def test_stability_caption_says_how_the_tables_were_resampled():
    caption = stability_reading.stability_caption(N, 7, uncertainty.NoiseModel())
    assert f"over {N} resamples (seed 7)" in caption and "within the assumed noise model" in caption


def test_draft_numbers_are_the_percent_of_resamples_keeping_each_paper_choice(paper_stability, sweep, inferred):
    numbers = stability_reading.draft_numbers(paper_stability)
    assert list(numbers) == ["decision_stability_paper_choice_accuracy", "decision_stability_paper_choice_resources"]
    for (name, chosen), (value, description, fmt) in zip(choice.PAPER_CHOICES.items(), numbers.values()):
        assert 0 <= value <= 100 and re.fullmatch(r"\d+", fmt.format(value))
        kept = paper_stability[(paper_stability["priority"] == name) & (paper_stability["model"] == chosen)]
        assert value == pytest.approx(100 * kept["frequency"].sum())
        assert description == f"percent of {N} resamples in which {name.split()[0]} keeps the paper's choice"
    never = paper_stability[paper_stability["model"] != paper.CHOICE_BEST_PERFORMING]
    assert stability_reading.draft_numbers(never)["decision_stability_paper_choice_accuracy"][0] == 0
    ours, _, _ = sweep  # our rows in the same frame are not read
    both = stability_reading.stability_table(CaseStudyTables.paper(), ours, noise=uncertainty.NoiseModel(),
                                             n_resamples=N, seed=0, inferred=inferred)
    assert stability_reading.draft_numbers(both) == numbers
