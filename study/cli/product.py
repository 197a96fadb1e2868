"""`product`: serve the simple product, a page a person uses with the published versions (`study.releases.product`)."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from study import config
from study.cli.common import add_profile
from study.errors import StudyError
from study.releases.product import DEFAULT_PRIORITY, ProductServer, build_manifest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("product", help="serve the simple product: a page a person uses, with the published versions",
                       description="Serve (127.0.0.1 only) the product page: pick or drop an image, see the chosen "
                                   "release's top classes, latency, backend and identity; switch between versions.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--versions", type=Path, metavar="DIR",
                     help="the versions `publish` wrote (default: notebook 08's results/rq3_versions/*/published)")
    src.add_argument("--members", type=Path, metavar="DIR",
                     help="a fine-tuning sweep's --out DIR (notebook 04's results/finetune/<profile>, notebook 10's)")
    p.add_argument("--finetuned", type=Path, metavar="DIR",
                   help="with --versions: the classifiers fine-tuned per version, DIR/<version>/sweep "
                        "(default: the versions folder's ../finetune, notebook 08's layout)")
    add_profile(p, "smoke | embedded | paper: whose results are the default")
    p.add_argument("--priority", nargs="+", default=list(DEFAULT_PRIORITY), metavar="ITEM",
                   help="the decision's priority order choosing the default release (default: max:accuracy)")
    p.add_argument("--port", type=int, default=8470, help="port on 127.0.0.1 (default 8470; 0: any free port)")
    p.add_argument("--no-diff", action="store_true", help="skip the version-diff summaries (faster start)")
    p.set_defaults(func=_product)


def _interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


def _product(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise StudyError(f"--port {args.port} is not a TCP port; give 0..65535 (0: any free port)")
    if args.finetuned and not args.versions:
        raise StudyError("--finetuned goes with --versions DIR (the classifiers fine-tuned from those versions)")
    manifest, releases = build_manifest(versions=args.versions, members=args.members, finetuned=args.finetuned,
                                        profile=config.get_profile(args.profile), priority=tuple(args.priority),
                                        diffs=not args.no_diff, progress=True)
    server = ProductServer(manifest, releases, port=args.port)
    served = [r for r in releases.values() if r.servable]
    print(f"[product] {len(served)} of {len(releases)} release(s) of {manifest['source']}; default "
          f"{manifest['default']} ({manifest['decision']['how']}); Ctrl-C stops it", file=sys.stderr, flush=True)
    print(server.url, flush=True)
    # Ctrl-C and `kill PID` stop it cleanly, also when started where SIGINT is ignored (a shell's background job
    # inherits SIG_IGN, and Python then installs no KeyboardInterrupt handler of its own)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()
    print("[product] stopped", file=sys.stderr, flush=True)
    return 0
