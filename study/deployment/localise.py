"""Where a conversion breaks a member: the reference's own noise floor (the input of the one rule for "faithful",
`study.deployment.faithful`) and the first layer whose divergence from the reference exceeds the rule's tolerance
(per-member deployment fidelity, `study.deployment.fidelity`).

**Noise floor.** The largest output difference of the reference model against itself, on the member's test split,
across intra-op threads (1 vs 2), batch size (1 vs 32) and a reload (the SavedModel / model.pt loaded again):
TensorFlow runs the serving signature's frozen graph in v1 sessions (each its own thread pool; the reload runs the
reloaded signature eagerly), torch sets `torch.set_num_threads`. The tolerance derived from it is the rule's
(`faithful.NoiseFloor.tolerance`).

**Localisation** (`localise`): the converted model and the reference run the same images (the `LOCALISE_IMAGES`
test images whose outputs differ most); each converted op's output is matched to a reference tensor
(`study.deployment.intermediates`) and its divergence is max |conv - ref| / max |ref| of that tensor. A layer
diverges when that exceeds `faithful.layer_tolerance` of the layer's own relative noise floor. The curve of every matched
layer is kept; the row names the first divergent layer and the divergence before / after it.

**Failure class** (after Jajal et al., arXiv 2303.17708), computed from where and how the divergence starts:
`runtime_crash` (the converted model does not load / run), `node_conversion` (the exporter crashed, or a float
model's first divergence is at an op without weights or a small one), `parameter_layout` (a float model's first
divergence is at an op with weights and jumps by >= JUMP at once: its parameters differ), `input_preprocessing`
(the first divergent op comes before any op with weights: the model's own preprocessing), `quantisation_range`
(a quantised model's first divergence is at a quantised tensor; the note gives the share of reference values
outside its calibrated range), `accumulated_rounding` (every layer within its tolerance, only the output beyond).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study.deployment import intermediates as im
from study.deployment.faithful import NoiseFloor, layer_tolerance, max_abs_diff, noise_floor
from study.deployment.intermediates import torch_layers
from study.errors import StudyError

LOCALISE_IMAGES = 8  # images a row is localised on: those whose outputs differ most from the reference
JUMP = 100.0  # a float layer whose divergence grows by this factor at once has different parameters
POLICIES = ("all", "worst", "none")  # which non-faithful rows are localised ("worst": the worst row per format)
WEIGHTED_OPS = re.compile(r"conv|dense|matmul|fully_connected|gemm|linear|depthwise", re.I)
CURVE_COLUMNS = ["member", "format", "index", "name", "op_type", "ref", "divergence", "layer_floor", "tolerance",
                 "above", "quantised"]


def floor_tf(graph, saved_model: str | Path, x: np.ndarray) -> NoiseFloor:
    """The noise floor of a SavedModel reference (`graph`: its `intermediates.TFGraph`) on `x`."""
    import tensorflow as tf

    base = graph.run(x, [], threads=1, batch=1)[""]
    serving = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    reload = np.concatenate([np.asarray(next(iter(serving(tf.constant(x[i:i + 1])).values()))) for i in range(len(x))])
    return noise_floor(base, {"threads": graph.run(x, [], threads=2, batch=1)[""],
                         "batch": graph.run(x, [], threads=1, batch=32)[""], "reload": reload})


def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    return before


def torch_runs(module, x: np.ndarray, names: list[str] | None) -> dict[str, dict[str, np.ndarray]]:
    """Layer outputs (key "" = the output) at (1 thread, batch 1), 2 threads and batch 32 / all of `x`."""
    before = _torch_threads(1)
    try:
        base = torch_layers(module, x, names, batch=1)
        batch = torch_layers(module, x, names, batch=32)
        _torch_threads(2)
        threads = torch_layers(module, x, names, batch=1)
    finally:
        _torch_threads(before)
    return {"base": base, "threads": threads, "batch": batch}


def floor_torch(module, reload: Callable[[], Any], x: np.ndarray) -> NoiseFloor:
    """The noise floor of a torch reference (`reload()` loads it again) on `x` (NCHW)."""
    runs = torch_runs(module, x, [])
    before = _torch_threads(1)
    try:
        reloaded = torch_layers(reload(), x, [], batch=1)[""]
    finally:
        _torch_threads(before)
    return noise_floor(runs["base"][""], {"threads": runs["threads"][""], "batch": runs["batch"][""], "reload": reloaded})


# --- which rows are localised --------------------------------------------------------------------------------

def needs_localising(row: dict[str, Any]) -> bool:
    return (row.get("status") not in (None, "", "faithful", "skipped")
            and not row.get("localisation"))


def select(rows: Iterable[dict[str, Any]], policy: str, baselines: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The rows to localise: every non-faithful row (`all`), the one with the largest relative output difference
    per format (`worst`; a crashed row has nothing to compare and is classed without localising), or none."""
    if policy not in POLICIES:
        raise StudyError(f"unknown localisation policy {policy!r}; valid: {', '.join(POLICIES)}")
    todo = [r for r in rows if needs_localising(r) and r["format"] not in set(baselines)]
    if policy == "none":
        return []
    ran = [r for r in todo if r.get("status") in ("wrong_output", "accuracy_drop")]
    if policy == "all":
        return ran
    worst: dict[str, dict[str, Any]] = {}
    for r in ran:
        if r["format"] not in worst or float(r.get("rel_diff") or 0) > float(worst[r["format"]].get("rel_diff") or 0):
            worst[r["format"]] = r
    return list(worst.values())


def worst_images(reference: np.ndarray, outputs: np.ndarray, n: int = LOCALISE_IMAGES) -> list[int]:
    """Indices of the `n` images whose outputs differ most from the reference (largest first)."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if ref.shape != out.shape:
        return list(range(min(n, len(ref))))
    per = np.max(np.abs(out - ref), axis=1)
    return [int(i) for i in np.argsort(-per, kind="stable")[:n]]


# --- the comparison ------------------------------------------------------------------------------------------

def layer_floors(runs: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Relative noise floor of each reference tensor: max |perturbed - base| / max |base|."""
    base = runs["base"]
    out = {}
    for name, b in base.items():
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        diff = max(max_abs_diff(p[name], b) for key, p in runs.items() if key != "base" and name in p)
        out[name] = diff / scale if scale else diff
    return out


def curve(layers, reference: dict[str, np.ndarray], floors: dict[str, float], output_floor: float = 0.0
          ) -> pd.DataFrame:
    """Per matched converted op: its divergence from the reference tensor and that tensor's tolerance,
    `faithful.layer_tolerance` of max(the tensor's relative floor, the output's relative floor)."""
    rows = []
    for layer in layers:
        ref = reference.get(layer.ref) if layer.ref else None
        if ref is None or ref.size != layer.values.size:
            continue
        values = layer.values.reshape(ref.shape).astype(np.float64)
        scale = float(np.max(np.abs(ref)))
        diff = float(np.max(np.abs(values - ref))) if ref.size else 0.0
        floor = max(floors.get(layer.ref, 0.0), output_floor)
        tol = layer_tolerance(floor)
        divergence = diff / scale if scale else diff
        rows.append({"index": layer.index, "name": layer.name, "op_type": layer.op_type, "ref": layer.ref,
                     "divergence": divergence, "layer_floor": floor, "tolerance": tol, "above": divergence > tol,
                     "quantised": layer.quantised, "saturated": _saturated(ref, layer.qrange)})
    return pd.DataFrame(rows, columns=[*CURVE_COLUMNS[2:], "saturated"])


def _saturated(ref: np.ndarray, qrange: tuple[float, float] | None) -> float:
    """Share of reference values outside a quantised tensor's representable range (NaN for a float tensor)."""
    if qrange is None:
        return float("nan")
    lo, hi = qrange
    return float(np.mean((ref < lo) | (ref > hi)))


def summarise(table: pd.DataFrame, quantised: bool) -> dict[str, Any]:
    """The row's localisation fields from its per-layer curve: first divergent op, before / after, the class."""
    if table.empty:
        return {"first_divergence": "", "failure_class": "", "layers_compared": 0,
                "localisation": "not inspectable: no converted op matched a reference tensor"}
    above = table.index[table["above"]]
    out: dict[str, Any] = {"layers_compared": len(table)}
    if not len(above):
        return {**out, "first_divergence": "", "failure_class": "accumulated_rounding",
                "first_divergence_index": np.nan, "divergence_before": np.nan,
                "divergence_after": float(table["divergence"].iloc[-1]),
                "localisation": f"every one of {len(table)} matched layers within its tolerance; only the output beyond"}
    pos = table.index.get_loc(above[0])
    first = table.iloc[pos]
    before = float(table["divergence"].iloc[pos - 1]) if pos else 0.0  # the inputs are the same array
    weighted_before = bool(table["op_type"].iloc[:pos].str.contains(WEIGHTED_OPS).any())
    weighted = bool(WEIGHTED_OPS.search(str(first["op_type"])))
    if quantised and first["quantised"]:
        cls = "quantisation_range"
        sat = first.get("saturated", np.nan)
        note = (f"quantised tensor; {sat:.1%} of the reference values lie outside its calibrated range"
                if sat == sat else "quantised tensor")
    elif not weighted and not weighted_before:
        cls, note = "input_preprocessing", "diverges before any op with weights"
    elif weighted and float(first["divergence"]) >= JUMP * max(before, float(first["tolerance"])):
        cls, note = "parameter_layout", f"an op with weights jumps by >= {JUMP:g}x at once"
    else:
        cls, note = "node_conversion", "the op computes differently from the reference"
    return {**out, "first_divergence": f"{first['op_type']} {first['name']}", "failure_class": cls,
            "first_divergence_index": int(first["index"]), "divergence_before": before,
            "divergence_after": float(first["divergence"]),
            "localisation": f"localised on {len(table)} matched layers: {note}"}


CRASH_CLASSES = {"runtime_crash": "runtime_crash", "conversion_crash": "node_conversion",
                 "unsupported_op": "node_conversion"}


def crash_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A crashed row's class: nothing ran, so nothing is localised (the error says where it stopped)."""
    return {"failure_class": CRASH_CLASSES[row["status"]], "first_divergence": "",
            "localisation": "not localised: the conversion or the runtime crashed (see error)"}


# --- one row ------------------------------------------------------------------------------------------------

def localise(fmt: str, export, reference: dict[str, Any], x: np.ndarray, output_floor: float = 0.0
             ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Localise one converted artefact (`export`: a `backend.Export`) against the reference on images `x`.

    `reference`: {"framework": "tf", "graph": TFGraph} or {"framework": "torch", "module": nn.Module} (x in the
    model's layout). `output_floor`: the output's relative noise floor (noise floor / max |ref|), the least relative
    floor of every layer (the per-layer floors come from threads and batch size only: a reload's different kernel
    fusion shows on the output). Returns the row's fields and the per-layer curve. Raises StudyError for a format nobody
    can inspect."""
    t0 = time.perf_counter()
    note = ""
    if reference["framework"] == "tf":
        graph = reference["graph"]
        if fmt.startswith("litert_"):
            layers = im.litert_layers(export.path, x, graph)
            note = " (LiteRT reference kernels, no XNNPACK)"
        elif fmt.startswith("tfjs_graph_model"):
            layers = im.tfjs_layers(export.model_file or Path(export.path) / "model.json", x, graph)
            note = " (TF.js in Node.js, wasm; the same model files as the browser)" if fmt.endswith("browser") else ""
        else:
            raise StudyError(f"no layer-by-layer inspection for TensorFlow format {fmt!r}")
        names = sorted({layer.ref for layer in layers if layer.ref})
        runs = {"base": graph.run(x, names, threads=1, batch=1), "threads": graph.run(x, names, threads=2, batch=1),
                "batch": graph.run(x, names, threads=1, batch=32)}
        ref, floors = runs["base"], layer_floors(runs)
    elif fmt in ("onnx", "onnx_web_node"):
        modules = im.torch_leaf_modules(reference["module"])
        layers = im.onnx_layers(export.model_file or export.path, x, modules)
        runs = torch_runs(reference["module"], x, sorted({layer.ref for layer in layers if layer.ref}))
        ref, floors = runs["base"], layer_floors(runs)
        note = " (onnxruntime in Python on the same .onnx file)" if fmt == "onnx_web_node" else ""
    elif fmt == "onnx_int8":
        layers, ref = im.onnx_qdq_layers(Path(export.path).with_name("model.onnx"), export.path, x)
        floors = {}
        note = " (vs the float ONNX model; its own floor not measured: float32 epsilon)"
    else:
        raise StudyError(f"no layer-by-layer inspection for format {fmt!r}")
    table = curve(layers, ref, floors, output_floor)
    fields = summarise(table, bool(getattr(export, "quantised", False)))
    fields["localisation"] += note
    fields["localise_s"] = time.perf_counter() - t0
    return fields, table


NOT_INSPECTED = {"saved_model": "not inspected: the baseline is the reference reloaded (its difference is the "
                                "noise floor's reload part)",
                 "torch_export": "not inspected: the baseline is the reference reloaded (its difference is the "
                                 "noise floor's reload part)"}
