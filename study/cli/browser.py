"""`browser-test`: Table X, the fine-tuned models in headless Chromium (TF members as TF.js, PyTorch members as ONNX
in ONNX Runtime Web; `study.casestudy.browser`); with
`--node` the quick check in Node.js instead."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from study import config
from study.casestudy import browser, browser_checks
from study.casestudy.executors import get_executor
from study.cli.common import add_profile
from study.errors import exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("browser-test", help="Table X: TF.js / ONNX conversion + the simple product in headless Chromium")
    add_profile(p)
    p.add_argument("--models", required=True, type=Path, help="the fine-tuning sweep's --out DIR (or its models/)")
    p.add_argument("--backend", nargs="+", default=["wasm"], choices=browser.BACKENDS,
                   help="TF.js backend(s) (default wasm; ONNX Runtime Web runs wasm only)")
    p.add_argument("--out", type=Path, default=None, help="output DIR (default: results/browser/<profile>)")
    p.add_argument("--members", nargs="+", metavar="ASSET", help="only these fine-tuned assets (names or references)")
    p.add_argument("--timeout", type=float, default=None, help="watchdog: seconds per run in all")
    p.add_argument("--stall", type=float, default=None, help="watchdog: seconds without progress")
    p.add_argument("--redo", action="store_true", help="rerun (model, backend) pairs already in table_x.csv")
    p.add_argument("--cluster", metavar="HOST:PORT", default=None,
                   help="run each member on a node of this Ray cluster, one member per node (docs/cluster.md)")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="with --cluster: a member lost with its node runs again on another, up to N times")
    p.add_argument("--node", action="store_true",
                   help="quick check instead: the converted models in Node.js vs TensorFlow / PyTorch in Python")
    p.set_defaults(func=_browser_test)


def _browser_test(args: argparse.Namespace) -> int:
    prof = config.get_profile(args.profile)
    out = args.out or config.results_dir() / "browser" / prof.name
    limits = browser.profile_limits(prof)
    if args.timeout or args.stall:
        limits = dataclasses.replace(limits, total=args.timeout or limits.total, stall=args.stall or limits.stall)
    if args.node:
        print(browser_checks.node_check_table(args.models, out, args.backend, args.members).to_string(index=False))
        return 0
    executor = get_executor("ray", address=args.cluster, retries=args.retries) if args.cluster else None
    try:
        table = browser.browser_test(args.models, out, profile=prof, backends=tuple(args.backend),
                                     members=args.members, limits=limits, redo=args.redo, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    print(table[list(browser.TABLE_X_COLUMNS[:11])].to_string(index=False))
    bad = table[~table["status"].isin(["ok", "skipped"])]
    print(f"[browser-test] {len(table) - len(bad)} of {len(table)} runs ok or skipped -> {Path(out) / 'table_x.csv'}",
          file=sys.stderr)
    return exit_code(len(bad))
