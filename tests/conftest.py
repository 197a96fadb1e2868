"""Shared fixtures and the one home of the skip markers (import them as `from tests.conftest import needs_...`).

Every test writes generated outputs to temporary folders, never into the checkout. Tests that take more than ~30 s
(notebooks, Chromium, Ray, deployment exports, fine-tuning sweeps) are marked `slow`: `make test-fast` skips them.
"""
from __future__ import annotations

import importlib.util
import shutil

import pytest

from study.config import SHARED, WEB, ZOO_SNAPSHOTS


def pytest_collection_modifyitems(items):
    """A test that executes a notebook (`@pytest.mark.notebook`) is slow: one rule, wherever it is."""
    for item in items:
        if item.get_closest_marker("notebook"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def outdirs(tmp_path, monkeypatch):
    """Point results/, figures/ and the cache at temporary folders (also for papermill kernels)."""
    dirs = {name: tmp_path / name for name in ("results", "figures", "cache")}
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(dirs["results"]))
    monkeypatch.setenv("STUDY_FIGURES_DIR", str(dirs["figures"]))
    monkeypatch.setenv("STUDY_CACHE_DIR", str(dirs["cache"]))
    return dirs


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"../shared not found at {SHARED}")
needs_snapshots = pytest.mark.skipif(not ZOO_SNAPSHOTS.is_dir(), reason=f"zoo snapshots not found at {ZOO_SNAPSHOTS}")


def _browser_missing() -> str | None:
    """Why the headless-browser tests cannot run here (Chromium or the npm packages missing), or None."""
    from study.runtime import environment
    from study.errors import StudyError

    try:
        environment.chromium()
        environment.node_modules()
    except StudyError as exc:
        return f"{str(exc).splitlines()[0]} (run: make setup)"
    return None


BROWSER_MISSING = _browser_missing()
NODE_MISSING = None if shutil.which("node") and (WEB / "node_modules").is_dir() else \
    "node or web/node_modules missing (run: make npm)"
needs_browser = pytest.mark.skipif(BROWSER_MISSING is not None, reason=str(BROWSER_MISSING))
needs_node = pytest.mark.skipif(NODE_MISSING is not None, reason=str(NODE_MISSING))
needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                               reason="TeX Live / poppler-utils missing (run: make tex)")
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is an optional extra: .venv/bin/pip install -c requirements/lock.txt "
                                      "-r requirements/ray.txt")
