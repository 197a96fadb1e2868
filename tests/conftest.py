"""Shared fixtures and the one home of the skip markers (import them as `from tests.conftest import needs_...`).

Every test writes generated outputs to temporary folders, never into the checkout. Tests that take more than ~30 s
(notebooks, Chromium, Ray, deployment exports, fine-tuning sweeps) are marked `slow`: `make test-fast` skips them.
"""
from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

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
    point_outputs_at(monkeypatch, tmp_path)
    return {name: tmp_path / name for name in OUT_ENV}


OUT_ENV = {"results": "STUDY_RESULTS_DIR", "figures": "STUDY_FIGURES_DIR", "cache": "STUDY_CACHE_DIR"}


def point_outputs_at(mp: pytest.MonkeyPatch, root: Path) -> None:
    """results/, figures/ and the cache under `root` (also for papermill kernels) while `mp` is active."""
    for name, env in OUT_ENV.items():
        mp.setenv(env, str(root / name))


@dataclass
class SmokeRun:
    """Every notebook run once with profile=smoke, in order, into `root`/{results,figures,cache}."""
    root: Path
    outcomes: dict  # notebook stem -> NotebookRun, or the exception it raised


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory) -> SmokeRun:
    """Every notebook once, profile=smoke, in `make reproduce` order into one set of temporary folders; a failing
    notebook is recorded and the rest still run. Shared by tests/test_notebooks.py and tests/test_paper_draft.py,
    so the suite executes each notebook once."""
    from study.reproduce import notebooks, run_if_needed

    root = tmp_path_factory.mktemp("smoke")
    outcomes = {}
    with pytest.MonkeyPatch.context() as mp:
        point_outputs_at(mp, root)
        for nb in notebooks():
            try:
                outcomes[nb.stem] = run_if_needed(nb, {"profile": "smoke"})[1]
            except Exception as exc:  # noqa: BLE001 - recorded; test_notebooks reports it for its notebook
                outcomes[nb.stem] = exc
    return SmokeRun(root, outcomes)


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
