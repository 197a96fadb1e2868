"""Case-study data (Section VII-B): Flower Photos or the synthetic stand-in (`study.assets.flowers`), its Table XI split.

One loader for both: a folder of class folders (`<root>/<class>/<image>`), or the original
`flower_photos.tgz`. `split_dataset` splits it into training / validation / testing by the paper's rule
(per class: testing 10 %, validation 20 % of the rest, which gives all of Table XI; stratified, seeded),
`load_images` is THE preprocessing every consumer (fine-tuning, the browser product) replicates:

    decode to RGB (no EXIF rotation) -> bilinear resize to size x size with half-pixel centres and no
    antialiasing (= `tf.image.resize(method="bilinear")`, tfjs `tf.image.resizeBilinear(x, [s, s], false, true)`)
    -> float32 / 255, i.e. values in [0, 1].

The offline profiles split the synthetic set (`study.assets.flowers.synth_flowers`) with the same code.
"""
from __future__ import annotations

import hashlib
import math
import tarfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
import pandas as pd

from study import config, files
from study.assets import flowers
from study.assets.flowers import CLASS_NAMES  # noqa: F401 - the classes of the split's layout
from study.protocol import PAPER
from study.errors import DatasetWarning, StudyError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
SUBSETS = ("training", "validation", "testing")  # Table XI's column names
TINY_CLASS = 10  # fewer images than this: the class gets at most a handful of validation / test images
UNBALANCED_RATIO = 5.0  # a class this many times smaller than the largest one is warned about


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
                             f"(curl -L -o {archive} {flowers.FLOWER_PHOTOS_URL})") from exc
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


def load_split(profile: config.Profile, seed: int = 0, data: str | Path | None = None,
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
    if profile.online:
        src = flowers.flower_photos_path()
        if src is None:
            flowers.check_profile_inputs(profile)  # raises with the download instructions
        return split_dataset(src, seed=seed)
    return split_dataset(flowers.synthetic_dir(flowers.synth_spec(profile)), seed=seed)
