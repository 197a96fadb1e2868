"""How much of a co-located load does a run feel, against what the host-speed probe reads? (`study.runs.hostprobe`)

Run: .venv/bin/python benchmarks/bench_probe_contention.py [--burners N] [--out FILE]
Quiet, then beside N CPU burners (default: one per usable core; stopped by PID), then quiet again: the probe's
reading (median of 5) and a smoke sweep of one member (`finetune.sweep`, the workload of
tests/runs/test_hostprobe.py's load test): its `elapse_s` (the running phase) and `train_s`. Prints the ratios
burned / quiet; --out writes them as JSON (docs/measured/host_probe.md quotes such a file). A probe that read a
run's slowdown exactly would give the same ratio as the run; `hostprobe.Speed.factor` uses the probe's ratio as
the band's upper end because a mostly serial run feels less of a load than the probe's one thread per core.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.casestudy import finetune  # noqa: E402
from study.config import PROFILES  # noqa: E402
from study.runs import hostprobe  # noqa: E402

MEMBER = "mobilenet_v2_035_96"


def measure(burners: int, out: Path) -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
    try:
        time.sleep(1.0)  # the burners running before anything is timed
        probe = statistics.median(hostprobe.time_workload() for _ in range(5))
        table = finetune.sweep(out, PROFILES["smoke"], [MEMBER], progress=False)
        row = table.iloc[0]
        return {"probe_s": probe, "elapse_s": float(row["elapse_s"]), "train_s": float(row["train_s"])}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burners", type=int, default=hostprobe._cores())
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        measure(0, Path(tmp) / "warm")  # caches (data, asset) built outside the timed runs
        runs = {name: measure(b, Path(tmp) / name)
                for name, b in (("quiet", 0), ("burned", args.burners), ("quiet_again", 0))}
    quiet = {k: statistics.mean([runs["quiet"][k], runs["quiet_again"][k]]) for k in runs["quiet"]}
    ratios = {k: runs["burned"][k] / quiet[k] for k in quiet}
    for name, values in runs.items():
        print(f"{name:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()))
    print("burned / quiet: " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if args.out:
        args.out.write_text(json.dumps({"burners": args.burners, "cores": hostprobe._cores(), "member": MEMBER,
                                        "runs": runs, "ratios": ratios}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
