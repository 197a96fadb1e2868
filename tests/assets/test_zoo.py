"""The asset zoo: the 38 assets as data, embedded SavedModels through hub.KerasLayer, EfficientNet-Lite weights."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from study import paper
from study.assets import efficientnet_tf, zoo
from study.config import PROFILES, ZOO_SNAPSHOTS
from study.errors import StudyError

from tests.conftest import needs_snapshots

SMOKE = ("mobilenet_v1_025_128", "mobilenet_v2_035_96")


@pytest.fixture(scope="module")
def cache(module_cache, shared_zoo):
    """The module's own cache, its built zoo the run's shared one (`STUDY_ZOO_DIR`): a smoke member is built once a
    run, here or by the sweeps and notebooks that use it too (keyed and locked). Building itself: tests/cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_ZOO_DIR", str(shared_zoo))
    yield shared_zoo
    mp.undo()


def test_the_38_assets_of_tables_ix_and_x():
    tf_members = [m for m in zoo.MEMBERS if m.in_paper]
    assert [m.name for m in tf_members] == paper.finetuning()["model"].tolist() == paper.testing()["model"].tolist()
    assert len(tf_members) == 38 and all(m.backend == "tf" for m in tf_members)
    assert {m.architecture for m in tf_members} == {"MobileNet V1", "MobileNet V2"}
    for m in tf_members:
        arch, width, size = re.fullmatch(r"mobilenet_(v[12])_(\d{3})_(\d+)", m.name).groups()
        assert m.handle == f"google/imagenet/{m.name}/feature_vector"
        assert (m.width, m.input_size) == (int(width) / 100, int(size))
        assert m.url == f"https://tfhub.dev/{m.handle}/5"
        assert m.kaggle_handle == f"google/mobilenet-{arch}/tensorFlow2/{width}-{size}-feature-vector"
    dims = {m.name: m.feature_dim for m in tf_members}
    assert dims["mobilenet_v1_025_128"] == 256 and dims["mobilenet_v1_075_224"] == 768
    assert dims["mobilenet_v2_035_96"] == 1280 and dims["mobilenet_v2_140_224"] == 1792
    lite = [m for m in zoo.MEMBERS if m.backend == "torch"]
    assert [(m.name, m.input_size) for m in lite] == [("efficientnet_lite0", 224), ("efficientnet_lite1", 240),
                                                       ("efficientnet_lite2", 260)]


@needs_snapshots
def test_handles_and_versions_exist_in_the_tfhub_snapshot():
    snapshot = ZOO_SNAPSHOTS / "tfhub.dev" / "2024-03-18" / "google" / "models"
    for m in zoo.members(PROFILES["paper"]):
        page = snapshot / m.handle.removeprefix("google/") / f"{m.version}.md"
        text = page.read_text()
        assert "<!-- format: saved_model_2 -->" in text, page
        assert f"network-architecture: {m.architecture.lower().replace(' ', '-')}" in text, page
        assert not (page.parent / f"{m.version + 1}.md").exists(), f"{m.name}: a newer version exists"


def test_member_lookup_and_profiles():
    assert zoo.get_member("mobilenet_v2_100_160").input_size == 160
    with pytest.raises(StudyError, match=r"unknown zoo member 'mobilenet_v3'.*valid members: mobilenet_v1_025_128"):
        zoo.get_member("mobilenet_v3")
    assert [m.name for m in zoo.members(PROFILES["smoke"])] == list(PROFILES["smoke"].members)
    embedded = zoo.members(PROFILES["embedded"])
    assert {m.backend for m in embedded} == {"tf", "torch"} and len(embedded) == 8
    assert len(zoo.members(PROFILES["paper"])) == 38


def test_two_kinds_of_member_per_profile():
    """`weights`: the embedded MobileNets are random-init stand-ins; EfficientNet-Lite (TF port and torch) and every
    member of the paper profile (the real TF Hub assets) have trained weights."""
    embedded, paper = PROFILES["embedded"], PROFILES["paper"]
    kinds = {m.name: zoo.weights(m, embedded) for m in zoo.members(embedded)}
    assert {n for n, w in kinds.items() if w == "imagenet"} == {"efficientnet_lite0_tf", "efficientnet_lite1_tf",
                                                                "efficientnet_lite2_tf", "efficientnet_lite0"}
    assert {n for n, w in kinds.items() if w == "random"} == {n for n in kinds if n.startswith("mobilenet")}
    assert {zoo.weights(m, paper) for m in zoo.members(paper)} == {"imagenet"}
    assert [zoo.sees(m, PROFILES["smoke"]) for m in PROFILES["smoke"].members] == [False, True]
    # the TF ports are TF Hub members laid out like TF Hub's asset, offline in every profile
    lite = zoo.get_member("efficientnet_lite2_tf")
    assert (lite.backend, lite.handle, lite.version, lite.input_size) == (
        "tf", "tensorflow/efficientnet/lite2/feature-vector", 2, 260)
    assert zoo.embedded_path(lite) == efficientnet_tf.saved_model_dir(2)
    assert zoo.ported(lite) and not zoo.ported(zoo.get_member("efficientnet_lite2"))
    assert set(zoo.QUICK_SHORTLIST) <= set(PROFILES["smoke"].members)
    assert [zoo.weights(m, embedded) for m in zoo.QUICK_SHORTLIST] == ["random", "imagenet"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOKE)
def test_embedded_member_loads_through_hub_keraslayer(cache, name):
    import tensorflow_hub as hub
    import tf_keras

    member = zoo.get_member(name)
    layer = zoo.feature_extractor(member, PROFILES["smoke"])
    assert isinstance(layer, hub.KerasLayer)
    path = zoo.embedded_path(member)
    assert path.is_relative_to(cache) and path.parts[-5:] == (*member.handle.split("/"), "5")
    x = np.random.default_rng(0).random((4, member.input_size, member.input_size, 3), dtype=np.float32)
    features = layer(x).numpy()
    assert features.shape == (4, member.feature_dim) and np.isfinite(features).all()
    assert features.std(axis=0).mean() > 1e-3, "degenerate features: batch norm calibration missing?"
    if name != SMOKE[0]:
        return
    # the same layer fine-tunes inside a tf_keras model like a real TF Hub asset
    model = tf_keras.Sequential([zoo.feature_extractor(member, PROFILES["smoke"], trainable=True), tf_keras.layers.Dense(5)])
    model.build((None, member.input_size, member.input_size, 3))
    assert len(model.trainable_weights) > 2
    # rebuilt on demand only: the second call reuses the cached SavedModel
    mtime = (path / "saved_model.pb").stat().st_mtime_ns
    zoo.build_embedded(member)
    assert (path / "saved_model.pb").stat().st_mtime_ns == mtime


@pytest.mark.slow  # builds every one of the 38 configurations
def test_every_configuration_builds_with_the_right_feature_size():
    """The feature size depends on (architecture, width); each pair is built once, at its smallest input. (The ported
    EfficientNet-Lites are built from their weights: tests/assets/test_efficientnet_tf.py.)"""
    import tf_keras

    seen = set()
    for m in sorted(zoo.MEMBERS, key=lambda m: m.input_size):
        if m.backend == "tf" and not zoo.ported(m) and (m.architecture, m.width) not in seen:
            seen.add((m.architecture, m.width))
            model = zoo._keras_feature_model(m, calibrate=False)
            assert model.input_shape == (None, m.input_size, m.input_size, 3), m.name
            assert model.output_shape == (None, m.feature_dim), m.name
            tf_keras.backend.clear_session()
    assert len(seen) == 10


@pytest.mark.slow
def test_complexity_of_an_embedded_member(cache):
    c = zoo.complexity("mobilenet_v1_025_128", PROFILES["smoke"])
    # MobileNet V1 0.25/128: ~0.2 M parameters, ~14 M multiply-adds (Howard et al. 2017, Table 7)
    assert 200_000 < c["params"] < 240_000
    assert 2 * 13e6 < c["flops"] < 2 * 16e6
    assert c["asset_bytes"] > 4 * 200_000
    if zoo.COMPLEXITY_CSV.exists():
        committed = pd.read_csv(zoo.COMPLEXITY_CSV).set_index("name").loc["mobilenet_v1_025_128"]
        assert (committed["params"], committed["flops"]) == (c["params"], c["flops"])


def test_every_member_has_its_complexity_and_a_port_counts_the_originals_parameters():
    # the planner (study.runs.task_costs) scales by these rows: a member without one would plan unscaled
    committed = pd.read_csv(zoo.COMPLEXITY_CSV).set_index("name")
    assert sorted(committed.index) == sorted(m.name for m in zoo.MEMBERS)
    for m in zoo.MEMBERS:
        if zoo.ported(m):  # the TF port (study.assets.efficientnet_tf) of the PyTorch original, measured apart
            original = committed.loc[m.name.removesuffix("_tf")]
            assert committed.loc[m.name, "params"] == original["params"], m.name
            assert committed.loc[m.name, "flops"] == pytest.approx(original["flops"], rel=0.01), m.name


@pytest.mark.slow
def test_paper_profile_fails_fast_offline_and_reads_local_assets(cache, tmp_path, monkeypatch):
    member = zoo.get_member("mobilenet_v2_035_96")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache"))
    monkeypatch.delenv(zoo.LOCAL_ASSETS_ENV, raising=False)
    monkeypatch.setattr(zoo, "_online", lambda *a, **k: False)
    with pytest.raises(StudyError, match=r"(?s)neither cached nor reachable.*STUDY_HUB_ASSETS"):
        zoo.feature_extractor(member, PROFILES["paper"])
    # a local directory of downloaded assets, laid out like the handles (here: a copy of an embedded build)
    local = tmp_path / "assets" / member.handle / "5"
    local.parent.mkdir(parents=True)
    local.symlink_to(zoo.build_embedded(member), target_is_directory=True)
    monkeypatch.setenv(zoo.LOCAL_ASSETS_ENV, str(tmp_path / "assets"))
    assert zoo.asset_location(member, PROFILES["paper"]) == str(local)
    layer = zoo.feature_extractor(member, PROFILES["paper"])
    assert layer(np.zeros((1, 96, 96, 3), np.float32)).shape == (1, 1280)
    # a populated TFHUB_CACHE_DIR entry is handed to tensorflow_hub as the URL (hub then reads its cache)
    monkeypatch.delenv(zoo.LOCAL_ASSETS_ENV)
    cached = zoo.hub_cache_path(member)
    assert cached.parent == tmp_path / "hub-cache"
    cached.mkdir(parents=True)
    (cached / "saved_model.pb").write_bytes(b"")
    assert zoo.asset_location(member, PROFILES["paper"]) == "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5"


@pytest.mark.slow
def test_efficientnet_lite_loads_real_imagenet_weights_strictly():
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    import skimage

    member = zoo.get_member("efficientnet_lite0")
    module = zoo.feature_extractor(member, PROFILES["smoke"])
    assert isinstance(module, torch.nn.Module) and not module.training
    assert not any(p.requires_grad for p in module.parameters())
    assert any(p.requires_grad for p in zoo.feature_extractor(member, PROFILES["smoke"], trainable=True).parameters())
    cat = np.asarray(Image.open(f"{skimage.__path__[0]}/data/chelsea.png").convert("RGB"))
    from study.runtime.images import resize_bilinear

    x = torch.from_numpy(resize_bilinear(cat, 224) / 255.0).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        features = module(x)
    assert features.shape == (1, 1280) and torch.isfinite(features).all()
    # the shipped weights are real ImageNet weights: with the original head the cat is a cat (281-285)
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(zoo._lite_weights_path(member), weights_only=True), strict=True)
    with torch.no_grad():
        logits = net.eval()((x * 255 - zoo.LITE_MEAN) / zoo.LITE_STD)
    assert 281 <= int(logits.argmax()) <= 285
    assert zoo.EfficientNetLiteFeatures is type(module)
