"""The deployment backend contract: what a framework backend implements, what it exports, the reference inputs.

A backend (`backend_tf`, `backend_torch`) is a module with the functions of `Backend`; `get_backend(framework)`
imports it by name, so the matrix never imports a framework it does not measure (and no module imports back).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from study.runtime.images import preprocess
from study.errors import StudyError


THREADS = 1  # every runtime is timed on one thread: latencies comparable across formats


@dataclass
class Export:
    """What an exporter wrote and how it is run."""

    path: Path  # what is measured on disk
    runner: str  # "python" | "rest" | "chromium" | a web/ Node.js script
    quantised: bool = False
    model_file: Path | None = None  # the file a runner opens when `path` is a folder (e.g. model.json)
    note: str = ""


class Backend(Protocol):
    """What the matrix needs of a framework backend (module-level functions and constants)."""

    EXPORTABLE: tuple[str, ...]  # formats of data/deployment_scenarios.csv this backend exports

    def reference(self, quick: bool, work: Path) -> Any: ...  # the reference model, its inputs and outputs

    def export(self, fmt: str, ref: Any, work: Path, quick: bool) -> Export: ...  # may raise Skipped

    def noise_floor(self, ref: Any, work: Path) -> Any: ...  # the reference's own noise (faithful.NoiseFloor)

    def runtime_of(self, fmt: str) -> str: ...  # the name of what import_runtime(fmt) imports

    def import_runtime(self, fmt: str) -> None: ...  # in the fresh runtime process, before timing the load

    def load(self, fmt: str, path: Path): ...  # -> predict(images) -> outputs

    def load_for_serving(self, fmt: str, path: Path): ...  # -> (predict, signature) for the REST server


def size_mb(path: str | Path) -> float:
    """Size on disk of an artefact (a file, or every file under a folder), MiB."""
    path = Path(path)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return total / 2**20


BACKENDS = {"tf": "study.deployment.backend_tf", "torch": "study.deployment.backend_torch"}


def get_backend(framework: str) -> Backend:
    """The backend module of `framework` ("tf" | "torch"), imported on first use."""
    if framework not in BACKENDS:
        raise StudyError(f"unknown framework {framework!r}; valid frameworks: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[framework])


# Real photos shipped by installed packages (no download): scikit-image's data module, matplotlib's sample data.
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "retina", "colorwheel")


MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")


def photos() -> dict[str, np.ndarray]:
    """The shipped real photos as uint8 RGB arrays, by name."""
    import matplotlib
    import skimage.data
    from PIL import Image

    out = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in MATPLOTLIB_PHOTOS:
        out[Path(name).stem] = np.asarray(Image.open(sample / name).convert("RGB"))
    return out


def generated_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields (upsampled noise), float32 (n, size, size, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(n, 6, 6, 3), dtype=np.uint8)
    return np.stack([preprocess(c, size) for c in coarse]) if n else np.zeros((0, size, size, 3), np.float32)


def reference_images(size: int, quick: bool = False) -> tuple[np.ndarray, list[str]]:
    """The fixed evaluation set: every shipped photo (quick: the first 6) + generated images, NHWC in [0, 1]."""
    shipped = photos()
    names = list(shipped)[:6] if quick else list(shipped)
    n_generated = 2 if quick else 6
    x = np.concatenate([np.stack([preprocess(shipped[n], size) for n in names]), generated_images(n_generated, size)])
    return x.astype(np.float32), names + [f"generated_{i}" for i in range(n_generated)]


def check_images(x: object, size: int, layout: str = "NHWC") -> np.ndarray:
    """`x` as float32 images of the model's input form, or a StudyError naming the expected form."""
    expected = (f"float32 array (N, {size}, {size}, 3)" if layout == "NHWC" else f"float32 array (N, 3, {size}, {size})")
    arr = np.asarray(x) if not hasattr(x, "numpy") else np.asarray(x.numpy())
    shape_ok = arr.ndim == 4 and (arr.shape[1:] == ((size, size, 3) if layout == "NHWC" else (3, size, size)))
    if not shape_ok or arr.dtype != np.float32:
        raise StudyError(f"input has shape {tuple(arr.shape)} and dtype {arr.dtype}; the model expects a {expected} "
                         "with values in [0, 1] (use study.deployment.backend.reference_images or study.runtime.images.load_images)")
    return arr
