"""`decide`: which member to pick from Table IX/X-shaped results (Sections VII-G, VII-I; `study.decision.choice`),
only among the members deployable in a format with `--deploy-format` (`study.deployment.deploy_criterion`), and with
`--bootstrap N` how stable that pick is under resampling (`study.decision.uncertainty`)."""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from study import files
from study.decision.choice import DENOMINATORS, TIE_RULES, CaseStudyTables, compare, select
from study.decision.uncertainty import DEFAULT_CV, NoiseModel, robustness, stability, sweep_evidence
from study.deployment import deploy_criterion
from study.errors import StudyError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decide", help="which member to pick from Table IX/X-shaped results (Sections VII-G, VII-I)",
                       description="For a member: 'uses less X than N (p %) models' per resource; with --priority: "
                       "the member a priority order picks, with its evidence. Without tables: the paper's IX and X.")
    p.add_argument("--table-ix", metavar="FILE", help="Table IX-shaped CSV (model,delta_cpu,delta_mem,elapse,accuracy,...)")
    p.add_argument("--table-x", metavar="FILE", help="Table X-shaped CSV (model,cpu,elapse,memory,gpu,gpu_memory,accuracy,...)")
    p.add_argument("--backend", help="the TF.js backend to take from a Table X with a backend column (wasm, webgl, cpu)")
    p.add_argument("--model", help="report this member's evidence")
    p.add_argument("--priority", nargs="+", metavar="ITEM",
                   help="priority order, e.g. accuracy>0.62 min:inference max:accuracy (default without --model: max:accuracy)")
    p.add_argument("--tie-rule", choices=list(TIE_RULES), default="strict",
                   help="; ".join(f"{k}: {v}" for k, v in TIE_RULES.items()))
    p.add_argument("--denominator", choices=list(DENOMINATORS), default="all")
    p.add_argument("--csv", required=True, metavar="FILE|-", help="where to write the evidence table ('-' for stdout)")
    # the deployment criterion (study.deployment.deploy_criterion)
    p.add_argument("--deploy-format", metavar="FORMAT", help="only members deployable in FORMAT are candidates "
                   "(needs --fidelity; e.g. litert_dynamic_int8, tfjs_graph_model_node)")
    p.add_argument("--min-agreement", type=float, default=1.0, metavar="P",
                   help="with --deploy-format: least top-1 agreement on the test split (default 1.0 = faithful)")
    p.add_argument("--fidelity", metavar="FILE", help="the per-member fidelity table (deploy --sweep DIR --csv FILE)")
    p.add_argument("--fixed-tolerance", action="store_true",
                   help="with --deploy-format: judge 'faithful' at the paper-comparable fixed gate (the table's "
                        "status_fixed) instead of the one rule (K x the reference's own noise floor, status)")
    p.add_argument("--calibrated-tolerance", action="store_true",
                   help="deprecated, no effect: the calibrated tolerance is the default now (#36)")
    # decision stability (study.decision.uncertainty)
    g = p.add_argument_group("decision stability (resample and re-apply the priority order)")
    g.add_argument("--bootstrap", type=int, metavar="N", help="resample N times; --csv then gets each member's "
                   "selection frequency instead of the evidence")
    g.add_argument("--seed", type=int, default=0, help="seed of every resample (default 0): same seed, same frequencies")
    g.add_argument("--sweep", metavar="DIR", help="sweep folder with runs/ (repeats) and predictions/ (per-image); "
                   "default: the folder of --table-ix")
    g.add_argument("--noise-cv", type=float, metavar="CV", help=f"relative noise of a single resource reading "
                   f"(default: our repeats' coefficient of variation where --sweep has repeats, else {DEFAULT_CV:g})")
    p.set_defaults(func=lambda args: _bootstrap(args) if args.bootstrap is not None else _decide(args))


def _tables(args: argparse.Namespace):
    """The tables to decide on (the given files, else the paper's IX and X), narrowed by the deployment criterion;
    and the criterion's per-member rows (None without --deploy-format)."""
    if args.calibrated_tolerance:
        print("[decide] --calibrated-tolerance is deprecated and has no effect: the calibrated tolerance is the "
              "default (--fixed-tolerance for the paper-comparable fixed gate)", file=sys.stderr)
    if args.table_ix or args.table_x:
        tables = CaseStudyTables.from_files(args.table_ix, args.table_x, backend=args.backend)
    else:
        tables = CaseStudyTables.paper()
    return deploy_criterion.apply(tables, deploy_format=args.deploy_format, fidelity=args.fidelity or None,
                                  min_agreement=args.min_agreement, fixed=args.fixed_tolerance)


def _decide(args: argparse.Namespace) -> int:
    tables, deployment = _tables(args)
    parts = []
    if args.priority or not args.model:
        sel = select(tables, args.priority or ["max:accuracy"], tie_rule=args.tie_rule, denominator=args.denominator)
        for s in sel.steps.itertuples():
            print(f"[decide] step {s.step} {s.criterion}: {s.before} -> {s.after} candidates", file=sys.stderr)
        print(f"[decide] selected {sel.summary()}", file=sys.stderr)
        parts.append(sel.evidence.assign(role="selected"))
    if args.model:
        parts.append(compare(tables, args.model, tie_rule=args.tie_rule, denominator=args.denominator).assign(role="given"))
    out = pd.concat(parts, ignore_index=True)
    out = deploy_criterion.annotate(out[["role"] + [c for c in out.columns if c != "role"]], deployment)
    files.write_table(args.csv, out, command="decide")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    if args.model:
        raise StudyError("--bootstrap reports selection frequencies of a priority order; drop --model "
                         "(or run decide --model without --bootstrap for its evidence)")
    tables, deployment = _tables(args)  # resample only the members the criterion keeps
    if deployment is not None:
        print(f"[decide] deployment criterion {args.deploy_format} (top-1 agreement >= {args.min_agreement:g}): "
              f"{len(tables.models)} candidate(s): {', '.join(tables.models)}", file=sys.stderr)
    repeats, predictions, note = sweep_evidence(tables, args.sweep)
    print(f"[decide] {note}", file=sys.stderr)
    noise = NoiseModel.from_repeats(repeats)
    if args.noise_cv is not None:
        noise = NoiseModel(default_cv=args.noise_cv, source=f"--noise-cv {args.noise_cv:g} for every single-run resource")
    priority = args.priority or ["max:accuracy"]
    freq = stability(tables, {"given": priority}, n_resamples=args.bootstrap, seed=args.seed, tie_rule=args.tie_rule,
                     noise=noise, repeats=repeats, predictions=predictions)
    print(f"[decide] {freq.attrs['resampling'].describe()}", file=sys.stderr)
    print(f"[decide] {robustness(freq)}", file=sys.stderr)
    files.write_table(args.csv, deploy_criterion.annotate(freq, deployment), what="members", command="decide")
    return 0
