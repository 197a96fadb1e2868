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
