"""The fine-tuning sweep of Section VII-E (Table IX): train every member while a Sampler measures it.

One *run* = one member, one repeat, the paper's three periods:

    cooldown-before (N samples)  ->  running: the training worker, its own process  ->  cooldown-after (N samples)

and Formula 1 (`study.formula1`) turns the samples into ΔCPU / ΔMEM. The worker (`python -m study.finetune
--worker SPEC`) loads the zoo member through `study.zoo.feature_extractor` (the same code path for real TF Hub
assets and the embedded ones; PyTorch for EfficientNet-Lite), adds a classification head, trains with batch
size 32, validates, tests, and saves the classifier (TF2 SavedModel, `.pt` for torch) with its predictions.

Layers, so that another executor (e.g. Ray, one run per node) plugs in at one seam:

- `train_member(spec)`      the training itself, in-process (the worker's body; benchmarks call it directly)
- `measure_run(job)`        sampler + worker process + watchdog on *one machine* -> `RunResult`
- `Executor` / `LocalExecutor`  how runs are placed; `LocalExecutor.run = measure_run` on this machine
- `sweep(...)`              the driver: resume, progress, atomic records / tables, publishing models

Output layout under the sweep's `out` DIR (see the contract in README):

    table_ix.csv                      Table IX (model, delta_cpu, delta_mem, elapse, accuracy, status, ...)
    samples/<member>.csv              every sample of every repeat (column `repeat`)
    models/<member>/saved_model/      the fine-tuned classifier (torch members: model.pt)
    models/<member>/meta.json         member, backend, input_size, class_names, test_accuracy, test_images
    predictions/<member>.csv          path, label, prediction
    runs/<member>/r<k>.json           one record per run (status, measurements, versions, threads): resume state
    runs/<member>/r<k>/               the run's work folder (sampler CSV, worker log, staged artefacts)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from study import config, files
from study.errors import StudyError

BATCH_SIZE = 32  # Section VII-C (training)
FEATURE_BATCH = 128  # inference-only passes (bottleneck features, test predictions): batch size does not change results
MODES = ("full", "frozen")
STATUSES = ("ok", "timeout", "killed", "failed", "invalid")
# Table IX as the paper prints it, then what we add (issue 6 fixes this order).
TABLE_IX_COLUMNS = ["model", "delta_cpu", "delta_mem", "elapse", "accuracy", "status", "elapse_s", "repeats",
                    "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb", "gpu", "gpu_memory", "n_samples"]
TABLE_IX_EXTRA = ["delta_cpu_std", "delta_mem_std", "elapse_s_std", "accuracy_std", "train_s", "val_accuracy",
                  "interval_median_s", "interval_max_s", "missed_slots", "mode", "epochs", "backend", "reason",
                  "node"]


# --------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SweepConfig:
    """Everything that decides a run's measurements; runs recorded under another config are not reused."""

    profile: str
    epochs: int
    mode: str  # "full": backbone trainable; "frozen": backbone fixed, head on cached features
    interval: float  # sampling interval (s)
    cooldown_samples: int  # samples in each cool-down period
    timeout_s: float  # watchdog per run (the training worker's wall time)
    seed: int = 0
    batch_size: int = BATCH_SIZE
    learning_rate: float = 0.005
    threads: int | None = None  # intra-op threads of the worker; None = the library default (all cores)

    def key(self) -> dict[str, Any]:
        """The fields a recorded run must match to count as done (the watchdog limit does not matter)."""
        d = dataclasses.asdict(self)
        d.pop("timeout_s")
        return d


# Profile defaults. The paper's protocol: 5 s interval, 6 cool-down samples (Section VII-E); its epochs are
# not stated, we use the TF Hub image-classifier default of 5. The offline profiles scale the interval and
# the cool-down down so that the whole `make reproduce` stays within about 10 minutes on 2 cores.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": dict(epochs=1, mode="frozen", interval=0.1, cooldown_samples=3, timeout_s=240),
    "embedded": dict(epochs=2, mode="frozen", interval=0.5, cooldown_samples=3, timeout_s=600),
    "paper": dict(epochs=5, mode="full", interval=5.0, cooldown_samples=6, timeout_s=4 * 3600),
}


def save_classifier(model, dest: str | Path, size: int) -> Path:
    """The sweep's model format (see the module docstring): a TF2 SavedModel whose `serving_default` maps float32
    images (N, size, size, 3) in [0, 1] to `probabilities`. Only the variables and that signature are saved, not
    Keras' per-layer traces: the folder loads (and converts to TF.js) several times faster."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])
    def serve(x):
        return {"probabilities": model(x, training=False)}

    module = tf.Module()
    module.weights_ = list(model.variables)
    module.serve = serve
    tf.saved_model.save(module, str(dest), signatures={"serving_default": serve})
    return Path(dest)

def sweep_config(profile: str | None = None, **overrides: Any) -> SweepConfig:
    """The profile's defaults with `overrides` (None values ignored), validated."""
    prof = config.get_profile(profile)
    values = {**PROFILE_DEFAULTS[prof.name], **{k: v for k, v in overrides.items() if v is not None}}
    cfg = SweepConfig(profile=prof.name, **values)
    if cfg.mode not in MODES:
        raise StudyError(f"unknown mode {cfg.mode!r}; valid modes: {', '.join(MODES)}")
    if cfg.epochs < 1:
        raise StudyError(f"--epochs must be at least 1 (got {cfg.epochs})")
    if cfg.cooldown_samples < 1:
        raise StudyError(f"cool-down needs at least 1 sample (got {cfg.cooldown_samples})")
    from study.sampler import MIN_INTERVAL

    if cfg.interval < MIN_INTERVAL:
        raise StudyError(f"--interval {cfg.interval} s is below the sampler's minimum {MIN_INTERVAL} s")
    return cfg


def sweep_members(profile: str, names: Sequence[str] | None = None) -> list[str]:
    """Member names for a sweep: `names` checked against the zoo, or the profile's (`study.zoo.members`)."""
    from study import zoo

    if names:
        return [zoo.get_member(n).name for n in names]  # an unknown name is a StudyError listing valid ones
    return [m.name for m in zoo.members(profile)]


def prepare_assets(profile: str, names: Sequence[str]) -> None:
    """Build (embedded) or fetch into the TF Hub cache (paper) every TF member's asset *before* measuring.

    Runs in a subprocess so the driver (a notebook, the CLI) never imports TensorFlow; skipped when every
    embedded asset is already built. A missing paper asset fails here, fast, with zoo's instructions.
    """
    from study import zoo

    tf_members = [zoo.get_member(n) for n in names if zoo.get_member(n).backend == "tf"]
    if profile != "paper":
        tf_members = [m for m in tf_members if not (zoo.embedded_path(m) / "saved_model.pb").exists()]
    if not tf_members:
        return
    code = ("import sys; from study import zoo; from study.errors import StudyError\n"
            "try:\n"
            f"    [zoo.feature_extractor(n, {profile!r}) for n in {[m.name for m in tf_members]!r}]\n"
            "except StudyError as exc:\n"
            "    print(exc, file=sys.stderr); sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env())
    if proc.returncode:
        lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith(("WARNING", "I0000", "W0000"))]
        raise StudyError(f"could not prepare the assets of {', '.join(m.name for m in tf_members)} "
                         f"(profile {profile}): " + "\n".join(lines[-8:]))


def _child_env() -> dict[str, str]:
    """Environment for our subprocesses: `study` importable from this checkout, TensorFlow quiet."""
    path = os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


# --------------------------------------------------------------------------------- the training
@dataclass
class WorkerSpec:
    """What one training worker does; written as JSON for `python -m study.finetune --worker`."""

    member: str
    profile: str
    epochs: int
    mode: str
    out: str  # staging folder for the model, meta.json, predictions.csv, result.json
    seed: int = 0
    batch_size: int = BATCH_SIZE
    learning_rate: float = 0.005
    threads: int | None = None
    cache_features: bool = True  # frozen mode: bottleneck caching (False recomputes the backbone every epoch)
    save: bool = True


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("tensorflow-cpu", "tensorflow", "tf-keras", "tensorflow-hub", "torch", "numpy", "psutil"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _seed_everything(seed: int, backend: str) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if backend == "tf":
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
    else:
        import torch

        torch.manual_seed(seed)


def _thread_settings(backend: str, threads: int | None) -> dict[str, Any]:
    """Apply `threads` (None: library default) and report what the libraries will actually use."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "requested": threads,
                            **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS") if k in os.environ}}
    if backend == "tf":
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        info["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()  # 0 = all cores
        info["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    else:
        import torch

        if threads:
            torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
    return info


def train_member(spec: WorkerSpec) -> dict[str, Any]:
    """Fine-tune one member on its profile's split, in this process; returns the result record.

    Writes into `spec.out`: the classifier (`saved_model/` or `model.pt`), `meta.json`, `predictions.csv`.
    """
    from study import dataset, zoo

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    member = zoo.get_member(spec.member)
    threads = _thread_settings(member.backend, spec.threads)
    _seed_everything(spec.seed, member.backend)
    split = dataset.load_split(spec.profile, seed=spec.seed)
    data = {name: (dataset.load_images([p for p, _ in items], member.input_size),
                   [label for _, label in items]) for name, items in
            (("train", split.train), ("validation", split.validation), ("test", split.test))}
    timings["load_s"] = time.perf_counter() - t0
    train = _train_tf if member.backend == "tf" else _train_torch
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    result = train(member, spec, data, len(split.class_names), out, timings)
    import numpy as np

    predictions = result.pop("predictions")
    labels = np.asarray(data["test"][1])
    accuracy = float((predictions == labels).mean()) if len(labels) else math.nan
    if spec.save:
        import pandas as pd

        files.write_csv(out / "predictions.csv", pd.DataFrame(
            {"path": [str(p) for p, _ in split.test], "label": labels, "prediction": predictions}))
        files.write_text(out / "meta.json", json.dumps({
            "member": member.name, "backend": member.backend, "input_size": member.input_size,
            "class_names": list(split.class_names), "test_accuracy": accuracy, "mode": spec.mode,
            "epochs": spec.epochs, "seed": spec.seed, "profile": spec.profile,
            "test_images": [{"path": str(p), "label": int(label)} for p, label in split.test],
        }, indent=2) + "\n")
    timings["total_s"] = time.perf_counter() - t0
    return {"member": member.name, "backend": member.backend, "accuracy": accuracy, **result,
            "n_train": len(split.train), "n_validation": len(split.validation), "n_test": len(split.test),
            "timings": timings, "versions": library_versions(), "threads": threads}


def _train_tf(member, spec: WorkerSpec, data, n_classes: int, out: Path, timings: dict) -> dict[str, Any]:
    import numpy as np
    import tf_keras as keras

    from study import zoo

    t = time.perf_counter()
    size = member.input_size
    full = spec.mode == "full"
    backbone = zoo.feature_extractor(member, spec.profile, trainable=full)
    head = keras.Sequential([keras.layers.Dropout(0.2),
                             keras.layers.Dense(n_classes, activation="softmax",
                                                kernel_regularizer=keras.regularizers.l2(1e-4))], name="head")
    images = keras.Input((size, size, 3), dtype="float32", name="images")
    model = keras.Model(images, head(backbone(images)), name=f"{member.name}_classifier")
    timings["build_s"] = time.perf_counter() - t

    def compile_(m):
        m.compile(optimizer=keras.optimizers.SGD(spec.learning_rate, momentum=0.9),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])

    onehot = {k: keras.utils.to_categorical(v[1], n_classes) for k, v in data.items()}
    t = time.perf_counter()
    if not full and spec.cache_features:
        # bottleneck caching: the frozen backbone runs once per image, the head trains on its features
        extract = keras.Model(images, backbone(images))
        feats = {k: extract.predict(data[k][0], batch_size=FEATURE_BATCH, verbose=0) for k in ("train", "validation")}
        timings["features_s"] = time.perf_counter() - t
        head_model = keras.Sequential([keras.Input((feats["train"].shape[1],)), head])
        compile_(head_model)
        history = head_model.fit(feats["train"], onehot["train"], batch_size=spec.batch_size, epochs=spec.epochs,
                                 validation_data=(feats["validation"], onehot["validation"]), verbose=0,
                                 shuffle=True)
    else:
        compile_(model)
        history = model.fit(data["train"][0], onehot["train"], batch_size=spec.batch_size, epochs=spec.epochs,
                            validation_data=(data["validation"][0], onehot["validation"]), verbose=0, shuffle=True)
    timings["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    probabilities = model.predict(data["test"][0], batch_size=spec.batch_size, verbose=0)
    timings["test_s"] = time.perf_counter() - t
    if spec.save:
        t = time.perf_counter()

        save_classifier(model, out / "saved_model", size)
        timings["save_s"] = time.perf_counter() - t
    return {"predictions": np.argmax(probabilities, axis=1), "val_accuracy": float(history.history["val_accuracy"][-1]),
            "history": {k: [float(x) for x in v] for k, v in history.history.items()}}


def _train_torch(member, spec: WorkerSpec, data, n_classes: int, out: Path, timings: dict) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch import nn

    from study import zoo

    t = time.perf_counter()
    full = spec.mode == "full"
    backbone = zoo.feature_extractor(member, spec.profile, trainable=full)
    with torch.no_grad():
        dim = backbone(torch.zeros(1, 3, member.input_size, member.input_size)).shape[1]
    classifier = _torch_classifier(backbone, dim, n_classes)
    head = classifier[1]
    for p in backbone.parameters():
        p.requires_grad_(full)
    timings["build_s"] = time.perf_counter() - t

    def tensor(images):  # NHWC float in [0, 1] -> NCHW
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))

    def batches(n, shuffle, gen, size=spec.batch_size):
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        return [order[i:i + size] for i in range(0, n, size)]

    def features(x):
        backbone.eval()
        with torch.no_grad():
            return torch.cat([backbone(x[i]) for i in batches(len(x), False, None, FEATURE_BATCH)])

    x = {k: tensor(v[0]) for k, v in data.items()}
    y = {k: torch.as_tensor(v[1], dtype=torch.long) for k, v in data.items()}
    params = list(head.parameters()) + (list(backbone.parameters()) if full else [])
    opt = torch.optim.SGD(params, lr=spec.learning_rate, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    gen = torch.Generator().manual_seed(spec.seed)
    t = time.perf_counter()
    cached = not full and spec.cache_features
    if cached:
        feats = {k: features(x[k]) for k in ("train", "validation")}
        timings["features_s"] = time.perf_counter() - t
    history: dict[str, list[float]] = {"loss": [], "val_accuracy": []}
    for _ in range(spec.epochs):
        head.train()
        backbone.train(full)
        total = 0.0
        for idx in batches(len(y["train"]), True, gen):
            inputs = feats["train"][idx] if cached else backbone(x["train"][idx])
            loss = loss_fn(head(inputs), y["train"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        head.eval()
        with torch.no_grad():
            val_in = feats["validation"] if cached else features(x["validation"])
            val_acc = float((head(val_in).argmax(1) == y["validation"]).float().mean())
        history["loss"].append(total / max(1, len(y["train"])))
        history["val_accuracy"].append(val_acc)
    timings["train_s"] = time.perf_counter() - t
    classifier.eval()
    t = time.perf_counter()
    with torch.no_grad():
        probabilities = torch.cat([classifier(x["test"][i]) for i in batches(len(y["test"]), False, None)])
    timings["test_s"] = time.perf_counter() - t
    if spec.save:
        t = time.perf_counter()
        # a plain checkpoint (tensors + names, loadable with weights_only=True); `load_torch_classifier` rebuilds it
        checkpoint = {"member": member.name, "feature_dim": int(dim), "n_classes": n_classes,
                      "state_dict": classifier.state_dict()}
        files.atomic_write(out / "model.pt", lambda tmp: torch.save(checkpoint, str(tmp)))
        timings["save_s"] = time.perf_counter() - t
    return {"predictions": probabilities.argmax(1).numpy(), "val_accuracy": history["val_accuracy"][-1],
            "history": history}


def _torch_classifier(backbone, feature_dim: int, n_classes: int):
    """backbone -> dropout + linear head -> softmax: the torch classifier a sweep trains and saves."""
    from torch import nn

    head = nn.Sequential(nn.Dropout(0.2), nn.Linear(feature_dim, n_classes))
    return nn.Sequential(backbone, head, nn.Softmax(dim=1))


def load_torch_classifier(path: str | Path, profile: str | None = None):
    """A torch member's fine-tuned classifier from its `model.pt`: float (N, 3, S, S) in [0, 1] -> probabilities."""
    import torch

    from study import zoo

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = _torch_classifier(zoo.feature_extractor(ckpt["member"], profile), ckpt["feature_dim"], ckpt["n_classes"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _worker_main(spec_path: str) -> int:
    """`python -m study.finetune --worker SPEC`: train, then write result.json (atomically) next to the model."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    spec = WorkerSpec(**json.loads(Path(spec_path).read_text()))
    result = train_member(spec)
    files.write_text(Path(spec.out) / "result.json", json.dumps(result, indent=2, default=str) + "\n")
    return 0


# ------------------------------------------------------------------------- one measured run (node side)
@dataclass(frozen=True)
class RunJob:
    """One measured run: a member, a repeat, the sweep's config, and a work folder on the running node."""

    member: str
    repeat: int
    config: SweepConfig
    workdir: Path

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
    summary: dict[str, Any]  # Formula 1 etc. (study.formula1.summarize)
    samples: Any  # pandas DataFrame
    worker: dict[str, Any] = field(default_factory=dict)  # the worker's result.json (accuracy, versions, ...)
    artifacts: Path | None = None  # model, meta.json, predictions.csv when status is ok
    started: float = 0.0  # Unix time
    ended: float = 0.0
    sampler: dict[str, Any] = field(default_factory=dict)
    node: dict[str, Any] = field(default_factory=dict)  # study.cluster.node_identity() of the measuring machine

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


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and anything it started (its own session: process group id = its PID)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def measure_run(job: RunJob, on_start: Callable[[RunJob, int, int], None] | None = None) -> RunResult:
    """One run on this machine: cool-down, the worker under the watchdog, cool-down; never raises for a bad run.

    `on_start(job, worker_pid, sampler_pid)` is called once the worker is running (progress, tests).
    """
    from study import formula1
    from study.cluster import node_identity
    from study.sampler import Sampler, SamplerError

    cfg = job.config
    work = Path(job.workdir)
    if work.exists():
        shutil.rmtree(work)  # a previous, incomplete attempt
    (work / "artifacts").mkdir(parents=True)
    spec = WorkerSpec(member=job.member, profile=cfg.profile, epochs=cfg.epochs, mode=cfg.mode,
                      out=str(work / "artifacts"), seed=cfg.seed + job.repeat, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, threads=cfg.threads)
    files.write_text(work / "spec.json", json.dumps(dataclasses.asdict(spec), indent=2) + "\n")
    sampler = Sampler(cfg.interval, out=work / "samples.csv")
    status, reason, worker, elapse, started = "failed", "", None, math.nan, time.time()
    try:
        sampler.start(phase="cooldown-before")
        sampler.wait_samples(cfg.cooldown_samples)
        log = open(work / "worker.log", "w")
        started, t0 = time.time(), time.monotonic()
        worker = subprocess.Popen([sys.executable, "-m", "study.finetune", "--worker", str(work / "spec.json")],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_child_env())
        log.close()
        files.write_text(work / "worker.pid", f"{worker.pid}\n")
        sampler.watch(worker.pid)
        sampler.set_phase("running")
        if on_start:
            on_start(job, worker.pid, sampler.pid)
        while worker.poll() is None:  # the watchdog
            if time.monotonic() - t0 > cfg.timeout_s:
                _kill_group(worker)
                status, reason = "timeout", f"no result after {cfg.timeout_s:.0f} s; killed by the watchdog"
                break
            if sampler.died:
                _kill_group(worker)
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
    except SamplerError as exc:
        status, reason = "invalid", f"sampler: {exc}"
    except BaseException:
        if worker is not None:
            _kill_group(worker)
        sampler.close()
        raise
    finally:
        if worker is not None and worker.poll() is None:
            _kill_group(worker)
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


# --------------------------------------------------------------------------------- executors (the seam)
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


def _ray_executor(**kwargs: Any) -> Executor:
    from study.ray_executor import RayExecutor  # optional extra: requirements/ray.txt

    return RayExecutor(**kwargs)


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "ray": _ray_executor}


def get_executor(name: str, **kwargs: Any) -> Executor:
    if name not in EXECUTORS:
        raise StudyError(f"unknown executor {name!r}; valid executors: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](**kwargs)


# --------------------------------------------------------------------------------- the driver
def _record_path(out: Path, member: str, repeat: int) -> Path:
    return out / "runs" / member / f"r{repeat}.json"


def read_records(out: str | Path) -> list[dict[str, Any]]:
    """Every run record under `out/runs/` (unreadable ones are skipped: they are rerun)."""
    records = []
    for path in sorted(Path(out).glob("runs/*/r*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return records


def _is_done(out: Path, member: str, repeat: int, cfg: SweepConfig) -> bool:
    path = _record_path(out, member, repeat)
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return rec.get("status") == "ok" and rec.get("config") == cfg.key()


def table_ix(records: Iterable[dict[str, Any]], cfg: SweepConfig, order: Sequence[str] = ()) -> "pd.DataFrame":
    """Table IX from run records of `cfg`: one row per member, repeats averaged (ok runs when there are any)."""
    import pandas as pd

    from study import formula1
    from study.paper import format_elapse

    runs = pd.DataFrame([r for r in records if r.get("config") == cfg.key()])
    if runs.empty:
        return pd.DataFrame(columns=TABLE_IX_COLUMNS + TABLE_IX_EXTRA)
    runs = runs.rename(columns={"member": "model"})
    numeric = ["elapse_s", "accuracy", "val_accuracy", "train_s", *formula1.SUMMARY_COLUMNS]
    runs[numeric] = runs.reindex(columns=numeric).apply(pd.to_numeric, errors="coerce")
    rows = []
    for model, group in runs.groupby("model", sort=False):
        ok = group[group["status"] == "ok"]
        used = ok if not ok.empty else group
        agg = formula1.aggregate(used.assign(model=model)).iloc[0].to_dict()
        bad = group[group["status"] != "ok"].sort_values("repeat")
        backend = next((w.get("backend") for w in group["worker"] if isinstance(w, dict) and w.get("backend")), None)
        rows.append({**agg, "model": model, "status": "ok" if bad.empty else bad["status"].iloc[0],
                     "train_s": pd.to_numeric(used["train_s"], errors="coerce").mean(),
                     "val_accuracy": pd.to_numeric(used["val_accuracy"], errors="coerce").mean(),
                     "mode": cfg.mode, "epochs": cfg.epochs, "backend": backend,
                     "reason": "; ".join(f"r{r}: {why}" for r, why in zip(bad["repeat"], bad["reason"])),
                     "node": _node_labels(used)})
    table = pd.DataFrame(rows)
    table["elapse"] = [format_elapse(s) if pd.notna(s) else "" for s in table["elapse_s"]]
    rank = {m: i for i, m in enumerate(order)}
    table = table.sort_values("model", key=lambda s: s.map(lambda m: (rank.get(m, len(rank)), m)))
    return table[TABLE_IX_COLUMNS + TABLE_IX_EXTRA].reset_index(drop=True)


def _node_labels(runs: "pd.DataFrame") -> str:
    """The machines that measured `runs` (study.cluster.node_label), for Table IX's `node` column."""
    from study.cluster import node_label

    nodes = runs["node"] if "node" in runs else []
    return "; ".join(sorted({node_label(n) for n in nodes if isinstance(n, dict) and n}))


def _check_output(out: Path, n_members: int, min_free_mb: float) -> None:
    """Fail before any training when `out` cannot take the results (unwritable, or the disk is nearly full)."""
    try:
        files.ensure_writable_dir(out)
    except OSError as exc:
        raise StudyError(str(exc)) from exc
    free_mb = shutil.disk_usage(out).free / 2**20
    need = min_free_mb * max(1, n_members)
    if free_mb < need:
        raise StudyError(f"only {free_mb:.0f} MB free on the disk of {out}; the sweep of {n_members} member(s) "
                         f"needs about {need:.0f} MB (models, samples). Free space or choose another --out")


def _publish(out: Path, result: RunResult) -> None:
    """Move a run's model, meta.json and predictions into the sweep layout, replacing older ones atomically."""
    src = result.artifacts
    dest = out / "models" / result.member
    staged = out / "models" / f".{result.member}.new"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for name in ("saved_model", "model.pt", "meta.json"):
        if (src / name).exists():
            shutil.move(str(src / name), staged / name)
    old = out / "models" / f".{result.member}.old"
    if dest.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    os.replace(staged, dest)
    shutil.rmtree(old, ignore_errors=True)
    files.atomic_write(out / "predictions" / f"{result.member}.csv",
                       lambda tmp: shutil.copyfile(src / "predictions.csv", tmp))


def _write_samples(out: Path, member: str, cfg: SweepConfig) -> None:
    """samples/<member>.csv: the samples of every recorded repeat of this config, with a `repeat` column."""
    import pandas as pd

    from study.sampler import read_samples

    parts = []
    for rec in read_records(out):
        path = out / "runs" / member / f"r{rec['repeat']}" / "samples.csv"
        if rec.get("member") == member and rec.get("config") == cfg.key() and path.exists():
            df = read_samples(path)
            df.insert(0, "repeat", rec["repeat"])
            parts.append(df)
    if parts:
        files.write_csv(out / "samples" / f"{member}.csv", pd.concat(parts, ignore_index=True))


def write_table(out: str | Path, table) -> Path:
    """DIR/table_ix.csv, atomically: a crash mid-write leaves the previous table as it was."""
    return files.write_csv(Path(out) / "table_ix.csv", table)


def sweep(out: str | Path, profile: str | None = None, members: Sequence[str] | None = None, *,
          epochs: int | None = None, repeats: int = 1, mode: str | None = None, force: bool = False,
          interval: float | None = None, cooldown_samples: int | None = None, timeout_s: float | None = None,
          threads: int | None = None, seed: int = 0, executor: Executor | str = "local", progress: bool = True,
          min_free_mb: float = 60.0, log: Callable[[str], None] | None = None) -> "pd.DataFrame":
    """Fine-tune `members` (default: the profile's) one after another under the Sampler; returns Table IX.

    Resumable: runs recorded `ok` under the same config are skipped (`force=True` reruns them). A run that
    times out, is killed or fails is recorded with what was measured, and the sweep goes on.
    """
    from tqdm import tqdm

    from study import dataset

    cfg = sweep_config(profile, epochs=epochs, mode=mode, interval=interval, cooldown_samples=cooldown_samples,
                       timeout_s=timeout_s, threads=threads, seed=seed)
    if repeats < 1:
        raise StudyError(f"--repeats must be at least 1 (got {repeats})")
    names = sweep_members(cfg.profile, members)
    out = Path(out)
    _check_output(out, len(names), min_free_mb)
    dataset.load_split(cfg.profile, seed=cfg.seed)  # generate / check the data outside any measured run
    prepare_assets(cfg.profile, names)
    say = log or (lambda msg: tqdm.write(msg) if progress else None)
    files.write_text(out / "sweep.json", json.dumps({"config": cfg.key(), "members": names, "repeats": repeats,
                                                     "versions": library_versions()}, indent=2) + "\n")
    ex = get_executor(executor) if isinstance(executor, str) else executor
    jobs = [RunJob(m, r, cfg, out / "runs" / m / f"r{r}") for m in names for r in range(repeats)]
    todo = [j for j in jobs if force or not _is_done(out, j.member, j.repeat, cfg)]
    if len(todo) < len(jobs):
        say(f"[finetune] resuming: {len(jobs) - len(todo)} of {len(jobs)} runs already done (--force reruns them)")
    try:
        bar = tqdm(total=len(todo), desc="fine-tuning", unit="run", disable=not progress)
        run_many = getattr(ex, "run_many", None)  # executors running several jobs at once (Ray)
        for result in run_many(todo) if run_many else map(ex.run, todo):
            run_id = f"{result.member}/r{result.repeat}"
            bar.set_postfix_str(run_id)
            bar.update(1)
            try:
                if result.status == "ok":
                    _publish(out, result)
                files.write_text(_record_path(out, result.member, result.repeat),
                                 json.dumps(_clean(result.record(cfg)), indent=2, default=str) + "\n")
                _write_samples(out, result.member, cfg)
                write_table(out, table_ix(read_records(out), cfg, names))
            except OSError as exc:  # disk full, folder removed mid-sweep: earlier results stay intact
                raise StudyError(f"cannot write the results of {run_id} under {out}: {exc.strerror or exc}; "
                                 "free space / fix the folder and rerun (completed runs are kept)") from exc
            if result.status != "ok":
                say(f"[finetune] {run_id}: {result.status} ({result.reason})")
    finally:
        ex.close()
    table = table_ix(read_records(out), cfg, names)
    write_table(out, table)
    return table


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def default_out(profile: str | None = None) -> Path:
    """Where the notebook (and `make reproduce`) keeps a profile's sweep: results/finetune/<profile>/."""
    return config.results_dir() / "finetune" / config.get_profile(profile).name


def load_table(out: str | Path) -> "pd.DataFrame":
    """A sweep's table_ix.csv."""
    import pandas as pd

    path = Path(out) / "table_ix.csv"
    if not path.exists():
        raise StudyError(f"no Table IX at {path}; run: python -m study finetune --out {out}")
    return pd.read_csv(path)


def load_samples(out: str | Path, member: str) -> "pd.DataFrame":
    """A member's samples (every repeat, column `repeat`)."""
    import pandas as pd

    path = Path(out) / "samples" / f"{member}.csv"
    if not path.exists():
        raise StudyError(f"no samples for {member} at {path}")
    return pd.read_csv(path)


# --------------------------------------------------------------------------------- beside the paper
PAPER_IX_COLUMNS = ("delta_cpu", "delta_mem", "elapse_s", "accuracy")


def beside_paper(table: "pd.DataFrame") -> "pd.DataFrame":
    """Our Table IX next to the paper's, one row per member we ran (`<column>_paper` / `<column>_ours`)."""
    import pandas as pd

    from study import paper

    cols = list(PAPER_IX_COLUMNS)
    theirs = paper.finetuning()[["model", "elapse", *cols]].rename(columns={"elapse": "elapse_paper"})
    ours = table[["model", "elapse", *cols, "status"]].rename(columns={"elapse": "elapse_ours"})
    both = theirs.merge(ours, on="model", how="right", suffixes=("_paper", "_ours"))  # our members
    order = ["model"] + [f"{c}_{s}" for c in ("delta_cpu", "delta_mem", "elapse", "accuracy") for s in ("paper", "ours")]
    return both[order + ["status"]].sort_values("model", ignore_index=True).pipe(pd.DataFrame)


def ranking_vs_paper(table: "pd.DataFrame") -> "pd.DataFrame":
    """How our ranking of the members both tables have compares with the paper's, per Table IX column:
    Spearman's ρ of the ranks, and which member is highest / lowest in each table."""
    import pandas as pd

    from study import paper

    ours = table[table["status"] == "ok"].set_index("model")
    theirs = paper.finetuning().set_index("model")
    common = ours.index.intersection(theirs.index)
    rows = []
    for col in PAPER_IX_COLUMNS:
        a, b = ours.loc[common, col].astype(float), theirs.loc[common, col].astype(float)
        rows.append({"column": col, "common_members": len(common),
                     "spearman_rho": a.rank().corr(b.rank()) if len(common) >= 3 else math.nan,
                     "highest_ours": a.idxmax() if a.notna().any() else None,
                     "highest_paper": b.idxmax() if len(b) else None,
                     "lowest_ours": a.idxmin() if a.notna().any() else None,
                     "lowest_paper": b.idxmin() if len(b) else None})
    return pd.DataFrame(rows)


def timeline_figure(out: str | Path, members: Sequence[str], columns: Sequence[str] = ("cpu", "tree_cpu", "mem")):
    """Per-member CPU / memory over time, cool-down periods shaded (one panel per member, first repeat)."""
    from study import plots

    members = list(members)
    ncols = 2 if len(members) > 1 else 1
    nrows = math.ceil(len(members) / ncols)
    fig, axes = plots.figure("full", aspect=0.32 * nrows, nrows=nrows, ncols=ncols, squeeze=False, sharey=True)
    labels = {"cpu": "system CPU %", "tree_cpu": "worker tree CPU %", "mem": "system memory %",
              "tree_mem": "worker tree memory %"}
    for ax, member in zip(axes.flat, members):
        s = load_samples(out, member)
        s = s[s["repeat"] == s["repeat"].min()]
        step = float(s["t"].diff().median()) if len(s) > 1 else 0.0  # a sample covers the interval before it
        for phase in ("cooldown-before", "cooldown-after"):
            part = s[s["phase"] == phase]
            if len(part):
                ax.axvspan(part["t"].min() - step, part["t"].max(), color="0.88", zorder=0, lw=0,
                           label="cool-down" if phase == "cooldown-before" else None)
        for col in columns:
            ax.plot(s["t"], s[col], lw=0.8, label=labels.get(col, col))
        ax.set_title(member, fontsize=7)
        ax.set_xlabel("time (s)")
    for ax in list(axes.flat)[len(members):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("%")
    axes.flat[0].legend(loc="upper left", fontsize=6)
    fig.tight_layout()
    return fig


def cost_scatter_figure(table: "pd.DataFrame"):
    """Accuracy against ΔCPU, ΔMEM and elapsed time: the paper's 38 assets and our sweep, side by side."""
    import pandas as pd

    from study import paper, plots

    both = pd.concat([paper.finetuning().assign(source="paper"),
                      table[table["status"] == "ok"].assign(source="reproduced")], ignore_index=True)
    fig, axes = plots.figure("full", aspect=0.3, ncols=3, sharey=True)
    for ax, (col, label) in zip(axes, (("delta_cpu", "ΔCPU (%, Formula 1)"), ("delta_mem", "ΔMEM (%, Formula 1)"),
                                       ("elapse_s", "elapse (s)"))):
        for source, part in both.groupby("source"):
            ax.scatter(part[col], part["accuracy"], s=10, label=source, color=plots.SOURCE_COLORS[source])
        ax.set_xlabel(label)
    axes[2].set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune zoo members under the resource Sampler (Table IX)")
    p.add_argument("--profile", default=None, help="smoke | embedded | paper (default: $PROFILE or embedded)")
    p.add_argument("--members", nargs="+", metavar="NAME", help="zoo members (default: the profile's)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--repeats", type=int, default=1, help="runs per member; Table IX shows mean and spread")
    p.add_argument("--mode", choices=MODES, default=None, help="full fine-tuning or frozen backbone")
    p.add_argument("--interval", type=float, default=None, help="sampling interval in s (>= 0.1; paper: 5)")
    p.add_argument("--cooldown", type=int, default=None, dest="cooldown_samples",
                   help="samples in each cool-down period (paper: 6)")
    p.add_argument("--timeout", type=float, default=None, dest="timeout_s", help="watchdog per run, seconds")
    p.add_argument("--threads", type=int, default=None, help="worker intra-op threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--executor", default="local", choices=sorted(EXECUTORS),
                   help="local: one run at a time here; ray: one run per node of a Ray cluster")
    p.add_argument("--address", default=None, help="ray: the cluster's HOST:PORT (default: $RAY_ADDRESS)")
    p.add_argument("--retries", type=int, default=None, help="ray: resubmit a lost run to another node N times")
    p.add_argument("--artifacts", default=None, metavar="URI",
                   help="ray: shared folder (path or file://) for the models instead of returning them via Ray")
    p.add_argument("--force", action="store_true", help="rerun members that already have complete results")
    p.add_argument("--out", required=True, type=Path, help="output folder (table_ix.csv, samples/, models/)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    opts = {k: v for k, v in (("address", args.address), ("retries", args.retries), ("artifacts", args.artifacts))
            if v is not None}
    if opts and args.executor != "ray":
        raise StudyError(f"{', '.join('--' + k for k in opts)} only apply to --executor ray")
    table = sweep(args.out, args.profile, args.members, epochs=args.epochs, repeats=args.repeats, mode=args.mode,
                  force=args.force, interval=args.interval, cooldown_samples=args.cooldown_samples,
                  timeout_s=args.timeout_s, threads=args.threads, seed=args.seed,
                  executor=get_executor(args.executor, **opts))
    print(table[TABLE_IX_COLUMNS].to_string(index=False))
    bad = table[table["status"] != "ok"]
    print(f"[finetune] {len(table) - len(bad)} of {len(table)} members ok -> {Path(args.out) / 'table_ix.csv'}")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        raise SystemExit(_worker_main(sys.argv[2]))
    from study.cli import main

    raise SystemExit(main(["finetune", *sys.argv[1:]]))
