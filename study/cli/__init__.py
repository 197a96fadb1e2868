"""`python -m study`: the command line, apart from the library, one subcommand per capability.

Each module in SUBCOMMANDS (one per command or group, in this package) has `register(subparsers)` which adds its
parser and sets `func`, a thin handler: parse, call the library, print, return the exit code. Library modules
import no argparse and take plain parameters (tests/test_architecture.py). These modules import the library at
module level (it imports nothing heavy at import time); TensorFlow, torch and Ray stay inside the library's
functions, so `--help` stays fast.
Everywhere: results on stdout, progress on stderr; exit 0 all ok, 1 some runs failed (results written all the
same), 2 bad input (study.errors.EXIT_*).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from study.assets import folder as asset_folder
from study.errors import EXIT_BAD_INPUT, StudyError
from study.runtime.processes import quiet_tensorflow

SUBCOMMANDS = [  # one module of this package per command or group, in the order `--help` lists them
    "study.cli.reproduce",  # reproduce, paper, check
    "study.cli.data",  # data synth, data split (Section VII-B, Table XI)
    "study.cli.asset_zoo",  # zoo list, zoo build, zoo fetch (the 38 MobileNets + EfficientNet-Lite)
    "study.cli.finetune",  # finetune (Section VII-E, Table IX)
    "study.cli.cluster",  # cluster (a Ray cluster on loopback for `finetune --executor ray`)
    "study.cli.browser",  # browser-test (Section VII-F, Table X: TF.js in headless Chromium)
    "study.cli.zoo_catalogs",  # catalog build / ship, families (RQ2, Tables I-III), versions (RQ3 Tables VI/VIII)
    "study.cli.decide",  # decide (Sections VII-G, VII-I; --deploy-format, --bootstrap N: decision stability)
    "study.cli.audit",  # audit-paper (every numeric claim against the paper's own tables)
    "study.cli.publish",  # publish (RQ3: asset versions following the version notes, Section VI-A/B, Table VIII)
    "study.cli.version_diff",  # version-diff (RQ3: what changed between two asset versions, Section VII-H)
    "study.cli.product",  # product (the simple product released: a page a person uses, its published versions)
    "study.cli.deploy",  # deploy (RQ1, Tables IV-V: export to every deployment scenario, measure each)
    "study.cli.draft",  # draft (the paper draft: paper/ -> paper/build/draft.pdf from results/ and figures/)
    "study.cli.compare",  # compare (two results folders: which numbers moved beyond noise, which verdicts flipped)
    "study.cli.reference",  # reference (the shipped reference run: make reference), verdict (this run against it)
    "study.cli.artifact",  # artifact (one archive for deposit: make artifact), verify (its checksums)
    "study.cli.plan",  # plan (a profile's wall time on N nodes, from a measured run's task costs)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m study",
        description="Re-run, audit and extend 'An Empirical Study on Release Engineering of AI Products'.",
    )
    parser.add_argument("--assets", metavar="DIR", default=None,
                        help="use only this offline asset folder for the paper profile (= STUDY_ASSETS=DIR; "
                             "made by `zoo fetch`, see docs/paper-protocol.md)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(sub)
    return parser


_python_format = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Our own warnings on the command line as one line each (what, where); others as Python shows them."""
    if category.__module__.startswith("study."):
        return f"warning ({category.__name__}): {message}\n"
    return _python_format(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0

    warnings.formatwarning = _one_line_warning
    quiet_tensorflow()  # TensorFlow's load-time lines stay off our command line (STUDY_VERBOSE=1 shows them)
    try:
        if getattr(args, "uses_assets", True) and (args.assets or os.environ.get("STUDY_ASSETS")):  # for this process, its workers and notebook kernels

            asset_folder.activate(args.assets)
        return int(args.func(args) or 0)
    except StudyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
