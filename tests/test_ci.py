"""CI semantics: `.ci/run` sets them itself, and under them a missing tool stops the suite before its first test,
naming the tool and `make setup` (it never skips)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WAITING, ci_semantics

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("yes", True), ("TRUE", True),
                                             ("", False), ("0", False), ("false", False), (None, False)])
def test_ci_semantics_whatever_the_runner_sets(value, expected):
    assert ci_semantics(value) is expected


def _path_without(tmp_path: Path, *tools: str) -> str:
    """A PATH with every program of this one, less `tools` (links in one folder)."""
    farm = tmp_path / "bin"
    farm.mkdir()
    for folder in reversed(os.environ["PATH"].split(os.pathsep)):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            if entry.name not in tools and os.access(entry.path, os.X_OK):
                target = farm / entry.name
                target.unlink(missing_ok=True)
                target.symlink_to(entry.path)
    return str(farm)


def test_ci_run_sets_ci_semantics_itself(tmp_path):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "make").write_text('#!/bin/sh\necho "make $* with CI=$CI"\n')
    (stub / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env={**env, "PATH": f"{stub}:{env['PATH']}"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "make test with CI=true" in proc.stdout


def test_a_missing_tool_stops_the_suite_under_ci_naming_make_setup(tmp_path):
    """latexmk missing from PATH, CI=1 (not "true"): pytest exits before any test, naming latexmk and make setup."""
    env = {**os.environ, "CI": "1", "PATH": _path_without(tmp_path, "latexmk")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "tests/test_failpoints.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-3000:]
    assert "TeX Live" in out and "latexmk" in out and "run `make setup`" in out, out[-3000:]
    assert "passed" not in out  # no test ran


def test_without_ci_semantics_a_missing_tool_is_a_visible_skip_naming_its_setup_step(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("from tests.conftest import needs_tex\n\n\n@needs_tex\ndef test_needs_tex():\n    pass\n")
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, "PATH": _path_without(tmp_path, "latexmk"),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "tests.conftest", "-q", "-rs",
                           "--rootdir", str(tmp_path), str(probe)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout[-3000:]
    assert "latexmk" in proc.stdout and "make setup (its tex step)" in proc.stdout


def test_every_skip_goes_through_needs_tool():
    """No test skips by itself (`pytest.skip`, `importorskip`, `mark.skip`/`skipif`): only the markers of
    tests/conftest.py, which fail under CI semantics. The one exception is the test that needs a real GPU."""
    import re

    allowed = {("tests/casestudy/test_sampler.py", "this machine has a GPU")}
    pattern = re.compile(r"pytest\.(skip\(|importorskip\(|mark\.skip\b|mark\.skipif\b)")
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("tests/conftest.py", "tests/test_ci.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not any(rel == f and why in line for f, why in allowed):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "skips outside tests/conftest.py's markers:\n" + "\n".join(found)


def test_with_a_worker_more_than_the_cores_the_waiting_modules_run_alone_on_the_last():
    """`make test`'s `-n TEST_WORKERS+1`: the modules that mostly wait (WAITING) go to the last worker and nothing
    else does; the others share the rest (the end-to-end test itself deselected: only where its module runs)."""
    import re

    others = ["tests/test_config.py", "tests/test_columns.py", "tests/zoos/test_versions.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadscope", "--no-loadscope-reorder",
                           "-p", "no:cacheprovider", "-v", "-k", "not end_to_end", *WAITING, *others],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ran = {(w, m) for w, m in re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED (tests/[\w/]+\.py)", proc.stdout)}
    assert {m for w, m in ran if w == "gw2"} == set(WAITING), sorted(ran)
    assert {m for w, m in ran if w != "gw2"} == set(others), sorted(ran)
