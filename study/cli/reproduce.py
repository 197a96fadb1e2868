"""`reproduce` (every notebook through papermill, `study.runs.reproduce`), `paper` (one of the paper's tables,
`study.paper`) and `check` (prerequisites and a profile's inputs, `study.runtime.environment`)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from study import config, paper
from study.assets import flowers
from study.cli.common import add_profile
from study.errors import StudyError
from study.runs.reproduce import reproduce
from study.runtime import environment


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run every notebook through papermill (results/notebooks/)")
    add_profile(p, f"one of {', '.join(config.REPRODUCE_PROFILES)} (default: $PROFILE or embedded)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only notebooks whose name contains NAME")
    p.add_argument("--force", action="store_true",
                   help="run the notebooks even when cached, and recompute their keyed steps")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would run and why, run nothing (also: STUDY_DRY_RUN=1)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", type=_param,
                   help="a notebook parameter for the notebooks that declare it (VALUE as JSON when it parses, else "
                        "text; e.g. --param noise_model= runs 07 on the stated noise without notebook 04, --param "
                        "cluster=HOST:PORT runs notebooks 04 (the sweep), 05 (the browser test) and 09 (the fidelity) on a Ray "
                        "cluster)")
    p.add_argument("--reference", default=None, metavar="DIR|ARCHIVE",
                   help="judge the run against this results folder, snapshot or archive (default: the shipped "
                        "reference/PROFILE/)")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("paper", help="print one of the paper's tables (data/paper/) as CSV")
    p.add_argument("table", help="I-III, IV-V, VI, VII, VIII, IX, X or XI")
    p.set_defaults(func=_paper)

    p = sub.add_parser("check", help="check prerequisites (Chromium, npm packages) and a profile's inputs")
    add_profile(p, None)
    p.set_defaults(func=_check)


def _param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (a notebook parameter, e.g. noise_model=)")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _reproduce(args: argparse.Namespace) -> int:
    dry = args.dry_run or os.environ.get("STUDY_DRY_RUN", "") not in ("", "0")
    runs = reproduce(config.get_profile(args.profile, config.RUNNABLE_PROFILES), args.only,
                     dict(args.param) or None, force=args.force, dry_run=dry, reference=args.reference)
    if not dry:
        ran = [r for r in runs if not r.cached]
        print(f"[reproduce] {len(runs)} notebooks: {len(ran)} run in {sum(r.seconds for r in ran):.0f} s, "
              f"{len(runs) - len(ran)} cached", file=sys.stderr)
    return 0


def _paper(args: argparse.Namespace) -> int:
    try:
        df = paper.load(args.table)
    except KeyError as exc:
        raise StudyError(exc.args[0]) from exc
    df.to_csv(sys.stdout, index=False)
    return 0


def _check(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile)
    ok = True
    for name, good, detail in environment.report():
        ok &= good
        print(f"{'ok  ' if good else 'MISSING'} {name}: {detail}")
    flowers.check_profile_inputs(profile)
    print(f"ok   profile {profile.name}: {profile.description}")
    return 0 if ok else 1
