"""`make test-stress`: the fault and resource tests (marker `stress`) under load, to show none depends on how fast
this machine is. RUNS runs with two CPU burners on the machine's cores, then one run throttled: pinned to one core
(`taskset`) at the lowest priority (`nice -n 19`) beside a burner on that core. Each run is its own pytest process
(fixtures built anew); every test's outcome per run is tallied and the table printed (and written with --out).

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


def _burners(n: int, cpu: int | None = None) -> list[subprocess.Popen]:
    """`n` busy loops (pinned to `cpu` when given); stopped by their PIDs."""
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return [subprocess.Popen([*pin, sys.executable, "-c", BURN]) for _ in range(n)]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def _outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed | failed | error | skipped, from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[test] = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(kinds[0], "?") if kinds \
            else "passed"
    return found


def _run(label: str, prefix: list[str], extra: list[str], work: Path) -> tuple[dict[str, str], float]:
    junit = work / f"{label}.xml"
    cmd = [*prefix, sys.executable, "-m", "pytest", "-p", "no:xdist", "-m", "stress", "-q", "-p", "no:cacheprovider",
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
    return _outcomes(junit), wall


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
    plan = [(f"burners-{i + 1}", "burners") for i in range(args.runs)]
    plan += [] if args.no_throttled else [("throttled", "throttled")]
    with tempfile.TemporaryDirectory(prefix="stress-") as tmp:
        for label, kind in plan:
            if kind == "burners":
                burners, prefix = _burners(2), []
            else:  # one core, lowest priority, and a burner on that core too
                burners, prefix = _burners(1, cpu=0), ["taskset", "-c", "0", "nice", "-n", "19"]
            try:
                outcomes, wall = _run(label, prefix, args.pytest_args, Path(tmp))
            finally:
                _stop(burners)
            walls[kind].append(wall)
            for test, outcome in outcomes.items():
                tally[test][f"{kind}:{outcome}"] += 1

    runs = {"burners": args.runs, "throttled": 0 if args.no_throttled else 1}
    lines = [f"Stress run on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}: "
             f"{args.runs} run(s) under two CPU burners (median {sorted(walls['burners'])[len(walls['burners']) // 2]:.0f} s"
             f" each)" + ("" if args.no_throttled else f", 1 throttled run ({walls['throttled'][0]:.0f} s: one core, "
                                                         "nice 19, a burner on that core)"),
             "", "| test | passed under burners | passed throttled |", "|---|---|---|"]
    bad = []
    for test in sorted(tally):
        counts = tally[test]
        row = []
        for kind in ("burners", "throttled"):
            if not runs[kind]:
                row.append("-")
                continue
            ok = counts[f"{kind}:passed"]
            row.append(f"{ok}/{runs[kind]}")
            if ok != runs[kind]:
                bad.append(f"{test} ({kind}: " + ", ".join(f"{k.split(':')[1]} {v}" for k, v in counts.items()
                                                          if k.startswith(kind) and not k.endswith("passed")) + ")")
        lines.append(f"| `{test}` | {row[0]} | {row[1]} |")
    lines += ["", f"{len(tally)} tests; " + (f"not always passed: {'; '.join(bad)}" if bad else "every one passed every run")]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if bad or not tally else 0


if __name__ == "__main__":
    sys.exit(main())
