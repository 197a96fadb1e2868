"""Decision stability on the paper's Tables IX/X: 1000 resamples of both of the paper's priority orders; goal <= 60 s
on the 2-core machine (what notebook 06 runs for the embedded profile).

Run: .venv/bin/python benchmarks/bench_decision_stability.py [--resamples 1000] [--repeat 3]
Prints the median wall time and resamples per second; the figure goes into docs/decision-uncertainty.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.decision import choice, uncertainty  # noqa: E402

GOAL_S = 60.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tables = choice.CaseStudyTables.paper()
    times = []
    for i in range(args.repeat):
        start = time.perf_counter()
        uncertainty.stability(tables, choice.PAPER_PRIORITIES, n_resamples=args.resamples, seed=i)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{args.resamples} resamples x {len(choice.PAPER_PRIORITIES)} priority orders: median {median:.1f} s "
          f"({args.resamples / median:.0f} resamples/s; goal <= {GOAL_S:g} s) over {args.repeat} runs")
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
