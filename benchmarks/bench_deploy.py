"""Time `python -m study deploy --quick` (the whole quick matrix, both frameworks); goal <= 3 min here.

Run: .venv/bin/python benchmarks/bench_deploy.py [--repeat 1] [--framework all]
Runs the real CLI in a fresh process (imports, model builds, every export, every runtime process), prints the
median wall time, the share of it per framework and the measured matrix; the figures go into the README
(section "RQ1 measured (deployment matrix)"). This machine has 2 cores and is shared: note the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 180.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--framework", default="all", choices=["tf", "torch", "all"])
    args = ap.parse_args()
    import pandas as pd

    walls: list[float] = []
    per_framework: dict[str, list[float]] = {}
    df = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "matrix.csv"
            frameworks = ["tf", "torch"] if args.framework == "all" else [args.framework]
            t_all = time.perf_counter()
            for f in frameworks:  # one CLI call per framework: the split shows where the time goes
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "study", "deploy", "--quick", "--framework", f,
                                "--csv", str(csv.with_suffix(f".{f}.csv")), "--work", str(Path(tmp) / "work")],
                               cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
                per_framework.setdefault(f, []).append(time.perf_counter() - t0)
            walls.append(time.perf_counter() - t_all)
            df = pd.concat([pd.read_csv(csv.with_suffix(f".{f}.csv")) for f in frameworks], ignore_index=True)
    med = statistics.median(walls)
    print(f"deploy --quick ({args.framework}): median {med:.0f} s over {len(walls)} run(s); goal <= {GOAL_S:.0f} s "
          f"-> {'ok' if med <= GOAL_S else 'OVER'}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for f, times in per_framework.items():
        print(f"  {f}: {statistics.median(times):.0f} s")
    cols = ["framework", "format", "ok", "size_mb", "load_ms", "latency_ms", "latency_p90_ms", "peak_rss_mb",
            "rel_diff", "top1_agreement", "export_s"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(df[cols].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
