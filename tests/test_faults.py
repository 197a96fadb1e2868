"""Fault injection: SIGKILL the driver of a long-running command at several points, then prove that nothing it
started still runs (by the PIDs it recorded in $STUDY_PID_LOG and its process tree, never by name), that a rerun
completes every run with the clean run's results, and that damaged outputs are detected and redone.

Each kill is sent while an event of the code under test holds: a failpoint (study.failpoints) makes the process that
reaches the event wait there, so the kill lands at the same place on a fast or a slow machine, and the test asserts
the event's precondition before it kills. Loopback only; each driver is bounded by a timeout. The fault matrix:
docs/faults.md.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from study.config import PROFILES
from study.errors import ResumeWarning
from study.runtime.processes import alive, read_pid_log
from tests.conftest import needs_browser
from tests.failpoint import Armed

pytestmark = [pytest.mark.slow, pytest.mark.stress]

MEMBER = "mobilenet_v1_025_128"  # the smallest smoke member
# A safety net, not a speed: the guards see their driver die at once; a loaded machine may take a while to reap.
GONE_WITHIN_S = 60.0


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_zoo):
    """One cache (synthetic flowers) for the module; the run's built zoo (no fault here hits a build: the clean sweep
    builds what the others read); outputs in temporary folders."""
    root = tmp_path_factory.mktemp("faults")
    return {**os.environ, "STUDY_CACHE_DIR": str(root / "cache"), "STUDY_RESULTS_DIR": str(root / "results"),
            "STUDY_FIGURES_DIR": str(root / "figures"), "STUDY_ZOO_DIR": str(shared_zoo),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _study(args: list[str], env: dict, pid_log: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study", *args], env={**env, "STUDY_PID_LOG": str(pid_log)},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def _kill_now(driver: subprocess.Popen, pid_log: Path) -> list[int]:
    """SIGKILL `driver` (waiting at a failpoint, or holding one of its processes there); returns every PID it had
    started (its tree + its PID log)."""
    assert driver.poll() is None, f"the driver ended before the kill point: {driver.communicate()[0][-2000:]}"
    tree = [p.pid for p in psutil.Process(driver.pid).children(recursive=True)]
    driver.kill()
    driver.communicate(timeout=30)
    return sorted(set(tree) | set(read_pid_log(pid_log)))


def _assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(pids)
    for pid in left:  # do not leak them into the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes still running {GONE_WITHIN_S:.0f} s after the driver's SIGKILL: {left}"


# --- the fine-tuning sweep ------------------------------------------------------------------------------

def _sweep_args(out: Path) -> list[str]:
    return ["finetune", "--profile", "smoke", "--members", MEMBER, "--out", str(out)]


def _run(args: list[str], env: dict, pid_log: Path, timeout: float = 300) -> str:
    proc = _study(args, env, pid_log)
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def clean_sweep(env, tmp_path_factory):
    """One uninterrupted sweep (umask 022): the reference every resumed sweep must equal."""
    out = tmp_path_factory.mktemp("clean") / "sweep"
    old = os.umask(0o022)
    try:
        _run(_sweep_args(out), env, out.parent / "pids.txt")
    finally:
        os.umask(old)
    return out


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "table_ix.csv")


def _assert_same_rows(table: pd.DataFrame, clean: pd.DataFrame) -> None:
    assert sorted(table["model"]) == sorted(clean["model"]) and (table["status"] == "ok").all()
    assert table.set_index("model")["accuracy"].to_dict() == clean.set_index("model")["accuracy"].to_dict()
    for col in ("delta_cpu", "delta_mem", "elapse_s", "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb"):
        assert table[col].map(math.isfinite).all(), col


KILL_POINTS = {  # kill point -> (the failpoint the run waits at, what holds there: run folder -> bool)
    "before-training": ("sweep.cooldown-before",
                        lambda run: (run / "samples.csv").exists() and not (run / "worker.pid").exists()),
    "during-training": ("training.running",
                        lambda run: (run / "worker.pid").exists() and not (run / "artifacts" / "result.json").exists()),
    "after-training": ("sweep.cooldown-after",  # the cool-down after, before the run is recorded
                       lambda run: (run / "artifacts" / "result.json").exists() and not (run.parent / "r0.json").exists()),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sweep_killed_leaves_nothing_and_resumes_exactly(point, env, clean_sweep, tmp_path):
    out, pid_log = tmp_path / "sweep", tmp_path / "pids.txt"
    run = out / "runs" / MEMBER / "r0"
    failpoint, holds = KILL_POINTS[point]
    armed = Armed(tmp_path / "failpoints", failpoint)
    driver = _study(_sweep_args(out), armed.env(env), pid_log)
    armed.wait(failpoint, driver)
    assert holds(run), f"{point}: the run is not where {failpoint} promises"
    pids = _kill_now(driver, pid_log)
    roles = read_pid_log(pid_log)
    assert "sampler" in roles.values() and (point == "before-training" or "training-worker" in roles.values())
    _assert_all_gone(pids)
    record = out / "runs" / MEMBER / "r0.json"
    assert not record.exists() or json.loads(record.read_text())["status"] != "ok"  # never ok: the driver died

    output = _run(_sweep_args(out), env, tmp_path / "pids2.txt")
    assert "resuming" not in output  # the cut run is redone, not counted as done
    _assert_same_rows(pd.read_csv(out / "table_ix.csv"), _table(clean_sweep))
    record_mtime = record.stat().st_mtime_ns
    _run(_sweep_args(out), env, tmp_path / "pids3.txt")
    assert record.stat().st_mtime_ns == record_mtime  # a finished run is never re-run ...
    assert not read_pid_log(tmp_path / "pids3.txt")  # ... the rerun started no process at all


DAMAGE = {  # what a crash (or a disk) may leave behind -> the file the warning must name
    "samples": lambda out: _truncate(out / "runs" / MEMBER / "r0" / "samples.csv"),
    "record": lambda out: _truncate(out / "runs" / MEMBER / "r0.json"),
    "model": lambda out: (out / "models" / MEMBER / "saved_model" / "saved_model.pb").unlink() or out / "models" / MEMBER,
    "predictions": lambda out: _truncate(out / "predictions" / f"{MEMBER}.csv"),
}


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@pytest.mark.parametrize("what", list(DAMAGE))
def test_damaged_outputs_are_detected(what, clean_sweep, tmp_path):
    from study.casestudy import integrity
    from study.casestudy.executors import sweep_config

    out = tmp_path / "sweep"
    shutil.copytree(clean_sweep, out)
    key = sweep_config(PROFILES["smoke"]).key()
    assert integrity.is_done(out, MEMBER, 0, key)
    named = DAMAGE[what](out)
    with pytest.warns(ResumeWarning, match=re.escape(str(named))):
        assert not integrity.is_done(out, MEMBER, 0, key)


def test_a_damaged_run_is_redone_with_a_warning(env, clean_sweep, tmp_path):
    out = tmp_path / "sweep"
    shutil.copytree(clean_sweep, out)
    named = DAMAGE["samples"](out)
    output = _run(_sweep_args(out), env, tmp_path / "pids.txt")
    assert "ResumeWarning" in output and str(named) in output and "resuming" not in output
    _assert_same_rows(_table(out), _table(clean_sweep))


def test_outputs_honour_the_umask(clean_sweep):
    out = clean_sweep  # written under umask 022
    for path in [out / "table_ix.csv", out / "samples" / f"{MEMBER}.csv", out / "runs" / MEMBER / "r0.json",
                 out / "predictions" / f"{MEMBER}.csv", out / "models" / MEMBER / "meta.json"]:
        assert path.stat().st_mode & 0o777 == 0o644, path
    for folder in [out / "models" / MEMBER, out / "samples", out / "runs" / MEMBER]:
        assert folder.stat().st_mode & 0o777 == 0o755, folder


# --- the browser test -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(env, tmp_path_factory):
    from study.casestudy import stand_ins

    root = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDY_CACHE_DIR", env["STUDY_CACHE_DIR"])
        stand_ins.tiny_classifiers(root / "sweep", profile=PROFILES["smoke"], sizes=(32,))
    return root / "sweep"


@needs_browser
def test_browser_test_killed_leaves_no_chromium_and_resumes(env, tiny, tmp_path):
    args = ["browser-test", "--profile", "smoke", "--models", str(tiny), "--out"]
    clean = tmp_path / "clean"
    _run([*args, str(clean)], env, tmp_path / "pids0.txt")
    out, pid_log = tmp_path / "out", tmp_path / "pids.txt"
    armed = Armed(tmp_path / "failpoints", "browser.start")
    driver = _study([*args, str(out)], armed.env(env), pid_log)
    armed.wait("browser.start", driver)  # mid-run: Chromium has loaded the page and asked the stats server to start
    chromium = [pid for pid, role in read_pid_log(pid_log).items() if role == "chromium"]
    assert chromium and alive(chromium), "Chromium is not running at the kill point"
    assert not (out / "table_x.csv").exists()  # no run of this test finished yet
    pids = _kill_now(driver, pid_log)
    _assert_all_gone(pids)
    _run([*args, str(out)], env, tmp_path / "pids2.txt")
    a, b = pd.read_csv(out / "table_x.csv"), pd.read_csv(clean / "table_x.csv")
    assert (a["status"] == "ok").all() and sorted(a["model"]) == sorted(b["model"])
    assert a.set_index("model")["accuracy"].to_dict() == b.set_index("model")["accuracy"].to_dict()
    _truncate(out / "table_x.csv")
    redo = _run([*args, str(out)], env, tmp_path / "pids3.txt")
    assert "ResumeWarning" in redo and str(out / "table_x.csv") in redo
    assert (pd.read_csv(out / "table_x.csv")["status"] == "ok").all()


# --- per-member deployment fidelity (deploy --sweep) ----------------------------------------------------------

def test_deploy_sweep_killed_leaves_no_runtime_and_resumes(env, tiny, tmp_path):
    """SIGKILL while a runtime process (a fresh Python worker or Node.js) measures a format: nothing outlives the
    driver; the rerun keeps the rows measured before the kill and ends with the clean run's statuses."""
    formats = ["saved_model", "litert_float32", "litert_dynamic_int8", "tfjs_graph_model_node"]
    args = ["deploy", "--sweep", str(tiny), "--profile", "smoke", "--browser-members", "0", "--formats", *formats]
    clean = tmp_path / "clean"
    _run([*args, "--work", str(clean), "--csv", str(tmp_path / "clean.csv")], env, tmp_path / "pids0.txt")
    out, pid_log = tmp_path / "out", tmp_path / "pids.txt"
    armed = Armed(tmp_path / "failpoints", "fidelity.row-appended@1")  # the driver waits after its first row
    driver = _study([*args, "--work", str(out), "--csv", str(tmp_path / "out.csv")], armed.env(env), pid_log)
    armed.wait("fidelity.row-appended", driver)
    workers = [" ".join(p.cmdline()) for p in psutil.Process(driver.pid).children(recursive=True)]
    assert any("study.deployment.worker" in c for c in workers), f"no runtime process at the kill point: {workers}"
    before = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(before) == 1 < len(formats)  # after the first row, before the last (`tiny` is one member)
    pids = _kill_now(driver, pid_log)
    _assert_all_gone(pids)
    _run([*args, "--work", str(out), "--csv", str(tmp_path / "out.csv")], env, tmp_path / "pids2.txt")
    a, b = pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "clean.csv")
    assert len(a) == len(b) == len(formats)
    key = ["member", "format"]
    assert a.set_index(key)["status"].sort_index().equals(b.set_index(key)["status"].sort_index())
    after = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert after[:len(before)] == before  # measured rows are kept, never rewritten
    assert len(after) == len(formats)  # and only the rest was measured


# --- publishing versions (RQ3) ----------------------------------------------------------------------------

def test_publish_killed_keeps_finished_versions_and_completes(env, tmp_path):
    """SIGKILL once the first version is published: the rerun keeps it byte for byte, publishes the rest and
    leaves no temporary folder of the killed run."""
    out, pid_log = tmp_path / "published", tmp_path / "pids.txt"
    args = ["publish", "--member", MEMBER, "--out", str(out)]
    armed = Armed(tmp_path / "failpoints", "publish.version-done@1")
    driver = _study(args, armed.env(env), pid_log)
    armed.wait("publish.version-done", driver)
    [first] = out.glob("v*/version.json")  # exactly one version is published at the kill
    _assert_all_gone(_kill_now(driver, pid_log))
    kept = first.read_bytes()
    _run(args, env, tmp_path / "pids2.txt")
    versions = sorted(p.parent.name for p in out.glob("v*/version.json"))
    assert len(versions) > 1 and first.read_bytes() == kept  # the rerun published the rest
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.is_dir()], "temporary folders left"
    listed = json.loads((out / "versions.json").read_text())["versions"]
    assert sorted(listed) == versions


# --- reproduce ------------------------------------------------------------------------------------------

def test_reproduce_killed_leaves_no_kernel_and_a_second_one_refuses(env, tmp_path):
    # 07 on its own: the stated noise and no sampling error instead of notebook 04's (which this test does not run)
    args = ["reproduce", "--profile", "smoke", "--only", "07_paper_audit", "--param", "noise_model=", "--param",
            "sampling="]
    pid_log = tmp_path / "pids.txt"
    armed = Armed(tmp_path / "failpoints", "report.table@1")  # the kernel waits at notebook 07's first table
    first = _study(args, armed.env(env), pid_log)
    kernel = armed.wait("report.table", first)
    assert kernel in [p.pid for p in psutil.Process(first.pid).children(recursive=True)]
    assert "ipykernel" in " ".join(psutil.Process(kernel).cmdline())
    second = subprocess.run([sys.executable, "-m", "study", *args], env=env, text=True, capture_output=True,
                            timeout=120)
    assert second.returncode == 2 and "already running in this checkout" in second.stderr, second.stderr
    assert f"PID {first.pid}" in second.stderr
    pids = _kill_now(first, pid_log)
    assert kernel in pids
    _assert_all_gone(pids)
    output = _run(args, env, tmp_path / "pids2.txt", timeout=240)  # the lock died with its holder
    assert "07_paper_audit: re-run: no finished run recorded -> done in" in output  # the killed run is redone
    noise = [ln for ln in output.splitlines() if "absl::InitializeLog" in ln or "oneDNN" in ln]
    assert not noise, noise
