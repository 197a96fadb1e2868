"""The one preprocessing every model of the study is fed with: decode RGB, bilinear resize (half-pixel centres, no
antialiasing, as tf.image.resize), /255, float32.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
import numpy as np

from study.errors import StudyError


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an (H, W, C) array to (size, size, C), half-pixel centres, no antialiasing.

    Numerically the same as `tf.image.resize(image, (size, size), method="bilinear")`.
    """
    h, w = image.shape[:2]
    img = image.astype(np.float32, copy=False)

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = (np.arange(size, dtype=np.float64) + 0.5) * (n_in / size) - 0.5
        lo = np.floor(src)
        frac = (src - lo).astype(np.float32)
        lo = lo.astype(np.int64)
        return np.clip(lo, 0, n_in - 1), np.clip(lo + 1, 0, n_in - 1), frac

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * fx[None, :, None]
    bottom = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * fx[None, :, None]
    return top + (bottom - top) * fy[:, None, None]


def preprocess(rgb: np.ndarray, size: int) -> np.ndarray:
    """An RGB array (H, W, 3) as the study feeds it to every model: bilinear resize (half-pixel), /255, float32."""
    return resize_bilinear(np.asarray(rgb), size) / np.float32(255.0)


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image as float32 (size, size, 3) in [0, 1] (see the module docstring for the exact steps)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001
        raise StudyError(f"cannot read image {path}: {exc}; remove it or re-run the split") from exc
    return preprocess(rgb, size)


def load_images(paths: Iterable[str | Path], size: int) -> np.ndarray:
    """Images as float32 (N, size, size, 3) in [0, 1]: decode RGB, bilinear resize (half-pixel), /255."""
    paths = list(paths)
    out = np.empty((len(paths), size, size, 3), dtype=np.float32)
    for i, p in enumerate(paths):
        out[i] = load_image(p, size)
    return out
