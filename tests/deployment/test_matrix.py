"""RQ1 deployment matrix: the TF.js entry point, the scenario table, bad input, and a real quick matrix."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from study import paper
from study.cache import keys
from study.cache.step import Step
from study.cli import main
from study.deployment import backend, faithful, matrix, scenarios, worker
from study.errors import StudyError
from study.runtime.images import preprocess
from tests.conftest import needs_browser, needs_node


def _assert_no_chromium_left(browser_pid: int | None = None) -> None:
    """No Chromium child of ours is still running, nor anything else in the browser's session."""
    import psutil

    children = {p.pid for p in psutil.Process().children(recursive=True)}
    left = []
    for p in psutil.process_iter():
        try:
            ours = (p.pid in children and "chrom" in p.name().lower()) or \
                (browser_pid is not None and os.getsid(p.pid) == browser_pid)
            if ours and p.status() != psutil.STATUS_ZOMBIE:
                left.append((p.pid, p.name()))
        except (ProcessLookupError, psutil.Error):
            continue
    assert not left, f"Chromium processes left running: {left}"


# --- study.runtime.tfjs (tiny_saved_model: tests/deployment/conftest.py) ----------------------------------------------

@pytest.mark.slow
def test_tfjs_converts_a_saved_model_without_jax_or_decision_forests(tiny_saved_model, tmp_path):
    from study.runtime import tfjs

    path, _, _ = tiny_saved_model
    model_json = tfjs.convert_saved_model(path, tmp_path / "tfjs")
    manifest = json.loads(model_json.read_text())
    assert manifest["format"] == "graph-model" and manifest["modelTopology"]["node"]
    assert all(p.is_file() for p in tfjs.weight_files(model_json)) and tfjs.weight_files(model_json)
    assert "tensorflow_decision_forests" not in sys.modules  # the placeholder is gone after the import
    assert "tensorflowjs.converters.jax_conversion" not in sys.modules
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('jax'))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "None", "jax is not installed, and study.runtime.tfjs must not fake it"


@pytest.mark.slow
def test_tfjs_rejects_what_it_cannot_convert(tmp_path, tiny_saved_model):
    from study.runtime import tfjs

    with pytest.raises(StudyError, match="not a SavedModel"):
        tfjs.convert_saved_model(tmp_path, tmp_path / "out")
    with pytest.raises(StudyError, match="quantisation"):
        tfjs.convert_saved_model(tiny_saved_model[0], tmp_path / "out", quantize="int4")


@pytest.mark.slow
@needs_node
def test_tfjs_model_runs_in_node_like_tensorflow(tiny_saved_model, tmp_path):
    from study.runtime import tfjs

    path, x, expected = tiny_saved_model
    model_json = tfjs.convert_saved_model(path, tmp_path / "tfjs", quantize="float16")
    result = worker.run_node("run_tfjs_node.mjs", model_json, x, tmp_path, warmup=1, repeats=2, timeout=120,
                             name="tiny")
    assert result.outputs.shape == expected.shape
    np.testing.assert_allclose(result.outputs, expected, rtol=2e-2, atol=2e-2)  # float16 weights
    assert len(result.latencies_ms) == 2 and result.peak_rss_mb > 10


@pytest.mark.slow
@needs_browser
def test_tfjs_model_runs_in_chromium_like_tensorflow(tiny_saved_model, tmp_path):
    from study.runtime import tfjs

    path, x, expected = tiny_saved_model
    model_json = tfjs.convert_saved_model(path, tmp_path / "tfjs")
    result = worker.run_chromium(model_json, x, tmp_path, warmup=1, repeats=3, timeout=120, name="tiny")
    assert result.outputs.shape == expected.shape and result.outputs.dtype == np.float32
    np.testing.assert_allclose(result.outputs, expected, rtol=1e-5, atol=1e-6)  # the raw float32 outputs
    assert result.extra["backend"] == "wasm" and "HeadlessChrome" in result.extra["user_agent"]
    assert len(result.latencies_ms) == 3 and result.load_ms > 0 and result.peak_rss_mb > 10
    _assert_no_chromium_left(result.extra["browser_pid"])

    # a page that fails (unparsable model.json) is reported back and becomes the row's error, nothing left running
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="the page failed in Chromium"):
        worker.run_chromium(tmp_path / "broken" / "model.json", x, tmp_path, warmup=0, repeats=1, timeout=60,
                            name="broken")
    _assert_no_chromium_left()


# --- the scenario table and bad input ---------------------------------------------------------------------------

def test_scenario_table_covers_the_paper_and_sources_every_status():
    table = scenarios.scenarios()
    assert table["format"].is_unique
    assert set(table["status"]) <= {"current", "deprecated", "archived"}
    assert table["status_source"].str.startswith("https://").all()
    not_runnable = table[~table.apply(scenarios.runnable, axis=1)]
    assert not_runnable["runnable_here"].str.startswith("no: ").all()
    groups = {(f.replace("TensorFlow 1", "TensorFlow"), g) for f, g in
              paper.deployment_methods()[["framework", "scenario_group"]].itertuples(index=False)}
    assert groups <= set(zip(table["framework"], table["scenario_group"])), "a paper scenario group has no row"
    from study.deployment import backend_tf, backend_torch

    for framework, module in (("tf", backend_tf), ("torch", backend_torch)):
        rows = scenarios.scenarios(framework)
        runnable = set(rows[rows.apply(scenarios.runnable, axis=1)]["format"])
        assert runnable == set(module.EXPORTABLE), framework


def test_bad_input_gets_one_clear_error():
    with pytest.raises(StudyError, match="unknown deployment format.*valid: saved_model"):
        scenarios.check_formats(["savedmodel"])
    with pytest.raises(StudyError, match="unknown framework"):
        matrix.run_matrix("jax")
    with pytest.raises(StudyError, match=r"expects a float32 array \(N, 96, 96, 3\)"):
        backend.check_images(np.zeros((1, 3, 96, 96), np.float32), 96, "NHWC")
    with pytest.raises(StudyError, match="float32"):
        backend.check_images(np.zeros((1, 96, 96, 3), np.float64), 96, "NHWC")
    from study.deployment import backend_tf, backend_torch

    with pytest.raises(StudyError, match="tf.Module"):
        backend_tf.predict_module(lambda x: x, np.zeros((1, 96, 96, 3), np.float32))
    with pytest.raises(StudyError, match="torch.nn.Module"):
        backend_torch.predict_module(object(), np.zeros((1, 3, 224, 224), np.float32))


def test_fidelity_detects_a_changed_function():
    ref = np.array([[0.1, 2.0, 0.3], [1.5, 0.2, 0.1]])
    same = matrix.fidelity(ref, ref.copy())
    assert same["max_abs_diff"] == 0 and same["top1_agreement"] == 1.0
    changed = matrix.fidelity(ref, np.roll(ref, 1, axis=1))
    assert changed["rel_diff"] > 0.5 and changed["top1_agreement"] == 0.0
    with pytest.raises(StudyError, match="shape"):
        matrix.fidelity(ref, ref[:1])


@pytest.mark.slow
def test_efficientnet_lite0_real_weights_classify_real_photos():
    from study.deployment import backend_torch

    photos = backend.photos()
    x = backend_torch.to_nchw(np.stack([preprocess(photos[n], 224) for n in backend_torch.IMAGENET_EXPECTED]))
    top1 = backend_torch.predict_module(backend_torch.build_model(), x).argmax(1)
    for (name, classes), label in zip(backend_torch.IMAGENET_EXPECTED.items(), top1):
        assert label in classes, f"{name} classified as ImageNet class {label}"


# --- a real quick matrix (a subset of formats; the full matrix is the notebook's and the benchmark's) ----------

QUICK_FORMATS = ["saved_model", "litert_float32", "litert_full_int8", "tfjs_graph_model_node",
                 "tfjs_graph_model_browser", "grpc_tf_serving", "state_dict", "torchscript_script", "onnx",
                 "onnx_web_node"]


@pytest.fixture(scope="module")
def quick_matrix(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy")
    csv = out / "matrix.csv"
    # every format, whatever is installed: a missing Node.js or Chromium shows as its tests' skip (a failure under
    # CI=true: tests/conftest.py), never as fewer rows
    argv = ["deploy", "--quick", "--csv", str(csv), "--work", str(out / "work"), "--formats", *QUICK_FORMATS]
    assert main(argv) == 1  # torchscript_script fails (a recorded finding): exit 1, the matrix written all the same
    return pd.read_csv(csv, keep_default_na=False, na_values=[""]), out


@pytest.mark.slow
def test_quick_matrix_exports_reloads_and_compares(quick_matrix):
    df, _ = quick_matrix
    assert list(df.columns[:len(matrix.COLUMNS)]) == matrix.COLUMNS
    rows = df.set_index("format")
    assert set(rows.index) == set(QUICK_FORMATS)
    _assert_exact(rows, ("saved_model", "litert_float32", "state_dict", "onnx"))
    # the reference outputs are far from zero and differ per image (batch norm recalibrated, real weights)
    int8 = rows.loc["litert_full_int8"]
    assert int8["ok"] and int8["quantised"] and 0 < int8["max_abs_diff"] and 0 <= int8["top1_agreement"] <= 1
    assert rows.loc["onnx", "size_mb"] > 10  # the real EfficientNet-Lite0 weights, in one file


def _assert_exact(rows: pd.DataFrame, formats) -> None:
    for fmt in formats:
        row = rows.loc[fmt]
        assert row["ok"], f"{fmt}: {row['error']}"
        assert row["faithful"] and row["top1_agreement"] == 1.0, fmt
        assert row["tolerance_source"] == faithful.CALIBRATED and row["max_abs_diff"] <= row["tolerance"], fmt
        assert row["size_mb"] > 0.1 and row["load_ms"] > 0 and row["latency_p90_ms"] >= row["latency_ms"] > 0
        assert row["peak_rss_mb"] > 10


@pytest.mark.slow
@needs_node
def test_quick_matrix_node_rows(quick_matrix):
    _assert_exact(quick_matrix[0].set_index("format"), ("tfjs_graph_model_node", "onnx_web_node"))


@pytest.mark.slow
@needs_node
@needs_browser
def test_quick_matrix_chromium_row_is_the_node_model_in_chromium(quick_matrix):
    rows = quick_matrix[0].set_index("format")
    _assert_exact(rows, ("tfjs_graph_model_browser",))
    chromium = rows.loc["tfjs_graph_model_browser"]  # the same TF.js model in Chromium and in Node.js
    assert "Chromium" in chromium["runtime_process"] and "Chromium" in chromium["runtime"]
    assert chromium["size_mb"] == rows.loc["tfjs_graph_model_node", "size_mb"]
    _assert_no_chromium_left()


@pytest.mark.slow
def test_quick_matrix_records_failures_and_unrunnable_rows(quick_matrix):
    df, out = quick_matrix
    rows = df.set_index("format")
    assert not rows.loc["grpc_tf_serving", "ok"] and rows.loc["grpc_tf_serving", "error"].startswith("not runnable")
    script = rows.loc["torchscript_script"]  # the model code is not scriptable: a real failure, recorded
    assert not script["ok"] and "RuntimeError" in script["error"]
    assert rows.loc["onnx", "ok"], "the run went on after the failing exporter"
    logged = [json.loads(line) for line in (out / "work" / "rows.jsonl").read_text().splitlines()]
    assert {r["format"] for r in logged} == set(df["format"])
    reference = np.load(out / "work" / "tf" / "reference_outputs.npy")
    assert np.abs(reference).max() > 0.5 and len(set(reference.argmax(1))) > 2


@pytest.mark.slow
def test_resume_keeps_finished_rows(quick_matrix):
    df, out = quick_matrix
    again = matrix.run_matrix("all", quick=True, work=out / "work", formats=list(df["format"]), resume=True)
    pd.testing.assert_series_equal(again["latency_ms"], df["latency_ms"], check_names=False)


@pytest.mark.slow
def test_a_finished_matrix_is_reused_under_its_key_and_not_under_another_machine(quick_matrix):
    df, out = quick_matrix
    log = out / "work" / "rows.jsonl"
    before = log.stat().st_mtime_ns
    again = matrix.run_matrix("all", quick=True, work=out / "work", formats=list(df["format"]), reuse=True)
    assert log.stat().st_mtime_ns == before  # nothing measured: same code, packages, machine, formats
    pd.testing.assert_series_equal(again["latency_ms"], df["latency_ms"], check_names=False)
    recorded = json.loads((out / "work" / ".step.json").read_text())["components"]
    elsewhere = Step(out / "work", "deployment-matrix", {**recorded, "machine": keys.digest({"cores": 96})})
    assert elsewhere.state() == "foreign" and elsewhere.reason() == "machine changed"  # never reused as this one's


def test_failed_rows_are_errors_not_rows_skipped_on_purpose():
    df = pd.DataFrame({"ok": [True, False, False, False],
                       "error": ["", "not runnable here: needs a GPU", "skipped in --quick: AOTInductor ...",
                                 "RuntimeError: not scriptable"]})
    assert matrix.failed(df).tolist() == [False, False, False, True]


def _measured(**over):
    rows = {"framework": ["TensorFlow", "TensorFlow", "PyTorch", "PyTorch"],
            "format": ["a", "a_int8", "b", "c"], "ok": [True, True, False, False], "quantised": [False, True, False, False],
            "rel_diff": [1e-6, 0.05, np.nan, np.nan], "top1_agreement": [1.0, 0.6, np.nan, np.nan],
            "faithful": [True, False, None, None], "rel_tolerance": [1e-5, 1e-5, np.nan, np.nan],
            "size_mb": [4.0, 1.0, np.nan, np.nan], "latency_ms": [1.0, 1.0, np.nan, np.nan],
            "error": ["", "", "not runnable here: no GPU", "RuntimeError: not scriptable\nstack"]}
    return pd.DataFrame({**rows, **over})


def test_the_fidelity_reading_follows_the_matrix():
    text = matrix.fidelity_reading(_measured())
    assert "1 of the 1 non-quantised formats that ran compute the reference function" in text
    assert "a_int8 a relative difference of 5.0e-02 and 60% top-1 agreement at 1 MB (25% of the median" in text
    assert "Failed (the row keeps its error): c (RuntimeError: not scriptable)" in text and "on purpose: b" in text
    assert "against a relative tolerance of 1.0e-05" in text
    off = matrix.fidelity_reading(_measured(rel_diff=[1e-4, 0.05, np.nan, np.nan], faithful=[False, False, None, None]))
    assert "0 of the 1 non-quantised formats" in off
    assert f"{faithful.K} x max(the reference's noise floor" in matrix.tolerance_text()
    assert f"rtol={faithful.FIXED_RTOL:g}" in matrix.tolerance_text()


def test_the_scenario_readings_follow_the_tables():
    text = scenarios.paper_reading(paper.deployment_methods())
    for fw, groups in paper.deployment_methods().groupby("framework")["scenario_group"]:
        assert f"{fw} has {groups.nunique()} scenario groups" in text
    changes = pd.DataFrame({"format_2026": ["x", "y", "z"], "status": ["current", "deprecated", "current"]})
    assert scenarios.status_reading(changes).startswith("Of today's 3 formats, 2 are current; deprecated: y")
