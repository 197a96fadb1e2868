"""Case-study data (Section VII-B): Flower Photos, its Table XI split, and an offline synthetic flower set.

One loader for both: a folder of class folders (`<root>/<class>/<image>`), or the original
`flower_photos.tgz`. `split_dataset` splits it into training / validation / testing by the paper's rule
(per class: testing 10 %, validation 20 % of the rest, which gives all of Table XI; stratified, seeded),
`load_images` is THE preprocessing every consumer (fine-tuning, the browser product) replicates:

    decode to RGB (no EXIF rotation) -> bilinear resize to size x size with half-pixel centres and no
    antialiasing (= `tf.image.resize(method="bilinear")`, tfjs `tf.image.resizeBilinear(x, [s, s], false, true)`)
    -> float32 / 255, i.e. values in [0, 1].

The synthetic set (`synth_flowers`) draws five visibly different procedural flower kinds under the paper's
class names, with random pose, scale, background, lighting and colour, so the embedded profile runs the
same code offline. It is a stand-in, not Flower Photos: accuracies on it are not comparable to Table IX.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tarfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
import pandas as pd

from study import config, files
from study.protocol import PAPER
from study.errors import DatasetWarning, StudyError
from study.runtime.images import resize_bilinear

CLASS_NAMES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
SUBSETS = ("training", "validation", "testing")  # Table XI's column names
GENERATOR_VERSION = 1  # bump when the drawing changes: cached synthetic sets are keyed on it
TINY_CLASS = 10  # fewer images than this: the class gets at most a handful of validation / test images
UNBALANCED_RATIO = 5.0  # a class this many times smaller than the largest one is warned about


@dataclass(frozen=True)
class SynthSpec:
    """How big the generated flower set of a profile is."""

    per_class: int
    size: int
    seed: int = 0


# The synthetic sets of the offline profiles (the paper profile reads Flower Photos instead).
SYNTH_SPECS: dict[str, SynthSpec] = {
    "smoke": SynthSpec(per_class=20, size=64),
    "embedded": SynthSpec(per_class=100, size=160),
}


# ---------------------------------------------------------------------------------------------- split
@dataclass
class Split:
    """A data set split into training / validation / testing: lists of (image path, label index)."""

    class_names: tuple[str, ...]
    train: list[tuple[Path, int]]
    validation: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    source: Path | None = field(default=None, compare=False)

    def subsets(self) -> dict[str, list[tuple[Path, int]]]:
        return {"training": self.train, "validation": self.validation, "testing": self.test}

    def counts(self) -> pd.DataFrame:
        """Per-class image counts in the layout of the paper's Table XI (label, training, validation, testing, total)."""
        rows = []
        for i, name in enumerate(self.class_names):
            row = {"label": name}
            for subset, items in self.subsets().items():
                row[subset] = sum(1 for _, label in items if label == i)
            row["total"] = row["training"] + row["validation"] + row["testing"]
            rows.append(row)
        return pd.DataFrame(rows, columns=["label", *SUBSETS, "total"])

    def to_frame(self) -> pd.DataFrame:
        """One row per image: path, label, class_name, subset."""
        rows = [(str(p), label, self.class_names[label], subset)
                for subset, items in self.subsets().items() for p, label in items]
        return pd.DataFrame(rows, columns=["path", "label", "class_name", "subset"])

    @classmethod
    def from_frame(cls, df: pd.DataFrame, class_names: Sequence[str]) -> Split:
        parts = {s: [(Path(p), int(l)) for p, l, sub in zip(df["path"], df["label"], df["subset"]) if sub == s]
                 for s in SUBSETS}
        return cls(tuple(class_names), parts["training"], parts["validation"], parts["testing"])


def split_counts(n: int) -> tuple[int, int, int]:
    """(training, validation, testing) sizes for `n` images of a class, by the paper's split rule
    (`study.protocol.PAPER`: testing = floor(10 %), validation = floor(20 %) of the rest).

    With Flower Photos' real class sizes this gives exactly Table XI. Tiny classes (n >= 3) keep at least
    one validation and one testing image so every subset sees every class.
    """
    n_test = math.floor(n * PAPER.testing_fraction)
    n_val = math.floor((n - n_test) * PAPER.validation_fraction)
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    return n - n_val - n_test, n_val, n_test


def split_dataset(src: str | Path, seed: int = 0) -> Split:
    """Stratified, seeded split of a folder of class folders (or a Flower Photos .tgz) following Table XI."""
    root, class_names, by_class = scan_image_folder(src)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[Path, int]]] = {s: [] for s in SUBSETS}
    for label, name in enumerate(class_names):
        paths = by_class[name]  # sorted: the split depends only on the names and the seed
        order = rng.permutation(len(paths))
        n_train, n_val, _ = split_counts(len(paths))
        shuffled = [(paths[i], label) for i in order]
        parts["training"] += shuffled[:n_train]
        parts["validation"] += shuffled[n_train:n_train + n_val]
        parts["testing"] += shuffled[n_train + n_val:]
    warn_small_classes({name: len(by_class[name]) for name in class_names}, root)
    return Split(class_names, parts["training"], parts["validation"], parts["testing"], source=root)


def warn_small_classes(sizes: dict[str, int], where: Path | str) -> None:
    """One DatasetWarning naming the tiny classes (< TINY_CLASS images) and the unbalanced ones (UNBALANCED_RATIO)."""
    largest = max(sizes.values(), default=0)
    tiny = [f"{c} ({n})" for c, n in sizes.items() if n < TINY_CLASS]
    small = [f"{c} ({n})" for c, n in sizes.items() if n >= TINY_CLASS and n * UNBALANCED_RATIO < largest]
    why = []
    if tiny:
        why.append(f"tiny class(es) with fewer than {TINY_CLASS} images: {', '.join(tiny)}")
    if small:
        why.append(f"unbalanced class(es), over {UNBALANCED_RATIO:g}x smaller than the largest ({largest}): "
                   f"{', '.join(small)}")
    if why:
        warnings.warn(f"{where}: {'; '.join(why)}; their validation / test accuracy rests on few images "
                      "(add images or merge classes)", DatasetWarning, stacklevel=3)


def read_split(csv: str | Path) -> Split:
    """A user-given split: a CSV with `path`, `subset` (training / validation / testing) and `class_name` or `label`.

    Relative paths are relative to the CSV's folder; missing or unreadable images are one StudyError.
    """
    csv = Path(csv)
    if not csv.is_file():
        raise StudyError(f"split CSV {csv} does not exist; write one with: python -m study data split --src DIR --out D")
    df = pd.read_csv(csv)
    missing = {"path", "subset"} - set(df.columns)
    if missing or not ({"class_name", "label"} & set(df.columns)):
        raise StudyError(f"{csv}: a split CSV needs columns path, subset and class_name (or label); it has "
                         f"{', '.join(df.columns)}")
    bad = sorted(set(df["subset"]) - set(SUBSETS))
    if bad:
        raise StudyError(f"{csv}: unknown subset(s) {bad}; valid: {', '.join(SUBSETS)}")
    if "class_name" not in df:
        df["class_name"] = df["label"].astype(str)
    names = tuple(sorted(df["class_name"].astype(str).unique()))
    if len(names) < 2:
        raise StudyError(f"{csv} has {len(names)} class(es); an image classification data set needs at least two")
    paths = [p if p.is_absolute() else (csv.parent / p).resolve() for p in map(Path, df["path"])]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise StudyError(f"{csv}: {len(absent)} image(s) do not exist, e.g. {absent[0]}")
    for subset in SUBSETS:
        if not (df["subset"] == subset).any():
            raise StudyError(f"{csv}: the {subset} subset is empty")
    df = df.assign(path=[str(p) for p in paths], label=df["class_name"].astype(str).map(names.index))
    warn_small_classes(df["class_name"].astype(str).value_counts().reindex(names).to_dict(), csv)
    split = Split.from_frame(df, names)
    split.source = csv
    return split


# ----------------------------------------------------------------------------------------- reading
def _extract_archive(archive: Path) -> Path:
    """Unpack a .tgz (e.g. the original flower_photos.tgz) once into the cache; return the folder."""
    st = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    dest = config.cache_dir() / "datasets" / f"{archive.name.split('.')[0]}-{key}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with files.locked(dest):
        if dest.is_dir():
            return dest
        try:
            with files.atomic_dir(dest) as tmp, tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise StudyError(f"cannot unpack {archive}: {exc}; download it again "
                             f"(curl -L -o {archive} {config.FLOWER_PHOTOS_URL})") from exc
    return dest


def _class_root(folder: Path) -> Path:
    """Descend through single wrapping folders (flower_photos.tgz holds one `flower_photos/`)."""
    while True:
        subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for d in subdirs for p in d.iterdir() if p.is_file())
        if len(subdirs) == 1 and not has_images:
            folder = subdirs[0]
            continue
        return folder


def _readable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (32, 32))  # decode a reduced JPEG: fast, still catches truncation
            im.convert("RGB").load()
        return True
    except Exception:  # noqa: BLE001 - any decoder failure means "not a usable image"
        return False


def scan_image_folder(src: str | Path) -> tuple[Path, tuple[str, ...], dict[str, list[Path]]]:
    """The class folders of `src` (folder or .tgz) and their readable images, sorted.

    Non-image and corrupt files are skipped with one DatasetWarning listing them; an empty class folder
    or fewer than two classes is a StudyError.
    """
    src = Path(src)
    if not src.exists():
        raise StudyError(f"data set {src} does not exist; pass a folder of class folders or flower_photos.tgz")
    if src.is_file():
        if not src.name.endswith((".tgz", ".tar.gz", ".tar")):
            raise StudyError(f"{src} is a file but not a .tgz/.tar archive; pass a folder of class folders "
                             "or the original flower_photos.tgz")
        src = _extract_archive(src)
    root = _class_root(src)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        raise StudyError(f"{root} has {len(class_dirs)} class folder(s); an image classification data set needs "
                         "at least two (layout: <root>/<class name>/<image>.jpg)")
    by_class: dict[str, list[Path]] = {}
    skipped: list[Path] = []
    for d in class_dirs:
        good = []
        for p in sorted(d.rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES and _readable(p):
                good.append(p.resolve())
            else:
                skipped.append(p)
        if not good:
            raise StudyError(f"class folder {d} has no readable images; remove it or add images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        by_class[d.name] = good
    if skipped:
        shown = ", ".join(str(p.relative_to(root)) for p in skipped[:20])
        more = f" and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        warnings.warn(f"skipped {len(skipped)} corrupt or non-image file(s) under {root}: {shown}{more}",
                      DatasetWarning, stacklevel=2)
    return root, tuple(by_class), by_class


# ------------------------------------------------------------------------------- synthetic flowers
def _hsv(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a random (cells x cells) grid, bilinearly upsampled."""
    grid = rng.random((cells, cells, 1)).astype(np.float32)
    return resize_bilinear(grid, size)[..., 0]


def _over(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Paint `colour` (H, W, 3 or 3) over `canvas` with coverage `alpha` (H, W), in place."""
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    canvas *= 1.0 - a
    canvas += a * colour


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Foliage, sky, soil or wall: a vertical gradient of two colours, blotches and leaf-like ellipses."""
    kind = rng.integers(4)
    hue = [rng.uniform(0.22, 0.38), rng.uniform(0.52, 0.64), rng.uniform(0.05, 0.12), rng.uniform(0.0, 1.0)][kind]
    sat = [rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.6), rng.uniform(0.0, 0.15)][kind]
    top, bottom = _hsv(hue, sat, rng.uniform(0.35, 0.95)), _hsv(hue + rng.normal(0, 0.03), sat, rng.uniform(0.15, 0.7))
    t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    bg = top * (1 - t) + bottom * t + np.zeros((size, size, 3), np.float32)
    bg *= (0.75 + 0.5 * _smooth_noise(rng, size, int(rng.integers(3, 8))))[..., None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(int(rng.integers(0, 6))):  # blurred leaves / out-of-focus blobs
        cx, cy, rx, ry, ang = rng.random(), rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.02, 0.1), rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
        v = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
        d = (u / rx) ** 2 + (v / ry) ** 2
        _over(bg, np.clip((1.0 - d) * 3.0, 0, 1) * rng.uniform(0.3, 0.9),
              _hsv(rng.uniform(0.2, 0.4), rng.uniform(0.3, 0.9), rng.uniform(0.15, 0.7)))
    return bg


@dataclass
class _Pose:
    cx: float
    cy: float
    radius: float  # pixels
    angle: float
    tilt: float  # 1 = seen from the front, < 1 = foreshortened


def _polar(size: int, pose: _Pose) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(r, theta, u, v) of every pixel in the flower's frame; r = 1 on the nominal flower radius."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - pose.cx, yy - pose.cy
    c, s = np.cos(pose.angle), np.sin(pose.angle)
    u = (c * dx + s * dy) / pose.radius
    v = (-s * dx + c * dy) / (pose.radius * pose.tilt)
    return np.hypot(u, v), np.arctan2(v, u), u, v


def _edge(signed: np.ndarray, pose: _Pose) -> np.ndarray:
    """Antialiased coverage from a signed distance in flower radii (positive inside)."""
    return np.clip(signed * pose.radius / 1.2 + 0.5, 0.0, 1.0)


def _petal_ring(r, th, pose, k, sharp, inner, outer, phase, colour, canvas, shade=0.35):
    """k petals between radius `inner` and `outer`; `sharp` thins them (|cos|^sharp profile)."""
    profile = np.abs(np.cos(k * (th + phase) / 2.0)) ** sharp
    reach = inner + (outer - inner) * profile
    shading = (1.0 - shade) + shade * np.clip(r / outer, 0, 1) * (0.6 + 0.4 * profile)
    _over(canvas, _edge(reach - r, pose), colour * shading[..., None])


def _draw_daisy(rng, canvas, pose):
    r, th, _, _ = _polar(canvas.shape[0], pose)
    white = _hsv(rng.uniform(0.6, 0.95), rng.uniform(0.0, 0.25 if rng.random() < 0.2 else 0.08), rng.uniform(0.85, 1.0))
    k = int(rng.integers(14, 24))
    _petal_ring(r, th, pose, k, rng.uniform(4, 9), 0.15, 1.0, rng.uniform(0, 6.3), white, canvas, shade=0.25)
    centre = rng.uniform(0.2, 0.3)
    _over(canvas, _edge(centre - r, pose), _hsv(rng.uniform(0.11, 0.15), 0.9, rng.uniform(0.75, 0.95))
          * (0.8 + 0.2 * np.cos(r * 60))[..., None])


def _draw_dandelion(rng, canvas, pose):
    r, th, _, _ = _polar(canvas.shape[0], pose)
    if rng.random() < 0.2:  # seed head ("clock"): fine grey-white radial filaments
        fil = 0.5 + 0.5 * np.cos(int(rng.integers(60, 90)) * th)
        _over(canvas, _edge(1.0 - r, pose) * (0.35 + 0.5 * fil), _hsv(0.15, 0.05, rng.uniform(0.85, 1.0)))
        _over(canvas, _edge(0.12 - r, pose), _hsv(0.1, 0.4, 0.45))
        return
    yellow = _hsv(rng.uniform(0.12, 0.16), rng.uniform(0.85, 1.0), rng.uniform(0.85, 1.0))
    for layer in range(3):  # many thin ragged florets in overlapping layers, darker towards the centre
        outer = 1.0 - 0.25 * layer
        k = int(rng.integers(40, 70))
        jitter = 0.08 * np.cos(rng.integers(7, 15) * th + rng.uniform(0, 6.3))
        _petal_ring(r, th, pose, k, rng.uniform(0.8, 2.0), 0.0, outer + jitter, rng.uniform(0, 6.3),
                    yellow * (1.0 - 0.12 * layer), canvas, shade=0.2)


def _draw_rose(rng, canvas, pose):
    r, th, _, _ = _polar(canvas.shape[0], pose)
    hue, sat = [(rng.uniform(-0.02, 0.02), rng.uniform(0.75, 1.0)), (rng.uniform(0.9, 0.97), rng.uniform(0.3, 0.6)),
                (rng.uniform(0.04, 0.14), rng.uniform(0.5, 0.9)), (0.1, rng.uniform(0.0, 0.15))][
        rng.choice(4, p=[0.55, 0.25, 0.12, 0.08])]
    colour = _hsv(hue, sat, rng.uniform(0.6, 0.95))
    outline = 0.85 + 0.15 * np.cos(5 * (th + rng.uniform(0, 6.3)))
    # layered, spiralling petals: dark creases along a log-spiral, darker towards the centre
    spiral = 0.5 + 0.5 * np.cos(3 * th + rng.uniform(10, 16) * np.log(r + 0.05) * rng.choice([-1, 1]))
    shading = (0.55 + 0.45 * np.clip(r, 0, 1)) * (0.7 + 0.3 * spiral)
    _over(canvas, _edge(outline - r, pose), colour * shading[..., None])


def _draw_sunflower(rng, canvas, pose):
    r, th, _, _ = _polar(canvas.shape[0], pose)
    petals = _hsv(rng.uniform(0.1, 0.15), rng.uniform(0.85, 1.0), rng.uniform(0.8, 1.0))
    centre = rng.uniform(0.35, 0.5)
    _petal_ring(r, th, pose, int(rng.integers(18, 32)), rng.uniform(2, 4), centre, 1.0, rng.uniform(0, 6.3),
                petals, canvas)
    seeds = 0.7 + 0.3 * np.cos(40 * r) * np.cos(21 * th)  # seed texture
    _over(canvas, _edge(centre - r, pose), _hsv(rng.uniform(0.05, 0.09), 0.8, rng.uniform(0.15, 0.35))
          * seeds[..., None])


def _draw_tulip(rng, canvas, pose):
    size = canvas.shape[0]
    r, th, u, v = _polar(size, pose)
    hue, sat = [(rng.uniform(-0.02, 0.03), 0.9), (rng.uniform(0.9, 0.97), 0.5), (rng.uniform(0.12, 0.16), 0.9),
                (rng.uniform(0.05, 0.09), 0.9), (rng.uniform(0.75, 0.82), 0.6), (0.1, 0.05)][
        rng.choice(6, p=[0.3, 0.2, 0.15, 0.15, 0.12, 0.08])]
    colour = _hsv(hue, sat * rng.uniform(0.8, 1.0), rng.uniform(0.65, 0.95))
    # stem and one leaf below the cup (the cup's "down" is +v)
    stem_w = 0.08
    _over(canvas, _edge(stem_w - np.abs(u), pose) * (v > 0.3), _hsv(0.3, 0.6, 0.45))
    lv = (v - 1.6) / 0.9
    lu = (u - 0.25 * np.sign(rng.random() - 0.5) - 0.3 * lv) / 0.18
    _over(canvas, _edge(1.0 - (lu ** 2 + lv ** 2), pose) * 0.9, _hsv(0.3, 0.55, 0.4))
    # the cup: rounded bottom, straight sides, three pointed tips on top
    half_w = 0.55
    tips = 0.25 * np.abs(np.cos(1.5 * np.pi * u / half_w))
    top = -0.85 - tips
    inside = np.minimum(np.minimum(half_w - np.abs(u), v - top), 1.0 - (u / half_w) ** 2 - (np.maximum(v, 0) / 0.7) ** 2)
    shading = 0.75 + 0.25 * np.cos(np.pi * u / half_w * 1.5) ** 2  # petal folds
    _over(canvas, _edge(inside, pose), colour * shading[..., None])


_DRAWERS = {"daisy": _draw_daisy, "dandelion": _draw_dandelion, "roses": _draw_rose,
            "sunflowers": _draw_sunflower, "tulips": _draw_tulip}


def draw_flower(class_name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One synthetic photo of `class_name` as uint8 (size, size, 3)."""
    canvas = _background(rng, size)
    n = 1 + int(rng.random() < 0.3)  # sometimes a second, smaller flower of the same kind
    for i in range(n):
        pose = _Pose(cx=size * rng.uniform(0.3, 0.7), cy=size * rng.uniform(0.3, 0.7),
                     radius=size * rng.uniform(0.22, 0.4) * (1.0 if i == 0 else 0.6),
                     angle=rng.uniform(0, 2 * np.pi), tilt=rng.uniform(0.6, 1.0))
        if i == 1:
            pose.cx, pose.cy = size * rng.choice([0.1, 0.9]), size * rng.uniform(0.1, 0.9)
        _DRAWERS[class_name](rng, canvas, pose)
    # lighting: global brightness, a directional gradient, colour temperature, sensor noise
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ang = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0.6, 1.25) * (1.0 + rng.uniform(0, 0.35) * ((xx - 0.5) * np.cos(ang) + (yy - 0.5) * np.sin(ang)))
    canvas *= light[..., None] * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    canvas += rng.normal(0, rng.uniform(0.005, 0.03), canvas.shape).astype(np.float32)
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)


def synth_flowers(out_dir: str | Path, per_class: int = 100, size: int = 160, seed: int = 0,
                  class_names: Sequence[str] = CLASS_NAMES) -> Path:
    """Write `per_class` JPEGs of each class to `out_dir/<class>/`; deterministic in (seed, class, index)."""
    from PIL import Image

    if per_class < 1 or size < 16:
        raise StudyError(f"synthetic flowers need per_class >= 1 and size >= 16 px (got {per_class}, {size})")
    unknown = set(class_names) - set(_DRAWERS)
    if unknown:
        raise StudyError(f"no drawing for class(es) {sorted(unknown)}; valid: {', '.join(_DRAWERS)}")
    out = files.ensure_writable_dir(out_dir)
    for c, name in enumerate(class_names):
        (out / name).mkdir(exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, CLASS_NAMES.index(name), i])
            # plain writes (no fsync per image): the cache renames the finished folder into place, and a re-run
            # of the CLI rewrites the same bytes
            Image.fromarray(draw_flower(name, size, rng)).save(out / name / f"{name}_{i:05d}.jpg", "JPEG", quality=90)
    files.write_text(out / "synthetic.json", json.dumps(
        {"generator": "study.casestudy.dataset.synth_flowers", "generator_version": GENERATOR_VERSION, "seed": seed,
         "per_class": per_class, "size": size, "class_names": list(class_names)}, indent=2) + "\n")
    return out


def synthetic_dir(spec: SynthSpec) -> Path:
    """The cached synthetic set for `spec`, generated on first use (atomic: a killed run leaves nothing half-made)."""
    dest = (config.cache_dir() / "datasets" /
            f"synthetic-flowers-v{GENERATOR_VERSION}-n{spec.per_class}-px{spec.size}-seed{spec.seed}")
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with files.locked(dest):
        if not dest.is_dir():
            with files.atomic_dir(dest) as tmp:
                synth_flowers(tmp, spec.per_class, spec.size, spec.seed)
    return dest


def load_split(profile: str | None = None, seed: int = 0, data: str | Path | None = None,
               split: str | Path | None = None) -> Split:
    """The case study's split for a profile: smoke / embedded -> synthetic flowers, paper -> Flower Photos.

    A team's own data instead: `data` (a folder of class folders or a .tgz of one, split with Table XI's
    proportions and `seed`) or `split` (a split CSV, see `read_split`).
    """
    if split is not None:
        if data is not None:
            raise StudyError("give --data (split here with Table XI's split rule) or --split CSV, not both")
        return read_split(split)
    if data is not None:
        return split_dataset(data, seed=seed)
    p = config.get_profile(profile)
    if p.name == "paper":
        src = config.flower_photos_path()
        if src is None:
            config.check_profile_inputs(p)  # raises with the download instructions
        return split_dataset(src, seed=seed)
    return split_dataset(synthetic_dir(SYNTH_SPECS[p.name]), seed=seed)


# ------------------------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="case-study data: synthetic flowers, Table XI split")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="generate the synthetic flower set (JPEG class folders)")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--per-class", type=int, default=SYNTH_SPECS["embedded"].per_class)
    s.add_argument("--size", type=int, default=SYNTH_SPECS["embedded"].size, help="image side in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cli_synth)
    s = dsub.add_parser("split", help="split class folders / flower_photos.tgz with Table XI's split rule")
    s.add_argument("--src", required=True, type=Path, help="folder of class folders or flower_photos.tgz")
    s.add_argument("--out", required=True, type=Path, help="writes split.csv and table_xi.csv here")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cli_split)


def _cli_synth(args: argparse.Namespace) -> int:
    out = synth_flowers(args.out, args.per_class, args.size, args.seed)
    print(f"[data] {args.per_class * len(CLASS_NAMES)} synthetic flowers ({args.size} px) in {out}", file=sys.stderr)
    return 0


def _cli_split(args: argparse.Namespace) -> int:
    split = split_dataset(args.src, seed=args.seed)
    out = files.ensure_writable_dir(args.out)
    files.write_csv(out / "split.csv", split.to_frame())
    counts = split.counts()
    files.write_csv(out / "table_xi.csv", counts)
    print(counts.to_string(index=False))
    print(f"[data] split of {split.source} (seed {args.seed}) -> {out / 'split.csv'}", file=sys.stderr)
    return 0
