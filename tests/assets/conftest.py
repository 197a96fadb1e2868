"""Fixtures of the asset tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """One cache (STUDY_CACHE_DIR) for the module: each asset it builds is built once."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("asset-cache")
    mp.setenv("STUDY_CACHE_DIR", str(path))
    yield path
    mp.undo()
