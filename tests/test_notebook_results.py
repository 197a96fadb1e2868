"""The notebooks' results checks (tests/notebook_results.py) can fail: an all-failed or empty run, a skip in any
wording, a chosen member that was not measured. Applied to the smoke run of the real notebooks in
tests/test_notebooks.py; here to tables built in the test."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.notebook_results import RQ1_SMOKE_OK, SMOKE_MEMBERS, SMOKE_RANDOM, SMOKE_SEEING, problems_of


def _matrix(ok: dict[str, bool], error: str = "") -> pd.DataFrame:
    return pd.DataFrame({"format": list(ok), "ok": list(ok.values()),
                         "error": [error or ("" if v else "not runnable here: no runtime") for v in ok.values()],
                         "top1_agreement": 1.0, "latency_ms": 2.0, "quantised": False})


def test_a_notebook_01_run_as_expected_passes():
    assert problems_of("01_rq1_deployment", {"rq1_deployment_matrix": _matrix(RQ1_SMOKE_OK)}, "") == []


def test_a_notebook_01_run_with_every_row_failed_fails():
    failed = _matrix({fmt: False for fmt in RQ1_SMOKE_OK}, error="node: command not found")
    problems = problems_of("01_rq1_deployment", {"rq1_deployment_matrix": failed}, "")
    assert "table rq1_deployment_matrix: no row is ok" in problems
    assert any(p.startswith("saved_model: ok=False, expected True") for p in problems)
    assert any(p.startswith("torchserve: failed instead of not runnable here") for p in problems)


def test_a_missing_or_empty_table_fails():
    assert problems_of("01_rq1_deployment", {}, "") == ["the notebook wrote no table",
                                                        "table rq1_deployment_matrix was not written"]
    empty = _matrix(RQ1_SMOKE_OK).iloc[:0]
    assert "table rq1_deployment_matrix is empty" in problems_of("01_rq1_deployment", {"rq1_deployment_matrix": empty}, "")


@pytest.mark.parametrize("line", ["SKIPPED: no sweep", "efficientnet_lite0 skipped (backend 'torch')",
                                  "skipping the browser test", "2 skips"])
def test_skip_wording_in_any_form_fails(line):
    problems = problems_of("02_rq2_families", {"t": pd.DataFrame({"a": [1]})}, f"before\n{line}\nafter")
    assert problems == [f"printed a skip: {line}"]


def test_word2vec_skip_gram_is_no_skip():
    assert problems_of("02_rq2_families", {"t": pd.DataFrame({"a": [1]})}, "Skipgram Word2Vec\nword2vec-skip-gram") == []


def test_the_decision_must_choose_a_measured_member_that_sees():
    beside = pd.DataFrame({"tables": ["paper", "ours (wasm)"], "priority": ["best", "best"],
                           "selected": ["mobilenet_v2_100_160", "mobilenet_v2_100_160"]})
    paper = pd.DataFrame({"priority": ["best"], "selected": ["mobilenet_v2_100_160"]})
    tables = {"decision_ours_beside_paper": beside, "decision_paper_selections": paper}
    assert problems_of("06_decision_analysis", tables, "") == [
        "decision_ours_beside_paper: 'best' chose 'mobilenet_v2_100_160', not a measured member that sees"]
    random_one = sorted(SMOKE_RANDOM)[0]
    beside.loc[1, "selected"] = random_one  # measured, but randomly initialised: never a choice
    assert problems_of("06_decision_analysis", tables, "") == [
        f"decision_ours_beside_paper: 'best' chose {random_one!r}, not a measured member that sees"]
    beside.loc[1, "selected"] = sorted(SMOKE_SEEING)[0]
    assert problems_of("06_decision_analysis", tables, "") == []


def test_a_sweep_with_a_failed_member_fails():
    members = sorted(SMOKE_MEMBERS)
    killed = members[1]
    table = pd.DataFrame({"model": members, "status": ["killed" if m == killed else "ok" for m in members],
                          "delta_cpu": 1.0, "delta_mem": 1.0, "elapse_s": 1.0, "peak_rss_mb": 9.0,
                          "accuracy": [float("nan") if m == killed else 0.5 for m in members],
                          "weights": ["random" if m in SMOKE_RANDOM else "imagenet" for m in members]})
    problems = problems_of("04_case_study_finetuning", {"table_ix_finetuning": table, "noise_model": table}, "")
    assert f"table_ix_finetuning: {members[1]} is killed" in problems
    assert "table_ix_finetuning: accuracy not finite in every row" in problems


def test_a_random_member_labelled_as_seeing_fails():
    members = sorted(SMOKE_MEMBERS)
    table = pd.DataFrame({"model": members, "status": "ok", "delta_cpu": 1.0, "delta_mem": 1.0, "elapse_s": 1.0,
                          "accuracy": 0.5, "peak_rss_mb": 9.0, "weights": "imagenet"})
    tables = {"table_ix_finetuning": table, "noise_model": table}
    problems = problems_of("04_case_study_finetuning", tables, "")
    assert problems == [f"table_ix_finetuning: {m} labelled 'imagenet', expected 'random'" for m in members
                        if m in SMOKE_RANDOM]
    assert problems_of("04_case_study_finetuning", {**tables, "table_ix_finetuning": table.drop(columns="weights")},
                       "") == ["table_ix_finetuning: no weights column (imagenet / random)"]
