"""What several commands share: the `--profile` option. A handler resolves it once (`config.get_profile(args.profile)`,
None: $PROFILE, else embedded) and passes the `config.Profile` down; the library never resolves a name."""
from __future__ import annotations

import argparse

PROFILE_HELP = "smoke | embedded | paper (default: $PROFILE or embedded)"


def add_profile(parser: argparse.ArgumentParser, help: str = PROFILE_HELP, **options) -> None:
    """Add `--profile NAME` to `parser` (`options`: argparse's, e.g. `default=`, `choices=`; default None)."""
    parser.add_argument("--profile", **{"default": None, **options}, help=help)
