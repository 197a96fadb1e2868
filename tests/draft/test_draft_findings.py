"""The draft's findings, abstract opening and case-study reading (study.draft.findings), generated from a results
folder: both sides of each finding, the member kinds, the test-set size and every correlation."""
from __future__ import annotations

import pandas as pd
import pytest

from study.audit import sections
from study.config import PROFILES
from study.draft import findings
from study.report import Report
from tests import results_folder


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return sections.audit(n_resamples=20, seed=0)


def a_results_folder(tmp_path, claims, weights=True):
    results = results_folder.build(tmp_path / "results", profile="smoke")
    report = lambda nb: Report(nb, {"profile": "smoke"}, results=results, figures=tmp_path / "figures")  # noqa: E731
    report("07_paper_audit").table(claims, "audit_paper_claims")
    ix = pd.read_csv(results / "tables" / "table_ix_finetuning.csv")
    if weights:
        ix["weights"] = ["imagenet" if i % 3 == 0 else "random" for i in range(len(ix))]
    report("04_case_study_finetuning").table(ix, "table_ix_finetuning")
    report("04_case_study_finetuning").table(pd.DataFrame({
        "column": ["delta_cpu", "delta_mem", "elapse_s", "accuracy"], "common_members": 5,
        "spearman_rho": [0.1, -0.3, 0.9, float("nan")]}), "table_ix_ranking_vs_paper")
    return results


def test_the_findings_table_holds_both_sides_and_defines_the_noise_labels(tmp_path, claims):
    results = a_results_folder(tmp_path, claims)
    g = findings.glance(results, PROFILES["smoke"])
    assert g is not None and {"NB01 smoke", "NB07 smoke"} <= set(g.tags)
    tex = findings.findings_tex(g)
    assert "From the paper's tables" in tex and "Measured by this run" in tex and "Verdict on this run" in tex
    assert r"\label{tab:findings}" in tex and "Table~\\ref{tab:provenance}" in tex
    for label in set(g.table["noise"]) - {"--"}:
        assert f"\\emph{{{label}}}" in tex


def test_the_abstract_opens_with_this_runs_findings(tmp_path, claims):
    results = a_results_folder(tmp_path, claims)
    g = findings.glance(results, PROFILES["smoke"])
    text = findings.abstract_tex(g, PROFILES["smoke"])
    assert "This run (profile smoke)" in text
    for row in g.table.itertuples():
        assert row.part.split(" (")[0] in text


def test_the_case_reading_states_member_kinds_test_set_and_every_correlation(tmp_path, claims):
    results = a_results_folder(tmp_path, claims)
    text = findings.case_reading_tex(results, PROFILES["smoke"])
    assert "with ImageNet weights" in text and "with random initialisation" in text
    assert "resource use only" in text
    assert f"share of {results_folder.N_TEST} test images" in text
    for rho in ("0.10", "-0.30", "0.90", "n/a"):  # all four, the unfavourable ones too
        assert rho in text


def test_without_a_weights_column_the_profile_says_what_the_members_are(tmp_path, claims):
    results = a_results_folder(tmp_path, claims, weights=False)
    text = findings.case_reading_tex(results, PROFILES["smoke"])
    assert "randomly initialised" in text and "resource use only" in text


def test_without_the_audit_the_findings_say_so(tmp_path):
    results = results_folder.build(tmp_path / "results", profile="smoke")
    assert findings.glance(results, PROFILES["embedded"]) is None
    assert "No findings" in findings.findings_tex(None)
