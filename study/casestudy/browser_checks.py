"""The simple product's answers checked against Python and Node.js (Section VII-F, notebook 05): the same test
images in TensorFlow / PyTorch in Python (`python_reference`) and in Node.js (`node_check`: pure `@tensorflow/tfjs`
+ wasm, or onnxruntime-web), the accuracy agreement of each browser run with Python (`accuracy_comparison`), the
per-image latency of each runtime (`latency_comparison`), and the quick check without Chromium
(`node_check_table`: `python -m study browser-test --node`). The browser test itself is `study.casestudy.browser`."""
from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from study import files
from study.casestudy import onnx_web
from study.casestudy.browser import NODE_SCRIPT, TunedModel, convert, converted_path, find_models, models_root
from study.errors import StudyError
from study.runtime import environment
from study.runtime.images import load_images
from study.runtime.processes import node_report


# --- The same images in Python and in Node.js ------------------------------------------------------------

def python_reference(model: TunedModel, *, batch: int = 1, repeats_warmup: int = 1) -> dict[str, Any]:
    """TensorFlow in Python (PyTorch for a torch member) on the same test images and preprocessing: accuracy,
    per-image latency, predictions."""
    if model.backend == "torch":
        return {"model": model.name, **onnx_web.python_reference(model.model_pt, model.fine_tuned_under(), model.images,
                                                                 model.input_size, batch=batch, warmup=repeats_warmup)}
    import numpy as np
    import tensorflow as tf

    x = load_images([p for p, _ in model.images], model.input_size)
    labels = np.array([label for _, label in model.images])
    fn = tf.saved_model.load(str(model.saved_model)).signatures["serving_default"]
    for _ in range(repeats_warmup):
        _ = fn(tf.constant(x[:1]))
    predictions, seconds = [], 0.0
    for i in range(0, len(x), batch):
        xb = tf.constant(x[i:i + batch])
        t = time.perf_counter()
        y = next(iter(fn(xb).values())).numpy()
        seconds += time.perf_counter() - t
        predictions.extend(np.argmax(y, axis=1).tolist())
    predictions = np.array(predictions)
    return {"model": model.name, "n": len(labels), "correct": int((predictions == labels).sum()),
            "accuracy": float((predictions == labels).mean()) if len(labels) else math.nan,
            "ms_per_image": 1000 * seconds / max(len(labels), 1), "predictions": predictions.tolist()}


def node_check(model: TunedModel, model_json: Path, *, backend: str = "wasm", batch: int = 1,
               timeout: float = 300) -> dict[str, Any]:
    """The converted model in Node.js (pure @tensorflow/tfjs + wasm/cpu, or onnxruntime-web wasm for an ONNX
    model) on Python-preprocessed images."""
    import numpy as np

    if Path(model_json).suffix == ".onnx":
        if backend != "wasm" or batch != 1:
            raise StudyError(f"the ONNX check runs onnxruntime-web wasm at batch 1, not {backend!r} at batch {batch}")
        return {"model": model.name, **onnx_web.node_check(model_json, model.images, model.input_size,
                                                           timeout=timeout)}

    environment.node_modules()
    x = np.ascontiguousarray(load_images([p for p, _ in model.images], model.input_size), dtype="<f4")
    with tempfile.TemporaryDirectory(prefix="study-node-") as tmp:
        (Path(tmp) / "x.bin").write_bytes(x.tobytes())
        (Path(tmp) / "x.json").write_text(json.dumps({"shape": list(x.shape), "labels": [l for _, l in model.images]}))
        return {"model": model.name, **node_report(
            [str(NODE_SCRIPT), "--model", str(model_json), "--inputs", f"{tmp}/x.bin", "--meta", f"{tmp}/x.json",
             "--backend", backend, "--batch", str(batch)], role="node-check", what=model.name, timeout=timeout)}


# --- Browser vs Python ----------------------------------------------------------------------------------

def python_predictions(models: str | Path, model: TunedModel) -> list[int]:
    """Python's predictions (TensorFlow or PyTorch) on the model's test images: the sweep's `predictions/<member>.csv`
    (written at test time by the same `load_images` preprocessing), else computed now (`python_reference`)."""
    import pandas as pd

    csv = models_root(models).parent / "predictions" / f"{model.name}.csv"
    if csv.is_file():
        df = pd.read_csv(csv)
        if [str(p) for p in df["path"]] == [str(p) for p, _ in model.images]:
            return df["prediction"].astype(int).tolist()
    return python_reference(model)["predictions"]


def accuracy_comparison(models: str | Path, out: str | Path):
    """Per (model, backend): accuracy in the browser vs its framework in Python on the same images, the
    difference in images, and per-image agreement of the predictions."""
    import pandas as pd

    rows = []
    for model in find_models(models):
        python = None
        labels = [label for _, label in model.images]
        for record_path in sorted((Path(out) / "runs").glob(f"{model.name}__*.json")):
            record = json.loads(record_path.read_text())
            if record.get("model") != model.name or record.get("status") != "ok" or "predictions" not in record:
                continue
            python = python if python is not None else python_predictions(models, model)
            n = len(labels)
            python_correct = sum(p == l for p, l in zip(python, labels))
            rows.append({"model": model.name, "backend": record["backend"], "n_images": n,
                         "accuracy_browser": record["accuracy"], "accuracy_python": python_correct / n,
                         "diff_images": record.get("correct", round(record["accuracy"] * n)) - python_correct,
                         "agreement": sum(a == b for a, b in zip(record["predictions"], python)) / n})
    return pd.DataFrame(rows, columns=["model", "backend", "n_images", "accuracy_browser", "accuracy_python",
                                       "diff_images", "agreement"])


def latency_comparison(models: str | Path, table, members: list[str]):
    """Per-image inference latency (ms, batch 1, after a warm-up) of each runtime and backend in Chromium (from
    `table`, our Table X: TF.js, or ONNX Runtime Web for a PyTorch member) and of the member's framework in Python
    (TensorFlow or PyTorch) on the same images, for `members`."""
    import pandas as pd

    rows = []
    for model in find_models(models, members):
        ok = table[(table["model"] == model.name) & (table["status"] == "ok")]
        rows += [{"model": model.name, "ms_per_image": r["ms_per_image"],
                  "runtime": model.runtime.label.format(backend=r["backend"])} for _, r in ok.iterrows()]
        if model.convertible:
            rows.append({"model": model.name, "runtime": model.runtime.python,
                         "ms_per_image": python_reference(model)["ms_per_image"]})
    return pd.DataFrame(rows, columns=["model", "runtime", "ms_per_image"])


def node_check_table(models: str | Path, out: str | Path, backends: Sequence[str] = ("wasm",),
                     members: list[str] | None = None):
    """The quick check: each model converted, then run in Node.js (`node_check`) beside its framework in Python
    (`python_reference`) per backend (webgl left out: Node has none); one row per (model, backend), written to
    OUT/node_check.csv."""
    import pandas as pd  # as the rest of this module: pandas only where a table is made

    rows = []
    for model in find_models(models, members):
        conv = convert(model, converted_path(Path(out), model).parent)
        if conv.status != "ok":
            rows.append({"model": model.name, "status": conv.status, "error": conv.error})
            continue
        ref = python_reference(model)
        for backend in [b for b in backends if b != "webgl" and b in model.runtime.backends]:
            res = node_check(model, conv.model_json, backend=backend)
            agree = sum(a == b for a, b in zip(res["predictions"], ref["predictions"])) / max(ref["n"], 1)
            rows.append({"model": model.name, "status": "ok", "backend": backend, "n": res["n"],
                         "accuracy_node": res["accuracy"], "accuracy_python": ref["accuracy"],
                         "agreement": agree, "ms_per_image_node": res["ms_per_image"],
                         "ms_per_image_python": ref["ms_per_image"]})
    df = pd.DataFrame(rows)
    files.write_csv(Path(out) / "node_check.csv", df)
    return df
