"""A results folder made by `make reproduce`'s last steps without notebooks: tests/results_folder.py's hand-built
folder, its history snapshot (`study.runs.history`) and a reference written from it (`study.runs.reference`)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from study.config import PROFILES, Profile  # noqa: F401 - PROFILES for the tests
from study.runs import compare, history, reference
from tests import results_folder


@dataclass
class Run:
    results: Path
    snapshot: Path
    reference_root: Path
    profile: Profile

    @property
    def reference(self) -> Path:
        return reference.folder(self.profile, self.reference_root)


def snapshot(results: Path, profile: Profile) -> Path:
    path = history.snapshot(results, tables=compare.table_names(), profile=profile.name,
                            versions=compare.table_versions())
    assert path is not None
    return path


def made(root: Path, built: Path | None = None, profile: Profile = PROFILES["embedded"]) -> Run:
    """`root`/results (a copy of `built`, or built here), snapshotted, and `root`/reference/<profile>/ from it."""
    results = root / "results"
    if built is None:
        results_folder.build(results, profile=profile.name)
    else:
        shutil.copytree(built, results)
    snap = snapshot(results, profile)
    reference.make(profile, results=results, root=root / "reference")
    return Run(results, snap, root / "reference", profile)
