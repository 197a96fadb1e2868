"""`plan`: the expected wall time of a profile's `make reproduce` on N nodes, per notebook and in total, from the
task costs a measured run recorded (`study.runs.task_costs`, `study.runs.plan`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from study import config
from study.cli.common import add_profile
from study.runs import plan, task_costs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="expected wall time of a profile on N nodes, per notebook and in total, from "
                                    "the task costs of a measured run (each factor's assumption shown)")
    add_profile(p, help="the planned profile: smoke | embedded | paper (default: $PROFILE or embedded)")
    p.add_argument("--nodes", type=int, nargs="+", default=[1], metavar="N", help="node counts (default: 1)")
    p.add_argument("--cores", type=int, default=None, help="cores per node (default: the measured node's)")
    p.add_argument("--results", metavar="DIR", default=None,
                   help="the measured run's results folder (default: results/, $STUDY_RESULTS_DIR)")
    p.add_argument("--measured", metavar="PROFILE", default=None,
                   help="the measured run's profile (default: the profile of the notebook records in --results)")
    p.add_argument("--markdown", action="store_true", help="a Markdown table (for docs/cluster.md)")
    p.set_defaults(func=_plan, uses_assets=False)


def _plan(args: argparse.Namespace) -> int:
    plan.check_nodes(args.nodes)
    target = config.get_profile(args.profile)
    results = Path(args.results) if args.results else config.results_dir()
    recorded = task_costs.recorded_profiles(results)
    if args.measured is None and not recorded:
        raise task_costs.missing_error(results, config.DEFAULT_PROFILE)
    measured = task_costs.measure(results, config.get_profile(args.measured or recorded[0]))
    planned = task_costs.plan_profile(measured, target, args.cores)
    render = plan.render_markdown if args.markdown else plan.render_text
    print(render(planned, list(args.nodes)), end="")
    return 0
