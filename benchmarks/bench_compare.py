"""`study compare` on two results folders (issue 27; target <= 5 s; results in docs/reproducibility.md).

Without arguments it builds two results folders with `study.report.Report` (tests/results_folder.py; the paper's
size: 38 members in Tables IX and X, 76 fidelity rows, 120 audit claims; the second with other measurements), or
compares the two folders given. It times the library call (`study.runs.compare.compare`, median of --repeat) and the
whole command (`python -m study compare A B --csv FILE`: interpreter start and imports included).

    .venv/bin/python benchmarks/bench_compare.py [A B] [--members 38] [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.results_folder

import psutil  # noqa: E402

from study.runs import compare  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", metavar="A B", help="two results folders (default: two built ones)")
    ap.add_argument("--members", type=int, default=38)
    ap.add_argument("--claims", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        if args.folders:
            a, b = map(Path, args.folders)
            what = f"{a} vs {b}"
        else:
            from tests import results_folder

            t0 = time.perf_counter()
            a = results_folder.build(Path(tmp) / "a", members=args.members, claims=args.claims, seed=0)
            b = results_folder.build(Path(tmp) / "b", members=args.members, claims=args.claims, seed=1)
            what = (f"two built results folders ({args.members} members, {args.claims} claims; "
                    f"built in {time.perf_counter() - t0:.1f} s)")
        seconds = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = compare.compare(a, b)
            seconds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "study", "compare", str(a), str(b), "--csv",
                              str(Path(tmp) / "cells.csv")], capture_output=True, text=True, cwd=ROOT)
        cli_s = time.perf_counter() - t0
        if cli.returncode != 0:
            raise SystemExit(f"study compare failed ({cli.returncode}): {cli.stderr}")
    labels = result.rows["label"].value_counts()
    print(f"machine: {psutil.cpu_count()} CPUs; {what}")
    print(f"cells: {len(result.rows)} ({', '.join(f'{n} {label}' for label, n in labels.items())})")
    print("| step | seconds |")
    print("| --- | --- |")
    print(f"| `compare.compare(A, B)` (median of {args.repeat}; min {min(seconds):.3f}, max {max(seconds):.3f}) "
          f"| {statistics.median(seconds):.3f} |")
    print(f"| `python -m study compare A B --csv FILE` (whole command, one run) | {cli_s:.2f} |")


if __name__ == "__main__":
    main()
