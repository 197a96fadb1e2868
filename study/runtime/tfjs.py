"""SavedModel -> TensorFlow.js graph model, without the converter's optional heavy imports.

`tensorflowjs` 4.22.0 is installed `--no-deps` (requirements/nodeps.txt). Its package `__init__` imports
the JAX converter (`jax_conversion`, needs `jax`/`flax`) and its SavedModel converter module hard-imports
`tensorflow_decision_forests` only to register TF-DF custom ops. Converting an ordinary SavedModel needs
neither, so `convert_saved_model` loads just the SavedModel converter module:

- the `tensorflowjs` and `tensorflowjs.converters` packages are registered as bare packages (their real
  directories as `__path__`, their `__init__` not run), so importing the submodule does not pull in JAX;
- `tensorflow_decision_forests`, when not installed, is bound to an empty module only while that one
  import runs and removed afterwards. The `jax` package is never touched (Keras 3 probes it on import).

The rest is the real converter code (`convert_tf_saved_model`), used exactly as `tensorflowjs_converter
--input_format=tf_saved_model` would.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

from study.errors import StudyError

_CONVERTER = "tensorflowjs.converters.tf_saved_model_conversion_v2"
# Weight quantisation the converter offers (`--quantize_float16` / `--quantize_uint8` / `--quantize_uint16`).
QUANTIZATIONS = ("float16", "uint8", "uint16")


def _package_dir(name: str) -> Path:
    spec = importlib.machinery.PathFinder.find_spec(name.split(".")[0])  # on disk, ignoring sys.modules
    if spec is None or not spec.submodule_search_locations:
        raise StudyError(f"the Python package {name.split('.')[0]!r} is not installed; install it with "
                         "`.venv/bin/pip install --no-deps -r requirements/nodeps.txt`")
    base = Path(next(iter(spec.submodule_search_locations)))
    return base.joinpath(*name.split(".")[1:])


@contextlib.contextmanager
def _without_optional_imports() -> Iterator[None]:
    """Bare `tensorflowjs` packages; an empty `tensorflow_decision_forests` for the duration of one import."""
    for name in ("tensorflowjs", "tensorflowjs.converters"):
        if name not in sys.modules:
            path = _package_dir(name)
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            package.__file__ = str(path / "__init__.py")
            package.__package__ = name
            sys.modules[name] = package
    placeholder = None
    if "tensorflow_decision_forests" not in sys.modules and importlib.util.find_spec("tensorflow_decision_forests") is None:
        placeholder = sys.modules["tensorflow_decision_forests"] = types.ModuleType("tensorflow_decision_forests")
    try:
        yield
    finally:
        if placeholder is not None and sys.modules.get("tensorflow_decision_forests") is placeholder:
            del sys.modules["tensorflow_decision_forests"]


def converter_module() -> types.ModuleType:
    """The real `tensorflowjs.converters.tf_saved_model_conversion_v2` module."""
    if _CONVERTER in sys.modules:
        return sys.modules[_CONVERTER]
    with _without_optional_imports():
        return importlib.import_module(_CONVERTER)


def convert_saved_model(src: str | Path, dst: str | Path, *, signature: str = "serving_default",
                        quantize: str | None = None) -> Path:
    """Convert the TF2 SavedModel at `src` into a TF.js graph model in `dst`; returns `dst/model.json`.

    `quantize` is None (float32 weights) or one of QUANTIZATIONS (weights stored quantised, dequantised on load).
    """
    src, dst = Path(src), Path(dst)
    if not (src / "saved_model.pb").is_file():
        raise StudyError(f"{src} is not a SavedModel folder (no saved_model.pb); pass the folder written by "
                         "tf.saved_model.save(...)")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise StudyError(f"unknown TF.js weight quantisation {quantize!r}; valid: None, {', '.join(QUANTIZATIONS)}")
    module = converter_module()
    dst.mkdir(parents=True, exist_ok=True)
    try:
        module.convert_tf_saved_model(str(src), str(dst), signature_def=signature,
                                      quantization_dtype_map={quantize: True} if quantize else None)
    except ValueError as exc:  # unknown signature, unsupported op, ...
        raise StudyError(f"TF.js conversion of {src} failed: {exc}") from exc
    model_json = dst / "model.json"
    if not model_json.is_file():  # the converter prints and returns when it cannot freeze the graph
        raise StudyError(f"TF.js conversion of {src} wrote no model.json in {dst}; is it a TF2 SavedModel "
                         f"with a {signature!r} signature?")
    return model_json


def weight_files(model_json: str | Path) -> list[Path]:
    """The weight shards a TF.js `model.json` refers to (what a browser or Node.js loader must fetch)."""
    model_json = Path(model_json)
    manifest = json.loads(model_json.read_text())
    return [model_json.parent / p for group in manifest.get("weightsManifest", []) for p in group["paths"]]
