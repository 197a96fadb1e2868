"""The runtime pool (study.deployment.worker.runtime_pool): a Python row forked from a process that imported its
runtime once reports what a fresh interpreter reports, fails like one, is killed by PID at its timeout, and leaves no
process behind."""
from __future__ import annotations

import time

import numpy as np
import pytest

from study.deployment import worker
from study.runtime import processes

pytestmark = [pytest.mark.slow, pytest.mark.stress]  # each test starts TensorFlow in a child process


def _run(path, x, work, **kw):
    return worker.run_python_worker("saved_model", path, x, work, warmup=kw.pop("warmup", 1),
                                    repeats=kw.pop("repeats", 3), timeout=kw.pop("timeout", 300))


def test_a_forked_row_reports_what_a_fresh_interpreter_reports(tiny_saved_model, tmp_path, monkeypatch):
    path, x, expected = tiny_saved_model  # tests/deployment/conftest.py
    pids = tmp_path / "pids.log"
    monkeypatch.setenv("STUDY_PID_LOG", str(pids))
    fresh = _run(path, x, tmp_path)
    with worker.runtime_pool(tmp_path) as pool:
        forked = [_run(path, x, tmp_path) for _ in range(2)]
        runtime = pool.processes["tensorflow"].proc.pid
        assert len(pool.processes) == 1  # both rows forked from one TensorFlow process
    for run in (fresh, *forked):
        np.testing.assert_array_equal(run.outputs, expected)
        assert run.load_ms > 0 and len(run.latencies_ms) == 3
    assert "forked from the tensorflow runtime process" in forked[0].process and "forked" not in fresh.process
    # the fork's resident set is filled to the runtime process's before it loads: its peak counts the imported
    # runtime like a fresh interpreter's (without that it starts at the fork's private pages only, ~40 % of it)
    for run in forked:
        assert abs(run.peak_rss_mb - fresh.peak_rss_mb) < 0.1 * fresh.peak_rss_mb, (run.peak_rss_mb, fresh.peak_rss_mb)
    roles = processes.read_pid_log(pids)
    workers = [pid for pid, role in roles.items() if role == "deployment-runtime"]
    assert runtime in roles and len(workers) == 2
    assert not processes.alive(list(roles)), "a runtime process or a worker outlived the pool"


def test_a_failing_row_is_an_error_with_its_log_and_the_runtime_process_goes_on(tiny_saved_model, tmp_path):
    path, x, expected = tiny_saved_model  # tests/deployment/conftest.py
    with worker.runtime_pool(tmp_path) as pool:
        with pytest.raises(RuntimeError, match=r"exit 1: .*(saved_model|SavedModel|No such file)"):
            _run(tmp_path / "missing", x, tmp_path)
        np.testing.assert_array_equal(_run(path, x, tmp_path).outputs, expected)
        assert len(pool.processes) == 1


def test_a_row_past_its_timeout_is_killed_by_pid(tiny_saved_model, tmp_path, monkeypatch):
    path, x, expected = tiny_saved_model  # tests/deployment/conftest.py
    pids = tmp_path / "pids.log"
    monkeypatch.setenv("STUDY_PID_LOG", str(pids))
    with worker.runtime_pool(tmp_path):
        _run(path, x, tmp_path)  # the runtime process is up: the timeout below is the worker's alone
        with pytest.raises(RuntimeError, match="timed out"):
            _run(path, x, tmp_path, repeats=10**9, timeout=3)  # never ends on any machine
        killed = max(pid for pid, role in processes.read_pid_log(pids).items() if role == "deployment-runtime")
        deadline = time.monotonic() + 60  # a safety net: the runtime process reaps it at once
        while processes.alive([killed]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes.alive([killed])
        np.testing.assert_array_equal(_run(path, x, tmp_path).outputs, expected)  # the pool still serves
