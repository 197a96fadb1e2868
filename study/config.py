"""Paths and profiles: the one place that knows where things live, and the entry points to what each profile means
(`study.profiles`: the typed `Profile` with every per-profile fact, and the three profiles)."""
from __future__ import annotations

import os
from pathlib import Path

from study import profiles
from study.errors import ProfileError
from study.profiles import Profile

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


# What each profile means lives on one page, `study.profiles`; these are its entry points.
PROFILES: dict[str, Profile] = profiles.PROFILES
DEFAULT_PROFILE = profiles.DEFAULT_PROFILE  # when none is given
TEST_PROFILE = profiles.TEST_PROFILE  # what the tests use
REPRODUCE_PROFILES = profiles.REPRODUCE_PROFILES  # `make reproduce` offers these
RUNNABLE_PROFILES = profiles.RUNNABLE_PROFILES  # `study reproduce` / `study draft` accept these


def get_profile(name: str | Profile | None = None, allowed: tuple[str, ...] | None = None) -> Profile:
    """The profile called `name` (default: `$PROFILE`, else `DEFAULT_PROFILE`), or a ProfileError naming the valid
    ones.

    A Profile passes through (checked against `allowed`): resolve once at the boundary, pass the object down."""
    if isinstance(name, Profile):
        name = name.name
    name = name or os.environ.get("PROFILE") or DEFAULT_PROFILE
    valid = allowed or tuple(PROFILES)
    if name not in valid:
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {', '.join(valid)}")
    return PROFILES[name]
