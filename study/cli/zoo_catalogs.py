"""Model-zoo catalogs and what they show: `catalog build` / `catalog ship` (`study.zoos.catalog`), `families`
(RQ2, Tables I-III, `study.zoos.families`) and `versions` (RQ3, Tables VI/VIII, `study.zoos.versions`), all from
one zoo snapshot folder (`add_snapshot_args`)."""
from __future__ import annotations

import argparse
import sys

from study import files
from study.zoos import catalog, families, versions
from study.zoos.catalog import Catalog, CatalogError


VERSION_TABLES = {"table-vi": versions.derive_version_statistics, "notes": versions.classified_notes,
                  "transitions": versions.format_transitions, "variants": versions.variant_coverage}  # versions --table


def add_snapshot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, help=f"one of {', '.join(catalog.ZOOS)}")
    p.add_argument("--snapshot", required=True, metavar="DIR", help="a snapshot folder of that zoo's pages")
    p.add_argument("--first-seen", metavar="CSV", help="path,first_seen_date table (default: first-seen.csv "
                                                      "next to the snapshot folder, if any)")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="keep only what the zoo had on that date")
    p.add_argument("--strict", action="store_true", help="malformed pages are an error (exit 2), not a warning")


def build_from_args(args: argparse.Namespace) -> Catalog:
    if args.zoo not in catalog.ZOOS:
        raise CatalogError(f"unknown zoo {args.zoo!r}; valid: {', '.join(catalog.ZOOS)}")
    first_seen = args.first_seen or catalog.defaultfirst_seen_dates(args.zoo, args.snapshot)
    cat = catalog.build(args.zoo, args.snapshot, first_seen, args.as_of, args.strict)
    for w in cat.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"[catalog] {cat.summary()}", file=sys.stderr)
    return cat


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="model-zoo catalogs from the zoos' metadata pages")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    b = csub.add_parser("build", help="parse one snapshot folder into tidy CSV tables")
    add_snapshot_args(b)
    b.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.csv[.gz]: tfhub writes FILE_versions/_variants/_changelog, pytorch-hub "
                        "FILE_pages/_members; '-' prints the main table")
    b.set_defaults(func=_catalog_build)
    s = csub.add_parser("ship", help="rebuild the shipped catalogs in data/zoo/ from ../shared/zoo-snapshots")
    s.set_defaults(func=lambda args: (catalog.ship(), 0)[1])

    p = sub.add_parser("families", help="group a zoo snapshot's assets into families (RQ2, Tables I-III)")
    add_snapshot_args(p)
    p.add_argument("--paper-rules", action="store_true",
                   help="the paper's exclusion rule: leave out assets first released as TF2 SavedModels")
    p.add_argument("--csv", required=True, metavar="FILE|-", help="families table (columns task, algorithm, "
                   "training_data, members, differences, output_formats, ...); '-' for stdout")
    p.add_argument("--members-csv", metavar="FILE", help="also write one row per member with its differences")
    p.set_defaults(func=_families)

    p = sub.add_parser("versions", help="version statistics, note categories, format transitions, "
                                        "deployment variants (RQ3, RQ1) of a TF Hub snapshot")
    add_snapshot_args(p)
    p.add_argument("--table", choices=VERSION_TABLES, default="table-vi", help="which table (default: table-vi)")
    p.add_argument("--csv", default="-", metavar="FILE|-", help="where to write it (default: stdout)")
    p.set_defaults(func=_versions)


def _catalog_build(args: argparse.Namespace) -> int:
    cat = build_from_args(args)
    for path in catalog.write_catalog(cat, args.out):
        print(path)
    return 0


def _families(args: argparse.Namespace) -> int:
    cat = build_from_args(args)
    fam = families.derive_families(cat, paper_rules=args.paper_rules)
    files.write_table(args.csv, fam.families, what="families", command="families")
    if args.members_csv:
        print(files.write_csv(args.members_csv, fam.members))
    print(f"[families] {len(fam.families)} families, {int(fam.families['members'].sum())} members",
          file=sys.stderr)
    return 0


def _versions(args: argparse.Namespace) -> int:
    if args.zoo != "tfhub":
        raise CatalogError("only TF Hub keeps versions and version notes; use --zoo tfhub")
    cat = build_from_args(args)
    files.write_table(args.csv, VERSION_TABLES[args.table](cat), command="versions")
    return 0
