"""`data synth` (the synthetic flower set, `study.assets.flowers`) and `data split` (Table XI's split rule,
`study.casestudy.dataset`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study import config, files
from study.assets import flowers
from study.casestudy.dataset import split_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="case-study data: synthetic flowers, Table XI split")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="generate the synthetic flower set (JPEG class folders)")
    s.add_argument("--out", required=True, type=Path)
    default = flowers.synth_spec(config.get_profile(config.DEFAULT_PROFILE))  # the default profile's (embedded)
    s.add_argument("--per-class", type=int, default=default.per_class)
    s.add_argument("--size", type=int, default=default.size, help="image side in pixels")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_synth)
    s = dsub.add_parser("split", help="split class folders / flower_photos.tgz with Table XI's split rule")
    s.add_argument("--src", required=True, type=Path, help="folder of class folders or flower_photos.tgz")
    s.add_argument("--out", required=True, type=Path, help="writes split.csv and table_xi.csv here")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_split)


def _synth(args: argparse.Namespace) -> int:
    out = flowers.synth_flowers(args.out, args.per_class, args.size, args.seed)
    print(f"[data] {args.per_class * len(flowers.CLASS_NAMES)} synthetic flowers ({args.size} px) in {out}",
          file=sys.stderr)
    return 0


def _split(args: argparse.Namespace) -> int:
    split = split_dataset(args.src, seed=args.seed)
    out = files.ensure_writable_dir(args.out)
    files.write_csv(out / "split.csv", split.to_frame())
    counts = split.counts()
    files.write_csv(out / "table_xi.csv", counts)
    print(counts.to_string(index=False))
    print(f"[data] split of {split.source} (seed {args.seed}) -> {out / 'split.csv'}", file=sys.stderr)
    return 0
