"""`make test-stress`: the fault and resource tests (marker `stress`) under load, to show none depends on how fast
this machine is. One run throttled (pinned to one core with `taskset`, at the lowest priority, `nice -n 19`), then RUNS
runs with two CPU burners on the machine's cores, each followed by a run of the tests that bring their own load
(marker `load`: their own burners are the condition they judge, so no other load is added). Each run is its own
pytest process (fixtures built anew); every test's outcome per run is tallied and the table printed (and written with
--out).

    python -m tests.stress [--runs 10] [--out FILE.md] [-- extra pytest arguments]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BURN = "while True: pass"


def _burners(n: int) -> list[subprocess.Popen]:
    """`n` busy loops; stopped by their PIDs."""
    return [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def _outcomes(junit: Path, label: str) -> dict[str, str]:
    """test id -> passed | failed | error | skipped, from pytest's JUnit XML (a failure's message is printed)."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child for child in case if child.tag in ("failure", "error", "skipped")]
        found[test] = {"failure": "failed", "error": "error", "skipped": "skipped"}[kinds[0].tag] if kinds else "passed"
        if kinds and kinds[0].tag != "skipped":
            print(f"[stress] {label}: {found[test]} {test}: {(kinds[0].get('message') or '')[:400]}", flush=True)
    return found


# What each kind of run selects: the fault and resource tests under added load; the tests with load of their own alone
MARKERS = {"throttled": "stress and not load", "burners": "stress and not load", "own load": "load"}


def _run(label: str, kind: str, prefix: list[str], extra: list[str], work: Path) -> tuple[dict[str, str], float]:
    junit = work / f"{label}.xml"
    cmd = [*prefix, sys.executable, "-m", "pytest", "-p", "no:xdist", "-m", MARKERS[kind], "-q", "-p", "no:cacheprovider",
           f"--junitxml={junit}", *extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "CI": "true"}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - start
    tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"[stress] {label}: exit {proc.returncode} in {wall:.0f} s: {tail[0]}", flush=True)
    if not junit.exists():
        print(proc.stdout[-5000:], file=sys.stderr)
        raise SystemExit(f"[stress] {label}: pytest wrote no report (exit {proc.returncode})")
    return _outcomes(junit, label), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs under two CPU burners (default 10)")
    parser.add_argument("--no-throttled", action="store_true", help="leave out the throttled run")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    if not args.no_throttled and shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is missing: the throttled run needs it; or pass --no-throttled")

    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    walls: dict[str, list[float]] = defaultdict(list)
    plan = [] if args.no_throttled else [("throttled", "throttled")]
    plan += [run for i in range(args.runs) for run in ((f"burners-{i + 1}", "burners"), (f"own-load-{i + 1}", "own load"))]
    text, bad = _table(tally, walls)
    with tempfile.TemporaryDirectory(prefix="stress-") as tmp:
        for label, kind in plan:
            burners, prefix = [], []
            if kind == "burners":
                burners = _burners(2)
            elif kind == "throttled":  # half the machine: one core, at the lowest priority
                prefix = ["taskset", "-c", "0", "nice", "-n", "19"]
            try:
                outcomes, wall = _run(label, kind, prefix, args.pytest_args, Path(tmp))
            finally:
                _stop(burners)
            walls[kind].append(wall)
            for test, outcome in outcomes.items():
                tally[test][f"{kind}:{outcome}"] += 1
            text, bad = _table(tally, walls)
            if args.out:  # after every run: a stopped stress run keeps what it measured
                args.out.write_text(text)
    print(text)
    return 1 if bad or not tally else 0


def _table(tally: dict[str, dict[str, int]], walls: dict[str, list[float]]) -> tuple[str, list[str]]:
    """The Markdown table of passes per test over the runs done so far, and the tests that did not always pass."""
    runs = {kind: len(walls[kind]) for kind in MARKERS}
    median = sorted(walls["burners"])[len(walls["burners"]) // 2] if walls["burners"] else float("nan")
    lines = [f"Stress run on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}: "
             f"{runs['burners']} run(s) under two CPU burners (median {median:.0f} s each)"
             + (f", 1 throttled run ({walls['throttled'][0]:.0f} s: one core, nice 19)"
                if runs["throttled"] else "")
             + (f", {runs['own load']} run(s) of the tests with load of their own" if runs["own load"] else ""),
             "", "| test | passed under burners | passed throttled | passed with its own load |", "|---|---|---|---|"]
    bad = []
    for test in sorted(tally):
        counts = tally[test]
        row = []
        for kind in ("burners", "throttled", "own load"):
            if not runs[kind] or not any(k.startswith(f"{kind}:") for k in counts):
                row.append("-")  # not run, or a test this kind does not select
                continue
            ok = counts[f"{kind}:passed"]
            row.append(f"{ok}/{runs[kind]}")
            if ok != runs[kind]:
                bad.append(f"{test} ({kind}: " + ", ".join(f"{k.split(':')[1]} {v}" for k, v in counts.items()
                                                          if k.startswith(kind) and not k.endswith("passed")) + ")")
        lines.append(f"| `{test}` | {row[0]} | {row[1]} | {row[2]} |")
    lines += ["", f"{len(tally)} tests; " + (f"not always passed: {'; '.join(bad)}" if bad else "every one passed every run")]
    return "\n".join(lines) + "\n", bad


if __name__ == "__main__":
    sys.exit(main())
