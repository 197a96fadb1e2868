"""Per-member deployment fidelity (`deploy --sweep`, study.deployment.fidelity) and the decision's deployment criterion."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from study.casestudy import stand_ins
from study.cli import main
from study.config import PROFILES
from study.decision.choice import CaseStudyTables, load_table, select
from study.deployment import deploy_criterion, faithful, fidelity, fidelity_analysis
from study.errors import Skipped, StudyError

LABELS = np.array([0, 1, 2, 0])


def _probabilities(classes: list[int], n_classes: int = 3) -> np.ndarray:
    p = np.full((len(classes), n_classes), 0.1, np.float32)
    p[np.arange(len(classes)), classes] = 0.8
    return p


# --- the judgement ---------------------------------------------------------------------------------------------

def test_outputs_within_tolerance_with_full_agreement_are_faithful():
    ref = _probabilities([0, 1, 2, 1])
    floor = faithful.NoiseFloor(1e-4, 0.8)  # tolerance K x 1e-4
    row = fidelity.judge(ref, ref + 5e-4, LABELS, floor)
    assert row["status"] == row["status_fixed"] == "faithful" and row["faithful"] and row["top1_agreement"] == 1.0
    assert row["max_abs_diff"] == pytest.approx(5e-4, rel=1e-3) and row["error"] == ""
    assert row["accuracy_before"] == row["accuracy_after"] == 0.75
    assert row["tolerance"] == floor.tolerance and row["tolerance_source"] == faithful.CALIBRATED


def test_the_verdict_is_the_noise_floor_s_and_the_fixed_gate_sits_beside_it():
    ref = _probabilities([0, 1, 2, 1])
    deterministic = faithful.NoiseFloor(0.0, 0.8)  # a zero floor: K x one float32 step of the output's scale
    row = fidelity.judge(ref, ref + 5e-4, LABELS, deterministic)
    assert row["status"] == "wrong_output" and not row["faithful"]  # beyond K x the floor ...
    assert row["status_fixed"] == "faithful" and row["faithful_fixed"]  # ... though within the fixed gate
    assert f"{faithful.K} x the reference's noise floor" in row["error"]
    # without a floor the fixed gate judges, and the row says so
    row = fidelity.judge(ref, ref + 5e-4, LABELS, "noise floor not measured: boom")
    assert row["status"] == "faithful" and row["tolerance_source"] == "fixed gate: noise floor not measured: boom"


def test_a_difference_beyond_tolerance_is_wrong_output_even_when_top1_agrees():
    ref = _probabilities([0, 1, 2, 1])
    row = fidelity.judge(ref, ref + 0.01, LABELS)
    assert row["status"] == row["status_fixed"] == "wrong_output" and not row["faithful"]
    assert row["top1_agreement"] == 1.0 and f"beyond rtol=atol={faithful.FIXED_RTOL:g}" in row["error"]


def test_a_changed_prediction_that_costs_accuracy_is_an_accuracy_drop():
    ref = _probabilities([0, 1, 2, 1])
    row = fidelity.judge(ref, _probabilities([1, 1, 2, 1]), LABELS)  # image 0 was right, now wrong
    assert row["status"] == "accuracy_drop" and row["top1_agreement"] == 0.75
    assert row["accuracy_after"] < row["accuracy_before"]
    # the same disagreement on an image that was wrong before is a wrong output, not an accuracy drop
    assert fidelity.judge(ref, _probabilities([0, 1, 2, 0]), LABELS)["status"] == "wrong_output"


def test_crashes_are_classified_by_stage_and_message():
    assert fidelity.crash_class("export", RuntimeError("ConverterError: failed")) == "conversion_crash"
    assert fidelity.crash_class("runtime", RuntimeError("exit 1: bad flatbuffer")) == "runtime_crash"
    assert fidelity.crash_class("export", ValueError("Op type not registered; Unsupported Ops: Foo")) == "unsupported_op"
    assert fidelity.crash_class("runtime", RuntimeError("kernel for op Erf is not supported")) == "unsupported_op"
    # every crash class makes `deploy --sweep` exit 1 (some runs failed); the judged statuses are findings
    assert {fidelity.crash_class(stage, RuntimeError(m)) for stage in ("export", "runtime")
            for m in ("boom", "unsupported op")} == set(fidelity.CRASHED)


def test_the_key_names_model_format_code_and_settings():
    s = fidelity.Settings(warmup=1, repeats=3)
    key = fidelity.cell_key("abc", "litert_full_int8", s)
    assert key == fidelity.cell_key("abc", "litert_full_int8", s)
    assert key != fidelity.cell_key("abd", "litert_full_int8", s)
    assert key != fidelity.cell_key("abc", "litert_float32", s)
    assert key != fidelity.cell_key("abc", "litert_full_int8", fidelity.Settings(warmup=1, repeats=4))


def test_unknown_formats_are_one_clear_error():
    with pytest.raises(StudyError, match="valid: saved_model"):
        fidelity.check_formats(["litert_int3"])


# --- the decision's deployment criterion ------------------------------------------------------------------------

FIDELITY = pd.DataFrame({
    "member": ["a", "b", "c", "a", "b", "c"],
    "format": ["litert_full_int8"] * 3 + ["tfjs_graph_model_node"] * 3,
    "status": ["accuracy_drop", "faithful", "wrong_output", "faithful", "faithful", "runtime_crash"],
    "top1_agreement": [0.95, 1.0, 0.995, 1.0, 1.0, np.nan],
    "size_mb": [1.0, 2.0, 3.0, 4.0, 8.0, np.nan],
    "latency_p50_ms": [1.5, 2.5, 3.5, 4.5, 5.5, np.nan],
})
TABLE_IX = pd.DataFrame({"model": ["a", "b", "c"], "delta_cpu": [10.0, 20.0, 30.0], "delta_mem": [1.0, 2.0, 3.0],
                         "elapse": ["0:01:40", "0:03:20", "0:05:00"], "accuracy": [0.9, 0.7, 0.8]})


def test_requiring_a_faithful_int8_deployment_changes_the_chosen_member():
    tables = CaseStudyTables(load_table(TABLE_IX, "IX"))
    assert select(tables, ["max:accuracy"]).model == "a"
    strict, info = deploy_criterion.restrict(tables, FIDELITY, deploy_criterion.DeployCriterion("litert_full_int8"))
    assert strict.models == ["b"] and select(strict, ["max:accuracy"]).model == "b"
    assert info.set_index("model").loc["b", "deploy_size_mb"] == 2.0
    relaxed, _ = deploy_criterion.restrict(tables, FIDELITY, deploy_criterion.DeployCriterion("litert_full_int8", 0.99))
    assert relaxed.models == ["b", "c"] and select(relaxed, ["max:accuracy"]).model == "c"


def test_a_crashed_format_never_qualifies_and_an_empty_result_says_so():
    tables = CaseStudyTables(load_table(TABLE_IX, "IX"))
    info = deploy_criterion.deployable(FIDELITY, deploy_criterion.DeployCriterion("tfjs_graph_model_node", 0.0))
    assert info.set_index("model")["deployable"].to_dict() == {"a": True, "b": True, "c": False}
    only_c = load_table(TABLE_IX[TABLE_IX["model"] == "c"].reset_index(drop=True), "IX")
    with pytest.raises(StudyError, match="lower --min-agreement"):
        deploy_criterion.restrict(CaseStudyTables(only_c), FIDELITY,
                                  deploy_criterion.DeployCriterion("tfjs_graph_model_node"))
    with pytest.raises(StudyError, match="no row for format 'onnx'"):
        deploy_criterion.restrict(tables, FIDELITY, deploy_criterion.DeployCriterion("onnx"))
    with pytest.raises(StudyError, match="outside"):
        deploy_criterion.DeployCriterion("onnx", 1.5)


def test_decide_cli_applies_the_criterion_and_reports_the_format(tmp_path, capsys):
    FIDELITY.to_csv(tmp_path / "fidelity.csv", index=False)
    TABLE_IX.to_csv(tmp_path / "table_ix.csv", index=False)
    out = tmp_path / "evidence.csv"
    assert main(["decide", "--table-ix", str(tmp_path / "table_ix.csv"), "--priority", "max:accuracy",
                 "--deploy-format", "litert_full_int8", "--fidelity", str(tmp_path / "fidelity.csv"),
                 "--csv", str(out)]) == 0
    assert "selected b" in capsys.readouterr().err
    evidence = pd.read_csv(out)
    assert set(evidence["model"]) == {"b"} and (evidence["deploy_format"] == "litert_full_int8").all()
    assert main(["decide", "--table-ix", str(tmp_path / "table_ix.csv"), "--deploy-format", "onnx",
                 "--csv", "-"]) == 2
    assert "needs --fidelity" in capsys.readouterr().err
    # the bootstrap resamples only the members the criterion keeps (it once ignored the criterion)
    freq = tmp_path / "frequencies.csv"
    assert main(["decide", "--table-ix", str(tmp_path / "table_ix.csv"), "--priority", "max:accuracy",
                 "--deploy-format", "litert_full_int8", "--min-agreement", "0.99",
                 "--fidelity", str(tmp_path / "fidelity.csv"), "--bootstrap", "200", "--csv", str(freq)]) == 0
    assert "2 candidate(s): b, c" in capsys.readouterr().err
    table = pd.read_csv(freq)
    assert set(table["model"]) <= {"b", "c"} and (table["deploy_format"] == "litert_full_int8").all()
    assert main(["decide", "--table-ix", str(tmp_path / "table_ix.csv"), "--priority", "max:accuracy",
                 "--bootstrap", "200", "--csv", str(freq)]) == 0  # without it, `a` (most accurate) is picked
    assert "a" in set(pd.read_csv(freq)["model"])


def test_member_properties_come_from_the_zoo():
    props = fidelity_analysis.member_properties(["mobilenet_v2_035_96", "mobilenet_v1_050_160", "tiny_mobilenet_48"])
    assert props["architecture"].tolist() == ["MobileNet V2", "MobileNet V1", "not in the zoo"]
    assert props["width"].tolist()[:2] == [0.35, 0.5] and props["resolution"].tolist() == [96, 160, 48]


# --- measured on real (tiny) fine-tuned classifiers --------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(root / "cache"))
        stand_ins.tiny_classifiers(root / "sweep", profile=PROFILES["smoke"], sizes=(32,), epochs=10)
    return root / "sweep"


@pytest.mark.slow
def test_a_tiny_member_is_faithful_reloaded_and_full_int8_gets_a_failure_class(tiny_sweep, tmp_path):
    calls: list[tuple[str, ...]] = []

    def measure(job):
        calls.append(job.formats)
        return fidelity.measure_member(job)

    work = tmp_path / "work"
    formats = ["saved_model", "litert_float32", "litert_full_int8"]
    df = fidelity.run_fidelity(tiny_sweep, formats, work=work, profile=PROFILES["smoke"], measure=measure)
    rows = df.set_index("format")
    assert list(rows.index) == formats and calls == [tuple(formats)]
    assert rows.loc["saved_model", "status"] == "faithful" and rows.loc["saved_model", "max_abs_diff"] == 0.0
    assert rows.loc["litert_float32", "status"] == "faithful"
    assert rows.loc["litert_full_int8", "status"] in ("wrong_output", "accuracy_drop")
    assert "outputs differ" in rows.loc["litert_full_int8", "error"]
    assert rows.loc["litert_full_int8", "size_mb"] < rows.loc["saved_model", "size_mb"]
    from study.casestudy.browser import find_models

    tested = len(find_models(tiny_sweep)[0].images)  # the member's meta.json test_images
    assert (rows["images"] == tested).all() and (rows["latency_p90_ms"] >= rows["latency_p50_ms"]).all()

    # resumed: every key holds, nothing is measured again
    again = fidelity.run_fidelity(tiny_sweep, formats, work=work, profile=PROFILES["smoke"], measure=measure)
    assert len(calls) == 1 and again["key"].tolist() == df["key"].tolist()

    # the model changes (its meta.json is part of the fingerprint): every row is recomputed under the new key
    meta = tiny_sweep / "models" / "tiny_mobilenet_32" / "meta.json"
    original = meta.read_text()
    try:
        meta.write_text(json.dumps({**json.loads(original), "note": "retrained"}))
        changed = fidelity.run_fidelity(tiny_sweep, ["saved_model"], work=work, profile=PROFILES["smoke"], measure=measure)
        assert calls[-1] == ("saved_model",) and changed["key"].iloc[0] != df["key"].iloc[0]
        assert changed["fingerprint"].iloc[0] != df["fingerprint"].iloc[0]
    finally:
        meta.write_text(original)
    log = [json.loads(line) for line in (work / "rows.jsonl").read_text().splitlines()]
    assert len(log) == 5 and all(r["key"] for r in log)  # 3 rows, full int8 localised once, 1 re-measured

    # every row has its noise floor and the verdict at it; only the full int8 row is localised, with its curve
    assert (rows["noise_floor"] >= 0).all() and (rows["tolerance"] > 0).all()
    assert rows["tolerance_source"].eq(faithful.CALIBRATED).all()
    assert rows.loc["litert_full_int8", "status"] in ("wrong_output", "accuracy_drop")
    assert rows.loc["litert_full_int8", "failure_class"] == "quantisation_range"
    assert rows.loc["litert_full_int8", "first_divergence"].startswith("CONV_2D ")
    assert rows.loc[["saved_model", "litert_float32"], "first_divergence"].eq("").all()
    curves = fidelity.layer_curves(work, df)
    assert set(curves["format"]) == {"litert_full_int8"} and curves["above"].any()


@pytest.mark.slow
def test_a_corrupted_converted_model_is_a_runtime_crash_with_its_error(tiny_sweep, tmp_path):
    from study.deployment import backend_tf

    job = fidelity.plan(tiny_sweep, ["litert_float32"], work=tmp_path / "work", profile=PROFILES["smoke"])[0]
    real_export = backend_tf.export

    def export_then_corrupt(fmt, ref, work, quick):  # a converter that writes a broken file
        out = real_export(fmt, ref, work, quick)
        out.path.write_bytes(out.path.read_bytes()[:64])
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(backend_tf, "export", export_then_corrupt)
        row = next(fidelity.measure_member(job))
    assert row["status"] == "runtime_crash" and not row["faithful"] and row["error"].startswith("RuntimeError")


@pytest.mark.slow
def test_deploy_sweep_cli_writes_the_table(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "fidelity.csv"
    assert main(["deploy", "--sweep", str(tiny_sweep), "--formats", "tfjs_graph_model_node",
                 "--work", str(tmp_path / "work"), "--profile", "smoke", "--csv", str(out)]) == 0
    df = pd.read_csv(out)
    assert df[["member", "format", "status"]].values.tolist() == [["tiny_mobilenet_32", "tfjs_graph_model_node",
                                                                  "faithful"]]
    assert main(["deploy", "--sweep", str(tiny_sweep), "--formats", "onnx_web", "--csv", "-"]) == 2


@pytest.mark.slow
def test_a_torch_classifier_goes_through_the_torch_backend(tmp_path):
    import torch

    from study.deployment import backend_torch
    from study.deployment.worker import run_export

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                 torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
    rng = np.random.default_rng(0)
    x, calib = (rng.random((n, 16, 16, 3), dtype=np.float32) for n in (6, 4))
    ref = backend_torch.classifier_reference("tiny_torch", module, x, calib)
    for fmt in ("onnx", "torch_export"):
        export = backend_torch.export(fmt, ref, tmp_path, False)
        result = run_export(fmt, export, ref.images, tmp_path, warmup=1, repeats=2, timeout=120)
        assert fidelity.judge(ref.outputs, result.outputs, np.zeros(6, int))["status"] == "faithful"
    with pytest.raises(Skipped, match="state_dict needs the model's code"):
        backend_torch.export("state_dict", ref, tmp_path, False)
