"""Flower Photos, the case study's data set as an input asset (Section VII-B): where a local copy is (the paper
profile; with an offline asset folder only its locked archive), and the synthetic stand-in the offline profiles
draw (`synth_flowers`: five visibly different procedural flower kinds under the paper's class names, with random
pose, scale, background, lighting and colour; a stand-in, not Flower Photos: accuracies on it are not comparable
to Table IX). Splitting and loading are the case study's (`study.casestudy.dataset`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study import config, files
from study.assets import folder as asset_folder
from study.errors import ProfileError, StudyError
from study.profiles import SynthSpec
from study.runtime.images import resize_bilinear

CLASS_NAMES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")  # Flower Photos' classes (Table XI)
GENERATOR_VERSION = 1  # bump when the drawing changes: cached synthetic sets are keyed on it


def synth_spec(profile: config.Profile) -> SynthSpec:
    """The synthetic set an offline profile fine-tunes on (`profile.synth`); an online profile draws none."""
    if profile.synth is None:
        raise KeyError(profile.name)  # the paper profile reads Flower Photos (`flower_photos_path`)
    return profile.synth


FLOWER_PHOTOS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"


def flower_photos_path() -> Path | None:
    """A local copy of Flower Photos (class folders or the original .tgz), if there is one.

    With an asset folder (`STUDY_ASSETS`) only its archive, checked against the folder's lock."""
    if os.environ.get("STUDY_ASSETS"):
        return asset_folder.flowers_archive()
    candidates = [os.environ.get("FLOWER_PHOTOS")] if os.environ.get("FLOWER_PHOTOS") else []
    candidates += [config.DATA / "external" / "flower_photos", config.DATA / "external" / "flower_photos.tgz"]
    for c in candidates:
        if c and Path(c).exists():
            return Path(c)
    return None


def check_profile_inputs(profile: config.Profile) -> None:
    """Fail fast, before any notebook runs, when an online profile's inputs cannot be found.

    Only local checks: the paper profile needs a local Flower Photos copy (the archive is not fetched
    behind the user's back); TF Hub assets are resolved by `tensorflow_hub` itself, which honours
    `TFHUB_CACHE_DIR` and fails with its own message when offline.
    """
    if not profile.online:
        return
    if os.environ.get("STUDY_ASSETS"):  # every file of the folder against its lock, before any notebook runs
        asset_folder.activate()
        asset_folder.verify(asset_folder.active_root())
    if flower_photos_path() is None:
        raise ProfileError(
            "PROFILE=paper needs the Flower Photos data set, which is not here.\n"
            f"  Download it: curl -L -o data/external/flower_photos.tgz {FLOWER_PHOTOS_URL}\n"
            "  or point FLOWER_PHOTOS at a folder of class folders / the .tgz, then run again.\n"
            "  Offline? Use the default PROFILE=embedded."
        )


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
        {"generator": "study.assets.flowers.synth_flowers", "generator_version": GENERATOR_VERSION, "seed": seed,
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
