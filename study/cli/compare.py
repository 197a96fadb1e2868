"""`compare`: two results folders, which numbers moved beyond noise and which verdicts flipped (`study.runs.compare`,
`study.runs.history` for `--previous`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from study import files
from study.errors import StudyError
from study.runs import history
from study.runs.compare import compare


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="did a re-run reproduce? two results folders, every number and verdict "
                                       "labelled identical / within noise / moved / flipped")
    p.add_argument("a", nargs="?", metavar="A", help="the reference results folder (e.g. results/ of another run, "
                   "or an archive of `make artifact`)")
    p.add_argument("b", nargs="?", metavar="B", help="the results folder (or archive) compared with it")
    p.add_argument("--previous", action="store_true", help="compare the latest run in results/history/ (B) with "
                   "the one before (A)")
    p.add_argument("--csv", metavar="FILE|-", help="every compared cell as CSV (default: the cells that moved, "
                   "flipped or are only in one folder, as text on stdout)")
    p.add_argument("--allow-profile-mismatch", action="store_true",
                   help="compare folders made with different profiles")
    p.set_defaults(func=_compare, uses_assets=False)


def _compare(args: argparse.Namespace) -> int:
    if args.previous:
        if args.a or args.b:
            raise StudyError("compare: give either two folders A B or --previous (the last two runs in "
                             "results/history/), not both")
        a, b = history.previous_pair()
    elif args.a and args.b:
        a, b = Path(args.a), Path(args.b)
    else:
        raise StudyError("compare needs two results folders A B (e.g. `study compare results/ /tmp/other/results`) "
                         "or --previous")
    result = compare(a, b, allow_profile_mismatch=args.allow_profile_mismatch)
    print(f"[compare] {result.a.describe()}; {result.b.describe()}", file=sys.stderr)
    if result.speed is not None:
        print(f"[compare] {result.speed.sentence()}: times judged against it", file=sys.stderr)
    for line in result.summary_lines():
        print(f"[compare] {line}", file=sys.stderr)
    if args.csv:
        files.write_table(args.csv, result.rows, what="cells", command="compare")
        return 0
    changed = result.changed()
    if changed.empty:
        print(f"every one of {len(result.rows)} cells is identical or within noise")
    else:
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 40):
            print(changed[["table", "row", "column", "a", "b", "difference", "label"]].to_string(index=False))
    return 0
