"""The audit's noise labels: supported / within noise / contradicted for the paper's comparative claims."""
from __future__ import annotations

import pandas as pd
import pytest

from study.audit import noise_labels, section_vii, sections
from study.casestudy import sampling_error
from study.decision import uncertainty
from study.decision.choice import CaseStudyTables


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return sections.audit(n_resamples=100, seed=0)


def test_every_comparative_claim_is_labelled_next_to_its_verdict(claims):
    assert list(claims.columns) == sections.COLUMNS and sections.COLUMNS[-2:] == noise_labels.COLUMNS
    labelled = claims[claims["noise"] != ""]
    assert set(labelled["noise"]) <= set(noise_labels.LABELS)
    ids = set(labelled["claim_id"])
    assert {f"{c.claim_id}.count" for c in section_vii.COUNT_CLAIMS} <= ids
    assert {"VII-G.1.best", "VII-G.2.fourth", "VII-G.1.decision", "VII-I.decision"} <= ids
    assert (labelled["noise_evidence"].str.contains("95% intervals")).all()
    assert (claims.loc[claims["noise"] == "", "noise_evidence"] == "").all()  # non-comparative claims: no label


def test_known_claims(claims):
    c = claims.set_index("claim_id")
    # 0.6621 vs the next best 0.6236 on 364 images: the best is not separable from the runner-up
    assert c.loc["VII-G.1.best", "noise"] == "within noise"
    assert "0 member(s) separably better" in c.loc["VII-G.1.best", "noise_evidence"]
    # the VII-I choice is dominated and, under resampling, almost never picked
    assert c.loc["VII-I.decision", ["reproduced", "noise"]].tolist() == ["no", "contradicted"]
    assert "chosen in" in c.loc["VII-I.decision", "noise_evidence"]


def small_tables(accuracy, cpu) -> CaseStudyTables:
    return CaseStudyTables(x=pd.DataFrame({"model": list("abcd"), "cpu": cpu, "elapse": ["0:00:05"] * 4,
                                           "memory": [1.0] * 4, "gpu": [1.0] * 4, "gpu_memory": [1.0] * 4,
                                           "accuracy": accuracy}))


def test_separable_claims_are_supported_and_wrong_ones_contradicted():
    noise = uncertainty.NoiseModel(default_cv=0.02)
    b = noise_labels.Bounds(small_tables([0.9, 0.6, 0.4, 0.2], [10.0, 20.0, 30.0, 40.0]), {}, noise, 0.95)
    assert noise_labels._count(b, "a", "x.cpu", 3)[0] == "supported"  # 20, 30, 40 all separably more than 10
    assert noise_labels._count(b, "c", "x.cpu", 3)[0] == "contradicted"  # only d uses more
    assert noise_labels._rank(b, "a", "x.accuracy", 1)[0] == "supported"
    assert noise_labels._rank(b, "b", "x.accuracy", 1)[0] == "contradicted"
    close = noise_labels.Bounds(small_tables([0.62, 0.61, 0.4, 0.2], [10.0, 10.2, 30.0, 40.0]), {}, noise, 0.95)
    label, evidence = noise_labels._rank(close, "a", "x.accuracy", 1)
    assert label == "within noise" and "rank 1-2" in evidence
    assert noise_labels._count(close, "a", "x.cpu", 3)[0] == "within noise"  # b's 10.2 is within noise of 10


def ix_tables(cpu, elapse=(100.0, 100.0, 100.0, 100.0)) -> CaseStudyTables:
    """Table IX and X of four members whose ΔCPU is `cpu`; everything else equal."""
    x = small_tables([0.5] * 4, [10.0] * 4).x
    ix = pd.DataFrame({"model": list("abcd"), "delta_cpu": cpu, "delta_mem": [5.0] * 4,
                       "elapse": [f"0:{int(s) // 60:02d}:{int(s) % 60:02d}" for s in elapse],
                       "elapse_s": list(elapse), "accuracy": [0.5] * 4})
    return CaseStudyTables(ix=ix, x=x)


def errors_at_5s(p95_x_run_s: float) -> sampling_error.ErrorModel:
    table = pd.DataFrame({"interval_s": [5.0, 5.0], "quantity": ["delta_cpu", "elapse_s"], "runs": [9, 9],
                          "p95_abs": [p95_x_run_s / 100, 1.0], "p95_abs_x_run_s": [p95_x_run_s, float("nan")]})
    return sampling_error.ErrorModel.from_table(table, 5.0)


def test_a_separation_smaller_than_the_sampling_error_is_within_measurement_error():
    """'a uses less ΔCPU than 3 members': separable under a 1 % noise model; the label flips to `within measurement
    error` when the sampling error at the members' run length exceeds the gaps, and stays when it does not."""
    tables = ix_tables([50.0, 53.0, 56.0, 59.0])
    noise = uncertainty.NoiseModel(default_cv=0.01)
    plain = noise_labels.Bounds(tables, {}, noise, 0.95)
    assert noise_labels._count(plain, "a", "ix.delta_cpu", 3)[0] == "supported"
    small = errors_at_5s(50.0)  # 0.5 pp at a 100 s run: the gaps of 3 pp stay separated
    big = errors_at_5s(400.0)  # 4 pp at 100 s, root sum of squares ~5.7 pp: b (3 pp away) no longer counts
    assert small.bound("delta_cpu", 100.0) == pytest.approx(0.5) and big.bound("delta_cpu", 100.0) == pytest.approx(4.0)
    assert small.bound("delta_cpu", 1.0) == pytest.approx(10.0)  # a run shorter than the interval: one interval long
    kept = noise_labels.Bounds(tables, {}, noise, 0.95, small, coarse=True)
    flipped = noise_labels.Bounds(tables, {}, noise, 0.95, big, coarse=True)
    assert noise_labels._count(kept, "a", "ix.delta_cpu", 3)[0] == "supported"
    assert noise_labels._count(flipped, "a", "ix.delta_cpu", 3)[0] == "within noise"
    # every claim the audit labels, on these tables: only the ΔCPU count changes, and only with the big error
    count = [type("Claim", (), dict(claim_id="T", model="a", resource="ix.delta_cpu", n=3))]
    plain = noise_labels._labels(plain, tables, count, "a", "b")
    for measurement, expected in ((small, "supported"), (big, "within measurement error")):
        coarse = noise_labels._labels(noise_labels.Bounds(tables, {}, noise, 0.95, measurement, coarse=True),
                                     tables, count, "a", "b")
        got = noise_labels.within_measurement_error(plain, coarse, measurement)
        assert got["T.count"][0] == expected and got["T.percent"][0] == expected
        assert set(got) == set(plain)
        # each case asserted on its own: the small error changes no label, the big one exactly the ΔCPU count's two
        changed = {k for k in plain if got[k] != plain[k]}
        assert changed == ({"T.count", "T.percent"} if measurement is big else set()), (measurement.label(), changed)
        assert {k for k, (label, _) in got.items() if label == "within measurement error"} == changed
    assert "sampling error at 5 s measured on 9 runs" in got["T.count"][1]
    assert "within measurement error" in noise_labels.LABELS


def test_the_evidence_names_the_noise_model_that_judged(claims):
    measured = uncertainty.NoiseModel.from_repeats(pd.DataFrame(
        {"model": ["a", "a", "a", "b", "b", "b"], "delta_cpu": [50, 52, 48, 30, 31, 29],
         "delta_mem": [5, 5.1, 4.9, 3, 3.1, 2.9], "elapse": [100, 102, 98, 60, 61, 59]}))
    got = sections.audit(n_resamples=20, seed=0, noise=measured)
    evidence = got.loc[got["noise"] != "", "noise_evidence"]
    assert evidence.str.contains("ix.delta_cpu measured: cv").all() and evidence.str.contains("others assumed: cv 10%").all()
    assert claims.loc[claims["noise"] != "", "noise_evidence"].str.contains("others assumed: cv 10%").all()


def test_the_noise_table_has_every_label_whether_it_occurs_or_not(claims):
    table = noise_labels.noise_table(claims)
    assert list(table.columns) == ["reproduced", *noise_labels.LABELS]
    comparative = claims[claims["noise"] != ""]
    assert int(table[list(noise_labels.LABELS)].to_numpy().sum()) == len(comparative)
    one_label = claims.assign(noise=claims["noise"].where(claims["noise"] == "", "within noise"))
    narrow = noise_labels.noise_table(one_label)  # a run where only one label occurs keeps the same columns
    assert list(narrow.columns) == list(table.columns) and (narrow["supported"] == 0).all()
