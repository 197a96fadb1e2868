"""The training worker of the sweep (Section VII-C/E): one member fine-tuned in its own process."""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import config, failpoints, files
from study.assets import folder as asset_folder, refs as asset_refs, zoo
from study.casestudy import dataset
from study.errors import StudyError
from study.protocol import PAPER, RECIPE
from study.runtime import processes
from study.runtime.images import load_images
from study.runtime.processes import child_env


BUILD_WORKERS = 2  # embedded asset builds at once (prepare_assets); unmeasured work, so it may share the cores
FEATURE_BATCH = 128  # inference-only passes (bottleneck features, test predictions): batch size does not change results


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


def build_groups(members: Sequence[Any], workers: int) -> list[list[str]]:
    """`members` (zoo Members) split into at most `workers` groups of similar build cost (input pixels): the
    largest first, each to the lightest group. No empty group."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(members))))]
    loads = [0] * len(groups)
    for m in sorted(members, key=lambda m: -m.input_size ** 2):
        i = loads.index(min(loads))
        groups[i].append(m.name)
        loads[i] += m.input_size ** 2
    return groups


def prepare_assets(profile: config.Profile, names: Sequence[Any]) -> None:
    """Build (embedded) or fetch into the TF Hub cache (paper) every TF zoo member's asset *before* measuring.

    `names`: zoo member names or resolved `asset_refs.Asset`s (other assets were checked when resolved).
    Runs in subprocesses so the driver (a notebook, the CLI) never imports TensorFlow; skipped when every
    embedded asset is already built. A missing paper asset fails here, fast, with zoo's instructions.
    """
    members = [getattr(n, "member", n) for n in names if getattr(n, "kind", "zoo") == "zoo"]
    tf_members = [zoo.get_member(n) for n in members if zoo.get_member(n).backend == "tf"]
    if profile.online and asset_folder.activate():  # an asset folder: check its bytes here, without TF
        asset_folder.verify(asset_folder.active_root(), [m.name for m in tf_members])
    if not profile.online:
        tf_members = [m for m in tf_members if not zoo.embedded_current(m)]
    if not tf_members:
        return
    # Embedded builds are independent and nothing is measured while they run: split them over up to
    # BUILD_WORKERS processes (each pays its TensorFlow import once). The paper profile fetches: one process.
    groups = build_groups(tf_members, 1 if profile.online else min(BUILD_WORKERS, os.cpu_count() or 1))
    procs = []
    failures = []
    try:
        for group in groups:
            code = ("import sys; from study import config; from study.assets import zoo; from study.errors import StudyError\n"
                    "try:\n"  # a new process: the profile crosses by name
                    f"    [zoo.feature_extractor(n, config.PROFILES[{profile.name!r}]) for n in {group!r}]\n"
                    "except StudyError as exc:\n"
                    "    print(exc, file=sys.stderr); sys.exit(2)\n")
            err = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty worker never blocks on a pipe
            procs.append((group, err, processes.popen([sys.executable, "-c", code], role="asset-check",
                                                      stdout=subprocess.DEVNULL, stderr=err, text=True,
                                                      env=child_env())))
        for group, err, proc in procs:
            if proc.wait():
                err.seek(0)
                lines = [ln for ln in err.read().strip().splitlines()
                         if not ln.startswith(("WARNING", "I0000", "W0000"))]
                crashed = any(ln.startswith("Traceback") for ln in lines)  # then its last line says what broke
                failures.append(f"{', '.join(group)}: " + "\n".join(lines[-1:] if crashed else lines[-8:]))
    finally:  # interrupted (Ctrl-C in a notebook): no build goes on without us
        for _, err, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()
    if failures:
        raise StudyError(f"could not prepare the assets of {', '.join(m.name for m in tf_members)} "
                         f"(profile {profile.name}): " + "\n".join(failures))


@dataclass
class WorkerSpec:
    """What one training worker does; written as JSON for `python -m study.casestudy.training SPEC`."""

    member: str
    profile: str  # the Profile's name: the spec crosses the process boundary as JSON (`spec_profile`)
    epochs: int
    mode: str
    out: str  # staging folder for the model, meta.json, predictions.csv, result.json
    seed: int = 0
    batch_size: int = PAPER.batch_size
    learning_rate: float = RECIPE.learning_rate
    threads: int | None = None
    cache_features: bool = True  # frozen mode: bottleneck caching (False recomputes the backbone every epoch)
    save: bool = True
    data: str | None = None  # a team's data set (SweepConfig.data); None = the profile's
    split: str | None = None  # a split CSV (SweepConfig.split)
    asset: dict[str, Any] | None = None  # the resolved asset (asset_refs.Asset.to_dict); None = zoo member `member`


def spec_profile(spec: WorkerSpec) -> config.Profile:
    """The profile a worker's spec names (the driver's Profile, written as its name)."""
    return config.PROFILES[spec.profile]


def spec_asset(spec: WorkerSpec):
    """The asset a worker trains: the driver's resolved one, or the zoo member named in `spec.member`."""
    return asset_refs.Asset.from_dict(spec.asset) if spec.asset else asset_refs.resolve(spec.member, spec_profile(spec))


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
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    member = spec_asset(spec)
    threads = _thread_settings(member.backend, spec.threads)
    _seed_everything(spec.seed, member.backend)
    profile = spec_profile(spec)
    split = dataset.load_split(profile, seed=spec.seed, data=spec.data, split=spec.split)
    data = {name: (load_images([p for p, _ in items], member.input_size),
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
            "epochs": spec.epochs, "seed": spec.seed, "profile": spec.profile, "asset": member.identity(),
            "weights": asset_refs.weights(member.ref, profile),
            "assets_lock": asset_folder.active_digest() if profile.online else None,
            "test_images": [{"path": str(p), "label": int(label)} for p, label in split.test],
        }, indent=2) + "\n")
    timings["total_s"] = time.perf_counter() - t0
    return {"member": member.name, "backend": member.backend, "asset": member.identity(), "accuracy": accuracy, **result,
            "n_train": len(split.train), "n_validation": len(split.validation), "n_test": len(split.test),
            "timings": timings, "versions": library_versions(), "threads": threads}


def _train_tf(member, spec: WorkerSpec, data, n_classes: int, out: Path, timings: dict) -> dict[str, Any]:
    import numpy as np
    import tf_keras as keras

    t = time.perf_counter()
    size = member.input_size
    full = spec.mode == "full"
    backbone = asset_refs.feature_extractor(member, spec_profile(spec), trainable=full)
    head = keras.Sequential([keras.layers.Dropout(RECIPE.dropout),
                             keras.layers.Dense(n_classes, activation="softmax",
                                                kernel_regularizer=keras.regularizers.l2(RECIPE.weight_decay))],
                            name="head")
    images = keras.Input((size, size, 3), dtype="float32", name="images")
    model = keras.Model(images, head(backbone(images)), name=f"{member.name}_classifier")
    timings["build_s"] = time.perf_counter() - t

    def compile_(m):
        m.compile(optimizer=keras.optimizers.SGD(spec.learning_rate, momentum=RECIPE.momentum),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=RECIPE.label_smoothing),
                  metrics=["accuracy"])

    onehot = {k: keras.utils.to_categorical(v[1], n_classes) for k, v in data.items()}
    failpoints.reached("training.running")
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

    t = time.perf_counter()
    full = spec.mode == "full"
    backbone = asset_refs.feature_extractor(member, spec_profile(spec), trainable=full)
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
    opt = torch.optim.SGD(params, lr=spec.learning_rate, momentum=RECIPE.momentum, weight_decay=RECIPE.weight_decay)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=RECIPE.label_smoothing)
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
        checkpoint = {"member": member.name, "asset": member.to_dict(), "feature_dim": int(dim), "n_classes": n_classes,
                      "state_dict": classifier.state_dict()}
        files.atomic_write(out / "model.pt", lambda tmp: torch.save(checkpoint, str(tmp)))
        timings["save_s"] = time.perf_counter() - t
    return {"predictions": probabilities.argmax(1).numpy(), "val_accuracy": history["val_accuracy"][-1],
            "history": history}


def _torch_classifier(backbone, feature_dim: int, n_classes: int):
    """backbone -> dropout + linear head -> softmax: the torch classifier a sweep trains and saves."""
    from torch import nn

    head = nn.Sequential(nn.Dropout(RECIPE.dropout), nn.Linear(feature_dim, n_classes))
    return nn.Sequential(backbone, head, nn.Softmax(dim=1))


def load_torch_classifier(path: str | Path, profile: config.Profile):
    """A torch member's fine-tuned classifier from its `model.pt`: float (N, 3, S, S) in [0, 1] -> probabilities."""
    import torch

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    asset = asset_refs.Asset.from_dict(ckpt["asset"]) if "asset" in ckpt else asset_refs.resolve(ckpt["member"], profile)
    model = _torch_classifier(asset_refs.feature_extractor(asset, profile), ckpt["feature_dim"], ckpt["n_classes"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _worker_main(spec_path: str) -> int:
    """`python -m study.casestudy.training SPEC`: train, then write result.json (atomically) next to the model."""
    processes.quiet_tensorflow()
    spec = WorkerSpec(**json.loads(Path(spec_path).read_text()))
    result = train_member(spec)
    t = os.times()  # the kernel's CPU time of this worker (and any children it waited for), to check the Sampler's
    result["cpu_s"] = t.user + t.system + t.children_user + t.children_system  # integral of its process tree
    files.write_text(Path(spec.out) / "result.json", json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m study.casestudy.training SPEC.json  (started by the sweep, not by hand)")
    raise SystemExit(_worker_main(sys.argv[1]))
