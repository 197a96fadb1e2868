"""`audit-paper`: every numeric claim of the paper re-derived from its own tables (`study.audit.sections`)."""
from __future__ import annotations

import argparse
import sys

from study import files
from study.audit.rows import VERDICTS
from study.audit.sections import COLUMNS, audit, headline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit-paper", help="re-derive every numeric claim of the paper from its own tables",
                       description="Columns: " + ",".join(COLUMNS) + f". Verdicts: {', '.join(VERDICTS)}.")
    p.add_argument("--csv", required=True, metavar="FILE|-", help="where to write the claims table ('-' for stdout)")
    p.set_defaults(func=_audit_paper)


def _audit_paper(args: argparse.Namespace) -> int:
    claims = audit()
    files.write_table(args.csv, claims, what="claims", command="audit-paper")
    print(f"[audit-paper] {headline(claims)}", file=sys.stderr)
    return 0
