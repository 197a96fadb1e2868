"""study.failpoints: the Nth arrival machine-wide waits until released; disarmed, nothing waits."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from study import failpoints
from tests.failpoint import Armed

pytestmark = pytest.mark.stress  # `make test-stress` runs it under load

ROOT = Path(__file__).resolve().parents[1]


def _arrive(env: dict[str, str], name: str) -> subprocess.Popen:
    code = f"from study import failpoints; failpoints.reached({name!r}); print('passed', flush=True)"
    return subprocess.Popen([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_disarmed_points_return_at_once(monkeypatch):
    monkeypatch.delenv(failpoints.ENV, raising=False)
    failpoints.reached("report.table")  # would wait forever if armed: returns


def test_the_second_arrival_across_processes_waits_until_released(tmp_path):
    armed = Armed(tmp_path / "fp", "report.table@2")
    env = armed.env(dict(os.environ))
    first = _arrive(env, "report.table")
    assert first.communicate(timeout=60)[0] == "passed\n"  # hit 1: not armed for it
    second = _arrive(env, "report.table")
    pid = armed.wait("report.table", second)
    assert pid == second.pid and second.poll() is None  # it waits there ...
    third = _arrive(env, "report.table")
    assert third.communicate(timeout=60)[0] == "passed\n"  # ... while later arrivals pass
    assert second.poll() is None
    armed.release("report.table")
    assert second.communicate(timeout=60)[0] == "passed\n"
    assert (tmp_path / "fp" / "report.table.hits").read_text().split() == [str(p.pid) for p in (first, second, third)]


def test_two_arrivals_of_one_point_wait_each_on_its_own(tmp_path):
    armed = Armed(tmp_path / "fp", "report.table@1", "report.table@3")
    env = armed.env(dict(os.environ))
    first = _arrive(env, "report.table")
    assert armed.wait("report.table@1", first) == first.pid
    second = _arrive(env, "report.table")
    assert second.communicate(timeout=60)[0] == "passed\n"  # hit 2: not armed
    third = _arrive(env, "report.table")
    assert armed.wait("report.table@3", third) == third.pid
    armed.release("report.table@3")  # released in the other order: each waits for its own release
    assert third.communicate(timeout=60)[0] == "passed\n"
    assert first.poll() is None
    armed.release("report.table@1")
    assert first.communicate(timeout=60)[0] == "passed\n"
    with pytest.raises(AssertionError, match=r"report.table is armed for hits \[1, 3\]: say which"):
        armed.wait("report.table")


def test_other_points_are_not_held(tmp_path):
    armed = Armed(tmp_path / "fp", "report.table")
    proc = _arrive(armed.env(dict(os.environ)), "files.before-replace")
    assert proc.communicate(timeout=60)[0] == "passed\n"


def test_a_waiting_point_gives_up_after_its_timeout_and_says_so(tmp_path):
    armed = Armed(tmp_path / "fp", "report.table")
    proc = _arrive({**armed.env(dict(os.environ)), failpoints.TIMEOUT_ENV: "0.2"}, "report.table")
    assert proc.communicate(timeout=60)[0] == "passed\n"
    assert armed.timed_out("report.table").read_text().strip() == str(proc.pid)


def test_an_unknown_point_is_an_error_naming_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv(failpoints.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(failpoints.ENV, "report.tabel")
    with pytest.raises(ValueError, match=r"unknown failpoint 'report.tabel'; known: .*report\.table"):
        failpoints.reached("report.table")
    with pytest.raises(ValueError, match="unknown failpoint 'nowhere': add it to study.failpoints.POINTS"):
        failpoints.reached("nowhere")


def test_every_point_is_reached_somewhere_in_the_library():
    source = "\n".join(p.read_text() for p in (ROOT / "study").rglob("*.py"))
    for name in failpoints.POINTS:
        assert f'failpoints.reached("{name}")' in source, f"{name} is listed but never reached"
