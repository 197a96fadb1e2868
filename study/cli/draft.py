"""`draft`: the paper draft paper/build/draft.pdf from results/ and figures/, or with `--shortlist` the decision
memo (`study.draft.document`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study import config
from study.cli.common import add_profile
from study.draft.document import DRAFT, MEMO, build, missing_results, pdf_pages, shown_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("draft", help="build the paper draft paper/build/draft.pdf from results/ and figures/")
    add_profile(p, "the results' profile (default: $PROFILE or embedded)")
    p.add_argument("--out", type=Path, default=None, help="build folder (default paper/build)")
    p.add_argument("--missing", action="store_true",
                   help="only list the notebooks with no results for the profile (exit 1 when any)")
    p.add_argument("--shortlist", action="store_true",
                   help="build the decision memo of notebook 10's shortlist (paper/memo.tex -> paper/build-memo/memo.pdf)")
    p.add_argument("--strict", action="store_true",
                   help="fail when an artefact of notebooks 01-09 cannot be shown in the body or the appendix")
    p.add_argument("--reference", type=Path, default=None, metavar="DIR",
                   help="the results folder the Reproducibility section compares this run with (default: the run "
                        "before the latest in results/history/)")
    p.set_defaults(func=_draft)


def _draft(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile, config.RUNNABLE_PROFILES)
    if args.missing:
        missing = missing_results(profile)
        for nb in missing:
            print(f"[draft] no {profile.name} results from {nb}")
        return 1 if missing else 0
    result = build(profile, out=args.out, strict=args.strict, main=MEMO if args.shortlist else DRAFT,
                   reference=args.reference)
    if result.unused and not args.shortlist:
        print("[draft] not in the draft (not notebooks 01-09): " + ", ".join(f"{a.kind} {a.name}" for a in result.unused),
              file=sys.stderr)
    pages = pdf_pages(result.pdf)
    size_kb = result.pdf.stat().st_size / 1024
    print(f"[draft] {shown_path(result.pdf)}: {pages or '?'} pages ({result.body_pages or '?'} before the appendix), "
          f"{size_kb:.0f} KB, {len(result.used)} floats in the body, {len(result.appendix)} in the appendix, "
          f"in {result.seconds:.1f} s")
    return 0
