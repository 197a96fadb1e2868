"""The artifact's evaluation report (`EVALUATION.md`): each ACM badge's requirement (Artifact Review and Badging,
version 1.1) beside this artifact's evidence, generated from what the archive holds and what the run recorded.

The requirements are paraphrased from the ACM policy; the evidence is read, never typed: the archive's files and
licence, the `make test` result (a JUnit XML file, `make test PYTEST_ARGS=--junitxml=results/junit.xml`), the
`make reproduce` time and machine (the run's records), and its verdict against the shipped reference
(`study.runs.verdict`). A badge whose evidence is missing says so and names the command that produces it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY = "https://www.acm.org/publications/policies/artifact-review-and-badging-current"


@dataclass(frozen=True)
class Badge:
    name: str
    requirement: str
    evidence: tuple[str, ...]
    shown: bool  # the evidence for it is in the archive (otherwise: what is missing is said)


@dataclass(frozen=True)
class TestResult:
    tests: int
    failures: int
    errors: int
    skipped: int
    seconds: float

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


def read_junit(path: str | Path) -> TestResult | None:
    """The totals of a pytest JUnit XML report (None: missing or unreadable)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        return None
    total = {k: sum(int(float(s.get(k, 0))) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return TestResult(**total, seconds=sum(float(s.get("time", 0)) for s in suites))


def badges(*, files: int, license_id: str, docs: Sequence[str], notebooks: int, tests: TestResult | None,
           run: Mapping[str, Any], verdict: Mapping[str, Any] | None, archive_name: str) -> list[Badge]:
    """The four badges with this artifact's evidence. `run`: the run's snapshot.json (machine, notebooks run,
    seconds); `verdict`: the verdict.json of the run (None: none written)."""
    machine = run.get("machine") or {}
    ran = [n for n in run.get("notebooks", []) if isinstance(n, dict)]
    seconds = sum(float(n.get("seconds", 0)) for n in ran)
    where = f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('cores', '?')} usable cores"
    test_line = (f"`make test`: {tests.passed} passed, {tests.failures} failed, {tests.errors} errors, "
                 f"{tests.skipped} skipped in {tests.seconds:.0f} s" if tests else
                 "`make test` result not recorded in this archive (run `make test PYTEST_ARGS=--junitxml="
                 "results/junit.xml` before `make artifact`)")
    if verdict and verdict.get("status") == "compared":
        counts = ", ".join(f"{n} {label}" for label, n in verdict.get("counts", {}).items() if n)
        ref_machine = verdict.get("reference_machine") or {}
        verdict_line = (f"verdict against the shipped reference (commit {str(verdict.get('reference_commit'))[:12]}, "
                        f"{ref_machine.get('cpu_model', '?')} x {ref_machine.get('cores', '?')}): "
                        f"{verdict.get('cells')} cells, {counts}")
    elif verdict:
        verdict_line = f"verdict: {verdict.get('headline')}"
    else:
        verdict_line = "no verdict recorded (`make reproduce` writes results/verdict/)"
    return [
        Badge("Available", "The artifact is placed on a publicly accessible archival repository that gives it a "
              "permanent identifier (DOI).",
              (f"{archive_name}: {files} files, each with its SHA-256 in MANIFEST.json (`python -m study verify "
               f"{archive_name}`)", f"licence {license_id} (LICENSE), citation metadata (CITATION.cff)",
               ".zenodo.json and ro-crate-metadata.json ready for deposit; the DOI is assigned on upload"), True),
        Badge("Functional", "The artifact is documented, consistent, complete and exercisable: it runs and its "
              "outputs can be checked.",
              (test_line, f"{notebooks} executed notebooks, the tables, numbers and figures they wrote",
               "exact pins of every package (requirements/lock.txt, web/package-lock.json)"), tests is not None),
        Badge("Reusable", "Beyond Functional: documented and structured so that others can reuse and repurpose it.",
              (f"{len(docs)} topic documents ({', '.join(docs[:6])}{', ...' if len(docs) > 6 else ''})",
               "one command line (`python -m study --help`), the library under it, and notebook 10 running the "
               "method on a user's own assets", f"licence {license_id}"), bool(docs)),
        Badge("Results Reproduced", "The main results are obtained again by someone other than the authors, "
              "using the author-supplied artifact.",
              (f"`make reproduce`: {len(ran)} notebooks, {seconds:.0f} s recorded, on {where}", verdict_line,
               f"an evaluator's verdict: `make reproduce REFERENCE={archive_name}` on their machine"),
              bool(verdict and verdict.get("status") == "compared")),
    ]


def report(found: Sequence[Badge], *, title: str, commit: str, profile: str) -> str:
    """EVALUATION.md: one section per badge, the requirement beside the evidence."""
    lines = [f"# Evaluation report: {title}", "",
             f"Generated by `make artifact` (study.runs.badges) for commit `{commit}`, profile `{profile}`. Badges and "
             f"their requirements: ACM Artifact Review and Badging, version 1.1 ({POLICY}); the requirements are "
             "paraphrased, the evidence is read from this archive.", "",
             "| badge | requirement | evidence in this artifact | evidence present |", "| --- | --- | --- | --- |"]
    for b in found:
        evidence = "<br>".join(e.replace("|", "\\|") for e in b.evidence)
        lines.append(f"| {b.name} | {b.requirement} | {evidence} | {'yes' if b.shown else 'no'} |")
    lines += ["", "From the archive to a verdict on your machine: docs/artifact.md.", ""]
    return "\n".join(lines)
