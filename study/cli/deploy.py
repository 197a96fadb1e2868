"""`deploy`: RQ1's deployment matrix (`study.deployment.matrix`), or with `--sweep` the fidelity of every
fine-tuned member of a sweep (`study.deployment.fidelity`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from study import config, files
from study.casestudy.executors import get_executor
from study.cli.common import add_profile
from study.deployment import fidelity, matrix
from study.errors import exit_code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="RQ1: export real models to every deployment scenario and measure each")
    p.add_argument("--framework", default="all", choices=[*matrix.FRAMEWORKS, "all"])
    p.add_argument("--quick", action="store_true", help="small TF model, fewer images and repeats; skips AOTInductor")
    p.add_argument("--csv", default="-", metavar="FILE|-", help="where the matrix goes (default: stdout)")
    p.add_argument("--formats", nargs="+", metavar="FORMAT", help="only these scenario formats")
    p.add_argument("--work", default=None, help="folder for the exported artefacts (default: .cache/deploy/...)")
    p.add_argument("--resume", action="store_true", help="keep the rows a previous (killed) run already finished")
    # per-member mode (study.deployment.fidelity): every fine-tuned classifier of a sweep, resumable and keyed
    p.add_argument("--sweep", metavar="DIR", help="per-member fidelity of every fine-tuned classifier of a sweep's "
                   "--out DIR in the formats that run here for its framework (rows keyed, always resumed)")
    p.add_argument("--members", nargs="+", metavar="MEMBER", help="with --sweep: only these members (default: all)")
    p.add_argument("--browser-members", type=int, default=1, metavar="N",
                   help="with --sweep: measure tfjs_graph_model_browser (Chromium) for the first N TF members")
    add_profile(p, "with --sweep: smoke uses fewer timed repeats")
    p.add_argument("--localise", default=None, choices=("all", "worst", "none"),
                   help="with --sweep: which non-faithful rows get their first divergent layer (default: the "
                        "profile's: paper all, else the worst row per format; $STUDY_LOCALISE)")
    p.add_argument("--cluster", metavar="HOST:PORT", default=None,
                   help="measure on the nodes of this Ray cluster, a task holding a whole node each: with --sweep a "
                        "member per task, else a part of each framework's formats per task (docs/cluster.md); "
                        "default: this machine")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="with --cluster: a task lost with its node is measured again on another, up to N times")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    if args.sweep:
        return _sweep(args)
    executor = get_executor("ray", address=args.cluster, retries=args.retries) if args.cluster else None
    df = matrix.run_matrix(args.framework, quick=args.quick, work=args.work, formats=args.formats, resume=args.resume,
                           progress=True, executor=executor)
    files.write_table(args.csv, df, what=f"scenarios ({int(df['ok'].sum())} ok)", command="deploy")
    return exit_code(int(matrix.failed(df).sum()))


def _sweep(args: argparse.Namespace) -> int:
    """Per member of a sweep (the case study's harness): the table, and beside it the localised rows' per-layer curves."""
    profile = config.get_profile(args.profile)
    settings = fidelity.Settings.of(profile, args.localise)
    executor = get_executor("ray", address=args.cluster, retries=args.retries) if args.cluster else None
    df = fidelity.run_fidelity(args.sweep, args.formats, args.members, work=args.work, profile=profile,
                               browser_members=args.browser_members, settings=settings, progress=True,
                               executor=executor)
    files.write_table(args.csv, df, what=f"member x format rows ({int(df['faithful'].fillna(False).sum())} faithful)",
                      command="deploy --sweep")
    if args.csv not in (None, "-"):
        layers = Path(args.csv).with_name(f"{Path(args.csv).stem}_layers.csv")
        files.write_csv(layers, fidelity.layer_curves(Path(df.attrs["layers"]).parent, df))
    return exit_code(int(df["status"].isin(fidelity.CRASHED).sum()))
