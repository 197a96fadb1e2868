"""Process lifecycle (children die with their driver, also on SIGKILL), umask-honouring atomic writes, the
reproduce lock, damaged-file detection, and TensorFlow's load-time lines kept off our output."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from study import files
from study.errors import ResumeWarning, StudyError
from study.runtime.processes import alive, read_pid_log

pytestmark = pytest.mark.stress  # `make test-stress` runs it under load

ROOT = Path(__file__).resolve().parents[2]
DRIVER = textwrap.dedent("""
    import time
    from study.runtime.processes import popen
    popen(["sleep", "300"], role="plain")
    popen(["bash", "-c", "sleep 300 & sleep 300"], role="tree", group=True)  # a tree: bash and two children
    print("started", flush=True)
    time.sleep(300)
""")


def test_children_and_their_groups_die_with_a_sigkilled_driver(tmp_path):
    import psutil

    log = tmp_path / "pids.txt"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "STUDY_PID_LOG": str(log)})
    assert driver.stdout.readline().strip() == "started"
    roles = read_pid_log(log)
    assert sorted(roles.values()) == ["plain", "tree", "tree-guard"]
    tree_root = next(pid for pid, role in roles.items() if role == "tree")
    deadline = time.monotonic() + 20  # bash forks its two sleeps a moment after popen returns
    while len(psutil.Process(tree_root).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [*roles, *(c.pid for c in psutil.Process(tree_root).children())]
    assert len(pids) == 5 and not set(alive(pids)) ^ set(pids)
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 60  # a safety net, not a speed: a loaded machine may take a while to reap
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(pids) == [], f"left running after the driver's SIGKILL: {alive(pids)}"


def test_a_released_group_guard_leaves_quietly():
    from study.runtime.processes import kill_group, popen

    proc = popen(["bash", "-c", "sleep 300 & sleep 300"], role="tree", group=True)
    guard = proc.guard
    kill_group(proc)
    assert guard.returncode == 0 and proc.guard is None and proc.returncode < 0


def test_atomic_writes_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_text(tmp_path / "a.txt", "x")
        with files.atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def test_exclusive_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from study import files\n"
                               f"with files.exclusive({str(tmp_path / 'x')!r}, 'the job'):\n"
                               "    print('held', flush=True); time.sleep(300)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StudyError, match=rf"the job is already running in this checkout \(PID {holder.pid}"):
        with files.exclusive(tmp_path / "x", "the job"):
            pass
    holder.kill()  # the kernel drops the flock of a killed holder: no stale lock
    holder.wait()
    with files.exclusive(tmp_path / "x", "the job"):
        pass


def test_damage_names_truncated_and_unparsable_files(tmp_path):
    good = files.write_csv(tmp_path / "t.csv", __import__("pandas").DataFrame({"a": [1, 2, 3]}))
    assert files.damage(good) is None and files.damage(good, rows=3) is None
    assert "has 3 rows, expected 4" in files.damage(good, rows=4)
    (tmp_path / "cut.csv").write_text("a,b\n1,2\n3")
    assert "truncated" in files.damage(tmp_path / "cut.csv")
    (tmp_path / "r.json").write_text('{"status": "o')
    assert str(tmp_path / "r.json") in files.damage(tmp_path / "r.json")
    assert "missing" in files.damage(tmp_path / "none.json")


def test_deploy_resume_drops_a_row_cut_mid_write(tmp_path):
    from study.deployment.matrix import _finished_rows

    log = tmp_path / "rows.jsonl"
    log.write_text('{"framework": "tf", "form')
    with pytest.warns(ResumeWarning, match=f"{log} line 1 is damaged"):
        assert _finished_rows(log) == []


KERAS_3_LOADED = "sorted(m for m, v in sys.modules.items() if m.split('.')[0] == 'keras' and v is not None)"


def test_tensorflow_load_lines_stay_off_stderr_unless_verbose(tmp_path):
    code = ("from study.runtime.processes import quiet_tensorflow; quiet_tensorflow(); import tensorflow as tf\n"
            f"import sys; print(tf.keras.__name__, {KERAS_3_LOADED})")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "STUDY_VERBOSE", "TF_USE_LEGACY"))}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**env, "PYTHONPATH": str(ROOT)})
    assert quiet.returncode == 0 and "absl::InitializeLog" not in quiet.stderr and "oneDNN" not in quiet.stderr
    # importing study made tf.keras Keras 2 (tf-keras, what hub.KerasLayer needs): Keras 3 never loaded
    assert quiet.stdout.split() == ["tf_keras.api._v2.keras", "[]"], quiet.stdout
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT), "STUDY_VERBOSE": "1"})
    assert "oneDNN custom operations are on" in loud.stderr  # the filter is what removes it; oneDNN stays on
    # nor when TF Hub builds a KerasLayer from a SavedModel path (its lookup of Keras 2's load options would import
    # Keras 3 only to fail): the layer loads and computes as before
    code = ("import study, sys, numpy as np, tensorflow as tf, tensorflow_hub as hub\n"
            "class Double(tf.Module):\n"
            "    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])\n"
            "    def __call__(self, x):\n"
            "        return 2.0 * x\n"
            "tf.saved_model.save(Double(), sys.argv[1])\n"
            "y = hub.KerasLayer(sys.argv[1])(np.ones((1, 2), np.float32)).numpy().tolist()\n"
            f"print(y, {KERAS_3_LOADED}, 'matplotlib' in sys.modules)")
    layer = subprocess.run([sys.executable, "-c", code, str(tmp_path / "double")], capture_output=True, text=True,
                           timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert layer.returncode == 0, layer.stderr[-3000:]
    assert layer.stdout.split("\n")[-2] == "[[2.0, 2.0]] [] False", layer.stdout
