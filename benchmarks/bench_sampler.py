"""Sampler overhead and timing jitter at 1 s and 0.1 s (issue 6; results in the README).

The sampler watches a small process tree (a parent with two children, one burning a core, as while
training) for WINDOW seconds per interval. We report the sampler process's own CPU time as % of one core
(goal: <= 1 % at 1 s) and how far its sampling times stray from the fixed schedule k * interval.

    .venv/bin/python benchmarks/bench_sampler.py [--window 30]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import psutil

from study import config, files
from study.casestudy.sampler import Sampler, gpu_status

TREE = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(1)"]),
        subprocess.Popen([sys.executable, "-c", "while True: pass"])]
time.sleep(3600)
"""


def measure(interval: float, window: float, pid: int) -> dict:
    with Sampler(interval=interval) as sampler:
        sampler.start(pid)
        sampler.wait_samples(2)  # past start-up (imports, NVML probe)
        proc = psutil.Process(sampler.pid)
        c0, t0 = proc.cpu_times(), time.monotonic()
        time.sleep(window)
        c1, t1 = proc.cpu_times(), time.monotonic()
        df = sampler.stop()
    cpu_pct = 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0)
    t = df["t"].to_numpy()
    late = (t - np.round(t / interval) * interval) * 1000  # ms behind (or ahead of) the schedule
    gaps = np.diff(t) * 1000
    return {"interval_s": interval, "window_s": round(t1 - t0, 1), "samples": len(df),
            "sampler_cpu_pct_of_one_core": round(cpu_pct, 3),
            "jitter_median_ms": round(float(np.median(np.abs(late))), 2),
            "jitter_p95_ms": round(float(np.percentile(np.abs(late), 95)), 2),
            "jitter_max_ms": round(float(np.max(np.abs(late))), 2),
            "gap_std_ms": round(float(np.std(gaps)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per interval")
    args = ap.parse_args()
    tree = subprocess.Popen([sys.executable, "-c", TREE])
    try:
        time.sleep(1.0)
        rows = [measure(iv, args.window, tree.pid) for iv in (1.0, 0.1)]
    finally:
        for child in psutil.Process(tree.pid).children(recursive=True):
            child.kill()
        tree.kill()
        tree.wait()
    out = {"machine": {"cpus": psutil.cpu_count(), "gpu": gpu_status()}, "results": rows}
    files.write_text(config.results_dir() / "benchmarks" / "bench_sampler.json", json.dumps(out, indent=2) + "\n")
    print(f"machine: {out['machine']}")
    print("| interval | samples | sampler CPU (% of one core) | jitter median / p95 / max (ms) | gap std (ms) |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['interval_s']} s | {r['samples']} | {r['sampler_cpu_pct_of_one_core']:.2f} | "
              f"{r['jitter_median_ms']} / {r['jitter_p95_ms']} / {r['jitter_max_ms']} | {r['gap_std_ms']} |")


if __name__ == "__main__":
    main()
