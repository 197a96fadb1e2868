"""RQ1, TensorFlow side: a MobileNet V2 feature-vector asset exported to the scenarios of paper Table IV.

The reference model is `tf_keras.applications.MobileNetV2(include_top=False, pooling="avg", weights=None)`
(quick: width 0.35 at 96 px, the smoke zoo's `mobilenet_v2_035_96`; full: width 1.0 at 224 px), its
batch-norm statistics recalibrated on real photos so its outputs are far from zero and differ per image.
It is wrapped as a TF Hub style `tf.Module`: `__call__` (what hub.KerasLayer calls) and a `serving_default`
signature (what TF Serving, LiteRT and TF.js read): float32 images (N, S, S, 3) in [0, 1] -> features.

`export(format, ...)` runs in the measuring process; `load(format, path)` in a fresh worker process that
imports only the format's runtime (LiteRT rows never import TensorFlow).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study import files
from study.assets import zoo
from study.deployment import localise
from study.deployment.backend import THREADS, Export, check_images, reference_images
from study.deployment.intermediates import TFGraph
from study.errors import Skipped, StudyError
from study.runtime import tfjs

OUTPUT_KEY = "feature_vector"
INPUT_KEY = "images"


@dataclass(frozen=True)
class Architecture:
    alpha: float
    size: int

    @property
    def name(self) -> str:
        return zoo.mobilenet_name(2, self.alpha, self.size)


def architecture(quick: bool) -> Architecture:
    return Architecture(0.35, 96) if quick else Architecture(1.0, 224)


def _tf():
    import tensorflow as tf

    return tf


def build_network(arch: Architecture, seed: int = 0):
    """The MobileNet V2 feature extractor (tf_keras), untrained (seeded initialisation); expects [-1, 1] inputs."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    return tf_keras.applications.MobileNetV2(input_shape=(arch.size, arch.size, 3), alpha=arch.alpha,
                                             include_top=False, pooling="avg", weights=None)


def recalibrate_batch_norm(network, images: np.ndarray) -> None:
    """Set every batch-norm layer's moving mean/variance to the statistics of `images` (one training-mode pass).

    An untrained network's moving statistics are (0, 1), so its activations shrink to ~0 layer after layer
    and any two runtimes would "agree" trivially. With momentum 0 one training-mode pass stores each layer's
    batch statistics, computed on the already-recalibrated layers before it.
    """
    import tf_keras

    layers = [layer for layer in network.layers if isinstance(layer, tf_keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    network(images * 2.0 - 1.0, training=True)
    for layer, m in zip(layers, momenta):
        layer.momentum = m


def feature_module(network, arch: Architecture):
    """The TF Hub style module around `network`: [0, 1] images in, feature vectors out."""
    tf = _tf()

    class FeatureVector(tf.Module):
        def __init__(self, net):
            super().__init__(name=arch.name)
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec([None, arch.size, arch.size, 3], tf.float32, name=INPUT_KEY)])
        def __call__(self, images):
            return self.net(images * 2.0 - 1.0, training=False)

        @tf.function(input_signature=[tf.TensorSpec([None, arch.size, arch.size, 3], tf.float32, name=INPUT_KEY)])
        def serve(self, images):
            return {OUTPUT_KEY: self(images)}

    return FeatureVector(network)


@dataclass
class Reference:
    """The model every TF scenario is compared against, and the fixed images.

    Either the matrix's reference feature extractor (`module`, `arch`), or a fine-tuned classifier given as its
    SavedModel (`saved_model`; `classifier_reference`): then only the formats that start from a SavedModel apply.
    """

    model_name: str
    arch: Architecture | None
    module: Any  # tf.Module (None for a fine-tuned classifier)
    images: np.ndarray  # NHWC [0, 1]
    image_names: list[str]
    outputs: np.ndarray
    calibration: np.ndarray
    saved_model: Path | None = None  # a fine-tuned classifier's own SavedModel (serving_default: images -> one output)


def reference(quick: bool, work: Path) -> Reference:
    _tf()
    arch = architecture(quick)
    network = build_network(arch)
    calibration = zoo.calibration_images(arch.size, n=32)
    recalibrate_batch_norm(network, calibration)
    module = feature_module(network, arch)
    images, names = reference_images(arch.size, quick)
    outputs = predict_module(module, images)
    return Reference(arch.name, arch, module, images, names, outputs, calibration)


# Formats a fine-tuned classifier (a SavedModel without its model code) is exported to.
CLASSIFIER_FORMATS = ("saved_model", "rest_tf_serving_api", "litert_float32", "litert_dynamic_int8",
                      "litert_full_int8", "tfjs_graph_model_node", "tfjs_graph_model_browser")


def classifier_reference(name: str, saved_model: Path, images: np.ndarray, calibration: np.ndarray) -> Reference:
    """A fine-tuned classifier (the sweep's `saved_model/`) as the reference: its outputs on `images` (NHWC,
    [0, 1]) in TensorFlow, and `calibration` (training images only) for full-integer quantisation."""
    tf = _tf()
    serving = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    size = int(serving.structured_input_signature[1][INPUT_KEY].shape[1])
    x = check_images(images, size, "NHWC")
    outputs = np.concatenate([single_output(serving(**{INPUT_KEY: tf.constant(x[i:i + 32])})).numpy()
                              for i in range(0, len(x), 32)])
    return Reference(name, None, None, x, [f"test_{i}" for i in range(len(x))], outputs,
                     check_images(calibration, size, "NHWC"), saved_model=Path(saved_model))


def single_output(outputs: dict):
    """The output of a signature: the feature vector of the matrix's model, else the one output it has."""
    if OUTPUT_KEY in outputs or len(outputs) != 1:
        return outputs[OUTPUT_KEY]
    return next(iter(outputs.values()))


def predict_module(module, images: np.ndarray) -> np.ndarray:
    """Reference outputs of a `tf.Module` feature extractor (validates the module and the images)."""
    tf = _tf()
    if not isinstance(module, tf.Module) or not callable(module):
        raise StudyError(f"expected a callable tf.Module (e.g. study.deployment.backend_tf.feature_module(...)), got "
                         f"{type(module).__name__}")
    size = int(module.__call__.input_signature[0].shape[1])
    x = check_images(images, size, "NHWC")
    return np.asarray(module(tf.constant(x)))


# --- exporters (measuring process) ----------------------------------------------------------------------------



def _saved_model(ref: Reference, work: Path) -> Path:
    if ref.saved_model is not None:
        return ref.saved_model
    tf = _tf()
    path = work / "saved_model"
    if not (path / "saved_model.pb").exists():
        # Without tf_keras' per-layer call traces (only the module's own functions are needed by every
        # consumer here): saving is ~5x and loading ~7x faster on this machine.
        from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope

        with keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
            tf.saved_model.save(ref.module, str(path), signatures={"serving_default": ref.module.serve})
    return path


def noise_floor(ref: Reference, work: Path):
    """The reference's noise floor on its images (`localise.floor_tf` on its SavedModel: threads, batch, reload)."""
    path = _saved_model(ref, work)
    return localise.floor_tf(TFGraph(path), path, ref.images)


def _frozen_graph(ref: Reference, work: Path) -> Path:
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    folder = work / "frozen_graphdef"
    folder.mkdir(exist_ok=True)
    frozen = convert_variables_to_constants_v2(ref.module.__call__.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    tf.io.write_graph(graph_def, str(folder), "frozen_graph.pb", as_text=False)
    io = {"inputs": [t.name for t in frozen.inputs], "outputs": [t.name for t in frozen.outputs],
          "size": ref.arch.size}
    (folder / "frozen_graph.json").write_text(json.dumps(io))
    return folder


def _litert(ref: Reference, work: Path, mode: str) -> Path:
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(_saved_model(ref, work)), signature_keys=["serving_default"])
    if mode in ("dynamic_int8", "full_int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "full_int8":
        calib = ref.calibration

        def representative():
            for i in range(len(calib)):
                yield {INPUT_KEY: calib[i:i + 1]}

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = work / f"model_{mode}.tflite"
    path.write_bytes(converter.convert())
    return path


def _tfjs_graph_model(ref: Reference, work: Path) -> Path:
    """The TF.js graph model (one conversion per run, shared by the Node.js and the Chromium row)."""
    folder = work / "tfjs_graph_model"
    if not (folder / "model.json").is_file():
        with files.atomic_dir(folder) as tmp:  # a killed conversion leaves no half-written model behind
            tfjs.convert_saved_model(_saved_model(ref, work), tmp)
    return folder


def _checkpoint(ref: Reference, work: Path) -> Path:
    tf = _tf()
    folder = work / "checkpoint"
    folder.mkdir(exist_ok=True)
    tf.train.Checkpoint(network=ref.module.net).write(str(folder / "ckpt"))
    (folder / "architecture.json").write_text(json.dumps({"alpha": ref.arch.alpha, "size": ref.arch.size}))
    return folder


def export(fmt: str, ref: Reference, work: Path, quick: bool) -> Export:
    """Export the reference model to scenario format `fmt` under `work`."""
    if ref.saved_model is not None and fmt not in CLASSIFIER_FORMATS:
        raise Skipped(f"{fmt} rebuilds the model from its code; a fine-tuned classifier is exported from its "
                      f"SavedModel only ({', '.join(CLASSIFIER_FORMATS)})")
    if fmt == "saved_model":
        return Export(_saved_model(ref, work), "python")
    if fmt == "hub_keras_layer":
        return Export(_saved_model(ref, work), "python")
    if fmt == "rest_tf_serving_api":
        return Export(_saved_model(ref, work), "rest")
    if fmt == "checkpoint":
        return Export(_checkpoint(ref, work), "python")
    if fmt == "frozen_graphdef":
        return Export(_frozen_graph(ref, work), "python")
    if fmt.startswith("litert_"):
        mode = fmt.removeprefix("litert_")
        return Export(_litert(ref, work, mode), "python", quantised=mode != "float32")
    if fmt in ("tfjs_graph_model_node", "tfjs_graph_model_browser"):
        folder = _tfjs_graph_model(ref, work)
        runner = "run_tfjs_node.mjs" if fmt.endswith("_node") else "chromium"
        return Export(folder, runner, model_file=folder / "model.json")
    raise StudyError(f"no TensorFlow exporter for format {fmt!r}; valid: {', '.join(EXPORTABLE)}")


EXPORTABLE = ("saved_model", "hub_keras_layer", "checkpoint", "frozen_graphdef", "litert_float32",
              "litert_dynamic_int8", "litert_full_int8", "rest_tf_serving_api", "tfjs_graph_model_node",
              "tfjs_graph_model_browser")


# --- loaders (fresh runtime process) --------------------------------------------------------------------------

def runtime_of(fmt: str) -> str:
    """What `import_runtime(fmt)` imports: the formats of one runtime share a runtime process to fork from."""
    return "litert" if fmt.startswith("litert_") else "tensorflow+hub" if fmt == "hub_keras_layer" else "tensorflow"


def import_runtime(fmt: str) -> None:
    """Import the format's runtime, so that the worker's load time excludes the import."""
    if fmt.startswith("litert_"):
        import ai_edge_litert.interpreter  # noqa: F401
        return
    tf = _tf()  # a fresh worker process: fix the thread count before TensorFlow initialises
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    if fmt == "hub_keras_layer":
        import tensorflow_hub  # noqa: F401


def load(fmt: str, path: Path):
    """`predict(batch NHWC float32) -> np.ndarray` for the artefact at `path`, in the format's own runtime."""
    if fmt.startswith("litert_"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path), num_threads=THREADS)
        runner = interpreter.get_signature_runner("serving_default")

        def predict_litert(x):
            return single_output(runner(**{INPUT_KEY: np.ascontiguousarray(x, np.float32)}))

        return predict_litert
    tf = _tf()
    if fmt in ("saved_model", "rest_tf_serving_api"):
        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda x: single_output(serving(**{INPUT_KEY: tf.constant(x)})).numpy()
    if fmt == "hub_keras_layer":
        import tensorflow_hub as hub

        layer = hub.KerasLayer(str(path), trainable=False)
        return lambda x: np.asarray(layer(tf.constant(x)))
    if fmt == "checkpoint":
        arch = Architecture(**json.loads((path / "architecture.json").read_text()))
        network = build_network(arch)
        tf.train.Checkpoint(network=network).read(str(path / "ckpt")).assert_existing_objects_matched()
        module = feature_module(network, arch)
        return lambda x: module(tf.constant(x)).numpy()
    if fmt == "frozen_graphdef":
        io = json.loads((path / "frozen_graph.json").read_text())
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString((path / "frozen_graph.pb").read_bytes())
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
        fn = wrapped.prune(wrapped.graph.get_tensor_by_name(io["inputs"][0]),
                           wrapped.graph.get_tensor_by_name(io["outputs"][0]))
        return lambda x: fn(tf.constant(x)).numpy()
    raise StudyError(f"no TensorFlow loader for format {fmt!r}")


def describe_signature(saved_model: str | Path, key: str = "serving_default") -> dict:
    """A SavedModel signature as TF Serving's /metadata shows it (tensor names, dtypes, shapes)."""
    tf = _tf()
    loaded = tf.saved_model.load(str(saved_model))
    fn = loaded.signatures[key]

    def spec(t) -> dict:
        return {"dtype": t.dtype.name, "tensorShape": [-1 if d is None else int(d) for d in t.shape]}

    inputs = {k: spec(v) for k, v in fn.structured_input_signature[1].items()}
    outputs = {k: spec(v) for k, v in fn.structured_outputs.items()}
    return {"signature_def": {key: {"inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict"}}}


def load_for_serving(fmt: str, path: Path):
    return load(fmt, path), describe_signature(path)
