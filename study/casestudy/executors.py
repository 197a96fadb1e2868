"""The executor seam of the sweep: one measured run (RunJob -> RunResult) on this machine, and executors by name."""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from study import config, failpoints, files
from study.casestudy import formula1
from study.casestudy.cluster import node_identity
from study.casestudy.sampler import MIN_INTERVAL, Sampler, SamplerError
from study.casestudy.training import WorkerSpec
from study.errors import StudyError
from study.protocol import PAPER, RECIPE
from study.runtime.processes import child_env, kill_group, popen


MODES = ("full", "frozen")
STATUSES = ("ok", "timeout", "killed", "failed", "invalid")


@dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a run's measurements; runs recorded under another config are not reused."""

    profile: config.Profile  # recorded by name (`key`)
    epochs: int
    mode: str  # "full": backbone trainable; "frozen": backbone fixed, head on cached features
    interval: float  # sampling interval (s)
    cooldown_samples: int  # samples in each cool-down period
    timeout_s: float  # watchdog per run (the training worker's wall time)
    seed: int = 0
    batch_size: int = PAPER.batch_size
    learning_rate: float = RECIPE.learning_rate
    threads: int | None = None  # intra-op threads of the worker; None = the library default (all cores)
    assets_lock: str | None = None  # digest of the asset folder's lock (paper profile with STUDY_ASSETS)
    data: str | None = None  # a team's own data set (folder of class folders / .tgz); None = the profile's
    split: str | None = None  # a split CSV (path, subset, label or class_name) instead of Table XI's split rule

    def key(self) -> dict[str, Any]:
        """The fields a recorded run must match to count as done (the watchdog limit does not matter)."""
        d = dataclasses.asdict(self) | {"profile": self.profile.name}
        d.pop("timeout_s")
        for k in ("assets_lock", "data", "split"):  # absent when unused: older records keep their key
            if d[k] is None:
                d.pop(k)
        return d

    def __repr__(self) -> str:  # the profile by name, as the notebooks print a config
        shown = (f"{f.name}={self.profile.name if f.name == 'profile' else getattr(self, f.name)!r}"
                 for f in dataclasses.fields(self))
        return f"SweepConfig({', '.join(shown)})"


def sweep_config(profile: config.Profile, **overrides: Any) -> SweepConfig:
    """The profile's defaults (`profile.sweep`) with `overrides` (None values ignored), validated."""
    values = {**dataclasses.asdict(profile.sweep), **{k: v for k, v in overrides.items() if v is not None}}
    cfg = SweepConfig(profile=profile, **values)
    if cfg.mode not in MODES:
        raise StudyError(f"unknown mode {cfg.mode!r}; valid modes: {', '.join(MODES)}")
    if cfg.epochs < 1:
        raise StudyError(f"--epochs must be at least 1 (got {cfg.epochs})")
    if cfg.cooldown_samples < 1:
        raise StudyError(f"cool-down needs at least 1 sample (got {cfg.cooldown_samples})")

    if cfg.interval < MIN_INTERVAL:
        raise StudyError(f"--interval {cfg.interval} s is below the sampler's minimum {MIN_INTERVAL} s")
    return cfg


def profile_defaults() -> dict[str, dict[str, Any]]:
    """Every profile's sweep defaults by profile name (notebook 04 shows them side by side; `paper`'s are the
    paper's protocol, `study.protocol.PAPER`)."""
    return {name: dataclasses.asdict(p.sweep) for name, p in config.PROFILES.items()}


@dataclass(frozen=True)
class RunJob:
    """One measured run: a member, a repeat, the sweep's config, and a work folder on the running node."""

    member: str  # the asset's readable id (study.assets.refs.Asset.name)
    repeat: int
    config: SweepConfig
    workdir: Path
    asset: Any = None  # the resolved asset_refs.Asset; None = the zoo member called `member`

    @property
    def run_id(self) -> str:
        return f"{self.member}/r{self.repeat}"


@dataclass
class RunResult:
    """What a run measured and produced; an executor returns it to the driver."""

    member: str
    repeat: int
    status: str  # ok | timeout | killed | failed | invalid
    reason: str
    elapse_s: float
    summary: dict[str, Any]  # Formula 1 etc. (study.casestudy.formula1.summarize)
    samples: Any  # pandas DataFrame
    worker: dict[str, Any] = field(default_factory=dict)  # the worker's result.json (accuracy, versions, ...)
    artifacts: Path | None = None  # model, meta.json, predictions.csv when status is ok
    started: float = 0.0  # Unix time
    ended: float = 0.0
    sampler: dict[str, Any] = field(default_factory=dict)
    node: dict[str, Any] = field(default_factory=dict)  # study.casestudy.cluster.node_identity() of the measuring machine

    def record(self, cfg: SweepConfig) -> dict[str, Any]:
        """The JSON record of this run (resume state; the table is rebuilt from these)."""
        worker = {k: v for k, v in self.worker.items() if k != "history"}
        return {"member": self.member, "repeat": self.repeat, "status": self.status, "reason": self.reason,
                "elapse_s": self.elapse_s, "accuracy": self.worker.get("accuracy", math.nan),
                "val_accuracy": self.worker.get("val_accuracy", math.nan), **self.summary,
                "train_s": self.worker.get("timings", {}).get("train_s", math.nan),
                "started": self.started, "ended": self.ended, "config": cfg.key(), "sampler": self.sampler,
                "worker": worker, "history": self.worker.get("history"),
                "host": self.node.get("hostname") or platform.node(), "node": self.node}


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])




def measure_run(job: RunJob, on_start: Callable[[RunJob, int, int], None] | None = None) -> RunResult:
    """One run on this machine: cool-down, the worker under the watchdog, cool-down; never raises for a bad run.

    `on_start(job, worker_pid, sampler_pid)` is called once the worker is running (progress, tests).
    """
    cfg = job.config
    work = Path(job.workdir)
    if work.exists():
        shutil.rmtree(work)  # a previous, incomplete attempt
    (work / "artifacts").mkdir(parents=True)
    spec = WorkerSpec(member=job.member, profile=cfg.profile.name, epochs=cfg.epochs, mode=cfg.mode,
                      out=str(work / "artifacts"), seed=cfg.seed + job.repeat, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, threads=cfg.threads, data=cfg.data, split=cfg.split,
                      asset=job.asset.to_dict() if job.asset is not None else None)
    files.write_text(work / "spec.json", json.dumps(dataclasses.asdict(spec), indent=2) + "\n")
    sampler = Sampler(cfg.interval, out=work / "samples.csv")
    status, reason, worker, elapse, started = "failed", "", None, math.nan, time.time()
    try:
        sampler.start(phase="cooldown-before")
        sampler.wait_samples(cfg.cooldown_samples)
        failpoints.reached("sweep.cooldown-before")
        log = open(work / "worker.log", "w")
        started, t0 = time.time(), time.monotonic()
        worker = popen([sys.executable, "-m", "study.casestudy.training", str(work / "spec.json")],
                       role="training-worker", group=True, stdout=log, stderr=subprocess.STDOUT, env=child_env())
        log.close()
        files.write_text(work / "worker.pid", f"{worker.pid}\n")
        sampler.watch(worker.pid)
        sampler.set_phase("running")
        if on_start:
            on_start(job, worker.pid, sampler.pid)
        while worker.poll() is None:  # the watchdog
            if time.monotonic() - t0 > cfg.timeout_s:
                kill_group(worker)
                status, reason = "timeout", f"no result after {cfg.timeout_s:.0f} s; killed by the watchdog"
                break
            if sampler.died:
                kill_group(worker)
                status, reason = "invalid", "the sampler process died while the worker ran"
                break
            time.sleep(0.05)
        elapse = time.monotonic() - t0
        code = worker.returncode
        if not reason:
            if code == 0 and (work / "artifacts" / "result.json").exists():
                status = "ok"
            elif code is not None and code < 0:
                status, reason = "killed", f"worker killed by signal {signal.Signals(-code).name}"
            else:
                status, reason = "failed", f"worker exited with code {code}: {_tail(work / 'worker.log')}"
        if sampler.alive:
            sampler.set_phase("cooldown-after")
            sampler.wait_samples(cfg.cooldown_samples)
            failpoints.reached("sweep.cooldown-after")
    except SamplerError as exc:
        status, reason = "invalid", f"sampler: {exc}"
    except BaseException:
        if worker is not None:
            kill_group(worker)
        sampler.close()
        raise
    finally:
        if worker is not None:
            kill_group(worker)  # also anything it left behind in its group, and its group guard
    samples = sampler.stop()
    sampler.close()
    if samples.attrs.get("sampler_died") and status == "ok":
        status, reason = "invalid", "the sampler process died during the run; its measurements are incomplete"
    if status == "ok" and (why := formula1.validity(samples, cfg.interval, min_cooldown=cfg.cooldown_samples)):
        status, reason = "invalid", why
    result_path = work / "artifacts" / "result.json"
    return RunResult(
        member=job.member, repeat=job.repeat, status=status, reason=reason, elapse_s=elapse,
        summary=formula1.summarize(samples), samples=samples,
        worker=json.loads(result_path.read_text()) if status == "ok" else {},
        artifacts=work / "artifacts" if status == "ok" else None, started=started, ended=time.time(),
        sampler={"interval": cfg.interval, "gpu_status": samples.attrs.get("gpu_status", ""),
                 "died": bool(samples.attrs.get("sampler_died"))}, node=node_identity())


class Executor(Protocol):
    """Places runs. The driver (`sweep`) owns resume, records, tables and publishing; an executor only runs.

    `run` must return a RunResult whose `samples` is a DataFrame and whose `artifacts` (when ok) is a local
    folder the driver can publish from; it must not raise for a bad run (record it in `status` instead).
    An executor that runs several jobs at once also has `run_many(jobs) -> Iterator[RunResult]`, yielding
    results as they finish (the driver records each at once); it may yield a failed attempt before its retry.
    """

    name: str

    def run(self, job: RunJob) -> RunResult: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs one member at a time on this machine (clean measurements: nothing else of ours runs meanwhile)."""

    name = "local"

    def __init__(self, on_start: Callable[[RunJob, int, int], None] | None = None):
        self.on_start = on_start

    def run(self, job: RunJob) -> RunResult:
        return measure_run(job, self.on_start)

    def close(self) -> None:
        pass




# Executors by name, as "module:class": imported only when asked for (Ray is an optional extra).
EXECUTORS: dict[str, str] = {"local": "study.casestudy.executors:LocalExecutor",
                             "ray": "study.casestudy.ray_executor:RayExecutor"}


def get_executor(name: str, **kwargs: Any) -> Executor:
    if name not in EXECUTORS:
        raise StudyError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
