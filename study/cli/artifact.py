"""`artifact` (one archive for deposit of a finished `make reproduce`, `study.runs.artifact`) and `verify` (every
checksum of such an archive against its manifest, `study.runs.archive`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study import config
from study.cli.common import add_profile
from study.runs import archive, artifact


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("artifact", help="one archive for deposit: results, executed notebooks, figures, draft PDF, "
                                        "lock files, checksums, RO-Crate, .zenodo.json, evaluation report")
    add_profile(p, "the results' profile (default: $PROFILE or embedded)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.zip",
                   help="where (default results/artifact/study-PROFILE-COMMIT.zip)")
    p.add_argument("--junit", type=Path, default=None, metavar="FILE",
                   help="the `make test` result as JUnit XML (default results/junit.xml)")
    p.set_defaults(func=_artifact, uses_assets=False)

    p = sub.add_parser("verify", help="check every file of an archive of `make artifact` against its SHA-256")
    p.add_argument("archive", type=Path, metavar="ARCHIVE")
    p.set_defaults(func=_verify, uses_assets=False)


def _artifact(args: argparse.Namespace) -> int:
    built = artifact.build(config.get_profile(args.profile, config.RUNNABLE_PROFILES), args.out, junit=args.junit)
    for what in built.missing:
        print(f"[artifact] warning: the archive lacks {what}", file=sys.stderr)
    print(built.path)
    print(f"[artifact] {built.files} files and MANIFEST.json; check it with: python -m study verify {built.path}",
          file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    checked = archive.verify(args.archive)
    print(f"ok: {checked.files} files of {checked.path} match MANIFEST.json (commit "
          f"{checked.manifest.get('commit', 'unknown')}, profile {checked.manifest.get('profile', 'unknown')})")
    return 0
