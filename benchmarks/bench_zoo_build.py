"""Building the embedded zoo before a sweep (`study.casestudy.training.prepare_assets`), one worker vs BUILD_WORKERS.

Issue 15's cold run: the 7 TF members of the embedded profile are built once per fresh cache, unmeasured, before
the first fine-tuning run. Each setting builds into a fresh temporary cache; `--repeats` runs of each, medians.

    .venv/bin/python benchmarks/bench_zoo_build.py [--workers 1 2] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from study import config
from study.assets import zoo
from study.casestudy import training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, training.BUILD_WORKERS])
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    embedded = config.get_profile("embedded")
    members = [m.name for m in zoo.members(embedded) if m.backend == "tf"]
    seconds: dict[int, list[float]] = {w: [] for w in args.workers}
    for _ in range(args.repeats):
        for w in args.workers:
            with tempfile.TemporaryDirectory(prefix="bench-zoo-") as cache:
                os.environ["STUDY_CACHE_DIR"] = cache
                training.BUILD_WORKERS = w
                t0 = time.perf_counter()
                training.prepare_assets(embedded, members)
                seconds[w].append(time.perf_counter() - t0)
                assert all(zoo.embedded_current(m) for m in members)
            print(f"{len(members)} members, {w} worker(s): {seconds[w][-1]:.1f} s", flush=True)
    med = {w: statistics.median(s) for w, s in seconds.items()}
    base = med[args.workers[0]]
    print(json.dumps({"members": len(members), "median_s": {w: round(s, 1) for w, s in med.items()},
                      "speedup": {w: round(base / s, 2) for w, s in med.items()}, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
