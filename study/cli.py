"""`python -m study`: the command line mirrors the library, one subcommand per capability.

Each module in SUBCOMMANDS has `register(subparsers)` which adds its parser and sets `func`.
Those modules keep heavy imports (TensorFlow, torch) inside functions so `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from study.errors import StudyError

SUBCOMMANDS = [
    "study.commands",  # reproduce, paper, check
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m study",
        description="Re-run, audit and extend 'An Empirical Study on Release Engineering of AI Products'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
