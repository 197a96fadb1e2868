"""`reference` (write the shipped reference run of a profile, `study.runs.reference`: `make reference`) and
`verdict` (this run against it, `study.runs.verdict`, as `make reproduce` ends)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study import config
from study.cli.common import add_profile
from study.runs import reference, reproduce, verdict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reference", help="write reference/PROFILE/ (the shipped reference run) from the latest "
                                         "results-history snapshot of that profile")
    add_profile(p, "the run's profile (default: $PROFILE or embedded)")
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                   help="the snapshot to ship (default: the latest of the profile in results/history/)")
    p.set_defaults(func=_reference, uses_assets=False)

    p = sub.add_parser("verdict", help="this run (results/) against the shipped reference of its profile, or "
                                       "--reference (a results folder, snapshot or archive)")
    add_profile(p, "the run's profile (default: $PROFILE or embedded)")
    p.add_argument("--reference", type=Path, default=None, metavar="DIR|ARCHIVE")
    p.set_defaults(func=_verdict, uses_assets=False)


def _reference(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile, config.RUNNABLE_PROFILES)
    dest = reference.make(profile, source=args.source)
    print(dest)
    print(f"[reference] wrote {dest} (review its diff like code: git diff -- {dest})", file=sys.stderr)
    return 0


def _verdict(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile, config.RUNNABLE_PROFILES)
    plans = {nb: reproduce.plan(nb, {"profile": profile.name}) for nb in reproduce.notebooks()}
    got = verdict.against(config.results_dir(), profile, ref=args.reference, code=reproduce.code_versions(plans))
    verdict.write(got, config.results_dir())
    print("\n".join(got.lines()))
    return 0
