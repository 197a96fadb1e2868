"""The findings at a glance (study.audit.findings): computed from the audit, one row per part, verdicts follow the claims."""
from __future__ import annotations

import pandas as pd
import pytest

from study.audit import findings, sections
from study.errors import StudyError


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return sections.audit(n_resamples=20, seed=0)


def test_one_row_per_part_from_the_audit(claims):
    glance = findings.at_a_glance(claims)
    assert list(glance.columns) == findings.COLUMNS and len(glance) == len(findings.PARTS)
    heads = claims.set_index("claim_id")
    for part, row in zip(findings.PARTS, glance.itertuples()):
        assert row.verdict == heads.loc[part.headline, "reproduced"]
        k, n = map(int, row.claims_reproduced.split(" of "))
        assert 0 <= k <= n and n >= 1


def test_every_claim_belongs_to_a_part(claims):
    prefixes = tuple(p for part in findings.PARTS for p in part.prefixes)
    assert [c for c in claims["claim_id"] if not c.startswith(prefixes)] == []


def test_a_changed_verdict_changes_the_row_and_a_lost_claim_is_one_error(claims):
    flipped = claims.copy()
    flipped.loc[flipped["claim_id"] == "VI.most_versions", "reproduced"] = "no"
    row = findings.at_a_glance(flipped).set_index("part").loc["RQ3 versions (Tables VI-VIII)"]
    assert row["verdict"] == "no"
    with pytest.raises(StudyError, match="VI.most_versions"):
        findings.at_a_glance(claims[claims["claim_id"] != "VI.most_versions"])
