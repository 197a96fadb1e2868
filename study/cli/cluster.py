"""`cluster`: a Ray cluster of N nodes on loopback for `finetune --executor ray` (`study.casestudy.cluster`)."""
from __future__ import annotations

import argparse
import signal
import sys

from study.casestudy.cluster import LocalCluster


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cluster", help="start a Ray cluster of N nodes on loopback until Ctrl-C (for `finetune "
                                       "--executor ray`)")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--num-cpus", type=int, default=1)
    p.add_argument("--object-store-mb", type=int, default=200)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    """Start the cluster, print its address (stdout) and block until Ctrl-C / SIGTERM; StudyError -> exit 2 (cli)."""
    cluster = LocalCluster(args.nodes, args.num_cpus, args.object_store_mb, args.port)
    try:
        cluster.start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        print(cluster.address, flush=True)
        print(f"Ray cluster of {args.nodes} node(s) at {cluster.address} (logs: {cluster.temp_dir})\n"
              f"  python -m study finetune --executor ray --address {cluster.address} ...\n"
              "Ctrl-C stops it.", file=sys.stderr, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    return 0
