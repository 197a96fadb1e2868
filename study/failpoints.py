"""Failpoints: named places where a process waits, on request, so that a fault test can act while an event holds.

A fault test must not guess how fast this machine is ("kill 1 s after Chromium starts"): it arms a failpoint, the
code under test reaches it and waits there, and the test sends its kill while the event holds (the technique of
FreeBSD's fail(9), etcd's gofail, TiKV's fail-rs). Disarmed (no $STUDY_FAILPOINTS), `reached` returns at once.

    STUDY_FAILPOINTS="sweep.cooldown-after,training.running@2,training.running@3"   points, hits (default 1)
    STUDY_FAILPOINT_DIR=/tmp/fp                                       where hits, pauses and releases meet

Hits are counted across every process that inherits the environment (a driver, its workers, Ray's workers): the
Nth arrival at a point, machine-wide, waits, holding `<dir>/<name>@<N>.paused` (JSON: pid, hit), until
`<name>@<N>.release` appears, its timeout passes (`.timed-out`) or the test kills it (POINTS: docs/faults.md).
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

ENV, DIR_ENV, TIMEOUT_ENV = "STUDY_FAILPOINTS", "STUDY_FAILPOINT_DIR", "STUDY_FAILPOINT_TIMEOUT"

POINTS: dict[str, str] = {  # name -> what holds while a process waits there
    "sweep.cooldown-before": "the sweep's driver: the Sampler runs, the cool-down before the run is sampled, "
                             "no training worker is started yet",
    "training.running": "the training worker (its own process, under the Sampler): data and model loaded, "
                        "before fitting",
    "sweep.cooldown-after": "the sweep's driver: the worker ended and wrote result.json, the cool-down after "
                            "the run is sampled, nothing recorded yet",
    "fidelity.row-appended": "the fidelity sweep's driver: a row was appended to rows.jsonl; the runtime "
                             "processes of the pool are running",
    "fidelity.on-node": "a fidelity task of a Ray cluster on the node it holds (its Ray worker): the node told "
                        "to the driver's tracker, the member not measured yet",
    "browser.start": "the stats server of the browser test: Chromium has loaded the page and asked to start; "
                     "the run's answer waits",
    "publish.version-done": "RQ3's publishing: one more version folder is complete (renamed into place), "
                            "the list versions.json not yet rewritten",
    "report.table": "a notebook's kernel, in `Report.table`: the notebook's run holds the reproduce lock",
    "files.before-replace": "`files.atomic_write`: the temporary file is complete and synced, the target "
                            "not yet replaced",
}


def _armed() -> dict[str, set[int]]:  # point -> the arrivals that wait
    spec = os.environ.get(ENV, "")
    armed: dict[str, set[int]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, hit = item.partition("@")
        if name not in POINTS:
            raise ValueError(f"${ENV}: unknown failpoint {name!r}; known: {', '.join(POINTS)}")
        armed.setdefault(name, set()).add(int(hit or 1))
    return armed


def _count(folder: Path, name: str) -> int:
    """This arrival's number at `name`, counted across processes (a locked counter file)."""
    with open(folder / f"{name}.hits", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        n = len(fh.read().splitlines()) + 1
        fh.write(f"{os.getpid()}\n")
        fh.flush()
    return n


def reached(name: str) -> None:
    """Wait here when a test armed `name` for this arrival; return at once otherwise."""
    if ENV not in os.environ:
        return
    if name not in POINTS:
        raise ValueError(f"unknown failpoint {name!r}: add it to study.failpoints.POINTS")
    hits = _armed().get(name)
    if not hits:
        return
    folder = Path(os.environ[DIR_ENV])
    hit = _count(folder, name)
    if hit not in hits:
        return
    at = f"{name}@{hit}"  # this arrival's files: <at>.paused, .release, .timed-out
    paused = folder / f"{at}.paused"
    tmp = paused.with_suffix(".paused.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "hit": hit}))
    os.replace(tmp, paused)  # whole or absent: the test never reads half a record
    deadline = time.monotonic() + float(os.environ.get(TIMEOUT_ENV, "600"))
    release = folder / f"{at}.release"
    while not release.exists():
        if time.monotonic() > deadline:
            (folder / f"{at}.timed-out").write_text(f"{os.getpid()}\n")
            return
        time.sleep(0.01)
