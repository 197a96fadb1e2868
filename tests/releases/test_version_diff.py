"""Diffing asset versions (study.releases.version_diff) on versions published by study.releases.publish and on raw untrained models."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from study.cli import main
from study.deployment import faithful
from study.errors import StudyError
from study.releases import publish, version_diff as vd

from tests.releases.conftest import MEMBER

pytestmark = pytest.mark.slow  # every test exports and reloads real SavedModels


@pytest.fixture(scope="module")
def assets(published):
    return {s.name: vd.load(published / s.name) for s in publish.versions()}


def test_identical_pair_nothing_changed(published, tmp_path, assets):
    # the same version published again from the same member: a fresh export, byte-different files
    again = publish.publish(MEMBER, tmp_path / "again", ["v1"], progress=False)
    d = vd.diff(assets["v1_initial"], again["path"].iloc[0])
    assert d.verdict == "nothing changed" and d.changes == ["nothing changed"]
    assert d.variable_counts()["same"] == len(d.variables) > 200
    assert d.outputs["max_abs_diff"] == 0.0 and not d.outputs["recalibrated_a"]


def test_changed_signatures_and_shapes_are_api_changes(assets):
    d = vd.diff(assets["v4_quantization_boundary"], assets["v5_tf2_saved_model"])
    assert d.verdict == "API changed" and not d.api_breaking
    (row,) = d.api_changes.itertuples()
    assert (row.callable, row.change) == ("signature serving_default", "added")
    back = vd.diff(assets["v5_tf2_saved_model"], assets["v4_quantization_boundary"])
    assert back.verdict == "API changed" and back.api_breaking  # a product calling serving_default breaks
    d = vd.diff(assets["v2_variable_input"], assets["v3_batch_norm_momentum"])
    (row,) = d.api_changes.itertuples()
    assert (row.part, row.name, row.change) == ("argument", "batch_norm_momentum", "added") and "0.99" in row.b
    d = vd.diff(assets["v1_initial"], assets["v2_variable_input"])
    (row,) = d.api_changes.itertuples()
    assert row.change == "generalised" and "(None, 96, 96, 3)" in row.a and "(None, None, None, 3)" in row.b
    assert d.verdict == "API changed" and not d.parameters_changed and not d.outputs_changed


def test_quantization_boundary_changes_outputs_only(assets):
    d = vd.diff(assets["v3_batch_norm_momentum"], assets["v4_quantization_boundary"])
    assert d.verdict == "outputs changed" and d.api_changes.empty and not d.parameters_changed
    assert d.outputs["max_abs_diff"] > d.outputs["tolerance"] and d.outputs["changed_fixed"]
    assert d.outputs["tolerance_source"] == faithful.CALIBRATED and set(d.outputs["noise_parts"]) == {"batch", "reload"}


def _small_net():
    """A small untrained conv net with batch norm (MobileNet-like blocks), never fitted: moving stats 0 / 1."""
    import tf_keras
    from tf_keras import layers

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input((64, 64, 3), name="images")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    for i, filters in enumerate((8, 16, 24)):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"block_{i}_conv")(x)
        x = layers.BatchNormalization(momentum=0.997, name=f"block_{i}_BN")(x)
        x = layers.ReLU(6.0)(x)
    return tf_keras.Model(inputs, layers.GlobalAveragePooling2D()(x), name="small")


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """Two raw, untrained SavedModels (64 x 64 inputs) that differ in exactly one variable."""
    root = tmp_path_factory.mktemp("untrained")
    model = _small_net()
    model.save(root / "a", save_format="tf")
    kernel = model.get_layer("block_1_conv").kernel
    kernel.assign(kernel + 0.25)
    model.save(root / "b", save_format="tf")
    return root, model


def test_changed_variable_is_found_after_batch_norm_recalibration(untrained):
    import tf_keras

    root, model = untrained
    a, b = vd.load(root / "a"), vd.load(root / "b")
    assert vd.is_untrained(a) and vd.is_untrained(b)
    d = vd.diff(a, b)
    assert d.verdict == "parameters changed" and "outputs changed" in d.changes
    changed = d.variables[d.variables["status"] != "same"]
    assert changed["name"].tolist() == ["block_1_conv/kernel:0"]
    assert changed["max_abs_diff"].iloc[0] == pytest.approx(0.25, rel=1e-6)
    assert d.outputs["recalibrated_a"] and d.outputs["recalibrated_b"]
    # the recalibrated statistics are those of one momentum-0 pass over the calibration images
    from study.assets.zoo import calibration_images

    images = calibration_images(64, n=vd.CALIBRATION_IMAGES, seed=0)
    bns = [layer for layer in model.layers if isinstance(layer, tf_keras.layers.BatchNormalization)]
    for layer in bns:
        layer.momentum = 0.0
    model(images, training=True)
    expected = {w.name: w.numpy() for layer in bns for w in (layer.moving_mean, layer.moving_variance)}
    assert len(expected) == 6
    for name in expected:
        np.testing.assert_allclose(vd._value(b.variables[name]), expected[name], rtol=2e-3, atol=1e-5)


def test_bad_input_is_one_line(untrained, assets, tmp_path, capsys):
    root, _ = untrained
    with pytest.raises(StudyError, match="incompatible inputs.*96, 96.*64, 64"):
        vd.diff(assets["v1_initial"], vd.load(root / "a"))
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(StudyError, match="is not a SavedModel"):
        vd.load(tmp_path)
    with pytest.raises(StudyError, match="does not exist"):
        vd.load(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(root / "a", broken)
    (broken / "saved_model.pb").write_bytes(b"garbage")
    assert main(["version-diff", str(broken), str(root / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot load") and "\n" not in err


def test_cli_json_and_summary(published, assets, capsys):
    assert main(["version-diff", str(published / "v3_batch_norm_momentum"),
                 str(published / "v4_quantization_boundary"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "outputs changed" and out["variables"]["changed"] == 0
    assert out["note_b"].startswith("Avoids crash")
    text = vd.diff(assets["v1_initial"], assets["v2_variable_input"]).summary()
    assert "verdict: API changed" in text and "[generalised]" in text and "compatible" in text
    table = vd.diff_table([vd.diff(assets["v2_variable_input"], assets["v3_batch_norm_momentum"])])
    assert table[["from", "to", "verdict"]].values.tolist() == [
        ["v2_variable_input", "v3_batch_norm_momentum", "API changed"]]
