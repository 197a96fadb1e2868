"""Table X's machinery for real: TF.js conversion, the simple product in headless Chromium, the Flask
stats server with the Sampler, the watchdog, and that no process outlives a run."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psutil
import pytest

from study.casestudy import browser, browser_checks, stand_ins, stats_server
from study.config import PROFILES
from study.errors import StudyError
from study.casestudy.sampler import read_samples
from tests.conftest import needs_browser


def _stand_ins(tmp_path_factory, name: str, build) -> Path:
    """`build` (a study.casestudy.stand_ins builder) into `<tmp>/sweep`, with a cache of its own."""
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(root / "cache"))
        build(root / "sweep", profile=PROFILES["smoke"])
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two small MobileNet-style classifiers in the fine-tuning sweep's layout, and their TF.js conversions."""
    return _stand_ins(tmp_path_factory, "browser", stand_ins.tiny_classifiers)


def _assert_nothing_left(record: dict) -> None:
    """No child of ours is still running, nor anything else in the browser's session."""
    alive = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left running: {[(p.pid, p.name()) for p in alive]}"
    sid = record["browser_pid"]
    leftovers = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    assert not leftovers, f"browser processes left running: {leftovers}"


@pytest.mark.slow
@needs_browser
def test_smoke_models_end_to_end_in_chromium_match_python(tiny):
    out = tiny / "browser"
    table = browser.browser_test(tiny / "sweep", out, profile=PROFILES["smoke"], backends=("wasm",), progress=False)
    assert list(table.columns[:7]) == ["model", "cpu", "elapse", "memory", "gpu", "gpu_memory", "accuracy"]
    assert list(table.columns) == list(browser.TABLE_X_COLUMNS)
    assert len(table) == 2 and set(table["status"]) == {"ok"}, table.to_string()
    conversions = pd.read_csv(out / "conversion.csv")
    assert list(conversions["status"]) == ["ok", "ok"]
    assert (conversions["size_mb"] > 0).all() and (conversions["seconds"] > 0).all()

    for model in browser.find_models(tiny / "sweep"):
        row = table[table["model"] == model.name].iloc[0]
        record = json.loads((out / "runs" / f"{model.name}__wasm.json").read_text())
        reference = browser_checks.python_reference(model)
        assert row["n_images"] == reference["n"] == len(model.images)
        # the browser's accuracy is TensorFlow-in-Python's on the same images, within one image
        assert abs(row["accuracy"] - reference["accuracy"]) <= 1 / reference["n"] + 1e-9
        agree = sum(a == b for a, b in zip(record["predictions"], reference["predictions"]))
        assert agree >= reference["n"] - 1
        assert len(set(reference["predictions"])) > 1, "a constant classifier would make this comparison vacuous"
        # the stats server sampled the run: at least one sample, finite CPU / memory, browser tree watched
        assert row["n_samples"] >= 1 and math.isfinite(row["cpu"]) and 0 < row["memory"] <= 100
        assert row["peak_rss_mb"] > 10  # Chromium's process tree, not an empty one
        assert row["ms_per_image"] > 0 and row["elapse_s"] > 0
        samples = read_samples(record["samples_csv"])
        assert len(samples) == row["n_samples"] and samples["tree_rss_mb"].max() == row["peak_rss_mb"]
        _assert_nothing_left(record)

    # resumable: a second call keeps the recorded rows and runs nothing
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    again = browser.browser_test(tiny / "sweep", out, profile=PROFILES["smoke"], backends=("wasm",), progress=False)
    assert again.equals(table)
    assert before == {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}

    # the Node.js path (pure @tensorflow/tfjs + wasm) computes the same function
    model = browser.find_models(tiny / "sweep")[0]
    node = browser_checks.node_check(model, out / "tfjs" / model.name / "model.json", backend="wasm")
    assert node["backend"] == "wasm"
    assert node["predictions"] == browser_checks.python_reference(model)["predictions"]


STALLING_PAGE = """<!doctype html><meta charset="utf-8"><title>stalls</title><script>
const q = new URLSearchParams(location.search);
const get = (path) => fetch(new URL(path, q.get('stats')), {cache: 'no-store'}).then((r) => r.json());
get('/start').then(() => get('/progress?n=3&correct=1'));   // ...and never /stop
</script>"""
SILENT_PAGE = """<!doctype html><meta charset="utf-8"><title>silent</title><script>while (false) {}</script>"""


@pytest.mark.slow
@needs_browser
@pytest.mark.parametrize("page, status, n", [(STALLING_PAGE, "partial", 3), (SILENT_PAGE, "timeout", 0)])
def test_watchdog_records_a_page_that_never_stops(tiny, tmp_path, page, status, n):
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text(page)
    (model,) = [m for m in browser.find_models(tiny / "sweep") if m.input_size == 32]
    conv = browser.convert(model, tmp_path / "tfjs")
    # The product's limits, but the one this page trips shortened to what the property needs: the silent page never
    # calls /start, however fast Chromium loads it (any start limit fires: 3 s); the stalling page reports its
    # progress in the same script turn as /start's answer and then does nothing, so 10 s without progress (hundreds of
    # times a local fetch's latency, also under load) can only be the stall. Both limits stay the watchdog's own code.
    smoke = browser.profile_limits(PROFILES["smoke"])
    limits = (dataclasses.replace(smoke, stall=min(smoke.stall, 10.0)) if n
              else dataclasses.replace(smoke, start=min(smoke.start, 3.0)))
    run = browser.run_browser(model, conv.model_json, tmp_path / "out", limits=limits, page=tmp_path / "page")
    assert run.row["status"] == status and run.row["n_images"] == n, run.record
    if n:
        assert run.row["accuracy"] == pytest.approx(1 / 3)  # over the images actually inferred
        assert limits.stall <= run.row["elapse_s"] < limits.total
        assert run.row["n_samples"] >= 1
    assert "reason" in run.record
    on_disk = json.loads((tmp_path / "out" / "runs" / f"{model.name}__wasm.json").read_text())
    assert on_disk["status"] == status
    _assert_nothing_left(run.record)


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_stats_server_validates_start_and_stop(tmp_path):
    record, samples = tmp_path / "run.json", tmp_path / "samples.csv"
    origin = "http://127.0.0.1:1"
    stats = stats_server.StatsServer(record, samples, allow_origin=origin, n_expected=10, interval=0.2)
    try:
        stats.set_pids([os.getpid()])
        assert _get(f"{stats.url}/stop?accuracy=0.5&n=4")[0] == 409  # not started
        code, headers, body = _get(f"{stats.url}/start")
        assert code == 200 and body["status"] == "sampling"
        assert headers["Access-Control-Allow-Origin"] == origin
        assert _get(f"{stats.url}/start")[0] == 409  # second /start while sampling
        for bad in ("", "n=4", "accuracy=&n=4", "accuracy=abc&n=4", "accuracy=1.5&n=4", "accuracy=-0.1&n=4",
                    "accuracy=nan&n=4", "accuracy=0.5", "accuracy=0.5&n=0", "accuracy=0.5&n=2.5", "accuracy=0.5&n=11",
                    "accuracy=0.5&n=4&correct=3", "accuracy=0.5&n=4&predictions=1,2"):
            code, headers, body = _get(f"{stats.url}/stop?{bad}")
            assert code == 400, bad
            assert "bad /stop" in body["error"] and headers["Access-Control-Allow-Origin"] == origin
        assert not record.exists()  # nothing written for a malformed /stop
        assert stats.sampler is not None and stats.sampler.alive  # ... and sampling goes on
        sampler_pid = stats.sampler.pid
        code, _, body = _get(f"{stats.url}/stop?accuracy=0.5&n=4&correct=2&ms_per_image=3.5")
        assert code == 200 and body == {"status": "stopped", "accuracy": 0.5, "n": 4}
        written = json.loads(record.read_text())
        assert written["status"] == "ok" and written["accuracy"] == 0.5 and written["n"] == 4
        assert written["n_samples"] >= 1 and samples.stat().st_size > 0
        assert not psutil.pid_exists(sampler_pid) or psutil.Process(sampler_pid).status() == psutil.STATUS_ZOMBIE
        stats._thread.join(timeout=5)  # /stop shuts the server down
        assert not stats._thread.is_alive()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{stats.url}/start", timeout=5)
    finally:
        stats.shutdown()


@pytest.mark.slow
@needs_browser
def test_conversion_failure_and_a_member_without_its_model_become_rows(tmp_path, monkeypatch):
    models = tmp_path / "sweep" / "models"
    for name, backend in (("broken", "tf"), ("efficientnet_lite0", "torch")):
        (models / name).mkdir(parents=True)
        (models / name / "meta.json").write_text(json.dumps(
            {"member": name, "backend": backend, "input_size": 32, "class_names": ["a", "b"],
             "test_images": [{"path": "/nonexistent.jpg", "label": 0}]}))
    (models / "broken" / "saved_model").mkdir()
    (models / "broken" / "saved_model" / "saved_model.pb").write_bytes(b"not a protobuf")
    table = browser.browser_test(tmp_path / "sweep", tmp_path / "out", profile=PROFILES["smoke"], progress=False)
    assert dict(zip(table["model"], table["status"])) == {"broken": "conversion_failed", "efficientnet_lite0": "skipped"}
    conversion = pd.read_csv(tmp_path / "out" / "conversion.csv").set_index("model")
    assert conversion.loc["broken", "error"]
    # a torch member goes through ONNX: skipped only because its checkpoint is missing, and the row says so
    assert "no model.pt" in conversion.loc["efficientnet_lite0", "error"]
    assert conversion.loc["efficientnet_lite0", "format"] == "onnx"
    assert table.set_index("model").loc["efficientnet_lite0", "runtime"] == "ONNX Runtime Web wasm (Chromium)"


@pytest.fixture(scope="module")
def tiny_torch(tmp_path_factory):
    """A small PyTorch classifier in the sweep's torch layout (model.pt, meta.json, predictions)."""
    return _stand_ins(tmp_path_factory, "browser-torch", stand_ins.tiny_torch_classifier)


@pytest.mark.slow
@needs_browser
def test_a_pytorch_member_runs_in_onnx_runtime_web_in_chromium_and_gives_pythons_classes(tiny_torch):
    out = tiny_torch / "browser"
    table = browser.browser_test(tiny_torch / "sweep", out, profile=PROFILES["smoke"], backends=("wasm", "webgl"),
                                 progress=False)
    assert list(table.columns) == list(browser.TABLE_X_COLUMNS)
    (model,) = browser.find_models(tiny_torch / "sweep")
    assert model.backend == "torch" and model.convertible
    rows = table.set_index("backend")
    # its runtime runs wasm only: the webgl row is skipped and says what it would have been
    assert rows.loc["webgl", "status"] == "skipped" and rows.loc["webgl", "n_images"] == 0
    row = rows.loc["wasm"]
    assert row["status"] == "ok", table.to_string()
    assert row["runtime"] == "ONNX Runtime Web wasm (Chromium)"
    conversion = pd.read_csv(out / "conversion.csv").set_index("model").loc[model.name]
    assert conversion["status"] == "ok" and conversion["format"] == "onnx" and conversion["size_mb"] > 0
    assert (out / "onnx" / model.name / "model.onnx").is_file()

    # the browser's classes are PyTorch-in-Python's on the same images, image by image
    record = json.loads((out / "runs" / f"{model.name}__wasm.json").read_text())
    reference = browser_checks.python_reference(model)
    assert row["n_images"] == reference["n"] == len(model.images)
    assert len(set(reference["predictions"])) > 1, "a constant classifier would make this comparison vacuous"
    assert record["predictions"] == reference["predictions"]
    assert row["accuracy"] == pytest.approx(reference["accuracy"])
    # measured like the TF.js rows: sampled by the stats server, per-image latency, nothing left running
    assert row["n_samples"] >= 1 and math.isfinite(row["cpu"]) and row["peak_rss_mb"] > 10
    assert row["ms_per_image"] > 0 and row["elapse_s"] > 0
    _assert_nothing_left(record)

    agreement = browser_checks.accuracy_comparison(tiny_torch / "sweep", out)
    assert agreement[["backend", "diff_images", "agreement"]].values.tolist() == [["wasm", 0, 1.0]]
    latency = browser_checks.latency_comparison(tiny_torch / "sweep", table, [model.name]).set_index("runtime")
    assert set(latency.index) == {"ONNX Runtime Web wasm (Chromium)", "PyTorch (Python)"}
    assert (latency["ms_per_image"] > 0).all()

    # the same ONNX file in Node.js (onnxruntime-web wasm) computes the same classes
    node = browser_checks.node_check(model, out / "onnx" / model.name / "model.onnx")
    assert node["backend"] == "wasm" and node["predictions"] == reference["predictions"]


def test_bad_input_gets_one_clear_error(tmp_path, monkeypatch):
    from study.cli import main

    with pytest.raises(StudyError, match="no fine-tuned models in .*finetune --out"):
        browser.find_models(tmp_path)
    assert main(["browser-test", "--profile", "smoke", "--models", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(StudyError, match="unknown TF.js backend"):
        browser.browser_test(tmp_path, tmp_path / "o", profile=PROFILES["smoke"], backends=("metal",))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StudyError, match="Chromium is not installed.*\n.*apt-get install -y chromium"):
        browser.browser_test(tmp_path, tmp_path / "o", profile=PROFILES["smoke"])


def test_the_latency_comparison_runs_on_as_many_members_as_the_profile_says():
    """Notebook 05's `latency_members = 0`: the profile's number (the smoke run compares the backends on its smallest
    member only); a number given wins; a negative one is one clear error."""
    assert browser.latency_members_for(PROFILES["smoke"]) == PROFILES["smoke"].latency_members == 1
    assert browser.latency_members_for(PROFILES["embedded"]) == PROFILES["embedded"].latency_members == 2
    assert browser.latency_members_for(PROFILES["smoke"], 3) == 3
    with pytest.raises(StudyError, match="latency_members must be 0 .the profile's: 1. or more, not -1"):
        browser.latency_members_for(PROFILES["smoke"], -1)
