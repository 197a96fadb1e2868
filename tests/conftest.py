"""Shared fixtures: every test writes generated outputs to temporary folders, never into the checkout."""
from __future__ import annotations

import pytest

from study.config import SHARED, ZOO_SNAPSHOTS


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


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
