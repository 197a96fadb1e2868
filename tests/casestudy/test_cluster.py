"""LocalCluster's start policy: a node whose raylet missed Ray's fixed 30 s registration window is restarted.

Ray itself is exercised in test_ray_executor.py; here a stand-in `ray` executable plays a node that times out
(the message Ray prints), so the retry policy is checked deterministically.
"""
from __future__ import annotations

import os
import stat
import textwrap

import pytest

from study.casestudy import cluster
from study.errors import StudyError

FAKE_RAY = textwrap.dedent("""\
    #!/bin/sh
    n=$(cat "{counter}" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "{counter}"
    if [ $n -le {fail} ]; then
        echo "Exception: The current node {message}."; exit 1
    fi
    echo "Ray runtime started."; exec sleep 60
""")


def _fake_ray(tmp_path, fail: int, message: str = cluster.RAY_START_TIMEOUT) -> tuple:
    script, counter = tmp_path / "ray", tmp_path / "count"
    script.write_text(FAKE_RAY.format(counter=counter, fail=fail, message=message))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), counter


def test_a_node_that_timed_out_during_startup_is_started_again(tmp_path, monkeypatch):
    script, counter = _fake_ray(tmp_path, fail=2)
    monkeypatch.setattr(cluster, "ray_command", lambda: [script])
    with cluster.LocalCluster(nodes=1, temp_dir=tmp_path / "session", start_timeout=10) as c:
        assert len(c.started) == 1 and c.started[0].proc.poll() is None
        pid = c.started[0].pid
    assert counter.read_text().strip() == "3"  # two timed-out starts, then one that joined
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped by its PID on exit


def test_startup_timeouts_give_up_after_the_attempts(tmp_path, monkeypatch):
    script, counter = _fake_ray(tmp_path, fail=99)
    monkeypatch.setattr(cluster, "ray_command", lambda: [script])
    with pytest.raises(StudyError, match="timed out during startup"):
        cluster.LocalCluster(nodes=1, temp_dir=tmp_path / "session", start_timeout=10, start_attempts=2).start()
    assert counter.read_text().strip() == "2"


def test_other_start_failures_are_not_retried(tmp_path, monkeypatch):
    script, counter = _fake_ray(tmp_path, fail=99, message="failed: port in use")
    monkeypatch.setattr(cluster, "ray_command", lambda: [script])
    with pytest.raises(StudyError, match="port in use"):
        cluster.LocalCluster(nodes=1, temp_dir=tmp_path / "session", start_timeout=10).start()
    assert counter.read_text().strip() == "1"
