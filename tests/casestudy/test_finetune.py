"""The fine-tuning sweep: real workers on the smoke zoo, the watchdog, resume, atomic tables, the contract layout."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from study.casestudy import executors, finetune, training
from study.casestudy.executors import LocalExecutor, RunJob
from study.casestudy.finetune import TABLE_IX_COLUMNS
from study.casestudy.training import WorkerSpec
from study.config import PROFILES
from study.errors import ResumeWarning, StudyError
from tests.failpoint import Armed

SMOKE = ["mobilenet_v1_025_128", "mobilenet_v2_035_96"]  # the smoke profile's two tiny MobileNets: seconds a run


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_zoo):
    """One generated-inputs cache for the module (synthetic flowers); the embedded assets from the run's shared zoo
    (built once a run: no test here is about building)."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", str(cache))
        mp.setenv("STUDY_ZOO_DIR", str(shared_zoo))
        mp.setenv("STUDY_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
        yield {**os.environ}


def _cli(args, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "study", "finetune", *args], env=env, text=True,
                          capture_output=True, **kw)


# --- bad input: one clear error, before anything trains ------------------------------------------------

def test_unknown_member_is_an_error_listing_the_valid_ones(tmp_path):
    with pytest.raises(StudyError, match="valid members: .*mobilenet_v2_100_160"):
        finetune.sweep(tmp_path, PROFILES["smoke"], ["mobilenet_v9_000_1"])


def test_unwritable_output_is_an_error_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StudyError, match="not writable.*--out"):
        finetune.sweep(blocker / "out", PROFILES["smoke"])
    with pytest.raises(StudyError, match="MB free"):
        finetune.sweep(tmp_path / "out", PROFILES["smoke"], min_free_mb=1e12)


def test_bad_parameters_are_clear_errors(tmp_path):
    for kwargs, msg in (({"mode": "half"}, "valid modes"), ({"epochs": 0}, "epochs"), ({"repeats": 0}, "repeats"),
                        ({"interval": 0.01}, "minimum")):
        with pytest.raises(StudyError, match=msg):
            finetune.sweep(tmp_path, PROFILES["smoke"], **kwargs)
    with pytest.raises(StudyError, match="unknown executor"):
        executors.get_executor("slurm")


# --- the table from run records ----------------------------------------------------------------------

def _record(member, repeat, status="ok", **values):
    cfg = executors.sweep_config(PROFILES["smoke"])
    base = {"member": member, "repeat": repeat, "status": status, "reason": "" if status == "ok" else "why",
            "elapse_s": 100.0, "accuracy": 0.5, "val_accuracy": 0.5, "train_s": 50.0, "delta_cpu": 50.0,
            "delta_mem": 2.0, "delta_cpu_tree": 40.0, "delta_mem_tree": 1.5, "peak_rss_mb": 900.0, "gpu": None,
            "gpu_memory": None, "n_samples": 30, "config": cfg.key(), "worker": {"backend": "tf"}}
    return {**base, **values}


def test_table_ix_averages_repeats_and_records_bad_runs():
    cfg = executors.sweep_config(PROFILES["smoke"])
    records = [_record("b", 0, accuracy=0.4, elapse_s=160), _record("b", 1, accuracy=0.6, elapse_s=170),
               _record("a", 0, status="killed", accuracy=None, elapse_s=12.0),
               _record("c", 0, config={"other": 1})]  # another config: not in this table
    table = finetune.table_ix(records, cfg, order=["b", "a"])
    assert list(table.columns[:len(TABLE_IX_COLUMNS)]) == TABLE_IX_COLUMNS
    assert list(table["model"]) == ["b", "a"]
    b, a = table.iloc[0], table.iloc[1]
    assert b["status"] == "ok" and b["repeats"] == 2 and b["accuracy"] == pytest.approx(0.5)
    assert b["elapse"] == "0:02:45" and b["elapse_s_std"] == pytest.approx(7.0711, rel=1e-3)
    assert a["status"] == "killed" and "r0: why" in a["reason"] and math.isnan(a["accuracy"])
    assert a["elapse_s"] == 12.0  # what was measured before the kill is kept


def _published(out, member="m", n_samples=30):
    """What an ok run leaves besides its record: samples, model folder, predictions (whole)."""
    run = out / "runs" / member / "r0"
    run.mkdir(parents=True)
    pd.DataFrame({"t": range(n_samples), "phase": "running", "cpu": 1.0}).to_csv(run / "samples.csv", index=False)
    (out / "models" / member / "saved_model").mkdir(parents=True)
    (out / "models" / member / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    (out / "models" / member / "meta.json").write_text(json.dumps({"test_images": [{"path": "a", "label": 0}]}))
    (out / "predictions").mkdir()
    (out / "predictions" / f"{member}.csv").write_text("path,label,prediction\na,0,0\n")


def test_resume_needs_an_ok_record_of_the_same_config(tmp_path):
    cfg = executors.sweep_config(PROFILES["smoke"])
    path = tmp_path / "runs" / "m" / "r0.json"
    _published(tmp_path)
    for rec, done in ((_record("m", 0), True), (_record("m", 0, status="timeout"), False),
                      (_record("m", 0, config={**cfg.key(), "epochs": 9}), False)):
        path.write_text(json.dumps(rec))
        assert finetune._is_done(tmp_path, "m", 0, cfg) is done
    path.write_text('{"member": "m", "status": "o')  # half-written by a kill: rerun, not a crash
    with pytest.warns(ResumeWarning, match=f"its record is damaged: {path}"):
        assert not finetune._is_done(tmp_path, "m", 0, cfg)


@pytest.mark.stress
def test_a_kill_during_the_table_write_leaves_the_previous_table_intact(tmp_path):
    old = pd.DataFrame({"model": ["a"], "delta_cpu": [1.0]})
    finetune.write_table_ix(tmp_path, old)
    new = pd.DataFrame({"model": ["a", "b"], "delta_cpu": [2.0, 3.0]})
    writer = ("import pandas as pd; from study.casestudy import finetune\n"
              f"finetune.write_table_ix({str(tmp_path)!r}, pd.DataFrame({new.to_dict('list')!r}))\n")
    armed = Armed(tmp_path / "failpoints", "files.before-replace")  # the new table written whole, not yet in place
    proc = subprocess.Popen([sys.executable, "-c", writer], env=armed.env(dict(os.environ)))
    assert armed.wait("files.before-replace", proc, timeout=120) == proc.pid
    [tmp] = tmp_path.glob(".table_ix.csv.*.tmp")
    pd.testing.assert_frame_equal(pd.read_csv(tmp), new)  # the kill comes after the whole new table was written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "table_ix.csv"), old)


# --- real runs -------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.stress
def test_smoke_sweep_survives_a_sigkilled_worker_and_resumes(tmp_path, env):
    out = tmp_path / "sweep"
    armed = Armed(tmp_path / "failpoints", "training.running@1")  # the first member's worker waits mid-run
    first = subprocess.Popen([sys.executable, "-m", "study", "finetune", "--profile", "smoke", "--members", *SMOKE,
                              "--out", str(out)],
                             env=armed.env(env), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker = armed.wait("training.running", first)
    pid_file = out / "runs" / SMOKE[0] / "r0" / "worker.pid"
    samples = pid_file.parent / "samples.csv"  # mid-run: the sampler measures the running worker
    deadline = time.monotonic() + 240
    while not (samples.exists() and "running" in samples.read_text()):  # the Sampler's next slot (not a speed)
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert int(pid_file.read_text()) == worker
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 1, stderr  # not every member ok
    table = pd.read_csv(out / "table_ix.csv")
    killed, ok = table.set_index("model").loc[SMOKE[0]], table.set_index("model").loc[SMOKE[1]]
    assert killed["status"] == "killed" and "SIGKILL" in killed["reason"]
    assert killed["elapse_s"] > 0 and killed["n_samples"] > 0 and math.isnan(killed["accuracy"])
    assert ok["status"] == "ok"
    done_record = out / "runs" / SMOKE[1] / "r0.json"
    mtime = done_record.stat().st_mtime_ns

    rerun = _cli(["--profile", "smoke", "--members", *SMOKE, "--out", str(out)], env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming: 1 of 2 runs already done" in rerun.stderr + rerun.stdout
    assert done_record.stat().st_mtime_ns == mtime  # the complete member was skipped

    table = pd.read_csv(out / "table_ix.csv")
    assert list(table.columns[:len(TABLE_IX_COLUMNS)]) == TABLE_IX_COLUMNS
    assert sorted(table["model"]) == sorted(SMOKE) and (table["status"] == "ok").all()
    for col in ("delta_cpu", "delta_mem", "elapse_s", "accuracy", "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb"):
        assert table[col].map(math.isfinite).all(), col
    assert table["gpu"].isna().all() or table["gpu"].map(math.isfinite).all()
    assert table["elapse"].str.fullmatch(r"\d+:\d\d:\d\d").all()
    assert ((table["accuracy"] >= 0) & (table["accuracy"] <= 1)).all() and (table["peak_rss_mb"] > 50).all()
    for member in SMOKE:  # the layout other modules consume
        samples = pd.read_csv(out / "samples" / f"{member}.csv")
        assert {"cooldown-before", "running", "cooldown-after"} <= set(samples["phase"])
        assert (out / "models" / member / "saved_model" / "saved_model.pb").exists()
        meta = json.loads((out / "models" / member / "meta.json").read_text())
        assert {"member", "backend", "input_size", "class_names", "test_accuracy", "test_images"} <= set(meta)
        preds = pd.read_csv(out / "predictions" / f"{member}.csv")
        assert list(preds.columns) == ["path", "label", "prediction"] and len(preds) == len(meta["test_images"])
        assert (preds["label"] == preds["prediction"]).mean() == pytest.approx(meta["test_accuracy"])
    record = json.loads(done_record.read_text())
    assert {"tensorflow-cpu", "tf-keras", "numpy"} <= set(record["worker"]["versions"])
    assert "tf_intra_op" in record["worker"]["threads"]


@pytest.mark.slow
@pytest.mark.stress
def test_the_watchdog_kills_a_stuck_run_and_the_sweep_goes_on(tmp_path, env, monkeypatch):
    for name, value in Armed(tmp_path / "failpoints", "training.running").env({}).items():
        monkeypatch.setenv(name, value)  # the worker is stuck (it waits there until killed), however fast it is
    table = finetune.sweep(tmp_path, PROFILES["smoke"], SMOKE[:1], timeout_s=1.0, progress=False)
    row = table.iloc[0]
    assert row["status"] == "timeout" and "watchdog" in row["reason"]
    # never before the limit; how soon after it: benchmarks/bench_fail_fast.py
    assert row["elapse_s"] >= 1.0 and row["n_samples"] > 0
    assert not (tmp_path / "models" / SMOKE[0]).exists()


@pytest.mark.slow
@pytest.mark.stress
def test_a_dead_sampler_makes_the_run_invalid(tmp_path, env, monkeypatch):
    for name, value in Armed(tmp_path / "failpoints", "training.running").env({}).items():
        monkeypatch.setenv(name, value)  # the worker cannot finish before the sampler's death is seen

    def kill_sampler(job, worker_pid, sampler_pid):
        os.kill(sampler_pid, signal.SIGKILL)

    cfg = executors.sweep_config(PROFILES["smoke"])
    result = LocalExecutor(on_start=kill_sampler).run(RunJob(SMOKE[0], 0, cfg, tmp_path / "run"))
    assert result.status == "invalid" and "sampler" in result.reason
    assert result.artifacts is None


@pytest.mark.slow
def test_full_fine_tuning_saves_a_serving_classifier(tmp_path, env):
    """In-process: the backbone trains (full mode) and the SavedModel's serving_default is the contract's."""
    import numpy as np
    import tensorflow as tf

    from study.runtime.images import load_images

    spec = WorkerSpec(member=SMOKE[1], profile="smoke", epochs=1, mode="full", out=str(tmp_path))
    result = training.train_member(spec)
    assert len(result["history"]["loss"]) == 1 and 0 <= result["accuracy"] <= 1
    meta = json.loads((tmp_path / "meta.json").read_text())
    images = load_images([t["path"] for t in meta["test_images"]], meta["input_size"])
    serve = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    probs = serve(tf.constant(images))["probabilities"].numpy()
    assert probs.shape == (len(images), len(meta["class_names"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    preds = pd.read_csv(tmp_path / "predictions.csv")
    assert (probs.argmax(axis=1) == preds["prediction"]).mean() > 0.95  # same model, same images


@pytest.mark.slow
def test_torch_member_frozen_with_cached_features(tmp_path, env):
    import torch

    from study.runtime.images import load_images

    spec = WorkerSpec(member="efficientnet_lite0", profile="smoke", epochs=2, mode="frozen", out=str(tmp_path))
    result = training.train_member(spec)
    assert "features_s" in result["timings"] and result["backend"] == "torch"
    meta = json.loads((tmp_path / "meta.json").read_text())
    model = training.load_torch_classifier(tmp_path / "model.pt", PROFILES["smoke"])
    x = load_images([t["path"] for t in meta["test_images"]], meta["input_size"])
    with torch.no_grad():
        probs = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    preds = pd.read_csv(tmp_path / "predictions.csv")
    assert (probs.argmax(1).numpy() == preds["prediction"].to_numpy()).all()
    assert result["accuracy"] > 0.4  # real ImageNet weights: well above chance (0.2) on the flowers
