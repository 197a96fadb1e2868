"""What changed between two versions of an asset, and what a product built on the old one must redo (RQ3).

The paper compares versions by hand: "we extract the input and output tensor shapes in all of the
signatures and compare the shapes with later version" (Section VI-B), then argues per note whether the
fine-tuning must be redone (Section VII-H). `diff(a, b)` does it mechanically for two TF2 SavedModels:

- **API**: every callable (`__call__` of a reusable SavedModel, every signature): inputs with shapes and
  dtypes (a `None` dimension is a variable size), extra arguments with their defaults, outputs. Each
  change is `added` / `removed` / `generalised` (a fixed dimension became variable) / `changed`, and the
  API change as a whole is *compatible* (every call that worked on A works on B) or *breaking*.
- **Parameters**: variables by name: shape and maximum absolute difference.
- **Outputs** on fixed probe images (crops of scikit-image's photographs, `study.assets.zoo.calibration_images`)
  through the inference path. An *untrained* asset (batch-norm moving statistics still at their initial
  0 / 1) is first recalibrated in memory: its moving statistics become those of a calibration batch,
  recovered from two training-mode calls whatever the asset's momentum (`recalibrate_batch_norm`).
- **Outputs changed** under the one rule for "faithful" (`study.deployment.faithful`), version A as the reference:
  B's outputs differ when they are not within K x A's own noise floor on the probes (`output_floor`: A at batch 1
  vs all probes at once, A loaded again, and intra-op threads 1 vs 2 where A is called through a signature). The
  paper-comparable fixed gate is recorded beside it (`changed_fixed`); where A's floor cannot be measured, the fixed
  gate decides and `tolerance_source` says so.
- **Verdict**, the first that applies: `parameters changed` (redo the fine-tuning), `API changed` (adapt the
  product's code where it breaks), `outputs changed` (same parameters and API, different features on the
  same images: re-validate, re-fit the head), `nothing changed`.

CLI: `python -m study version-diff A B [--json]`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import config
from study.assets.refs import saved_model_folder
from study.assets.zoo import calibration_images
from study.deployment import faithful
from study.deployment.intermediates import TFGraph
from study.errors import StudyError
from study.runtime import processes

VERDICTS = ("parameters changed", "API changed", "outputs changed", "nothing changed")
PROBE_IMAGES = 8
PROBE_SEED = 1  # the zoo calibrates with seed 0; probes are other crops
CALIBRATION_IMAGES = 32
DEFAULT_PROBE_SIZE = 224  # when both assets take any size and neither records its own
REDO = {
    "parameters changed": "redo the fine-tuning: the new version's parameters differ, so a product fine-tuned "
                          "from the old ones does not carry the change",
    "API changed": "adapt the product's calling code where the change breaks it; parameters and inference "
                   "outputs are the same, so an already fine-tuned product can stay",
    "outputs changed": "re-validate the product (and re-fit its head): same parameters and API, but different "
                       "features for the same images",
    "nothing changed": "nothing to redo: adopting the new version costs nothing",
}


# ------------------------------------------------------------------------------------- loading
@dataclass
class Asset:
    """A loaded SavedModel and what the diff needs from it."""

    path: Path
    obj: Any
    api: dict[str, dict[str, dict[str, str]]]  # callable -> {"inputs"|"arguments"|"outputs": {name: description}}
    variables: dict[str, Any]  # name -> tf.Variable (or a numpy array read from the checkpoint)
    image_shape: tuple[int | None, ...]
    image_dtype: str
    entry: str  # how the probes are run: "__call__" or a signature key
    version: dict[str, Any] = field(default_factory=dict)  # version.json of a published version, if any

    @property
    def label(self) -> str:
        name = self.version.get("name")
        return f"{self.path}" + (f" ({name}: {self.version.get('note')!r})" if name else "")


def _spec(shape, dtype) -> str:
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return f"{dtype} ({dims})"


def _describe_function(fn) -> tuple[dict[str, dict[str, str]], tuple | None, str | None]:
    """The API of a restored tf.function (e.g. `__call__`): its parameters over all traces, and outputs."""
    import tensorflow as tf

    argspec = fn.function_spec.fullargspec
    names = list(argspec.args)
    defaults = dict(zip(names[len(names) - len(argspec.defaults or ()):], argspec.defaults or ()))
    seen: dict[str, list[Any]] = {n: [] for n in names}
    outputs: dict[str, str] = {}
    for cf in fn.concrete_functions:
        args, kwargs = cf.structured_input_signature
        for name, value in [*zip(names, args), *kwargs.items()]:
            seen.setdefault(name, []).append(value)
        flat = cf.structured_outputs
        items = flat.items() if isinstance(flat, dict) else [("output", flat)]
        for key, spec in items:
            if isinstance(spec, tf.TensorSpec):
                outputs[key] = _spec(spec.shape.as_list() if spec.shape.rank is not None else (), spec.dtype.name)
    inputs, arguments = {}, {}
    image_shape = image_dtype = None
    for i, name in enumerate(names):
        values = seen.get(name, [])
        specs = [v for v in values if isinstance(v, tf.TensorSpec)]
        default = f" default {defaults[name]!r}" if name in defaults else ""
        if specs and i == 0:  # the images, keyed by position: hub.KerasLayer passes them positionally
            shape = _most_general([s.shape.as_list() for s in specs])
            inputs["#0"] = f"{_spec(shape, specs[0].dtype.name)} named {name}"
            image_shape, image_dtype = tuple(shape), specs[0].dtype.name
        elif specs:
            arguments[name] = f"{specs[0].dtype.name} tensor{default}"
        else:
            traced = sorted({repr(v) for v in values})
            arguments[name] = f"traced for {', '.join(traced) or 'nothing'}{default}"
    return {"inputs": inputs, "arguments": arguments, "outputs": outputs}, image_shape, image_dtype


def _most_general(shapes: list[list[int | None]]) -> list[int | None]:
    out = list(shapes[0])
    for s in shapes[1:]:
        out = [a if a == b else None for a, b in zip(out, s)]
    return out


def _describe_signature(fn) -> tuple[dict[str, dict[str, str]], tuple | None, str | None]:
    _, kwargs = fn.structured_input_signature
    inputs = {k: _spec(v.shape.as_list(), v.dtype.name) for k, v in sorted(kwargs.items())}
    outputs = {k: _spec(v.shape.as_list(), v.dtype.name) for k, v in sorted(fn.structured_outputs.items())}
    shape = dtype = None
    if len(kwargs) == 1:
        (spec,) = kwargs.values()
        shape, dtype = tuple(spec.shape.as_list()), spec.dtype.name
    return {"inputs": inputs, "arguments": {}, "outputs": outputs}, shape, dtype


def _variables(obj, path: Path) -> dict[str, Any]:
    import tensorflow as tf

    found: dict[str, Any] = {}
    if hasattr(obj, "variables"):
        for v in obj.variables:
            name, k = v.name, 2
            while name in found:  # the same name twice (nested models): keep both
                name, k = f"{v.name}#{k}", k + 1
            found[name] = v
        return found
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))  # checkpoint keys as names
    return {k: reader.get_tensor(k) for k, _ in tf.train.list_variables(str(path / "variables" / "variables"))
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def load(path: str | Path, profile: config.Profile | None = None) -> Asset:
    """Load a TF2 SavedModel for diffing; a StudyError (one line) when it is not one.

    With a `profile`, `path` may also be an asset reference of a TF zoo member (name or TF Hub / Kaggle handle): its
    SavedModel under that profile."""
    if not Path(path).exists() and profile is not None:
        path = saved_model_folder(str(path), profile) or path
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path} does not exist; pass the folder of a SavedModel (e.g. a version written by "
                         "`python -m study publish`)")
    if not path.is_dir() or not any((path / n).is_file() for n in ("saved_model.pb", "saved_model.pbtxt")):
        raise StudyError(f"{path} is not a SavedModel (no saved_model.pb); pass a folder written by "
                         "tf.saved_model.save, e.g. one version folder of `python -m study publish`")
    processes.quiet_tensorflow()
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 - TF raises many types for broken or TF1-only models
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise StudyError(f"cannot load {path} as a TF2 SavedModel ({type(exc).__name__}: {first})") from None
    api: dict[str, dict[str, dict[str, str]]] = {}
    entry, image_shape, image_dtype = None, None, None
    call = getattr(obj, "__call__", None)
    if call is not None and getattr(call, "concrete_functions", None):
        api["__call__"], image_shape, image_dtype = _describe_function(call)
        entry = "__call__" if image_shape is not None else None
    for key in sorted(getattr(obj, "signatures", {}) or {}):
        api[f"signature {key}"], shape, dtype = _describe_signature(obj.signatures[key])
        if entry is None and shape is not None:
            entry, image_shape, image_dtype = key, shape, dtype
    if entry is None:
        raise StudyError(f"{path} has no callable taking one image tensor (__call__ or a one-input signature); "
                         "version-diff compares image assets")
    if len(image_shape) != 4:
        raise StudyError(f"{path} takes {_spec(image_shape, image_dtype)}, not images (N, H, W, C)")
    version = {}
    if (path / "version.json").is_file():
        version = json.loads((path / "version.json").read_text())
    return Asset(path, obj, api, _variables(obj, path), image_shape, image_dtype, entry, version)


# ------------------------------------------------------------------------------------- comparing
def _api_change(part: str, a: str | None, b: str | None) -> str:
    if a == b:
        return "same"
    if a is None:
        return "added"
    if b is None:
        return "removed"
    if part == "inputs":
        sa, sb = _parse_spec(a), _parse_spec(b)
        same_name = a.partition(" named ")[2] == b.partition(" named ")[2]
        if same_name and sa and sb and sa[0] == sb[0] and len(sa[1]) == len(sb[1]) and all(
                y is None or x == y for x, y in zip(sa[1], sb[1])):
            return "generalised"
    return "changed"


def _parse_spec(text: str) -> tuple[str, list[int | None]] | None:
    try:
        dtype, dims = text.split(" named ")[0].split(" ", 1)
        return dtype, [None if d.strip() == "None" else int(d) for d in dims.strip("()").split(",") if d.strip()]
    except ValueError:
        return None


def _breaking(part: str, change: str, b: str | None) -> bool:
    if change in ("same", "generalised"):
        return False
    if change == "added":  # a new callable or output breaks nothing; a new argument only without a default
        return part == "arguments" and "default" not in (b or "")
    return True


def compare_api(a: Asset, b: Asset) -> pd.DataFrame:
    """One row per callable / input / argument / output of either asset: A, B, change, breaking."""
    rows = []
    for callable_ in sorted(set(a.api) | set(b.api)):
        ca, cb = a.api.get(callable_), b.api.get(callable_)
        if ca is None or cb is None:
            change = "added" if ca is None else "removed"
            rows.append({"callable": callable_, "part": "callable", "name": "", "a": "-" if ca is None else "present",
                         "b": "-" if cb is None else "present", "change": change, "breaking": change == "removed"})
            continue
        for part in ("inputs", "arguments", "outputs"):
            for name in sorted(set(ca[part]) | set(cb[part])):
                va, vb = ca[part].get(name), cb[part].get(name)
                change = _api_change(part, va, vb)
                rows.append({"callable": callable_, "part": part[:-1], "name": name, "a": va or "-", "b": vb or "-",
                             "change": change, "breaking": _breaking(part, change, vb)})
    return pd.DataFrame(rows, columns=["callable", "part", "name", "a", "b", "change", "breaking"])


def _value(v) -> np.ndarray:
    return v.numpy() if hasattr(v, "numpy") else np.asarray(v)


def compare_variables(a: Asset, b: Asset) -> pd.DataFrame:
    """One row per variable name of either asset: shapes, status and the maximum absolute difference."""
    rows = []
    for name in sorted(set(a.variables) | set(b.variables), key=lambda n: (n not in a.variables, n)):
        va = _value(a.variables[name]) if name in a.variables else None
        vb = _value(b.variables[name]) if name in b.variables else None
        diff = np.nan
        if va is None or vb is None:
            status = "added" if va is None else "removed"
        elif va.shape != vb.shape:
            status = "reshaped"
        else:
            diff = float(np.max(np.abs(va.astype(np.float64) - vb.astype(np.float64)))) if va.size else 0.0
            status = "same" if np.array_equal(va, vb) else "changed"
        rows.append({"name": name, "shape_a": None if va is None else str(tuple(va.shape)),
                     "shape_b": None if vb is None else str(tuple(vb.shape)), "status": status, "max_abs_diff": diff})
    return pd.DataFrame(rows, columns=["name", "shape_a", "shape_b", "status", "max_abs_diff"])


# ------------------------------------------------------------------------------------- outputs
def _batch_norm_statistics(asset: Asset) -> list[Any]:
    return [v for n, v in asset.variables.items() if hasattr(v, "assign")
            and n.split(":")[0].endswith(("moving_mean", "moving_variance"))]


def is_untrained(asset: Asset) -> bool:
    """Batch-norm moving statistics never updated: every moving mean 0 and every moving variance 1."""
    stats = _batch_norm_statistics(asset)
    if not stats:
        return False
    for v in stats:
        x = _value(v)
        target = 0.0 if "moving_mean" in v.name else 1.0
        if not np.all(x == target):
            return False
    return True


def _run(asset: Asset, images: np.ndarray, training: bool = False) -> dict[str, np.ndarray]:
    import tensorflow as tf

    x = tf.constant(images)
    if asset.entry == "__call__":
        out = asset.obj(x, training=training) if training else asset.obj(x)
    else:
        fn = asset.obj.signatures[asset.entry]
        (name,) = fn.structured_input_signature[1]
        out = fn(**{name: x})
    items = out.items() if isinstance(out, dict) else [("output", out)]
    return {k: np.asarray(v) for k, v in items}


def recalibrate_batch_norm(asset: Asset, images: np.ndarray) -> None:
    """Set an asset's batch-norm moving statistics to the statistics of `images`, in memory.

    A training-mode call normalises with batch statistics s (independent of the moving ones) and updates
    moving = m * moving + (1 - m) * s with the asset's momentum m, whatever it is. From zero, two calls give
    (1 - m) s and (1 + m)(1 - m) s, hence m and s per variable; the moving statistics are then set to s
    (= one pass with momentum 0, how `study.assets.zoo` calibrates its embedded members).
    """
    if asset.entry != "__call__":
        raise StudyError(f"{asset.path} has no training-mode __call__; its batch norm cannot be recalibrated")
    stats = _batch_norm_statistics(asset)
    for v in stats:
        v.assign(np.zeros(v.shape, v.dtype.as_numpy_dtype))
    _run(asset, images, training=True)
    first = [_value(v).astype(np.float64) for v in stats]
    _run(asset, images, training=True)
    for v, one in zip(stats, first):
        two = _value(v).astype(np.float64)
        ok = np.abs(one) > 1e-30
        m = float(np.median(two[ok] / one[ok] - 1.0)) if ok.any() else 0.0
        m = min(max(m, 0.0), 1.0 - 1e-9)
        v.assign((one / (1.0 - m)).astype(v.dtype.as_numpy_dtype))


def probe_size(a: Asset, b: Asset) -> int:
    """The image size both assets accept, or a StudyError (one line) naming the incompatible inputs."""
    sa, sb = a.image_shape, b.image_shape
    problem = None
    if a.image_dtype != b.image_dtype:
        problem = "different dtypes"
    elif sa[3] is not None and sb[3] is not None and sa[3] != sb[3]:
        problem = "different numbers of channels"
    sizes = {d for d in (*sa[1:3], *sb[1:3]) if d is not None}
    if problem is None and len(sizes) > 1:
        problem = "different fixed image sizes"
    if problem:
        raise StudyError(f"incompatible inputs ({problem}): {a.path} takes {_spec(sa, a.image_dtype)}, {b.path} takes "
                         f"{_spec(sb, b.image_dtype)}; no probe image fits both — diff two versions of the same asset")
    if sizes:
        return sizes.pop()
    return int(a.version.get("input_size") or b.version.get("input_size") or DEFAULT_PROBE_SIZE)


def _flat(outputs: dict[str, np.ndarray], keys: list[str]) -> np.ndarray:
    """The compared outputs side by side, one row per probe image."""
    return np.concatenate([np.asarray(outputs[k], np.float64).reshape(len(outputs[k]), -1) for k in keys], axis=1)


def output_floor(asset: Asset, probes: np.ndarray, keys: list[str], base: np.ndarray, recalibrated: bool,
                 size: int) -> faithful.NoiseFloor | str:
    """Version A's own noise on the probes (`keys`: its compared outputs; `base`: them flattened, `_flat`): batch 1
    vs all at once, the asset loaded again (recalibrated as A was), and intra-op threads 1 vs 2 on its frozen
    signature where A is called through one (`intermediates.TFGraph`; TensorFlow's eager thread count is fixed
    once set). Text saying why, when it cannot be measured."""
    try:
        one = [_run(asset, probes[i:i + 1]) for i in range(len(probes))]
        parts = {"batch": np.concatenate([_flat(o, keys) for o in one])}
        again = load(asset.path)
        if recalibrated:
            recalibrate_batch_norm(again, calibration_images(size, n=CALIBRATION_IMAGES, seed=0))
        parts["reload"] = _flat(_run(again, probes), keys)
        diffs = {}
        if asset.entry == "serving_default" and not recalibrated and len(keys) == 1:
            graph = TFGraph(asset.path)
            runs = [graph.run(probes, [], threads=t, batch=1)[""] for t in (1, 2)]
            diffs["threads"] = faithful.max_abs_diff(runs[1], runs[0])
        return faithful.noise_floor(base, parts, diffs)
    except Exception as exc:  # noqa: BLE001 - the diff still judges, at the fixed gate, and says why
        return f"A's noise floor not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def compare_outputs(a: Asset, b: Asset) -> dict[str, Any]:
    """Both assets' inference outputs on the same probe images (after recalibrating untrained ones), judged under the
    one rule with A as the reference (`faithful.judge` at A's noise floor, `output_floor`)."""
    size = probe_size(a, b)
    probes = calibration_images(size, n=PROBE_IMAGES, seed=PROBE_SEED)
    recalibrated = {}
    for key, asset in (("a", a), ("b", b)):
        recalibrated[key] = is_untrained(asset) and asset.entry == "__call__"
        if recalibrated[key]:
            recalibrate_batch_norm(asset, calibration_images(size, n=CALIBRATION_IMAGES, seed=0))
    oa, ob = _run(a, probes), _run(b, probes)
    if len(oa) == 1 and len(ob) == 1:
        pairs = [(next(iter(oa)), next(iter(oa.values())), next(iter(ob.values())))]
    else:
        pairs = [(k, oa[k], ob[k]) for k in sorted(set(oa) & set(ob))]
    result = {"probe_images": PROBE_IMAGES, "probe_size": size, "recalibrated_a": recalibrated["a"],
              "recalibrated_b": recalibrated["b"], "compared": [k for k, _, _ in pairs], "max_abs_a": 0.0,
              "max_abs_diff": 0.0, "mean_abs_diff": 0.0, "relative_diff": 0.0, "changed": False,
              "changed_fixed": False, "noise_floor": None, "tolerance": None, "rel_tolerance": None,
              "tolerance_source": ""}
    if not pairs:
        result |= {"changed": True, "changed_fixed": True,
                   "reason": f"no common output: A gives {sorted(oa)}, B gives {sorted(ob)}"}
        return result
    for key, ya, yb in pairs:
        if ya.shape != yb.shape:
            return result | {"changed": True, "changed_fixed": True,
                             "reason": f"output {key}: shape {ya.shape} vs {yb.shape}"}
        d = np.abs(ya.astype(np.float64) - yb.astype(np.float64))
        result["max_abs_a"] = max(result["max_abs_a"], float(np.max(np.abs(ya))))
        result["max_abs_diff"] = max(result["max_abs_diff"], float(d.max()))
        result["mean_abs_diff"] = max(result["mean_abs_diff"], float(d.mean()))
    result["relative_diff"] = result["max_abs_diff"] / max(result["max_abs_a"], 1e-12)
    keys = [k for k, _, _ in pairs]
    flat_a = _flat(oa, keys)
    flat_b = np.concatenate([np.asarray(yb, np.float64).reshape(len(yb), -1) for _, _, yb in pairs], axis=1)
    floor = output_floor(a, probes, keys, flat_a, recalibrated["a"], size)
    j = faithful.judge(flat_a, flat_b, floor)
    result |= {"changed": not j.faithful, "changed_fixed": not j.faithful_fixed,
               "noise_floor": None if j.noise_floor != j.noise_floor else j.noise_floor,
               "tolerance": None if j.tolerance != j.tolerance else j.tolerance,
               "rel_tolerance": None if j.rel_tolerance != j.rel_tolerance else j.rel_tolerance,
               "tolerance_source": j.source,
               "noise_parts": dict(floor.parts) if isinstance(floor, faithful.NoiseFloor) else {}}
    return result


# ------------------------------------------------------------------------------------- the diff
@dataclass
class VersionDiff:
    """Everything `diff` found, and its verdict."""

    a: Asset
    b: Asset
    api: pd.DataFrame
    variables: pd.DataFrame
    outputs: dict[str, Any]

    @property
    def api_changes(self) -> pd.DataFrame:
        return self.api[self.api["change"] != "same"]

    @property
    def parameters_changed(self) -> bool:
        return bool((self.variables["status"] != "same").any())

    @property
    def api_changed(self) -> bool:
        return not self.api_changes.empty

    @property
    def api_breaking(self) -> bool:
        return bool(self.api["breaking"].any())

    @property
    def outputs_changed(self) -> bool:
        return bool(self.outputs["changed"])

    @property
    def changes(self) -> list[str]:
        """Every verdict that applies, most consequential first."""
        flags = (self.parameters_changed, self.api_changed, self.outputs_changed)
        return [v for v, f in zip(VERDICTS, flags) if f] or ["nothing changed"]

    @property
    def verdict(self) -> str:
        return self.changes[0]

    @property
    def redo(self) -> str:
        text = REDO[self.verdict]
        if self.verdict == "API changed":
            text += "; the change is " + ("BREAKING for existing calls" if self.api_breaking else
                                          "compatible: every old call still works")
        return text

    def variable_counts(self) -> dict[str, int]:
        return {s: int((self.variables["status"] == s).sum()) for s in ("same", "changed", "reshaped", "added", "removed")}

    def to_dict(self) -> dict[str, Any]:
        changed = self.variables[self.variables["status"] != "same"]
        max_diff = self.variables["max_abs_diff"].max()
        return {
            "a": str(self.a.path), "b": str(self.b.path),
            "version_a": self.a.version.get("name"), "version_b": self.b.version.get("name"),
            "note_b": self.b.version.get("note"),
            "verdict": self.verdict, "changes": self.changes, "redo": self.redo,
            "api": {"changed": self.api_changed, "breaking": self.api_breaking,
                    "changes": self.api_changes.to_dict(orient="records")},
            "variables": {**self.variable_counts(), "max_abs_diff": None if pd.isna(max_diff) else float(max_diff),
                          "not_same": changed.head(50).replace({np.nan: None}).to_dict(orient="records")},
            "outputs": self.outputs,
        }

    def summary(self) -> str:
        """The diff as a few human-readable lines."""
        lines = [f"A: {self.a.label}", f"B: {self.b.label}"]
        ch = self.api_changes
        lines.append(f"API: {len(ch)} change(s)" + ("" if ch.empty else
                     " (breaking)" if self.api_breaking else " (compatible)"))
        for r in ch.itertuples():
            what = f"{r.callable} {r.part} {r.name}" if r.name else r.callable
            lines.append(f"  {what}: {r.a} -> {r.b} [{r.change}]")
        counts = self.variable_counts()
        max_diff = self.variables["max_abs_diff"].max()
        lines.append("variables: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v or k == "same")
                     + (f" (max |B - A| {max_diff:.3g})" if pd.notna(max_diff) else ""))
        for r in self.variables[self.variables["status"] != "same"].head(5).itertuples():
            lines.append(f"  {r.name}: {r.status}" + (f", max |B - A| {r.max_abs_diff:.3g}" if pd.notna(r.max_abs_diff) else ""))
        o = self.outputs
        recal = [k for k in ("a", "b") if o.get(f"recalibrated_{k}")]
        lines.append(f"outputs on {o['probe_images']} probe images {o['probe_size']}x{o['probe_size']}: "
                     f"max |B - A| {o['max_abs_diff']:.3g} (relative {o['relative_diff']:.2e}"
                     + (f"; tolerance {o['tolerance']:.3g} = {faithful.K} x A's noise floor"
                        if o.get("tolerance") is not None else f"; {o.get('tolerance_source', '')}")
                     + (f"; the fixed gate says {'changed' if o.get('changed_fixed') else 'unchanged'}"
                        if o.get("changed_fixed") != o.get("changed") else "") + ")"
                     + (f", batch norm recalibrated for {' and '.join(x.upper() for x in recal)}" if recal else "")
                     + (f" — {o['reason']}" if o.get("reason") else ""))
        lines.append(f"verdict: {self.verdict}" + (f" (also: {', '.join(self.changes[1:])})" if self.changes[1:] else ""))
        lines.append(f"redo: {self.redo}")
        return "\n".join(lines)


def diff(a: str | Path | Asset, b: str | Path | Asset, profile: config.Profile | None = None) -> VersionDiff:
    """Compare asset versions A (old) and B (new): API, parameters, outputs on probe images, verdict. A zoo member
    named instead of a folder is read under `profile` (`load`)."""
    a = a if isinstance(a, Asset) else load(a, profile)
    b = b if isinstance(b, Asset) else load(b, profile)
    probe_size(a, b)  # incompatible inputs: fail before any work
    api, variables = compare_api(a, b), compare_variables(a, b)  # before any recalibration touches variables
    return VersionDiff(a, b, api, variables, compare_outputs(a, b))


def diff_table(diffs: list[VersionDiff]) -> pd.DataFrame:
    """One row per diff: the versions, what changed, the verdict and what to redo."""
    rows = []
    for d in diffs:
        counts = d.variable_counts()
        rows.append({"from": d.a.version.get("name", str(d.a.path)), "to": d.b.version.get("name", str(d.b.path)),
                     "api_changes": len(d.api_changes), "api_breaking": d.api_breaking,
                     "variables_changed": counts["changed"] + counts["reshaped"] + counts["added"] + counts["removed"],
                     "output_rel_diff": d.outputs["relative_diff"],
                     "output_rel_tolerance": d.outputs.get("rel_tolerance"),
                     "outputs_changed": d.outputs_changed, "outputs_changed_fixed": d.outputs.get("changed_fixed"),
                     "verdict": d.verdict,
                     "also": ", ".join(d.changes[1:]), "redo": d.redo})
    return pd.DataFrame(rows)
