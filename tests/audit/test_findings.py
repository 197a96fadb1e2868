"""The findings at a glance (study.audit.findings): computed from the audit and this run's tables, one row per part;
what the paper's tables give and what this run measured are kept apart, each with its own verdict."""
from __future__ import annotations

import pandas as pd
import pytest

from study import paper
from study.audit import findings, sections
from study.errors import StudyError


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return sections.audit(n_resamples=20, seed=0)


def a_run(tf_ok=3, pt_ok=1, share=0.39, members=None, pick="m1") -> dict[str, pd.DataFrame]:
    """This run's tables as notebooks 01-06 write them (the columns the parts read)."""
    members = members or ["m1", "m2"]
    return {
        "rq1_deployment_matrix": pd.DataFrame({"framework": ["TensorFlow"] * 4 + ["PyTorch"] * 3,
                                               "ok": [True] * tf_ok + [False] * (4 - tf_ok)
                                               + [True] * pt_ok + [False] * (3 - pt_ok)}),
        "rq2_family_growth": pd.DataFrame({"source": ["pytorch-hub 2019-12-12", "pytorch-hub 2024-04-15",
                                                      "tfhub 2020-08-26", "tfhub 2024-03-18"],
                                           "families": [18, 28, 42, 51]}),
        "rq3_growth_2020_2024": pd.DataFrame({"snapshot": ["TF Hub 2020-08-26"], "assets": [537],
                                              "share_ge2_versions": [share]}),
        "table_ix_finetuning": pd.DataFrame({"model": members, "accuracy": [0.2] * len(members)}),
        "table_x_browser": pd.DataFrame({"model": members, "n_images": [40] * len(members), "status": "ok"}),
        "decision_ours_beside_paper": pd.DataFrame({
            "tables": ["paper", "paper", "ours", "ours"], "selected": ["a", "b", "m2", pick],
            "paper_choice": ["mobilenet_v2_100_160", "mobilenet_v2_075_192", "", ""]}),
    }


def test_one_row_per_part_with_a_rederived_and_a_measured_value_each(claims):
    glance = findings.at_a_glance(claims, a_run())
    assert list(glance.columns) == findings.COLUMNS and len(glance) == len(findings.PARTS)
    heads = claims.set_index("claim_id")
    for part, row in zip(findings.PARTS, glance.to_dict("records")):
        assert row["rederived_verdict"] == heads.loc[part.headline, "reproduced"]
        assert str(row["rederived"]).strip() and str(row["measured"]).strip()
        assert row["measured_verdict"] in findings.MEASURED_VERDICTS and row["measured_verdict"] != "not measured"
        k, n = map(int, row["claims_reproduced"].split(" of "))
        assert 0 <= k <= n and n >= 1


def test_the_measured_side_follows_this_runs_tables_not_the_papers(claims):
    by_part = lambda g: g.set_index("part")["measured_verdict"].to_dict()  # noqa: E731
    more, fewer = by_part(findings.at_a_glance(claims, a_run(tf_ok=3, pt_ok=1))), \
        by_part(findings.at_a_glance(claims, a_run(tf_ok=1, pt_ok=3)))
    rq1 = findings.PARTS[0].name
    assert (more[rq1], fewer[rq1]) == ("agrees", "disagrees")
    rq3 = findings.PARTS[2].name
    assert by_part(findings.at_a_glance(claims, a_run(share=0.39)))[rq3] == "disagrees"
    assert by_part(findings.at_a_glance(claims, a_run(share=0.64)))[rq3] == "agrees"
    # the RQ2 part: this run's oldest snapshots (42 and 18 families) against the 20 and 28 the paper states
    assert more[findings.PARTS[1].name] == "disagrees"


def test_members_or_inputs_that_differ_by_construction_are_not_comparable(claims):
    glance = findings.at_a_glance(claims, a_run(), synthetic=True).set_index("part")
    assert glance.loc[findings.PARTS[3].name, "measured_verdict"] == "not comparable"  # synthetic flowers
    assert glance.loc[findings.PARTS[4].name, "measured_verdict"] == "not comparable"  # other members
    assert "is not in this run's sweep" in glance.loc[findings.PARTS[5].name, "measured"]
    choice = "mobilenet_v2_075_192"
    same = findings.at_a_glance(claims, a_run(members=[choice, "m2"], pick=choice)).set_index("part")
    assert same.loc[findings.PARTS[5].name, "measured_verdict"] == "agrees"
    full = list(paper.finetuning()["model"])
    every = findings.at_a_glance(claims, a_run(members=full, pick=full[0])).set_index("part")
    assert every.loc[findings.PARTS[4].name, "measured_verdict"] in ("agrees", "disagrees")


def test_without_this_runs_tables_every_part_says_not_measured(claims):
    glance = findings.at_a_glance(claims)
    assert set(glance["measured_verdict"]) == {"not measured"}


def test_a_claim_the_tables_support_and_the_run_contradicts_says_both():
    said = findings.both_sides({"rederived_verdict": "yes", "measured_verdict": "disagrees"})
    assert "support" in said and "but" in said and "contradicts" in said
    assert " and " in findings.both_sides({"rederived_verdict": "no", "measured_verdict": "disagrees"})


def test_every_claim_belongs_to_a_part(claims):
    prefixes = tuple(p for part in findings.PARTS for p in part.prefixes)
    assert [c for c in claims["claim_id"] if not c.startswith(prefixes)] == []


def test_a_changed_verdict_changes_the_row_and_a_lost_claim_is_one_error(claims):
    flipped = claims.copy()
    flipped.loc[flipped["claim_id"] == "VI.most_versions", "reproduced"] = "no"
    row = findings.at_a_glance(flipped).set_index("part").loc["RQ3 versions (Tables VI-VIII)"]
    assert row["rederived_verdict"] == "no"
    with pytest.raises(StudyError, match="VI.most_versions"):
        findings.at_a_glance(claims[claims["claim_id"] != "VI.most_versions"])
