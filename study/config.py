"""Paths and profiles: the one place that knows where things live and what each profile means."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from study.errors import ProfileError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
PAPER_DATA = DATA / "paper"
NOTEBOOKS = ROOT / "notebooks"
WEB = ROOT / "web"
SIMPLE_PRODUCT = WEB / "simple_product"  # the case study's browser page (Section VII-F)
SHARED = ROOT.parent / "shared"
ZOO_SNAPSHOTS = SHARED / "zoo-snapshots"


def results_dir() -> Path:
    """Generated tables, executed notebooks and the manifest (`STUDY_RESULTS_DIR` overrides)."""
    return Path(os.environ.get("STUDY_RESULTS_DIR", ROOT / "results"))


def figures_dir() -> Path:
    """Figures for the paper draft, PDF + PNG (`STUDY_FIGURES_DIR` overrides)."""
    return Path(os.environ.get("STUDY_FIGURES_DIR", ROOT / "figures"))


def cache_dir() -> Path:
    """Built embedded assets, generated data sets (`STUDY_CACHE_DIR` overrides); never committed."""
    return Path(os.environ.get("STUDY_CACHE_DIR", ROOT / ".cache"))


@dataclass(frozen=True)
class Profile:
    """How much of the study a run does and with which inputs: resolved once at the boundary (`get_profile`: the
    command line, `study.reproduce`, a notebook's parameters) and passed down as this object. What a profile means
    to one part of the study lives beside that part, in one table keyed by `name` and read by one function taking
    a Profile (e.g. `study.casestudy.executors.sweep_config`, `study.assets.members`)."""

    name: str  # as results record it (manifest, run records, folder names)
    description: str
    online: bool  # the paper's protocol: real TF Hub assets (or an asset folder) and Flower Photos, nothing generated
    stand_ins: bool = False  # a missing fine-tuning sweep is stood in for by tiny classifiers (seconds), not run


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", "smallest parameters: tiny generated inputs, for tests and CI", online=False, stand_ins=True),
        Profile("embedded", "default: fully offline on shipped or generated inputs", online=False),
        Profile("paper", "the paper's protocol on the real TF Hub assets and Flower Photos", online=True),
    )
}
# `make reproduce` offers these; `smoke` is what the tests use.
REPRODUCE_PROFILES = ("embedded", "paper")


def get_profile(name: str | Profile | None = None, allowed: tuple[str, ...] | None = None) -> Profile:
    """The profile called `name` (default: `$PROFILE`, else `embedded`), or a ProfileError naming the valid ones.

    A Profile passes through (checked against `allowed`): resolve once at the boundary, pass the object down."""
    if isinstance(name, Profile):
        name = name.name
    name = name or os.environ.get("PROFILE") or "embedded"
    valid = allowed or tuple(PROFILES)
    if name not in valid:
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {', '.join(valid)}")
    return PROFILES[name]
