"""Parse all four zoo snapshots (~4,400 pages) with study.zoos.catalog; goal <= 3 s on the 2-core machine.

Run: .venv/bin/python benchmarks/bench_catalog.py [--repeat 5]
Prints the median wall time of a full parse (all four snapshots, first-seen tables joined) and of each
snapshot; the figure goes into the README (section "RQ2 + RQ3 from the zoo catalogs").
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.zoos import catalog  # noqa: E402
from study import config

GOAL_S = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not config.ZOO_SNAPSHOTS.is_dir():
        print(f"skipped: zoo snapshots not found at {config.ZOO_SNAPSHOTS}")
        return 0
    per: dict[str, list[float]] = {}
    totals, pages = [], 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        pages = 0
        for zoo, date in catalog.SNAPSHOTS:
            t = time.perf_counter()
            cat = catalog.snapshot_catalog(zoo, date)
            per.setdefault(f"{zoo} {date}", []).append(time.perf_counter() - t)
            pages += cat.parsed + cat.skipped
        totals.append(time.perf_counter() - t0)
    med = statistics.median(totals)
    for name, ts in per.items():
        print(f"  {name:24s} {statistics.median(ts):6.3f} s")
    print(f"all four snapshots: {pages} pages, median {med:.2f} s over {args.repeat} runs "
          f"(min {min(totals):.2f}, max {max(totals):.2f}); goal <= {GOAL_S:.0f} s: "
          f"{'met' if med <= GOAL_S else 'NOT met'} ({med / GOAL_S:.0%} of the budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
