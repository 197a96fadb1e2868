"""`publish`: a zoo member's versions following the version notes (RQ3, Section VI-A/B, Table VIII;
`study.releases.publish`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from study.releases.publish import publish, tf1_only_notes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="publish a zoo member's versions following the version notes (Table VIII)")
    p.add_argument("--member", required=True, help="a TF zoo member or its TF Hub / Kaggle handle, e.g. mobilenet_v2_035_96")
    p.add_argument("--out", required=True, type=Path, help="output folder: one folder per version")
    p.add_argument("--versions", nargs="+", metavar="V", help="only these versions (e.g. v1 v3; default: all)")
    p.add_argument("--force", action="store_true", help="republish versions that are already there")
    p.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    table = publish(args.member, args.out, args.versions, force=args.force)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.drop(columns=["path", "note_category"]).to_string(index=False))
    for note in tf1_only_notes():
        print(f"not published ({note['note_category']}, TF1 only): {note['note']}")
    print(f"[publish] {len(table)} versions -> {args.out}", file=sys.stderr)
    return 0
