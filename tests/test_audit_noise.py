"""The audit's noise labels: supported / within noise / contradicted for the paper's comparative claims."""
from __future__ import annotations

import pandas as pd
import pytest

from study import audit, audit_noise
from study.casestudy import uncertainty
from study.casestudy.decision import CaseStudyTables


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return audit.audit(n_resamples=100, seed=0)


def test_every_comparative_claim_is_labelled_next_to_its_verdict(claims):
    assert list(claims.columns) == audit.COLUMNS and audit.COLUMNS[-2:] == audit_noise.COLUMNS
    labelled = claims[claims["noise"] != ""]
    assert set(labelled["noise"]) <= set(audit_noise.LABELS)
    ids = set(labelled["claim_id"])
    assert {f"{c.claim_id}.count" for c in audit.COUNT_CLAIMS} <= ids
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
    b = audit_noise.Bounds(small_tables([0.9, 0.6, 0.4, 0.2], [10.0, 20.0, 30.0, 40.0]), {}, noise, 0.95)
    assert audit_noise._count(b, "a", "x.cpu", 3)[0] == "supported"  # 20, 30, 40 all separably more than 10
    assert audit_noise._count(b, "c", "x.cpu", 3)[0] == "contradicted"  # only d uses more
    assert audit_noise._rank(b, "a", "x.accuracy", 1)[0] == "supported"
    assert audit_noise._rank(b, "b", "x.accuracy", 1)[0] == "contradicted"
    close = audit_noise.Bounds(small_tables([0.62, 0.61, 0.4, 0.2], [10.0, 10.2, 30.0, 40.0]), {}, noise, 0.95)
    label, evidence = audit_noise._rank(close, "a", "x.accuracy", 1)
    assert label == "within noise" and "rank 1-2" in evidence
    assert audit_noise._count(close, "a", "x.cpu", 3)[0] == "within noise"  # b's 10.2 is within noise of 10
