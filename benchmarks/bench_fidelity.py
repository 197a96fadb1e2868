"""Cost of `deploy --sweep` per member x format: export seconds and runtime-process seconds of every cell.

Run: .venv/bin/python benchmarks/bench_fidelity.py [--sweep DIR] [--formats ...] [--profile smoke]
Without --sweep it measures the smoke profile's tiny stand-in classifiers (study.casestudy.stand_ins.tiny_classifiers,
built into a temporary folder first; not timed). Prints the wall time of the whole run, the median cost per format
(export + runtime process), the median seconds to localise a non-faithful row (`--localise all`: every such row) and
per member; the figures go into docs/deployment-fidelity.md. This machine has
2 cores and is shared: note the load average.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", help="a sweep's --out DIR (default: tiny stand-ins in a temporary folder)")
    ap.add_argument("--formats", nargs="+", help="default: every format of each member's framework")
    ap.add_argument("--profile", default="smoke", help="timing settings (smoke: 5 timed repeats; else 20)")
    ap.add_argument("--localise", default="all", help="which non-faithful rows are localised: all | worst | none")
    args = ap.parse_args()
    import pandas as pd

    from study import config
    from study.casestudy import stand_ins
    from study.deployment import fidelity

    profile = config.get_profile(args.profile)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = (Path(args.sweep) if args.sweep else
                 stand_ins.tiny_classifiers(Path(tmp) / "sweep", config.get_profile("smoke")))
        t0 = time.perf_counter()
        settings = fidelity.Settings.of(profile, args.localise)
        df = fidelity.run_fidelity(sweep, args.formats, work=Path(tmp) / "work", profile=profile,
                                   settings=settings)
        wall = time.perf_counter() - t0
    df["cell_s"] = df["export_s"].fillna(0) + df["measure_s"].fillna(0)
    n = len(df)
    print(f"deploy --sweep: {df['member'].nunique()} members x formats = {n} cells in {wall:.0f} s "
          f"({wall / n:.1f} s per cell, per-member setup included); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    per_format = df.groupby("format", sort=False).agg(cells=("member", "size"), export_s=("export_s", "median"),
                                                      measure_s=("measure_s", "median"), cell_s=("cell_s", "median"),
                                                      localised=("localise_s", "count"),
                                                      localise_s=("localise_s", "median"))
    per_member = df.groupby("member", sort=False).agg(cells=("format", "size"), cell_s=("cell_s", "sum"))
    cols = ["member", "format", "status", "calibrated_status", "noise_floor", "first_divergence", "failure_class",
            "export_s", "measure_s", "localise_s"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(per_format.to_string())
        print(per_member.to_string())
        print(df[cols].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
