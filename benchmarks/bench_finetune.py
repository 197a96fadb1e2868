"""Fine-tuning benchmarks (issue 6; results in the README).

1. Frozen mode: bottleneck caching (backbone once, head on cached features) vs recomputing the backbone
   every epoch, 5 epochs, same member / data / seed: speed-up of the training phase at equal accuracy
   (goal >= 5x; the ideal is about the number of epochs, since validation is also cached).
2. Harness overhead: the measured run's worker wall time (`measure_run`: its own process, TF import, the
   Sampler running beside it) vs the same `train_member` call in this warm process (goal <= 1.2x).

    .venv/bin/python benchmarks/bench_finetune.py [--caching-members A B] [--harness-member M] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from study import config, files
from study.casestudy import executors, training
from study.casestudy.executors import RunJob
from study.casestudy.training import WorkerSpec


def _train_phase(spec: WorkerSpec) -> tuple[float, float]:
    r = training.train_member(spec)
    return r["timings"]["train_s"], r["accuracy"]  # train_s includes computing the cached features


def caching(member: str, profile: config.Profile, epochs: int, repeats: int) -> dict:
    rows = {"cached": [], "recomputed": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so that background load hits both alike
            for name, cache in (("cached", True), ("recomputed", False)):
                spec = WorkerSpec(member=member, profile=profile.name, epochs=epochs, mode="frozen",
                                  out=f"{tmp}/{name}{i}", cache_features=cache, save=False)
                rows[name].append(_train_phase(spec))
    med = {k: statistics.median(t for t, _ in v) for k, v in rows.items()}
    return {"member": member, "profile": profile.name, "epochs": epochs, "repeats": repeats,
            "cached_s": round(med["cached"], 2), "recomputed_s": round(med["recomputed"], 2),
            "speedup": round(med["recomputed"] / med["cached"], 2),
            "accuracy_cached": [a for _, a in rows["cached"]], "accuracy_recomputed": [a for _, a in rows["recomputed"]]}


def harness(member: str, profile: config.Profile, epochs: int, mode: str, repeats: int) -> dict:
    cfg = executors.sweep_config(profile, epochs=epochs, mode=mode, interval=1.0, cooldown_samples=1)
    plain, measured = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            spec = WorkerSpec(member=member, profile=profile.name, epochs=epochs, mode=mode, out=f"{tmp}/plain{i}")
            t0 = time.perf_counter()
            training.train_member(spec)
            plain.append(time.perf_counter() - t0)
            result = executors.measure_run(RunJob(member, 0, cfg, Path(tmp) / f"run{i}"))
            assert result.status == "ok", result.reason
            measured.append(result.elapse_s)
    p, m = statistics.median(plain), statistics.median(measured)
    return {"member": member, "profile": profile.name, "epochs": epochs, "mode": mode, "repeats": repeats,
            "in_process_s": round(p, 2), "measured_run_s": round(m, 2), "ratio": round(m / p, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caching-members", nargs="+", default=["mobilenet_v2_100_224", "efficientnet_lite0"])
    ap.add_argument("--harness-member", default="mobilenet_v2_050_128")
    ap.add_argument("--profile", default="embedded")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    profile = config.get_profile(args.profile)
    training.prepare_assets(profile, [*args.caching_members, args.harness_member])
    import psutil

    # warm this process (TensorFlow import, data cache) so that "in-process" means a warm interpreter
    training.train_member(WorkerSpec(member=args.harness_member, profile=profile.name, epochs=1, mode="frozen",
                                     out=tempfile.mkdtemp(), save=False))
    out = {"machine": {"cpus": psutil.cpu_count(), "load_avg_start": psutil.getloadavg()},
           "caching": [caching(m, profile, 5, args.repeats) for m in args.caching_members],
           "harness": [harness(args.harness_member, profile, 2, mode, args.repeats) for mode in ("frozen", "full")]}
    out["machine"]["load_avg_end"] = psutil.getloadavg()
    files.write_text(config.results_dir() / "benchmarks" / "bench_finetune.json", json.dumps(out, indent=2) + "\n")
    print(f"machine: {out['machine']}")
    print("| member (frozen, 5 epochs) | bottleneck caching (s) | backbone every epoch (s) | speed-up | test accuracy cached / recomputed |")
    print("| --- | --- | --- | --- | --- |")
    for c in out["caching"]:
        print(f"| {c['member']} | {c['cached_s']} | {c['recomputed_s']} | {c['speedup']}x | "
              f"{c['accuracy_cached']} / {c['accuracy_recomputed']} |")
    print()
    print("| mode | in-process train_member (s) | measured run: worker wall time (s) | ratio |\n| --- | --- | --- | --- |")
    for h in out["harness"]:
        print(f"| {h['mode']}, {h['epochs']} epochs | {h['in_process_s']} | {h['measured_run_s']} | {h['ratio']} |")


if __name__ == "__main__":
    main()
