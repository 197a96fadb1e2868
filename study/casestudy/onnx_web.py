"""PyTorch members in the browser: the sweep's fine-tuned classifier through ONNX and ONNX Runtime Web.

TF members reach the simple product as TF.js graph models (`study.runtime.tfjs`); a torch member's classifier
(`models/<member>/model.pt`, rebuilt by `training.load_torch_classifier`) reaches it as ONNX, run by
`onnxruntime-web` (wasm, from web/node_modules) on the same page (`web/simple_product/onnx.html`):

- `export`: model.pt -> `model.onnx` with the torch.onnx (dynamo) exporter, as RQ1's `onnx` format is exported
  (`study.deployment.backend_torch`), batch dimension dynamic: float (N, 3, S, S) in [0, 1] -> probabilities (N, C);
  written atomically, so a whole file is a finished export;
- `python_reference`: PyTorch in Python on the same images and preprocessing (accuracy, ms per image, predictions),
  what the browser's rows are compared against, as TensorFlow in Python is for the TF.js rows;
- `node_check`: the exported model in Node.js (`web/run_onnx_node.mjs`, onnxruntime-web wasm).
"""
from __future__ import annotations

import contextlib
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from study import config, files
from study.casestudy import training
from study.errors import StudyError
from study.runtime import environment
from study.runtime.images import load_images
from study.runtime.processes import node_report

MODEL_FILE = "model.onnx"
NODE_SCRIPT = config.WEB / "run_onnx_node.mjs"
MAX_BATCH = 1024  # the exported batch dimension's upper bound (the page infers batch 1 unless told)
# PyTorch's threads for the reference's timing: the browser's wasm runs one (the page is not cross-origin isolated,
# so no SharedArrayBuffer), and on a shared 2-core machine torch's spinning workers cost it 10x at two (measured:
# EfficientNet-Lite0, 64-100 ms per image at one thread, 700-1,600 ms at two under load).
REFERENCE_THREADS = 1


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter's notes (optional torchvision ops it registers, deprecations) kept off stderr."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def export(model_pt: str | Path, profile: config.Profile, dst: str | Path, input_size: int) -> Path:
    """The fine-tuned classifier in `model_pt` as `dst/model.onnx` (opset of the exporter, one file, no external
    data); returns its path. A classifier that cannot be rebuilt or exported raises (the caller records it)."""
    import torch

    model_pt, dst = Path(model_pt), Path(dst)
    if not model_pt.is_file():
        raise StudyError(f"no fine-tuned torch classifier at {model_pt}; rerun the fine-tuning sweep for this member")
    classifier = training.load_torch_classifier(model_pt, profile)
    example = (torch.zeros(1, 3, input_size, input_size),)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)

    def write(tmp: Path) -> None:
        with _quiet_exporter():
            torch.onnx.export(classifier, example, str(tmp), dynamo=True, external_data=False,
                              input_names=["images"], output_names=["probabilities"],
                              dynamic_shapes=({0: batch},), verbose=False)

    dst.mkdir(parents=True, exist_ok=True)
    return files.atomic_write(dst / MODEL_FILE, write)


def exported(path: str | Path) -> bool:
    """A finished export: `export` writes the file atomically, so a non-empty file is a whole one."""
    path = Path(path)
    return path.is_file() and path.stat().st_size > 0


def _nchw(paths: list[Path], size: int):
    import numpy as np

    return np.ascontiguousarray(load_images(paths, size).transpose(0, 3, 1, 2), dtype="<f4")


def python_reference(model_pt: str | Path, profile: config.Profile, images: list[tuple[Path, int]], input_size: int,
                     *, batch: int = 1, warmup: int = 1) -> dict[str, Any]:
    """PyTorch in Python on `images` with the study's preprocessing: accuracy, per-image latency (batch `batch`,
    after `warmup` calls, `REFERENCE_THREADS` threads), predictions; the keys of `browser_checks.python_reference`."""
    import numpy as np
    import torch

    classifier = training.load_torch_classifier(model_pt, profile)
    x = torch.from_numpy(_nchw([p for p, _ in images], input_size))
    labels = np.array([label for _, label in images])
    predictions, seconds = [], 0.0
    threads = torch.get_num_threads()
    torch.set_num_threads(REFERENCE_THREADS)
    try:
        with torch.no_grad():
            for _ in range(warmup):
                classifier(x[:1])
            for i in range(0, len(x), batch):
                t = time.perf_counter()
                y = classifier(x[i:i + batch])
                seconds += time.perf_counter() - t
                predictions.extend(y.argmax(1).tolist())
    finally:
        torch.set_num_threads(threads)
    predictions = np.array(predictions)
    return {"n": len(labels), "correct": int((predictions == labels).sum()),
            "accuracy": float((predictions == labels).mean()) if len(labels) else math.nan,
            "ms_per_image": 1000 * seconds / max(len(labels), 1), "predictions": predictions.tolist()}


def node_check(onnx_path: str | Path, images: list[tuple[Path, int]], input_size: int, *,
               timeout: float = 300) -> dict[str, Any]:
    """The exported model in Node.js (onnxruntime-web wasm, `web/run_onnx_node.mjs`) on Python-preprocessed
    images, one at a time: accuracy, predictions and the median per-image latency of its timed repeats."""
    import numpy as np

    environment.node_modules()
    x = _nchw([p for p, _ in images], input_size)
    labels = [label for _, label in images]
    with tempfile.TemporaryDirectory(prefix="study-onnx-node-") as tmp:
        (Path(tmp) / "x.f32").write_bytes(x.tobytes())
        report = node_report([str(NODE_SCRIPT), "--model", str(onnx_path), "--input", f"{tmp}/x.f32",
                              "--shape", ",".join(map(str, x.shape)), "--output", f"{tmp}/y.f32", "--warmup", "1",
                              "--repeats", "5"], role="onnx-node-check", what=str(onnx_path), timeout=timeout)
        y = np.fromfile(f"{tmp}/y.f32", dtype="<f4").reshape(report["output_shape"])
    predictions = y.argmax(1).tolist()
    correct = sum(p == label for p, label in zip(predictions, labels))
    return {"backend": report.get("backend", "wasm"), "n": len(labels), "correct": correct,
            "accuracy": correct / len(labels) if labels else None,
            "ms_per_image": statistics.median(report["latency_ms"]), "load_ms": report.get("load_ms"),
            "predictions": predictions}
