"""`version-diff`: what changed between two asset versions, API, parameters and outputs (RQ3, Section VII-H;
`study.releases.version_diff`)."""
from __future__ import annotations

import argparse
import json

from study import config
from study.cli.common import add_profile
from study.releases.version_diff import diff


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version-diff", help="what changed between two asset versions (API, parameters, outputs)")
    p.add_argument("a", help="the old version: a SavedModel folder or a TF zoo member (name or handle)")
    p.add_argument("b", help="the new version: a SavedModel folder or a TF zoo member (name or handle)")
    p.add_argument("--json", action="store_true", help="print the whole diff as JSON")
    add_profile(p, "the profile a zoo member named for A or B is read under (default: $PROFILE or embedded)")
    p.set_defaults(func=_version_diff)


def _version_diff(args: argparse.Namespace) -> int:
    d = diff(args.a, args.b, config.get_profile(args.profile))
    print(json.dumps(d.to_dict(), indent=2, default=str) if args.json else d.summary())
    return 0
