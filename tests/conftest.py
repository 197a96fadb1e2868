"""Shared fixtures and the one home of the skip markers (import them as `from tests.conftest import needs_...`).

Every test writes generated outputs to temporary folders, never into the checkout. Tests that take more than ~30 s
(notebooks, Chromium, Ray, deployment exports, fine-tuning sweeps) are marked `slow`: `make test-fast` skips them.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from study.config import SHARED, WEB, ZOO_SNAPSHOTS


# `make test` runs on pytest-xdist workers with `--dist loadscope`: a module is one unit of work, so its module- and
# session-scoped fixtures are built once per suite as long as one module uses them (the notebooks' smoke run:
# tests/test_notebooks.py). The modules that take longest start first, so that no worker is left with one of them at
# the end while the other idles (the slowest units: docs/measured/tests.md).
LONGEST_FIRST = ("tests/test_notebooks.py", "tests/casestudy/test_paper_protocol.py", "tests/test_faults.py",
                 "tests/casestudy/test_ray_executor.py", "tests/assets/test_refs.py", "tests/casestudy/test_finetune.py",
                 "tests/releases/test_publish.py", "tests/casestudy/test_ray_loopback.py")
# Modules that mostly wait: the paper protocol's 5 s samples and 30 s cool-downs leave its worker's core idle while
# the other worker's tests use one core (docs/measured/tests.md: a third of both cores idle in its first minutes). With
# one worker more than the cores (`make test`: TEST_WORKERS + 1), the last worker runs these modules alone and the
# others never get them, so the waiting costs no core; with fewer workers they go to any worker as before.
WAITING = ("tests/casestudy/test_paper_protocol.py",)
WAITING_APART_FROM = 3  # workers: the last one (gw2 of three) is the waiting modules'


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: a run without xdist has no such hook
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope`, but the waiting modules on a worker of their own (WAITING)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WaitingApart(LoadScopeScheduling):
        def _fits(self, node, scope: str) -> bool:
            nodes = self.nodes
            if len(nodes) < WAITING_APART_FROM:
                return True
            last = max(nodes, key=lambda n: int(n.gateway.id.removeprefix("gw")))  # a restarted worker is numbered on
            return (scope.split("::", 1)[0] in WAITING) == (node is last)

        def _assign_work_unit(self, node) -> None:
            scope = next((s for s in self.workqueue if self._fits(node, s)), None)
            if scope is None:  # nothing left for this worker: it ends once its queued tests are done
                node.shutdown()
                return
            work_unit = self.workqueue.pop(scope)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            indices = self.registered_collections[node]
            node.send_runtest_some([indices.index(nodeid) for nodeid, done in work_unit.items() if not done])

        def _reschedule(self, node) -> None:
            if node.shutting_down:
                return
            if not any(self._fits(node, s) for s in self.workqueue):
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 2:
                self._assign_work_unit(node)

    return WaitingApart(config, log)


def pytest_collection_modifyitems(items):
    """A test that executes a notebook (`@pytest.mark.notebook`) is slow: one rule, wherever it is. The modules of
    LONGEST_FIRST are collected first (xdist then hands them out first: `--no-loadscope-reorder`)."""
    for item in items:
        if item.get_closest_marker("notebook"):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: order kept otherwise


@pytest.fixture(scope="session")
def shared_zoo(tmp_path_factory) -> Path:
    """One built zoo (`STUDY_ZOO_DIR`) for the tests that point their outputs at temporary folders (`outdirs`, the
    smoke run of every notebook), shared by the run's xdist workers: a member is built once a run, not once a test.
    Builds are keyed and locked (a worker waits for the other's build of the same member), so sharing them is what
    two `make reproduce` runs on one cache do. Tests of building itself keep a zoo of their own (their own
    STUDY_CACHE_DIR, without `outdirs`, or `own_zoo`)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "shared-zoo"


@pytest.fixture
def outdirs(tmp_path, monkeypatch, shared_zoo):
    """Point results/, figures/ and the cache at temporary folders (also for papermill kernels); the built zoo is the
    run's shared one."""
    point_outputs_at(monkeypatch, tmp_path, zoo=shared_zoo)
    return {name: tmp_path / name for name in OUT_ENV}


@pytest.fixture
def own_zoo(monkeypatch):
    """A test that changes what is built (keys, files) builds in its own cache's zoo, never the shared one."""
    monkeypatch.delenv("STUDY_ZOO_DIR", raising=False)


OUT_ENV = {"results": "STUDY_RESULTS_DIR", "figures": "STUDY_FIGURES_DIR", "cache": "STUDY_CACHE_DIR"}


def point_outputs_at(mp: pytest.MonkeyPatch, root: Path, zoo: Path | None = None) -> None:
    """results/, figures/ and the cache under `root` (also for papermill kernels) while `mp` is active; the built zoo
    in `zoo` when given (`shared_zoo`), else in that cache."""
    for name, env in OUT_ENV.items():
        mp.setenv(env, str(root / name))
    if zoo is not None:
        mp.setenv("STUDY_ZOO_DIR", str(zoo))
    else:
        mp.delenv("STUDY_ZOO_DIR", raising=False)


@dataclass
class SmokeRun:
    """Every notebook run once with profile=smoke, in order, into `root`/{results,figures,cache}."""
    root: Path
    outcomes: dict  # notebook stem -> NotebookRun, or the exception it raised


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory, shared_zoo) -> SmokeRun:
    """Every notebook once, profile=smoke, in `make reproduce` order into one set of temporary folders; a failing
    notebook is recorded and the rest still run. Shared by tests/test_notebooks.py and tests/draft/test_paper_draft.py,
    so the suite executes each notebook once."""
    from study.runs.reproduce import notebooks, run_if_needed

    root = tmp_path_factory.mktemp("smoke")
    outcomes = {}
    with pytest.MonkeyPatch.context() as mp:
        point_outputs_at(mp, root, zoo=shared_zoo)
        for nb in notebooks():
            try:
                outcomes[nb.stem] = run_if_needed(nb, {"profile": "smoke"})[1]
            except Exception as exc:  # noqa: BLE001 - recorded; test_notebooks reports it for its notebook
                outcomes[nb.stem] = exc
    return SmokeRun(root, outcomes)


# --- Tools a test needs: a skip on a developer's machine, a failure under CI=true ---------------------------------
# A CI run must never be green by skipping: a tool that `make setup` installs is missing there only when setup is
# broken, and that must be red. Only the real-GPU skip (tests/casestudy/test_sampler.py) stays a skip everywhere.
# CI semantics whatever the runner sets (CI=true, CI=1, CI=yes ...); `.ci/run` sets CI=true itself.
def ci_semantics(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


IN_CI = ci_semantics(os.environ.get("CI"))


def missing_tool_marker(missing: str | None, setup_step: str) -> pytest.MarkDecorator:
    """A marker for tests that need a tool: none when it is here (`missing` is None); otherwise the test is skipped
    with `missing` as the reason, or fails under CI=true naming the tool and the `make` step that installs it."""
    return pytest.mark.needs_tool(missing=missing, setup_step=setup_step)


@pytest.hookimpl(tryfirst=True)  # before any fixture is set up (a missing tool fails fast)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs_tool"):
        missing, step = mark.kwargs["missing"], mark.kwargs["setup_step"]
        if missing is None:
            continue
        if IN_CI:
            pytest.fail(f"CI=true and a tool this test needs is missing: {missing}; `{step}` should have "
                        f"installed it (a CI run is never green by skipping)", pytrace=False)
        pytest.skip(f"{missing} (run: {step})")


def _browser_missing() -> str | None:
    """Why the headless-browser tests cannot run here (Chromium or the npm packages missing), or None."""
    from study.runtime import environment
    from study.errors import StudyError

    try:
        environment.chromium()
        environment.node_modules()
    except StudyError as exc:
        return str(exc).splitlines()[0]
    return None


def _tex_missing() -> str | None:
    missing = [tool for tool in ("latexmk", "pdflatex", "pdftotext", "pdfinfo") if shutil.which(tool) is None]
    return f"TeX Live / poppler-utils missing ({', '.join(missing)} not on PATH)" if missing else None


BROWSER_MISSING = _browser_missing()
NODE_MISSING = None if shutil.which("node") and (WEB / "node_modules").is_dir() else \
    "node or web/node_modules missing"
TEX_MISSING = _tex_missing()
RAY_MISSING = None if importlib.util.find_spec("ray") is not None else \
    "ray (the optional extra in requirements/ray.txt) is not installed"
CC = shutil.which("cc") or shutil.which("gcc")  # builds the NVML stand-in (tests/fixtures/nvml/fake_nvml.c)
CC_MISSING = None if CC else "no C compiler (cc or gcc) on PATH"
needs_shared = missing_tool_marker(None if SHARED.is_dir() else f"../shared not found at {SHARED}",
                                   "a checkout with ../shared beside it (see ../shared/README.md)")
needs_snapshots = missing_tool_marker(None if ZOO_SNAPSHOTS.is_dir() else f"zoo snapshots not found at {ZOO_SNAPSHOTS}",
                                      "a checkout with ../shared beside it (see ../shared/README.md)")
needs_browser = missing_tool_marker(BROWSER_MISSING, "make setup (its chromium and npm steps)")
needs_node = missing_tool_marker(NODE_MISSING, "make setup (its npm step)")
needs_tex = missing_tool_marker(TEX_MISSING, "make setup (its tex step)")
needs_ray = missing_tool_marker(RAY_MISSING, "make setup (its venv step: requirements/ray.txt)")
needs_cc = missing_tool_marker(CC_MISSING, "make setup (its cc step: the system C compiler)")

# Every tool a marker above can ask for: under CI semantics the run stops before the first test when one is missing
# (one message naming each tool and `make setup`), instead of failing test by test after minutes of others.
TOOLS_MISSING = {"../shared": None if SHARED.is_dir() else f"../shared not found at {SHARED}",
                 "Chromium / npm packages": BROWSER_MISSING, "Node.js": NODE_MISSING, "TeX Live": TEX_MISSING,
                 "Ray": RAY_MISSING, "C compiler": CC_MISSING}


def pytest_sessionstart(session):
    missing = {tool: why for tool, why in TOOLS_MISSING.items() if why}
    if IN_CI and missing and not hasattr(session.config, "workerinput"):  # said once, by the xdist controller
        lines = "\n".join(f"  - {tool}: {why}" for tool, why in missing.items())
        pytest.exit(f"CI semantics (CI={os.environ.get('CI')}) and tools the suite needs are missing:\n{lines}\n"
                    f"run `make setup` (a CI run is never green by skipping)", returncode=3)
