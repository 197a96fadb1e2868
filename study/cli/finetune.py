"""`finetune`: the fine-tuning sweep of Section VII-E, Table IX (`study.casestudy.finetune`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study import config
from study.casestudy.executors import EXECUTORS, MODES, get_executor
from study.casestudy.finetune import TABLE_IX_COLUMNS, sweep
from study.cli.common import add_profile
from study.errors import StudyError, exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune zoo members under the resource Sampler (Table IX)")
    add_profile(p)
    p.add_argument("--members", nargs="+", metavar="ASSET",
                   help="assets: zoo members, TF Hub / Kaggle handles, SavedModel folders, package.module:function, "
                        "each optionally REF@SIZE (its input size in px) (default: the profile's zoo members; "
                        "docs/your-shortlist.md)")
    p.add_argument("--input-size", type=int, default=None,
                   help="input size (px) of assets whose size is variable; assets with a fixed size keep theirs")
    p.add_argument("--data", default=None, metavar="DIR|FILE.tgz",
                   help="your images: a folder of class folders (or .tgz), split with Table XI's split rule")
    p.add_argument("--split", default=None, metavar="CSV", help="your split: path, subset, class_name columns")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--repeats", type=int, default=1, help="runs per member; Table IX shows mean and spread")
    p.add_argument("--mode", choices=MODES, default=None, help="full fine-tuning or frozen backbone")
    p.add_argument("--interval", type=float, default=None, help="sampling interval in s (>= 0.1; paper: 5)")
    p.add_argument("--cooldown", type=int, default=None, dest="cooldown_samples",
                   help="samples in each cool-down period (paper: 6)")
    p.add_argument("--timeout", type=float, default=None, dest="timeout_s", help="watchdog per run, seconds")
    p.add_argument("--threads", type=int, default=None, help="worker intra-op threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--executor", default="local", choices=sorted(EXECUTORS),
                   help="local: one run at a time here; ray: one run per node of a Ray cluster")
    p.add_argument("--address", default=None, help="ray: the cluster's HOST:PORT (default: $RAY_ADDRESS)")
    p.add_argument("--retries", type=int, default=None, help="ray: resubmit a lost run to another node N times")
    p.add_argument("--artifacts", default=None, metavar="URI",
                   help="ray: shared folder (path or file://) for the models instead of returning them via Ray")
    p.add_argument("--force", action="store_true", help="rerun members that already have complete results")
    p.add_argument("--out", required=True, type=Path, help="output folder (table_ix.csv, samples/, models/)")
    p.set_defaults(func=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    opts = {k: v for k, v in (("address", args.address), ("retries", args.retries), ("artifacts", args.artifacts))
            if v is not None}
    if opts and args.executor != "ray":
        raise StudyError(f"{', '.join('--' + k for k in opts)} only apply to --executor ray")
    table = sweep(args.out, config.get_profile(args.profile), args.members, epochs=args.epochs, repeats=args.repeats,
                  mode=args.mode, force=args.force, interval=args.interval, cooldown_samples=args.cooldown_samples,
                  timeout_s=args.timeout_s, threads=args.threads, seed=args.seed,
                  executor=get_executor(args.executor, **opts), input_size=args.input_size, data=args.data,
                  split=args.split)
    print(table[TABLE_IX_COLUMNS].to_string(index=False))
    bad = table[table["status"] != "ok"]
    print(f"[finetune] {len(table) - len(bad)} of {len(table)} members ok -> {Path(args.out) / 'table_ix.csv'}",
          file=sys.stderr)
    return exit_code(len(bad))
