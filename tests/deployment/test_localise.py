"""Where a conversion breaks a member (study.deployment.localise, study.deployment.intermediates): the reference's noise
floor, the calibrated tolerance, and the first divergent layer of a converted model whose weights were corrupted
after conversion, in every format that can be inspected."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.casestudy import stand_ins
from study.config import PROFILES
from study.deployment import faithful, fidelity, localise
from study.deployment.backend import Export
from study.errors import StudyError
from tests.conftest import needs_node

# --- the judgement and the class, on constructed curves ----------------------------------------------------------


def _curve(divergences, op_types, quantised=None, tol=1e-6):
    n = len(divergences)
    return pd.DataFrame({"index": range(n), "name": [f"layer{i}" for i in range(n)], "op_type": op_types,
                         "ref": [f"ref{i}" for i in range(n)], "divergence": divergences, "layer_floor": 0.0,
                         "tolerance": tol, "above": [d > tol for d in divergences],
                         "quantised": quantised or [False] * n, "saturated": np.nan})


def test_the_class_follows_where_and_how_the_divergence_starts():
    ops = ["Mul", "Conv2D", "Relu", "Conv2D", "Softmax"]
    weights = localise.summarise(_curve([1e-7, 2e-7, 2e-7, 0.3, 0.2], ops), quantised=False)
    assert weights["failure_class"] == "parameter_layout" and weights["first_divergence"] == "Conv2D layer3"
    assert weights["divergence_before"] == pytest.approx(2e-7) and weights["divergence_after"] == pytest.approx(0.3)
    small = localise.summarise(_curve([1e-7, 2e-7, 5e-6, 6e-6, 6e-6], ops), quantised=False)
    assert small["failure_class"] == "node_conversion" and small["first_divergence"] == "Relu layer2"
    early = localise.summarise(_curve([1e-2, 1e-2, 1e-2, 1e-2, 1e-2], ops), quantised=False)
    assert early["failure_class"] == "input_preprocessing" and early["first_divergence_index"] == 0
    quant = localise.summarise(_curve([1e-7, 1e-2, 1e-2, 1e-2, 1e-2], ops, [False, True, True, True, True]),
                               quantised=True)
    assert quant["failure_class"] == "quantisation_range" and quant["first_divergence"] == "Conv2D layer1"
    within = localise.summarise(_curve([1e-7] * 5, ops), quantised=False)
    assert within["failure_class"] == "accumulated_rounding" and within["first_divergence"] == ""
    assert localise.crash_fields({"status": "runtime_crash"})["failure_class"] == "runtime_crash"
    assert localise.crash_fields({"status": "unsupported_op"})["failure_class"] == "node_conversion"


def test_the_calibrated_verdict_sits_beside_the_fixed_one():
    floor = faithful.NoiseFloor(0.0, 1.0, {"threads": 0.0, "batch": 0.0, "reload": 0.0})
    assert floor.tolerance == pytest.approx(faithful.K * faithful.FLOAT32_EPS)  # a zero floor: the epsilon guard
    ref = np.eye(3)
    j = faithful.judge(ref, ref + 5e-4, floor)
    assert not j.faithful and j.faithful_fixed and j.noise_floor == 0.0  # faithful at the fixed gate only
    assert faithful.judge(ref, ref + 1e-7, floor).faithful
    assert not faithful.judge(ref, ref[[1, 0, 2]], faithful.NoiseFloor(1.0, 1.0)).faithful  # a changed top-1 class
    assert faithful.within(1e-7, 1.0, floor.tolerance) and not faithful.within(1e-7, 0.9, floor.tolerance)
    assert faithful.NoiseFloor(1e-3, 1.0).tolerance == pytest.approx(faithful.K * 1e-3)
    assert faithful.noise_floor(ref, {"batch": ref + 1e-6}, {"threads": 2e-6}).value == pytest.approx(2e-6)


def test_the_worst_policy_picks_one_row_per_format_and_skips_baselines_and_crashes():
    rows = [{"member": m, "format": f, "status": s, "rel_diff": d}
            for m, f, s, d in [("a", "litert_full_int8", "wrong_output", 0.01), ("b", "litert_full_int8",
                               "accuracy_drop", 0.03), ("a", "onnx", "faithful", 0.0),
                               ("a", "saved_model", "wrong_output", 1e-6), ("b", "onnx", "runtime_crash", np.nan)]]
    worst = localise.select(rows, "worst", fidelity.BASELINE.values())
    assert [(r["member"], r["format"]) for r in worst] == [("b", "litert_full_int8")]
    assert len(localise.select(rows, "all", fidelity.BASELINE.values())) == 2
    assert localise.select(rows, "none") == []
    assert localise.select([{**rows[0], "localisation": "localised on 3"}], "all") == []  # resumed: done once
    with pytest.raises(StudyError, match="valid: all, worst, none"):
        localise.select(rows, "most")


def test_bad_input_is_one_clear_error(tmp_path):
    (tmp_path / "not_a_sweep").mkdir()
    with pytest.raises(StudyError, match="no fine-tuned models"):
        fidelity.run_fidelity(tmp_path / "not_a_sweep", ["litert_float32"], profile=PROFILES["smoke"])
    assert not (tmp_path / "not_a_sweep" / "deploy_fidelity").exists()  # nothing written for bad input
    with pytest.raises(StudyError, match="valid: saved_model"):
        fidelity.run_fidelity(tmp_path / "not_a_sweep", ["litert_int3"], profile=PROFILES["smoke"])
    with pytest.raises(StudyError, match="no layer-by-layer inspection"):
        localise.localise("coreml", Export(tmp_path, "python"), {"framework": "tf", "graph": None}, np.zeros(1))
    with pytest.raises(StudyError, match="unknown localisation policy"):
        fidelity.Settings.of(PROFILES["smoke"], "most")


# --- measured: a tiny TF member, converted, then one layer's weights corrupted in the converted file --------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny stand-in member, its reference graph, noise floor and 8 test images."""
    from study.casestudy.browser import find_models
    from study.deployment import backend_tf
    from study.deployment.intermediates import TFGraph

    root = tmp_path_factory.mktemp("localise")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(root / "cache"))
        stand_ins.tiny_classifiers(root / "sweep", profile=PROFILES["smoke"], sizes=(32,), epochs=10)
        model = find_models(root / "sweep")[0]
        x, _ = fidelity._test_split(model)  # noqa: SLF001
        calib = fidelity.calibration_images(model, PROFILES["smoke"])
    ref = backend_tf.classifier_reference(model.name, model.saved_model, x, calib)
    graph = TFGraph(model.saved_model)
    return {"root": root, "model": model, "ref": ref, "graph": graph, "x": x[:localise.LOCALISE_IMAGES],
            "floor": localise.floor_tf(graph, model.saved_model, x)}


def _second_conv(graph) -> str:
    """The scope of the tiny member's second full convolution (after the depthwise one), e.g. `conv2d_1` (Keras
    numbers layers per process, so the name depends on what was built before)."""
    return [n for n in graph.layers if graph.op_type[n] == "Conv2D"][1].split("/")[-2]


def _scale_bytes(path: Path, original: np.ndarray, factor: float = 1.5) -> None:
    """Rewrite one weight tensor inside a converted file: find its float32 bytes and write them scaled."""
    data = path.read_bytes()
    old = np.ascontiguousarray(original, "<f4").tobytes()
    assert data.count(old) == 1, "the weight tensor's bytes must occur exactly once in the file"
    path.write_bytes(data.replace(old, np.ascontiguousarray(original * factor, "<f4").tobytes()))


@pytest.mark.slow
def test_the_noise_floor_of_a_deterministic_model_is_tiny(tiny):
    floor = tiny["floor"]
    assert set(floor.parts) == {"threads", "batch", "reload"}
    assert 0.0 <= floor.value < 1e-5  # measured 0.0 here: one image's arithmetic does not depend on the batch
    assert 0.0 < floor.tolerance < 1e-5  # the epsilon guard keeps a zero floor from demanding bit equality


@pytest.mark.slow
def test_a_corrupted_litert_layer_is_localised_to_that_layer_and_a_faithful_one_nowhere(tiny, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from study.deployment import backend_tf

    export = backend_tf.export("litert_float32", tiny["ref"], tmp_path, False)
    reference = {"framework": "tf", "graph": tiny["graph"]}
    faithful, table = localise.localise("litert_float32", export, reference, tiny["x"])
    assert faithful["first_divergence"] == "" and not table["above"].any() and len(table) >= 5

    corrupted = _second_conv(tiny["graph"])
    interp = Interpreter(model_path=str(export.path))
    weights = next(d for d in interp.get_tensor_details() if d["name"].endswith(f"{corrupted}/Conv2D"))
    _scale_bytes(export.path, interp.get_tensor(weights["index"]))
    fields, table = localise.localise("litert_float32", export, reference, tiny["x"])
    assert fields["first_divergence"].startswith("CONV_2D ") and f"{corrupted}/Conv2D" in fields["first_divergence"]
    assert fields["failure_class"] == "parameter_layout"
    assert fields["divergence_before"] < 1e-5 < 1e-2 < fields["divergence_after"]
    assert table.loc[table["above"], "index"].min() == fields["first_divergence_index"]


@pytest.mark.slow
def test_full_int8_starts_diverging_at_its_first_quantised_op(tiny, tmp_path):
    from study.deployment import backend_tf

    export = backend_tf.export("litert_full_int8", tiny["ref"], tmp_path, False)
    fields, table = localise.localise("litert_full_int8", export, {"framework": "tf", "graph": tiny["graph"]},
                                      tiny["x"])
    assert fields["failure_class"] == "quantisation_range" and fields["first_divergence"].startswith("CONV_2D ")
    assert table["quantised"].iloc[0] and "calibrated range" in fields["localisation"]


@pytest.mark.slow
@needs_node
def test_a_corrupted_tfjs_weight_shard_is_localised_to_that_layer(tiny, tmp_path):
    from study.deployment import backend_tf

    export = backend_tf.export("tfjs_graph_model_node", tiny["ref"], tmp_path, False)
    reference = {"framework": "tf", "graph": tiny["graph"]}
    faithful, table = localise.localise("tfjs_graph_model_node", export, reference, tiny["x"])
    assert faithful["first_divergence"] == "" and not table["above"].any()

    corrupted = _second_conv(tiny["graph"])
    manifest = json.loads(export.model_file.read_text())["weightsManifest"][0]
    offset, shard = 0, export.path / manifest["paths"][0]
    for w in manifest["weights"]:
        n = int(np.prod(w["shape"]))
        if f"/{corrupted}/" in w["name"] and w["name"].endswith("_weights"):
            data = bytearray(shard.read_bytes())
            values = np.frombuffer(bytes(data[offset:offset + 4 * n]), "<f4") * 1.5
            data[offset:offset + 4 * n] = values.astype("<f4").tobytes()
            shard.write_bytes(bytes(data))
            break
        offset += 4 * n  # float32 / int32 weights, 4 bytes each
    else:
        pytest.fail(f"no {corrupted} weights in {manifest['weights']}")
    fields, _ = localise.localise("tfjs_graph_model_node", export, reference, tiny["x"])
    assert fields["first_divergence"].startswith("_FusedConv2D ") and fields["failure_class"] == "parameter_layout"
    first = tiny["graph"].match([fields["first_divergence"].split(" ", 1)[1]], set())
    assert tiny["graph"].inputs[first] and any(f"/{corrupted}/" in i for i in _ancestry(tiny["graph"], first))


def _ancestry(graph, name, depth=3):
    seen, frontier = set(), [name]
    for _ in range(depth):
        frontier = [i for n in frontier for i in graph.inputs.get(n, [])]
        seen.update(frontier)
    return seen


# --- torch -> ONNX ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch_ref(tmp_path_factory):
    import torch

    from study.deployment import backend_torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                 torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU6(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1))
    rng = np.random.default_rng(0)
    x, calib = (rng.random((n, 16, 16, 3), dtype=np.float32) for n in (8, 8))
    module.train()  # batch-norm statistics of these images: outputs far from zero, different per image
    with torch.no_grad():
        module[1].momentum = 1.0
        module(torch.from_numpy(backend_torch.to_nchw(calib)))
    module.eval()
    return backend_torch.classifier_reference("tiny_torch", module, x, calib)


@pytest.mark.slow
def test_torch_noise_floor_and_a_corrupted_onnx_initializer(torch_ref, tmp_path):
    import onnx
    from onnx import numpy_helper

    from study.deployment import backend_torch

    floor = localise.floor_torch(torch_ref.module, lambda: torch_ref.module, torch_ref.images)
    assert 0.0 <= floor.value < 1e-5
    export = backend_torch.export("onnx", torch_ref, tmp_path, False)
    reference = {"framework": "torch", "module": torch_ref.module}
    faithful, table = localise.localise("onnx", export, reference, torch_ref.images)
    assert faithful["first_divergence"] == "" and not table["above"].any() and len(table) >= 6

    model = onnx.load(str(export.path))
    init = next(i for i in model.graph.initializer if i.name == "3.weight")  # the second convolution
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    onnx.save(model, str(export.path))
    fields, table = localise.localise("onnx", export, reference, torch_ref.images)
    assert fields["first_divergence"].startswith("Conv ") and fields["failure_class"] == "parameter_layout"
    assert table.set_index("index").loc[fields["first_divergence_index"], "ref"] == "3"  # module 3 = that conv
    (tmp_path / "int8").mkdir()
    int8 = backend_torch.export("onnx_int8", torch_ref, tmp_path / "int8", False)
    q, _ = localise.localise("onnx_int8", int8, reference, torch_ref.images)
    assert q["failure_class"] == "quantisation_range"


def test_the_decision_judges_faithful_at_the_calibrated_tolerance_unless_told_the_fixed_gate():
    from study.deployment import deploy_criterion

    table = pd.DataFrame({"member": ["a", "b"], "format": "litert_float32", "status": ["faithful", "wrong_output"],
                          "status_fixed": "faithful", "top1_agreement": 1.0, "size_mb": 1.0, "latency_p50_ms": 1.0})
    rule = deploy_criterion.deployable(table, deploy_criterion.DeployCriterion("litert_float32"))
    fixed = deploy_criterion.deployable(table, deploy_criterion.DeployCriterion("litert_float32", 1.0, True))
    assert rule["deployable"].tolist() == [True, False] and fixed["deployable"].tolist() == [True, True]
    assert "fixed gate" in deploy_criterion.DeployCriterion("litert_float32", 1.0, True).text
    # a table made before the one rule: calibrated_status is the rule's verdict, status the fixed gate's
    old = table.drop(columns="status_fixed").assign(status="faithful", calibrated_status=["faithful", "wrong_output"])
    assert deploy_criterion.deployable(old, deploy_criterion.DeployCriterion("litert_float32"))["deployable"].tolist() \
        == [True, False]
    assert deploy_criterion.deployable(old, deploy_criterion.DeployCriterion("litert_float32", 1.0, True))[
        "deployable"].tolist() == [True, True]
