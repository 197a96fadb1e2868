"""RQ3 made executable: publish asset versions the way the version notes describe (Sections VI-A/B, Table VIII).

The paper re-implements by hand the code changes behind TF Hub's version notes, following the three steps
of producing a module (Section VI-A): **Step 1** define the model and load the pretrained checkpoint (plus
input preprocessing and hyper-parameters), **Step 2** choose the signatures (inference and fine-tuning),
**Step 3** export. `publish` does exactly that, starting from an embedded zoo member (`study.assets.zoo`):

    checkpoint/ckpt.{index,data-*}    the member's parameters, written once; every version loads it
                                      (like the TF-Slim checkpoints all TF Hub versions share, Table VII)
    v1_initial/                       fixed input size, [0, 1] -> [-1, 1] scaling, original batch-norm momentum
    v2_variable_input/                + resize to the checkpoint's size inside the model (Step 1)
    v3_batch_norm_momentum/           + momentum 0.99 by default, an argument when fine-tuning (Steps 1-2)
    v4_quantization_boundary/         + input scaling overestimating the upper bound by 0.05 % (Step 1)
    v5_tf2_saved_model/               + a `serving_default` signature (Steps 2-3)
    versions.json                     the versions and the notes that are not published (TF1 only)

Each version folder is a TF2 SavedModel that `hub.KerasLayer` loads (reusable-SavedModel convention:
`__call__(images, training[, batch_norm_momentum])`, `variables`, `trainable_variables`,
`regularization_losses`), plus `version.json` recording the note it implements and what each step did.
The versions are cumulative, like TF Hub's. Two notes are TF1-only and are stated, not faked
(`TF1_ONLY_NOTES`): UPDATE_OPS and the `hub.Module` format.

`finetune_versions` measures the new-version concerns of Section VII-H: it fine-tunes each version with
the sweep harness (`study.casestudy.finetune`, same data, seed and protocol) and, optionally, runs the browser test
(`study.casestudy.browser`). CLI: `python -m study publish --member NAME --out DIR`.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from study import config, failpoints, files
from study.assets import efficientnet_tf, refs as asset_refs, zoo
from study.cache.step import Step
from study.casestudy import browser, finetune
from study.casestudy.cluster import after_lost, this_node
from study.errors import ResumeWarning, StudyError
from study.paper import version_notes
from study.runtime import processes

PUBLISH_FORMAT = 2  # bump when what a version folder contains changes: older folders are rebuilt
ARCHITECTURES = ("MobileNet V1", "MobileNet V2", "EfficientNet-Lite")
# Batch-norm momentum of the original training code: the TF-Slim scopes (mobilenet_v1_arg_scope batch_norm_decay,
# mobilenet_v2 training_scope bn_decay), what the TF1 modules were built with before the version-3 note; the
# EfficientNet-Lite code's batch_norm_momentum (already the note's 0.99: version 3 changes only the argument).
ORIGINAL_BN_MOMENTUM = {"MobileNet V1": 0.9997, "MobileNet V2": 0.997,
                        "EfficientNet-Lite": efficientnet_tf.BN_MOMENTUM}
NEW_BN_MOMENTUM = 0.99  # the version-3 note
QUANTIZATION_OVERESTIMATE = 0.0005  # 0.05 %: issue 109 note
# What the checkpoints expect; TF Hub image assets take [0, 1]. EfficientNet-Lite: (255 x - 127) / 128.
INPUT_RANGE = {"MobileNet V1": (-1.0, 1.0), "MobileNet V2": (-1.0, 1.0),
               "EfficientNet-Lite": efficientnet_tf.NETWORK_INPUT_RANGE}


@dataclass(frozen=True)
class VersionSpec:
    """One published version: the note it implements and how Steps 1-3 change."""

    number: int
    slug: str
    note: str
    note_category: str | None  # Table VIII's category; None for notes outside Table VIII
    tfhub_version: int  # the TF Hub MobileNet version that carried this note
    source: str  # where the note's text comes from in the paper
    steps: tuple[int, ...]  # the steps of Section VI-A this version changes
    change: str  # how this version implements its note
    variable_input: bool = False
    configurable_momentum: bool = False
    new_momentum: bool = False  # default momentum 0.99 instead of the original
    input_overestimate: float = 0.0  # relative increase of the scaled input's upper bound
    serving_signature: bool = False

    @property
    def name(self) -> str:
        return f"v{self.number}_{self.slug}"


def _note(category: str) -> str:
    """The version note's text as Table VIII gives it (one place: data/paper/table_viii_version_notes.csv)."""
    notes = version_notes()
    return str(notes.loc[notes["note_category"] == category, "version_note"].iloc[0])


def versions() -> tuple[VersionSpec, ...]:
    """The versions `publish` produces, cumulative, in order."""
    return (
        VersionSpec(1, "initial", "Initial release.", None, 1, "Section VI-B (the initial-release notes)", (1, 2, 3),
                    "Step 1: fixed input size, [0, 1] scaled to [-1, 1], the original training momentum; "
                    "Step 2: __call__(images, training); Step 3: TF2 SavedModel"),
        VersionSpec(2, "variable_input", _note("variable_input_size"), "variable_input_size", 3, "Table VIII", (1,),
                    "Step 1: bilinear resize to the checkpoint's input size inside the model; "
                    "input shape (None, None, None, 3)", variable_input=True),
        VersionSpec(3, "batch_norm_momentum", _note("batch_norm_momentum"), "batch_norm_momentum", 3, "Table VIII",
                    (1, 2), f"Step 1: batch-norm momentum {NEW_BN_MOMENTUM} by default; Step 2: __call__ takes "
                    "batch_norm_momentum (hub.KerasLayer(arguments=...)) for fine-tuning",
                    variable_input=True, configurable_momentum=True, new_momentum=True),
        VersionSpec(4, "quantization_boundary", _note("quantization_boundary"), "quantization_boundary", 3,
                    "Table VIII", (1,), f"Step 1: [0, 1] scaled to [-1, {1 + QUANTIZATION_OVERESTIMATE:g}] "
                    "(upper bound overestimated by 0.05 %)", variable_input=True, configurable_momentum=True,
                    new_momentum=True, input_overestimate=QUANTIZATION_OVERESTIMATE),
        VersionSpec(5, "tf2_saved_model", "Switched to the SavedModel format of TensorFlow 2. The hub.Module class "
                    "cannot load this or later versions any more.", None, 4, "Section VII-H", (2, 3),
                    "Step 2: a serving_default signature images -> {feature_vector}; Step 3: exported with it",
                    variable_input=True, configurable_momentum=True, new_momentum=True,
                    input_overestimate=QUANTIZATION_OVERESTIMATE, serving_signature=True),
    )


# Section VII-H's argument per TF Hub version of mobilenet_v2_075_192 (argued, not measured, in the paper).
PAPER_VII_H = {
    1: "the version the paper fine-tuned and tested (Tables IX, X)",
    2: "UPDATE_OPS fix: will not interfere the performance and resource usage",
    3: "API change: performance and resources unchanged unless the fine-tuning is redone with momentum 0.99 "
       "(one fine-tuning took 10m 46s)",
    4: "TF2 SavedModel: same parameters, no essential difference in performance and resource usage",
}


# Notes that only make sense in TensorFlow 1: stated here (and in versions.json / the notebook), not faked.
TF1_ONLY_NOTES: tuple[dict[str, str], ...] = (
    {"note_category": "update_ops",
     "why": "UPDATE_OPS is the TF1 graph collection holding the batch-norm moving-average updates that a TF1 "
            "training loop had to run itself; GitHub issue 86 was a module that did not register them. In TF2 "
            "the updates run inside the layer call of the fine-tuning function (tf.function control dependencies), "
            "so there is no collection to fix: fine-tuning any version here updates the moving statistics "
            "(tests/test_publish.py checks it)."},
    {"note_category": "hub_module_format",
     "why": "hub.Module (TF1 Hub format) can only be written with TensorFlow 1's hub.create_module_spec, which "
            "tensorflow-hub 0.16 no longer ships. All versions here are TF2 SavedModels; v1-v4 play hub.Module's "
            "role (a reusable module: __call__ for inference and fine-tuning, no signatures) and v5 adds the "
            "serving_default signature that TF Serving, the TF.js and TFLite converters need."},
)


def tf1_only_notes() -> list[dict[str, str]]:
    notes = version_notes().drop_duplicates("note_category").set_index("note_category")["version_note"]
    text = {"update_ops": notes.get("update_ops", ""),
            "hub_module_format": "Versions 1-3 of the MobileNets were published in the hub.Module format."}
    return [{**n, "note": text[n["note_category"]]} for n in TF1_ONLY_NOTES]


def get_versions(names: Sequence[str] | None = None) -> list[VersionSpec]:
    """The versions called `names` ('v3', 'v3_batch_norm_momentum' or '3'), all when None."""
    specs = versions()
    if not names:
        return list(specs)
    by = {}
    for s in specs:
        by.update({s.name: s, f"v{s.number}": s, str(s.number): s})
    unknown = [n for n in names if n not in by]
    if unknown:
        raise StudyError(f"unknown version {', '.join(unknown)}; valid versions: {', '.join(s.name for s in specs)}")
    return sorted({by[n] for n in names}, key=lambda s: s.number)


# ------------------------------------------------------------------------------------- Step 1
def _member(name: str):
    # a member name or its TF Hub / Kaggle handle; publishing rebuilds the network, so it must be a zoo TF member
    member = asset_refs.zoo_member(name) or zoo.get_member(name)  # unknown: StudyError listing the valid ones
    if member.backend != "tf" or member.architecture not in ARCHITECTURES:
        tf_names = [m.name for m in zoo.MEMBERS if m.backend == "tf"]
        raise StudyError(f"{member.name} is a {member.backend} member ({member.architecture}); publishing versions "
                         f"needs a TF Hub member of the zoo: {', '.join(tf_names)}")
    return member


def _backbone_source(member) -> str:
    return "study.assets.efficientnet_tf" if zoo.ported(member) else "tf_keras.applications"


def build_backbone(member):
    """Step 1, the network: the member's MobileNet of tf_keras.applications, or its EfficientNet-Lite of
    study.assets.efficientnet_tf without the input normalisation (the same builders as the zoo's assets)."""
    if zoo.ported(member):
        return efficientnet_tf.network(efficientnet_tf.index(member.handle))
    import tf_keras

    app = {"MobileNet V1": tf_keras.applications.MobileNet, "MobileNet V2": tf_keras.applications.MobileNetV2}
    size = member.input_size
    return app[member.architecture](input_shape=(size, size, 3), alpha=member.width, include_top=False,
                                    weights=None, pooling="avg")


def _batch_norms(backbone) -> list:
    import tf_keras

    return [layer for layer in backbone.layers if isinstance(layer, tf_keras.layers.BatchNormalization)]


def write_checkpoint(member, dest: Path) -> dict[str, Any]:
    """The member's parameters as a TF checkpoint (`ckpt.index`, `ckpt.data-*`), copied by variable name
    from its embedded SavedModel into a freshly built backbone; returns what `checkpoint.json` records."""
    import numpy as np
    import tensorflow as tf

    asset = zoo.build_embedded(member)
    source = {v.name: v for v in tf.saved_model.load(str(asset)).variables}
    backbone = build_backbone(member)
    missing = [w.name for w in backbone.weights if w.name not in source]
    if missing:
        raise StudyError(f"the embedded asset {asset} lacks {len(missing)} variables of the {member.architecture} "
                         f"backbone (e.g. {missing[0]}); rebuild it: python -m study zoo build --members {member.name}")
    for w in backbone.weights:
        value = source[w.name].numpy()
        if value.shape != tuple(w.shape):
            raise StudyError(f"{asset}: variable {w.name} has shape {value.shape}, the backbone expects "
                             f"{tuple(w.shape)}; rebuild the asset (python -m study zoo build)")
        w.assign(value)
    with files.atomic_dir(dest) as tmp:
        tf.train.Checkpoint(backbone=backbone).write(str(tmp / "ckpt"))
        info = {"member": member.name, "source": str(asset), "variables": len(backbone.weights),
                "parameters": int(sum(np.prod(w.shape) for w in backbone.weights)),
                "files": sorted(p.name for p in tmp.iterdir()), "publish_format": PUBLISH_FORMAT}
        files.write_text(tmp / "checkpoint.json", json.dumps(info, indent=2) + "\n")
    return info


def load_checkpoint(member, checkpoint: Path):
    """Step 1: build the backbone and load the shared checkpoint into it (every variable must match)."""
    import tensorflow as tf

    backbone = build_backbone(member)
    status = tf.train.Checkpoint(backbone=backbone).read(str(checkpoint / "ckpt"))
    status.assert_existing_objects_matched().expect_partial()
    return backbone


# ------------------------------------------------------------------------------------- Steps 1-3
def _input_bounds(spec: VersionSpec, member) -> tuple[float, float]:
    low, high = INPUT_RANGE[member.architecture]
    return low, high * (1.0 + spec.input_overestimate)


def _export(spec: VersionSpec, member, checkpoint: Path, dest: Path) -> dict[str, Any]:
    """Steps 1-3 for one version into the (new, empty) folder `dest`; returns its version.json."""
    import tensorflow as tf

    t0 = time.perf_counter()
    # Step 1: define the model, load the checkpoint, fix the hyper-parameters and the input preprocessing.
    backbone = load_checkpoint(member, checkpoint)
    bns = _batch_norms(backbone)
    momentum = NEW_BN_MOMENTUM if spec.new_momentum else ORIGINAL_BN_MOMENTUM[member.architecture]
    for layer in bns:
        layer.momentum = momentum
    size = member.input_size
    low, high = _input_bounds(spec, member)

    def features(images, training, batch_norm_momentum=None):
        if spec.variable_input:  # any size in, the checkpoint's size to the network
            images = tf.image.resize(images, (size, size), method="bilinear")
        x = images * (high - low) + low
        if batch_norm_momentum is None:
            return backbone(x, training=training)
        for layer in bns:  # a tensor: used by the moving-average updates of this trace only
            layer.momentum = batch_norm_momentum
        try:
            return backbone(x, training=training)
        finally:
            for layer in bns:
                layer.momentum = momentum

    # Step 2: signatures. `__call__` serves inference (training=False, the default) and fine-tuning
    # (training=True, hub.KerasLayer(trainable=True)): one trace each, `training` a Python bool like Keras'
    # own exports (a tensor would put a cond in every product graph, which the TF.js converter rejects).
    # With a configurable momentum, `batch_norm_momentum` is a float tensor argument (hub.KerasLayer's
    # `arguments=`); a call without it gets the default, converted to that tensor.
    side = None if spec.variable_input else size
    image_spec = tf.TensorSpec([None, side, side, 3], tf.float32, name="images")
    if spec.configurable_momentum:
        def call(images, training=False, batch_norm_momentum=momentum):
            return features(images, training, batch_norm_momentum)

        extra = {"batch_norm_momentum": tf.TensorSpec([], tf.float32, name="batch_norm_momentum")}
    else:
        def call(images, training=False):
            return features(images, training)

        extra = {}
    root = tf.train.Checkpoint()
    root.variables = list(backbone.variables)
    root.trainable_variables = list(backbone.trainable_variables)
    root.regularization_losses = []
    root.__call__ = tf.function(call, autograph=False)
    for training in (False, True):
        root.__call__.get_concrete_function(image_spec, training=training, **extra)
    signatures: dict[str, Any] = {}
    if spec.serving_signature:
        serve = tf.function(lambda images: {"feature_vector": call(images, training=False)}, input_signature=[image_spec],
                            autograph=False)
        signatures["serving_default"] = serve.get_concrete_function()
    # Step 3: export (a TF2 SavedModel; hub.Module would need TensorFlow 1, see TF1_ONLY_NOTES).
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("WARNING")  # no "INFO: Assets written to ..." per version
    try:
        tf.saved_model.save(root, str(dest), signatures=signatures,
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    finally:
        logger.setLevel(level)
    call_args = "images, training=False" + (f", batch_norm_momentum={momentum}" if spec.configurable_momentum else "")
    steps = {
        "1": f"{member.architecture} (width {member.width}) from {_backbone_source(member)}, checkpoint loaded; "
             f"inputs [0, 1] scaled to [{low:g}, {high:g}]"
             + (f", resized to {size}x{size} inside the model" if spec.variable_input else f", fixed {size}x{size}")
             + f"; batch-norm momentum {momentum}" + (" (default, configurable)" if spec.configurable_momentum else ""),
        "2": f"__call__({call_args}) for inference and fine-tuning"
             + ("; serving_default(images) -> {'feature_vector'}" if spec.serving_signature else "; no signatures"),
        "3": "tf.saved_model.save -> TF2 SavedModel (hub.KerasLayer loads it)",
    }
    return {**asdict(spec), "name": spec.name, "member": member.name, "handle": member.handle,
            "weights": zoo.built_weights(member),  # what its accuracy supports (study.assets.zoo.weights)
            "input_size": size, "input_shape": [None, side, side, 3], "feature_dim": member.feature_dim,
            "input_range": [low, high], "batch_norm_momentum": momentum, "what_each_step_does": steps,
            "signatures": sorted(signatures), "publish_format": PUBLISH_FORMAT,
            "tensorflow": tf.__version__, "export_seconds": round(time.perf_counter() - t0, 2)}


def _checkpoint_info(ckpt: Path, member: str) -> dict[str, Any] | None:
    """What `checkpoint.json` says, None when there is no usable checkpoint; another member's is an error."""
    try:
        info = json.loads((ckpt / "checkpoint.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if info.get("member") != member:
        raise StudyError(f"{ckpt.parent} holds the versions of {info.get('member')}, not {member}; "
                         "choose another --out")
    return info if info.get("publish_format") == PUBLISH_FORMAT else None


def _is_current(folder: Path, spec: VersionSpec, checkpoint_info: dict[str, Any]) -> bool:
    if not (folder / "version.json").exists():
        return False
    if problem := files.damage(folder / "version.json"):
        warnings.warn(f"{problem}: version {folder.name} is republished", ResumeWarning, stacklevel=2)
        return False
    rec = json.loads((folder / "version.json").read_text())
    return ((folder / "saved_model.pb").exists() and rec.get("publish_format") == PUBLISH_FORMAT
            and rec.get("checkpoint") == checkpoint_info and rec.get("note") == spec.note)


def publish(member: str, out: str | Path, names: Sequence[str] | None = None, *, force: bool = False,
            progress: bool = True) -> pd.DataFrame:
    """Publish the versions (`names`, default all) of `member` under `out`; returns one row per version.

    Resumable: versions already published from the same checkpoint are kept unless `force`. Every folder is
    written next to its final place and renamed into it, so a killed run leaves no half-written version.
    """
    specs = get_versions(names)
    member_ = _member(member)
    try:
        out = files.ensure_writable_dir(out)
    except OSError as exc:
        raise StudyError(str(exc)) from None
    processes.quiet_tensorflow()
    with files.locked(out / "versions.json"):
        # versions published under another key (code, packages, machine) are published again
        step = Step.of(out, "published-versions", [__name__], {"member": member_.name})
        if step.state() == "foreign":
            force = True
            for old in out.glob("v*/version.json"):
                shutil.rmtree(old.parent)
        step.start()
        for stale in [*out.glob(".v*.*"), *out.glob(".checkpoint.*")]:  # temp folders of a killed run (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        ckpt = out / "checkpoint"
        info = _checkpoint_info(ckpt, member_.name)
        if info is None or force:
            info = write_checkpoint(member_, ckpt)
        for spec in specs:
            dest = out / spec.name
            if not force and _is_current(dest, spec, info):
                continue
            with files.atomic_dir(dest) as tmp:
                record = _export(spec, member_, ckpt, tmp) | {"checkpoint": info}
                files.write_text(tmp / "version.json", json.dumps(record, indent=2) + "\n")
            if progress:
                print(f"[publish] {member_.name} {spec.name}: {record['export_seconds']} s -> {dest}",
                      file=sys.stderr, flush=True)
            failpoints.reached("publish.version-done")
        table = read_published(out)
        files.write_text(out / "versions.json", json.dumps(
            {"member": member_.name, "versions": table["name"].tolist(), "not_published": tf1_only_notes()},
            indent=2) + "\n")
        step.finish()
    return table


def read_published(out: str | Path) -> pd.DataFrame:
    """One row per version folder under `out` (from its version.json), in version order."""
    rows = []
    for path in sorted(Path(out).glob("v*/version.json")):
        rec = json.loads(path.read_text())
        rows.append({"version": rec["number"], "name": rec["name"], "note": rec["note"],
                     "note_category": rec["note_category"], "tfhub_version": rec["tfhub_version"],
                     "steps": ", ".join(str(s) for s in rec["steps"]), "input_shape": str(tuple(rec["input_shape"])),
                     "input_range": f"[{rec['input_range'][0]:g}, {rec['input_range'][1]:g}]",
                     "batch_norm_momentum": rec["batch_norm_momentum"],
                     "momentum_configurable": rec["configurable_momentum"],
                     "signatures": ", ".join(rec["signatures"]) or "-", "change": rec["change"],
                     "path": str(path.parent)})
    if not rows:
        raise StudyError(f"no published versions in {out}; run: python -m study publish --member NAME --out {out}")
    return pd.DataFrame(rows).sort_values("version").reset_index(drop=True)


def not_published() -> pd.DataFrame:
    """The notes that only apply to TensorFlow 1, with the reason they are stated instead of implemented."""
    return pd.DataFrame(tf1_only_notes(), columns=["note_category", "note", "why"])


def table_viii_beside(out: str | Path) -> pd.DataFrame:
    """Table VIII (one row per note) beside the version we published for it, or why there is none."""
    paper = version_notes()
    per_note = (paper.groupby(["note_category", "version_note"], sort=False)
                .agg(modules=("algorithm", lambda s: ", ".join(s)),
                     paper_version=("version", lambda s: ", ".join(f"V{v}" for v in sorted(set(s)))))
                .reset_index())
    ours = read_published(out).dropna(subset=["note_category"]).set_index("note_category")
    why = not_published().set_index("note_category")["why"]
    per_note["our_version"] = per_note["note_category"].map(ours["name"]).fillna("not published (TF1 only)")
    per_note["steps"] = per_note["note_category"].map(ours["steps"]).fillna("-")
    per_note["how"] = [ours["change"].get(c) if c in ours.index else why.get(c, "") for c in per_note["note_category"]]
    return per_note


# ------------------------------------------------------------------------ measuring (Section VII-H)
def finetune_versions(published: str | Path, out: str | Path, profile: config.Profile,
                      names: Sequence[str] | None = None, *, browser_backends: Sequence[str] = (),
                      progress: bool = False, executor=None, **sweep_options: Any) -> pd.DataFrame:
    """Fine-tune each published version with the sweep harness (same data, seed and protocol for all) and,
    with `browser_backends`, run the browser test on the result; one row per version, naming the node that measured
    it (`node`).

    Resumable like the harness itself: `out/<version>/sweep/` (Table IX layout) and `out/<version>/browser/`.
    `executor` (a `study.casestudy.ray_executor.RayExecutor`): each version in a task that holds a node of its
    cluster (its fine-tuning and browser test measured there; `out` at the same path on every node); closed at the
    end."""
    published = Path(published)
    table = read_published(published)
    if names:
        wanted = {s.name for s in get_versions(names)}
        table = table[table["name"].isin(wanted)]
    info = json.loads((published / "checkpoint" / "checkpoint.json").read_text())
    member = _member(info["member"])
    jobs = [VersionJob(version.version, version.name, version.tfhub_version, str(version.path), str(Path(out)),
                       profile, member.input_size, tuple(browser_backends), progress, dict(sweep_options))
            for version in table.itertuples()]
    if executor is None:
        return pd.DataFrame([measure_version(job) for job in jobs])
    rows = {}
    try:
        for job, row, history in executor.each(measure_version, jobs, version_key, what="version costs"):
            row["node"] += after_lost(history)
            rows[job.name] = row
    finally:
        executor.close()
    return pd.DataFrame([rows[job.name] for job in jobs])


@dataclass(frozen=True)
class VersionJob:
    """One published version to fine-tune (and browser-test) with the sweep harness."""

    version: int
    name: str
    tfhub_version: Any
    path: str  # the version folder: the asset (study.assets.refs), a local SavedModel at the member's size
    out: str
    profile: config.Profile
    input_size: int
    browser_backends: tuple[str, ...]
    progress: bool
    sweep_options: dict[str, Any]


def version_key(job: VersionJob) -> str:
    return f"version-costs/{job.name}"


def measure_version(job: VersionJob) -> dict[str, Any]:
    """One version's row: Table IX's columns of its fine-tuning, its browser runs, the node that measured them."""
    sweep_out = Path(job.out) / job.name / "sweep"
    t9 = finetune.sweep(sweep_out, job.profile, [job.path], input_size=job.input_size, progress=job.progress,
                        **job.sweep_options)
    row = {"version": job.version, "name": job.name, "paper_vii_h": PAPER_VII_H.get(job.tfhub_version, ""),
           **t9.iloc[0][["accuracy", "delta_cpu", "delta_mem", "elapse", "elapse_s", "status", "asset_sha256"]]
           .to_dict()}
    if job.browser_backends and row["status"] == "ok":
        tx = browser.browser_test(sweep_out, Path(job.out) / job.name / "browser", profile=job.profile,
                                  backends=job.browser_backends, members=[job.path], progress=job.progress)
        for r in tx.itertuples():
            row |= {f"browser_{r.backend}_status": r.status, f"browser_{r.backend}_ms_per_image": r.ms_per_image,
                    f"browser_{r.backend}_accuracy": r.accuracy}
    row["node"] = this_node()
    return row


# ------------------------------------------------------------------------------------- CLI
# What a run measures unless told (notebook 08) is the profile's `version_costs` (study.profiles).


def member_for(profile: config.Profile, member: str = "") -> str:
    """The member whose versions a run publishes: `member` when given, else the profile's
    (`profile.version_costs.member`, a member that sees)."""
    return _member(member or profile.version_costs.member).name


def version_costs(published: str | Path, out: str | Path, profile: config.Profile,
                  names: Sequence[str] | None = None, *, browser_backends: Sequence[str] | None = None,
                  diffs: Sequence[Any] = (), progress: bool = False, executor=None) -> pd.DataFrame:
    """`finetune_versions` with the profile's defaults (`profile.version_costs`) for `names` / `browser_backends`
    left None, and each version's `diff_verdict` from the `version_diff.diff`s of consecutive versions; `executor`:
    each version on a node of a Ray cluster (`finetune_versions`)."""
    default_names, default_backends = profile.version_costs.versions, profile.version_costs.browser_backends
    costs = finetune_versions(published, out, profile, names or default_names,
                              browser_backends=default_backends if browser_backends is None else browser_backends,
                              progress=progress, executor=executor)
    verdicts = {d.b.version["name"]: d.verdict for d in diffs}
    costs.insert(2, "diff_verdict", costs["name"].map(verdicts).fillna("(first version)"))
    return costs


def plot_version_costs(costs: pd.DataFrame, member: str, profile: str):  # profile: its name, for the title
    """One bar chart per measured column (accuracy, Formula 1 deltas, elapsed time, browser ms per image),
    one bar per published version."""
    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    metrics = [c for c in ("accuracy", "delta_cpu", "delta_mem", "elapse_s") if costs[c].notna().any()]
    metrics += [c for c in costs.columns if c.endswith("_ms_per_image") and costs[c].notna().any()]
    ncols = min(len(metrics), 4)
    nrows = -(-len(metrics) // ncols)
    fig, axes = plots.figure("full", height=0.5 + 1.7 * nrows, nrows=nrows, ncols=ncols, squeeze=False,
                             layout="constrained")
    labels = [f"v{v}" for v in costs["version"]]
    for ax, col in zip(axes.flat, metrics):
        ax.bar(labels, costs[col].astype(float), color=plots.SOURCE_COLORS["reproduced"])
        ax.set_title(col.replace("browser_", "").replace("_", " "))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        if len(labels) > 6:  # a panel is a quarter of the text width
            ax.tick_params(axis="x", rotation=90)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"{member}: the same fine-tuning per published version ({profile})")
    return fig
