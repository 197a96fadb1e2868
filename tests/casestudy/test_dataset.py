"""Case-study data: Table XI split, the Flower Photos layout (.tgz and folders), synthetic flowers, preprocessing."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from study import config
from study.config import PROFILES
from study.casestudy import dataset
from study.assets.flowers import synth_flowers, synth_spec
from study.runtime.images import load_images
from study.casestudy.dataset import CLASS_NAMES, DatasetWarning, Split
from study.errors import StudyError
from study.paper import flower_split


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    """A small synthetic set in the Flower Photos layout (5 class folders of JPEGs), 20 per class."""
    return synth_flowers(tmp_path_factory.mktemp("flowers") / "flower_photos", per_class=20, size=48, seed=3)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.jpg")):
        h.update(str(p.relative_to(folder)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_table_xi_re_derived_from_image_folders(tmp_path):
    """A folder in Flower Photos' layout with its real class sizes (Table XI's totals), split by the project's own
    code (scan, stratify, apply the paper's rule): every per-class count of Table XI. The rule has two numbers
    (study.protocol.PAPER) and the table fifteen, so a wrong rule, rounding or class assignment fails here."""
    paper = flower_split().set_index("label")
    Image.new("RGB", (16, 16), (200, 40, 90)).save(tmp_path / "one.jpg")
    jpeg = (tmp_path / "one.jpg").read_bytes()
    root = tmp_path / "flower_photos"
    for name, total in paper["total"].items():
        (root / name).mkdir(parents=True)
        for i in range(total):
            (root / name / f"{i:05d}.jpg").write_bytes(jpeg)
    counts = dataset.split_dataset(root, seed=0).counts().set_index("label")
    pd.testing.assert_frame_equal(counts[["training", "validation", "testing", "total"]],
                                  paper[["training", "validation", "testing", "total"]], check_dtype=False)


def test_split_rule_on_sizes_other_than_table_xi():
    assert dataset.split_counts(20) == (15, 3, 2)  # testing floor(2.0), validation floor(0.2 x 18)
    assert dataset.split_counts(3) == (1, 1, 1)  # a tiny class still reaches every subset
    assert dataset.split_counts(2) == (2, 0, 0)


def test_split_is_stratified_disjoint_and_seeded(flowers):
    a, b, c = dataset.split_dataset(flowers, seed=0), dataset.split_dataset(flowers, seed=0), \
        dataset.split_dataset(flowers, seed=1)
    assert a == b and a != c
    assert a.class_names == CLASS_NAMES
    paths = [p for items in a.subsets().values() for p, _ in items]
    assert len(paths) == len(set(paths)) == 100  # disjoint and complete
    counts = a.counts()
    assert list(counts.columns) == ["label", "training", "validation", "testing", "total"]
    # 20 per class by the paper's rule: 15 / 3 / 2 for every class
    assert counts[["training", "validation", "testing"]].values.tolist() == [[15, 3, 2]] * 5
    for _, label in a.test:
        assert 0 <= label < 5
    frame = a.to_frame()
    assert Split.from_frame(frame, a.class_names) == a


def test_tgz_and_folder_give_the_same_split(flowers, tmp_path, monkeypatch):
    archive = tmp_path / "flower_photos.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(flowers, arcname="flower_photos")  # the original archive wraps one flower_photos/ folder
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    from_tgz = dataset.split_dataset(archive, seed=0)
    from_dir = dataset.split_dataset(flowers, seed=0)
    rel = lambda s: [(p.relative_to(s.source).as_posix(), y) for p, y in s.train + s.validation + s.test]  # noqa: E731
    assert rel(from_tgz) == rel(from_dir)
    assert from_tgz.source.is_relative_to(tmp_path / "cache")


def test_bad_files_are_skipped_with_one_warning(flowers, tmp_path):
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(flowers, root)
    (root / "LICENSE.txt").write_text("licence at the root is not a class")
    (root / "daisy" / "notes.txt").write_text("not an image")
    good = (root / "roses" / "roses_00000.jpg").read_bytes()
    (root / "roses" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "tulips" / "garbage.jpg").write_bytes(b"\x00" * 100)
    with pytest.warns(DatasetWarning, match=r"skipped 3 corrupt or non-image") as rec:
        split = dataset.split_dataset(root)
    message = str(rec[0].message)
    assert "notes.txt" in message and "truncated.jpg" in message and "garbage.jpg" in message
    assert split.counts()["total"].sum() == 100


def test_bad_layouts_are_clear_errors(flowers, tmp_path):
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(flowers, root)
    (root / "empty_class").mkdir()
    with pytest.raises(StudyError, match=r"empty_class has no readable images"):
        dataset.split_dataset(root)
    one = tmp_path / "one"
    shutil.copytree(flowers / "daisy", one / "daisy")
    with pytest.raises(StudyError, match=r"at least two"):
        dataset.split_dataset(one)
    with pytest.raises(StudyError, match=r"does not exist"):
        dataset.split_dataset(tmp_path / "nowhere")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(StudyError, match=r"not a .tgz"):
        dataset.split_dataset(tmp_path / "x.txt")


def test_generator_is_deterministic(tmp_path):
    a = synth_flowers(tmp_path / "a", per_class=3, size=40, seed=5)
    b = synth_flowers(tmp_path / "b", per_class=3, size=40, seed=5)
    c = synth_flowers(tmp_path / "c", per_class=3, size=40, seed=6)
    assert _digest(a) == _digest(b) != _digest(c)
    assert sorted(p.name for p in a.iterdir() if p.is_dir()) == list(CLASS_NAMES)


def _softmax_regression(x: np.ndarray, y: np.ndarray, classes: int, steps: int = 300) -> np.ndarray:
    w = np.zeros((x.shape[1], classes))
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = x @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * (x.T @ (p - onehot) / len(x) + 1e-3 * w)
    return w


def _pixel_features(images: np.ndarray) -> np.ndarray:
    """A deliberately small pixel classifier's input: a 4x4x4 RGB histogram, a 4x4 thumbnail, a histogram of
    gradient magnitudes and the radial spectrum of the grey image (petal count / texture)."""
    n, size = len(images), images.shape[1]
    q = np.minimum((images * 4).astype(int), 3)
    codes = q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]
    hist = np.stack([np.bincount(c.ravel(), minlength=64) for c in codes]) / codes[0].size
    thumb = images.reshape(n, 4, size // 4, 4, size // 4, 3).mean((2, 4)).reshape(n, -1)
    grey = images.mean(-1)
    gy, gx = np.gradient(grey, axis=(1, 2))
    grad = np.stack([np.histogram(m, bins=8, range=(0, 0.3))[0] for m in np.hypot(gx, gy)]) / grey[0].size
    spectrum = np.abs(np.fft.fft2(grey - grey.mean((1, 2), keepdims=True)))
    yy, xx = np.meshgrid(np.fft.fftfreq(size) * size, np.fft.fftfreq(size) * size, indexing="ij")
    ring = np.hypot(yy, xx).astype(int).ravel()
    radial = np.log1p(np.stack([np.bincount(ring, s.ravel(), minlength=size)[: size // 2] for s in spectrum]))
    f = np.concatenate([hist, thumb, grad, radial], 1)
    return np.concatenate([(f - f.mean(0)) / (f.std(0) + 1e-6), np.ones((n, 1))], 1)


def test_a_small_classifier_beats_chance_on_synthetic_flowers(tmp_path):
    root = synth_flowers(tmp_path / "s", per_class=40, size=48, seed=0)
    split = dataset.split_dataset(root)
    xtr = load_images([p for p, _ in split.train], 48)
    ytr = np.array([y for _, y in split.train])
    held = split.validation + split.test
    xte = load_images([p for p, _ in held], 48)
    yte = np.array([y for _, y in held])
    both = _pixel_features(np.concatenate([xtr, xte]))
    w = _softmax_regression(both[: len(xtr)], ytr, 5)
    acc = float(((both[len(xtr):] @ w).argmax(1) == yte).mean())
    assert acc > 0.5, f"held-out accuracy {acc:.2f} (chance 0.2)"


def test_load_images_is_tf_image_resize_bilinear(flowers):
    import tensorflow as tf

    path = flowers / "roses" / "roses_00001.jpg"
    ours = load_images([path, path], 37)
    assert ours.shape == (2, 37, 37, 3) and ours.dtype == np.float32
    assert 0.0 <= ours.min() and ours.max() <= 1.0
    rgb = np.asarray(Image.open(path).convert("RGB"))
    for size in (37, 96, 224):  # down and up
        ref = tf.image.resize(rgb[None].astype(np.float32), (size, size), method="bilinear").numpy()[0] / 255.0
        np.testing.assert_allclose(load_images([path], size)[0], ref, atol=2e-5)


def test_load_split_profiles(tmp_path, monkeypatch, flowers):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    smoke = dataset.load_split(PROFILES["smoke"])
    assert smoke.counts()["total"].tolist() == [synth_spec(PROFILES["smoke"]).per_class] * 5
    assert smoke.source.is_relative_to(tmp_path / "cache")
    assert dataset.load_split(PROFILES["smoke"]) == smoke  # cached, same split
    monkeypatch.setattr("study.assets.flowers.flower_photos_path", lambda: None)
    with pytest.raises(config.ProfileError, match="Flower Photos"):
        dataset.load_split(PROFILES["paper"])
    monkeypatch.setattr("study.assets.flowers.flower_photos_path", lambda: flowers)
    assert dataset.load_split(PROFILES["paper"]).counts()["total"].sum() == 100
