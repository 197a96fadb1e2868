"""Asset references and a team's own data (issue 20): local stand-ins only, nothing downloaded."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from study.assets import flowers, refs as asset_refs
from study.casestudy import dataset
from study.config import NOTEBOOKS, PROFILES, ROOT
from study.errors import DatasetWarning, StudyError
from study.runs.reproduce import run_notebook

TINY = "study.assets.torch_extractors:tiny_cnn"


def make_class_folders(root, per_class=12, tiny=4):
    """Synthetic class folders with one corrupt image (roses) and one tiny class (tulips)."""
    d = flowers.synth_flowers(root, per_class=per_class, size=64, class_names=("daisy", "roses", "tulips"))
    for p in sorted((d / "tulips").glob("*.jpg"))[tiny:]:
        p.unlink()
    (d / "roses" / "broken.jpg").write_bytes(b"not a jpeg")
    (d / "synthetic.json").unlink()
    return d


# --------------------------------------------------------------------------------------------- references
def test_input_size_is_for_variable_size_assets_and_ref_at_size_states_one():
    # --input-size leaves a fixed-size member as it is (it applies to variable-size assets only)
    assert asset_refs.resolve("mobilenet_v2_035_96", PROFILES["smoke"], input_size=128).input_size == 96
    a = asset_refs.resolve("mobilenet_v2_035_96@96", PROFILES["smoke"], input_size=128)
    assert (a.name, a.ref, a.input_size) == ("mobilenet_v2_035_96", "mobilenet_v2_035_96", 96)
    assert asset_refs.stated_size("/models/net@224") == ("/models/net", 224)
    assert asset_refs.stated_size("pkg.mod:fn@64") == ("pkg.mod:fn", 64)
    assert asset_refs.stated_size("https://tfhub.dev/x/y/5") == ("https://tfhub.dev/x/y/5", None)
    with pytest.raises(StudyError, match="positive"):
        asset_refs.stated_size("mobilenet_v2_035_96@0")


def test_a_folder_whose_name_ends_in_at_digits_is_a_folder(tmp_path):
    folder = tmp_path / "net@2"
    folder.mkdir()
    assert asset_refs.stated_size(str(folder)) == (str(folder), None)
    with pytest.raises(StudyError, match="no saved_model.pb"):  # read as the folder, not as `net` @ 2 px
        asset_refs.resolve(str(folder), PROFILES["smoke"])


def test_zoo_members_by_name_handle_url_and_kaggle_handle():
    for ref in ("mobilenet_v2_035_96", "google/imagenet/mobilenet_v2_035_96/feature_vector/5",
                "https://tfhub.dev/google/imagenet/mobilenet_v2_035_96/feature_vector/5",
                "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/035-96-feature-vector/2"):
        a = asset_refs.resolve(ref, PROFILES["smoke"])
        assert (a.name, a.kind, a.input_size, a.feature_dim) == ("mobilenet_v2_035_96", "zoo", 96, 1280), ref
    assert asset_refs.resolve("efficientnet_lite0", PROFILES["smoke"]).backend == "torch"


def test_unknown_reference_names_the_accepted_forms(tmp_path):
    with pytest.raises(StudyError, match="not a zoo member.*package.module:function.*valid members: .*efficientnet"):
        asset_refs.resolve("no_such_asset", PROFILES["smoke"])
    with pytest.raises(StudyError, match="no saved_model.pb"):
        asset_refs.resolve(str(tmp_path), PROFILES["smoke"])
    with pytest.raises(StudyError, match="offline profiles do not download"):
        asset_refs.resolve("someone/imagenet/their_net/feature_vector/1", PROFILES["embedded"])
    with pytest.raises(StudyError, match=r"takes 96 px images \(fixed\), not 128"):
        asset_refs.resolve("mobilenet_v2_035_96@128", PROFILES["smoke"])
    with pytest.raises(StudyError, match="cannot be imported"):
        asset_refs.resolve("no_such_package.mod:fn", PROFILES["smoke"])


def test_torch_function_read_from_the_module_and_checked(outdirs):
    a = asset_refs.resolve(TINY, PROFILES["smoke"])
    assert (a.kind, a.backend, a.input_size, a.feature_dim) == ("torch_function", "torch", 64, 16)
    assert a.name == "study.assets.torch_extractors.tiny_cnn" and len(a.sha256) == 64
    assert asset_refs.resolve(TINY, PROFILES["smoke"], input_size=32).input_size == 64  # fixed: --input-size leaves it
    with pytest.raises(StudyError, match=r"takes 64 px images \(fixed\), not 32"):
        asset_refs.resolve(f"{TINY}@32", PROFILES["smoke"])
    with pytest.raises(StudyError, match="no attribute 'nope'"):
        asset_refs.resolve("study.assets.torch_extractors:nope", PROFILES["smoke"])
    with pytest.raises(StudyError, match="called without arguments"):
        asset_refs.resolve("study.casestudy.dataset:split_counts", PROFILES["smoke"])
    module = asset_refs.feature_extractor(a, PROFILES["smoke"])
    import torch

    assert module(torch.zeros(2, 3, 64, 64)).shape == (2, 16)


def test_two_assets_with_one_id_clash(tmp_path):
    for d in ("a/net", "b/net"):
        (tmp_path / d).mkdir(parents=True)
    assert asset_refs.asset_id(str(tmp_path / "a/net")) == "net"
    assert asset_refs.asset_id(str(tmp_path / "a")) == "a"
    assert asset_refs.asset_id(TINY) == "study.assets.torch_extractors.tiny_cnn"


# --------------------------------------------------------------------------------------------- data
def test_class_folders_with_a_corrupt_image_and_a_tiny_class(tmp_path, outdirs):
    root = make_class_folders(tmp_path / "mine")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = dataset.load_split(PROFILES["smoke"], seed=3, data=root)
    text = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    assert any("roses/broken.jpg" in t for t in text)
    assert any("tiny class" in t and "tulips (4)" in t for t in text)
    counts = split.counts().set_index("label")
    assert counts.loc["roses", "total"] == 12 and counts.loc["tulips", "total"] == 4
    assert (counts[["validation", "testing"]] >= 1).all().all()  # every subset sees every class
    assert split == dataset.load_split(PROFILES["smoke"], seed=3, data=root)  # seeded


def test_unbalanced_class_is_named(tmp_path):
    root = make_class_folders(tmp_path / "mine", per_class=60, tiny=60)
    for p in sorted((root / "daisy").glob("*.jpg"))[11:]:
        p.unlink()
    with pytest.warns(DatasetWarning, match=r"unbalanced class\(es\).*daisy \(11\)"):
        dataset.split_dataset(root)


def test_split_csv_round_trip_and_errors(tmp_path):
    root = make_class_folders(tmp_path / "mine", tiny=12)
    with pytest.warns(DatasetWarning):
        split = dataset.split_dataset(root, seed=1)
    csv = tmp_path / "split.csv"
    split.to_frame().to_csv(csv, index=False)
    again = dataset.load_split(PROFILES["smoke"], split=csv)
    assert again.class_names == split.class_names and sorted(again.test) == sorted(split.test)
    bad = split.to_frame().assign(subset="train")
    bad.to_csv(csv, index=False)
    with pytest.raises(StudyError, match="unknown subset"):
        dataset.read_split(csv)
    split.to_frame().drop(columns=["class_name", "label"]).to_csv(csv, index=False)
    with pytest.raises(StudyError, match="needs columns path, subset and class_name"):
        dataset.read_split(csv)
    with pytest.raises(StudyError, match="not both"):
        dataset.load_split(PROFILES["smoke"], data=root, split=csv)


# --------------------------------------------------------------------------------------------- SavedModels
@pytest.fixture
def saved_model_outside_the_zoo(tmp_path, outdirs):
    """An embedded member's SavedModel copied to a folder the zoo knows nothing about."""
    from study.assets import zoo

    dest = tmp_path / "team" / "my_mobilenet"
    shutil.copytree(zoo.build_embedded("mobilenet_v2_035_96"), dest)
    return dest


@pytest.mark.slow
def test_saved_model_folder_read_from_its_signature(saved_model_outside_the_zoo, tmp_path):
    a = asset_refs.resolve(str(saved_model_outside_the_zoo), PROFILES["smoke"])
    assert (a.name, a.kind, a.backend, a.input_size, a.feature_dim) == ("my_mobilenet", "saved_model", "tf", 96, 1280)
    assert a.sha256 == asset_refs.content_hash(saved_model_outside_the_zoo)
    assert asset_refs.resolve(str(saved_model_outside_the_zoo), PROFILES["smoke"], input_size=128).input_size == 96
    with pytest.raises(StudyError, match=r"takes 96 px images \(fixed\), not 128"):
        asset_refs.resolve(f"{saved_model_outside_the_zoo}@128", PROFILES["smoke"])
    import tensorflow as tf

    class NotImages(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 10], tf.float32)])
        def serve(self, x):
            return {"y": x * 2.0}

    m = NotImages()
    tf.saved_model.save(m, str(tmp_path / "tabular"), signatures={"serving_default": m.serve})
    with pytest.raises(StudyError, match="no image feature-vector signature"):
        asset_refs.resolve(str(tmp_path / "tabular"), PROFILES["smoke"])


@pytest.mark.slow
def test_a_saved_model_is_read_here_when_tensorflow_is_loaded_as_a_subprocess_reads_it(saved_model_outside_the_zoo,
                                                                                      tmp_path, monkeypatch):
    """A caller with TensorFlow loaded (a kernel, this test) inspects in process: no second TensorFlow start-up, and
    the same Asset as a caller without TensorFlow gets from the subprocess (caches apart: each path inspects)."""
    import tensorflow  # noqa: F401 - loaded here: the in-process path

    ref = str(saved_model_outside_the_zoo)
    with monkeypatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(tmp_path / "here"))
        mp.setattr(asset_refs.processes, "run", lambda *a, **k: pytest.fail(f"a subprocess was started: {a[0]}"))
        here = asset_refs.resolve(ref, PROFILES["smoke"])
    code = ("import json, sys\nfrom study.assets import refs\nfrom study.config import PROFILES\n"
            "asset = refs.resolve(sys.argv[1], PROFILES['smoke'])\n"
            "print(json.dumps([asset.to_dict(), 'tensorflow' in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", code, ref], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STUDY_CACHE_DIR": str(tmp_path / "there"), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    there, loaded_there = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not loaded_there  # that caller never imported TensorFlow: its inspection ran in a subprocess
    assert there == here.to_dict() and here.feature_dim == 1280 and here.input_size == 96


@pytest.mark.slow
@pytest.mark.notebook
def test_shortlist_notebook_on_local_stand_ins(saved_model_outside_the_zoo, tmp_path, outdirs):
    """The template notebook: a SavedModel outside the zoo and a torch function beside each other, class folders with
    a corrupt image and a tiny class; same tables as the case study, the identity of each asset in Table IX. (Zoo
    members by name: the notebook's own default shortlist, which the suite's smoke run of every notebook runs.)"""
    root = make_class_folders(tmp_path / "images")
    out = tmp_path / "shortlist"
    run_notebook(NOTEBOOKS / "10_your_shortlist.ipynb", {
        "profile": "smoke", "assets": [str(saved_model_outside_the_zoo), TINY], "data": str(root), "out": str(out)})
    t9 = pd.read_csv(out / "finetune" / "table_ix.csv")
    assert set(t9["model"]) == {"my_mobilenet", "study.assets.torch_extractors.tiny_cnn"}
    assert (t9["status"] == "ok").all() and t9["asset_sha256"].str.len().eq(64).all()
    assert t9.set_index("model").loc["my_mobilenet", "asset"] == str(saved_model_outside_the_zoo)
    t10 = pd.read_csv(out / "browser" / "table_x.csv").set_index("model")
    # the torch asset reaches the browser through ONNX and ONNX Runtime Web, the SavedModel through TF.js
    assert (t10["status"] == "ok").all(), t10.to_string()
    assert t10.loc["my_mobilenet", "runtime"] == "TF.js wasm (Chromium)", t10.loc["my_mobilenet", "runtime"]
    assert t10.loc["study.assets.torch_extractors.tiny_cnn", "runtime"] == "ONNX Runtime Web wasm (Chromium)"
    identity = t9.set_index("model")[["asset", "asset_sha256"]]  # Table X names the same assets as Table IX
    assert t10[["asset", "asset_sha256"]].sort_index().equals(identity.loc[t10.index].sort_index())
    assert (outdirs["results"] / "shortlist_decision.csv").exists() or any(outdirs["results"].rglob("shortlist_decision*"))
