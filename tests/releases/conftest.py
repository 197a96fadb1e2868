"""Fixtures of the release tests: one set of published versions for the whole session, whichever worker runs."""
from __future__ import annotations

import os

import pytest

from study import files
from study.releases import publish

MEMBER = "mobilenet_v2_035_96"  # the smallest TF member of the zoo: versions publish in seconds


@pytest.fixture(scope="module")
def published(tmp_path_factory, shared_zoo):
    """All versions of MEMBER, published once per session into a folder every pytest-xdist worker shares (the
    session's base temp is per worker; its parent is the run's): test_publish and test_version_diff land on
    different workers. Publishing resumes, so a second module finds the versions current and rewrites nothing."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    base = base / "rq3-publish"
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_CACHE_DIR", str(base / "cache"))
    mp.setenv("STUDY_ZOO_DIR", str(shared_zoo))  # the member as the run's other tests build it (once a run)
    with files.locked(base / "versions"):  # one worker publishes; the other waits, then finds them current
        publish.publish(MEMBER, base / "versions", progress=False)
    yield base / "versions"
    mp.undo()
