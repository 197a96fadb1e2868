"""The Ray executor of the fine-tuning sweep: one measured run per node, many nodes at once.

`study.casestudy.finetune.sweep` (the driver) keeps what it always does: resume, run records, Table IX, publishing the
models, every write atomic. This executor only places runs (`Executor.run_many`):

- each run is a Ray task that asks for one unit of `study.casestudy.cluster.NODE_RESOURCE`; every node offers exactly
  one, so a measured run holds a whole node and two measured runs never share one (Formula 1 stays clean);
- on that node the task prepares the data and the asset *outside* the measured window, then calls the same
  `executors.measure_run` as the local executor (Sampler process + training worker + watchdog);
- the samples, the summary and the fine-tuned model (a tar.gz of the run's artefacts) come back to the driver
  as the task's result, or through a shared folder given by `--artifacts URI` (`/shared/path` or
  `file:///shared/path`, mounted at the same place on every node);
- every run carries the node's identity (hostname, CPU model, cores, GPU, Ray node id) and the time it held
  the node (`node.held_from` / `held_to`);
- a task lost with its node or its Ray worker becomes a `failed` RunResult naming the node and the reason;
  with `retries=N` it is resubmitted (up to N times) to a *different* node, and the final record keeps the
  failed attempts (`node.attempts`).

The same placement serves other node-holding work: `RayExecutor.each(fn, items, key)` runs `fn(item)` per item
in a task that holds a node, with the same retries (notebook 01's deployment matrix, a part of a framework's formats
per task; notebook 05's browser test, a member per task; notebook 08's version costs, a version per task; notebook
09's fidelity, a member per task).

Every node needs this checkout at the same path with its `.venv` (the task runs `study` from there).

Which cluster: `--address` / `$RAY_ADDRESS` when given (and only that one); else the executor starts its own
one-node cluster on loopback (`study.casestudy.cluster.LocalCluster`: every port on 127.0.0.1) and stops it, by
PID, in `close()`. It never joins a cluster it was not named (no `ray.init(address="auto")`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from study import config, failpoints, files
from study.casestudy import dataset, executors, formula1, training
from study.casestudy.cluster import LOOPBACK, NODE_RESOURCE, LocalCluster, is_loopback, loopback_kept, node_identity, \
    node_label
from study.casestudy.executors import RunResult
from study.casestudy.sampler import COLUMNS
from study.errors import StudyError

INSTALL_HINT = ".venv/bin/pip install -c requirements/lock.txt -r requirements/ray.txt"
_PASSED_ENV = ("STUDY_CACHE_DIR", "STUDY_ZOO_DIR", "TFHUB_CACHE_DIR", "FLOWER_PHOTOS", "TF_CPP_MIN_LOG_LEVEL",
               "STUDY_ASSETS", "TFHUB_MODEL_LOAD_FORMAT",  # the asset folder: a path every node can read
               failpoints.ENV, failpoints.DIR_ENV, failpoints.TIMEOUT_ENV)  # a fault test's, armed in the driver


def artifacts_root(uri: str | None) -> Path | None:
    """`--artifacts URI` as a folder: a plain path or file:// URI (shared storage mounted on every node)."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri)
    raise StudyError(f"--artifacts {uri!r}: only shared folders are supported (a path or file:///path mounted at "
                     "the same place on every node); leave it out to bring the artefacts back through Ray")


# --------------------------------------------------------------------------------- node side
def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def _unpack(data: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def hold_node(key: str, attempt: int, tracker=None) -> dict[str, Any]:
    """The start of every node-holding task: all the node's threads for it, and its node told to the driver's
    tracker first (if this worker dies next, the driver still knows where `key`'s attempt was). The node's identity."""
    if os.environ.get("OMP_NUM_THREADS") == "":
        del os.environ["OMP_NUM_THREADS"]  # Ray's default of 1 thread per task: the task holds the whole node
    node = node_identity()
    if tracker is not None:
        import ray

        try:
            ray.get(tracker.started.remote(key, attempt, node), timeout=60)
        except ray.exceptions.RayError:
            pass
    return node


def run_held(item, attempt: int, fn, key, tracker=None):
    """The body of a task of `RayExecutor.each`: the node held and told to the tracker, then `fn(item)` there."""
    hold_node(key(item), attempt, tracker)
    return fn(item)


def run_on_node(job, attempt: int, artifacts: str | None, tracker=None) -> dict[str, Any]:
    """The body of the Ray task, on the node that holds the run: prepare, measure, pack the results."""
    node = hold_node(job.run_id, attempt, tracker)
    cfg = job.config
    # data and asset ready before the measured window (cached after the first run on this node)
    dataset.load_split(cfg.profile, seed=cfg.seed, data=cfg.data, split=cfg.split)
    training.prepare_assets(cfg.profile, [job.asset or job.member])
    _stop_orphans()
    scratch = Path(tempfile.mkdtemp(prefix="study-run-"))
    pidfile = RUNNING_DIR / f"{os.getpid()}.pid"
    try:
        node["held_from"] = time.time()
        result = executors.measure_run(dataclasses.replace(job, workdir=scratch / "run"),
                                      on_start=lambda _job, worker, _sampler: files.write_text(pidfile, f"{worker}\n"))
        node["held_to"] = time.time()
        result.node = {**result.node, **node}
        payload: dict[str, Any] = {"result": result, "artifacts": None, "artifacts_path": None,
                                   "worker_log": _read(scratch / "run" / "worker.log")}
        if result.artifacts is not None:
            root = artifacts_root(artifacts)
            if root is None:
                payload["artifacts"] = _pack(result.artifacts)
            else:
                dest = root / job.member / f"r{job.repeat}" / f"attempt{attempt}"
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(result.artifacts, dest)
                payload["artifacts_path"] = str(dest)
        result.artifacts = None  # a path on this node means nothing to the driver
        return payload
    finally:
        pidfile.unlink(missing_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)


# The training worker runs in its own session (measure_run), so a Ray worker killed on its own (Ray's memory
# monitor, a crash) can leave it training. Each task notes its worker's PID; the next task on the node stops
# such orphans *before* measuring, so that they never overlap a measured run.
RUNNING_DIR = Path(tempfile.gettempdir()) / "study-measured-runs"


def _stop_orphans() -> list[int]:
    """SIGKILL the process groups of training workers whose Ray task is gone; returns their PIDs."""
    import signal

    import psutil

    RUNNING_DIR.mkdir(parents=True, exist_ok=True)
    stopped = []
    for pidfile in RUNNING_DIR.glob("*.pid"):
        if psutil.pid_exists(int(pidfile.stem)):
            continue  # its task is still running (another node on this machine)
        try:
            worker = int(pidfile.read_text().strip())
            proc = psutil.Process(worker)
            if "study.casestudy.training" in proc.cmdline():
                os.killpg(worker, signal.SIGKILL)  # the worker's session: PGID = its PID
                stopped.append(worker)
        except (ValueError, OSError, psutil.Error):
            pass
        pidfile.unlink(missing_ok=True)
    return stopped


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------------- driver side
def _check_address(address: str, timeout: float) -> str:
    """The host of a HOST:PORT that answers, or one clear error (instead of Ray's long reconnect loop)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise StudyError(f"--address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise StudyError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                         f"`ray start --head --port {port} ...` or check --address") from exc
    return host


@dataclasses.dataclass
class Placed:
    """One ended attempt of a node-holding task (`RayExecutor.placed`): its `payload` (what the task returned), or
    `lost` (node and reason) and whether it was submitted again (`retry`); `history`: the attempts lost before it."""

    item: Any
    attempt: int
    history: list[dict[str, Any]]
    payload: Any
    lost: dict[str, Any] | None
    retry: bool


class RayExecutor:
    """Runs the sweep's measured runs on a Ray cluster, one per node (`--executor ray --address ADDR`), and any
    other node-holding work through `each`."""

    name = "ray"

    def __init__(self, address: str | None = None, retries: int = 0, artifacts: str | None = None,
                 connect_timeout: float = 10.0):
        # --address, else $RAY_ADDRESS: that cluster and no other; else our own loopback cluster (docs/cluster.md)
        address = address or os.environ.get("RAY_ADDRESS") or None
        if retries < 0:
            raise StudyError(f"--retries must be 0 or more (got {retries})")
        self.address, self.retries, self.artifacts = address, retries, artifacts
        artifacts_root(artifacts)  # validate early
        host = _check_address(address, connect_timeout) if address else LOOPBACK
        try:
            import ray
        except ImportError as exc:
            raise StudyError(f"--executor ray needs the optional package ray: {INSTALL_HINT}") from exc
        self._ray = ray
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "")  # "" = unset on the node (run_on_node)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")]))
        if ray.is_initialized():
            raise StudyError("this process is already connected to Ray; one RayExecutor per driver process")
        # Never ray.init() without an address (Ray would join a cluster running on this machine, or start one
        # listening on every interface): no address = a one-node loopback cluster of ours, one measuring node.
        self.cluster = None if address else LocalCluster(nodes=1).start()
        address = self.address = address or self.cluster.address
        # a loopback node other than 127.0.0.1 (e.g. 127.0.0.2) is this driver's node too
        extra = {"_node_ip_address": host} if is_loopback(host) and host != LOOPBACK else {}
        common = dict(namespace="study", log_to_driver=False, logging_level="WARNING", runtime_env={"env_vars": env})
        try:
            # a loopback address stays loopback (Ray would rewrite 127.0.0.1 to this machine's routable address)
            with loopback_kept() if is_loopback(host) else contextlib.nullcontext():
                ray.init(address=address, **common, **extra)
            self.nodes = self.measuring_nodes()
            if not self.nodes:
                raise StudyError(f"the Ray cluster at {address} has no node offering the resource "
                                 f"{NODE_RESOURCE!r}; start every node with --resources '{{\"{NODE_RESOURCE}\": 1}}'")
            self._task = ray.remote(run_on_node)
            # a whole node per run; no Ray-level retries: a lost attempt is recorded, then retried by run_many
            self._task_options = dict(num_cpus=0, resources={NODE_RESOURCE: 1}, max_retries=0,
                                      name="study-measured-run")
            # on the head: it outlives any worker node (and the cluster does not outlive its head)
            self._tracker = ray.remote(_Tracker).options(num_cpus=0,
                                                         resources={"node:__internal_head__": 0.001}).remote()
            ray.get(self._tracker.get.remote("", 0))  # up before any run reports to it
        except BaseException:  # nothing of ours outlives a failed start
            self.close()
            raise

    def measuring_nodes(self) -> list[dict[str, Any]]:
        """Alive nodes that offer the per-node resource (one measured run at a time each)."""
        return [n for n in self._ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(NODE_RESOURCE)]

    # the seam
    def run(self, job):
        return next(iter(self.run_many([job])))

    def run_many(self, jobs: Iterable) -> Iterator:
        """Submit every job at once (Ray queues them on the per-node resource); yield results as they end.

        A lost attempt is yielded as a `failed` result (the driver records it) and, while retries are left,
        resubmitted to a node other than those it failed on; its final result then carries `node.attempts`.
        """
        for done in self.placed(run_on_node, jobs, lambda job: job.run_id, self.artifacts):
            if done.lost is not None:
                yield self._failure(done.item, done.attempt, done.lost, done.history)
                continue
            result = self._materialise(done.item, done.payload)
            result.node["attempt"] = done.attempt
            result.node["attempts"] = done.history
            yield result

    def placed(self, fn, items: Iterable, key, *args) -> Iterator["Placed"]:
        """`fn(item, attempt, *args, tracker)` for every item as a Ray task that holds a whole node (the per-node
        resource: what it measures shares the node with nothing of ours), all submitted at once; yields each attempt
        as it ends. `fn` starts with `hold_node(key(item), attempt, tracker)`. An attempt lost with its node or Ray
        worker is yielded with `lost` (its node, from the tracker, and Ray's reason) and, while retries are left,
        submitted again to a node it has not failed on (`retry`); `history` holds the lost attempts before it."""
        ray = self._ray
        remote = ray.remote(fn) if fn is not run_on_node else self._task
        pending: dict[Any, tuple[Any, int, list[dict[str, Any]]]] = {}

        def submit(item, attempt: int, history: list[dict[str, Any]]) -> None:
            opts: dict[str, Any] = {}
            avoid = [h["node_id"] for h in history if h.get("node_id")]
            others = [n["NodeID"] for n in self.measuring_nodes() if n["NodeID"] not in avoid]
            if avoid and others:
                opts["label_selector"] = {"ray.io/node-id": f"!in({','.join(avoid)})"}
            ref = remote.options(**self._task_options, **opts).remote(item, attempt, *args, self._tracker)
            pending[ref] = (item, attempt, history)

        for item in items:
            submit(item, 1, [])
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            item, attempt, history = pending.pop(ready[0])
            try:
                payload = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                lost = self._lost(key(item), attempt, exc)
                retry = attempt <= self.retries
                yield Placed(item, attempt, history, None, lost, retry)
                if retry:
                    submit(item, attempt + 1, [*history, {k: v for k, v in lost.items() if k != "node"}])
                continue
            yield Placed(item, attempt, history, payload, None, False)

    def each(self, fn, items: Iterable, key, *, what: str) -> Iterator[tuple[Any, Any, list[dict[str, Any]]]]:
        """`fn(item)` for every item in a task that holds a node (`placed`; `fn` and `key` picklable, `key(item)`
        names it); yields (item, what `fn` returned, the attempts lost before it) as each ends. A lost attempt is said
        on stderr (`[what] lost KEY: reason`) and, while retries are left, run again on another node; lost on every
        attempt, one StudyError once every other item has ended (the caller has recorded them)."""
        lost = []
        for done in self.placed(run_held, items, key, fn, key):
            if done.lost is not None:
                print(f"[{what}] lost {key(done.item)}: {done.lost['reason']}"
                      + ("; again on another node" if done.retry else ""), file=sys.stderr, flush=True)
                if not done.retry:
                    lost.append(f"{key(done.item)} ({done.lost['reason']})")
                continue
            yield done.item, done.payload, done.history
        if lost:
            raise StudyError(f"{len(lost)} task(s) lost on the cluster, every attempt: {'; '.join(lost)}. The others' "
                             "results are recorded: run again to measure the lost ones (or raise --retries)")

    def _lost(self, key: str, attempt: int, exc: BaseException) -> dict[str, Any]:
        """An attempt that raised in Ray (node died, worker killed, task error): its node (as the task told the
        tracker; none if it never started) with `error` (Ray's exception type), `reason` and `at`."""
        try:
            node = self._ray.get(self._tracker.get.remote(key, attempt), timeout=30) or {}
        except self._ray.exceptions.RayError:
            node = {}
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
        kind = type(exc).__name__
        where = node_label(node) if node else "a node that never reported (lost before the run started)"
        reason = f"attempt {attempt} on {where}: Ray {kind}: {first}"[:600]
        return {"attempt": attempt, "node_id": node.get("node_id"), "hostname": node.get("hostname"), "error": kind,
                "reason": reason, "at": time.time(), "node": node}

    def _failure(self, job, attempt: int, lost: dict[str, Any], history: list[dict[str, Any]]):
        """A failed RunResult for a lost attempt of a measured run."""
        import pandas as pd

        samples = pd.DataFrame({c: pd.Series(dtype="str" if c == "phase" else "float64") for c in COLUMNS})
        record = {k: v for k, v in lost.items() if k != "node"}
        node = {**lost["node"], "attempt": record, "attempts": [*history, record]}
        return RunResult(member=job.member, repeat=job.repeat, status="failed", reason=lost["reason"],
                         elapse_s=math.nan, summary=formula1.summarize(samples), samples=samples, started=lost["at"],
                         ended=lost["at"], node=node)

    def _materialise(self, job, payload: dict[str, Any]):
        """Put a finished run where the driver expects a local one: job.workdir/{samples.csv, artifacts/}."""
        result = payload["result"]
        work = Path(job.workdir)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        files.write_csv(work / "samples.csv", result.samples)
        files.write_text(work / "worker.log", payload.get("worker_log") or "")
        if payload.get("artifacts") is not None:
            _unpack(payload["artifacts"], work / "artifacts")
            result.artifacts = work / "artifacts"
        elif payload.get("artifacts_path"):
            shutil.copytree(payload["artifacts_path"], work / "artifacts")
            result.artifacts = work / "artifacts"
        return result

    def close(self) -> None:
        """Disconnect; stop the cluster this executor started (its processes, by PID)."""
        if self._ray.is_initialized():
            self._ray.shutdown()
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


class _Tracker:
    """A tiny actor: which node started which attempt (so a lost task can name its node)."""

    def __init__(self):
        self.seen: dict[tuple[str, int], dict[str, Any]] = {}

    def started(self, run_id: str, attempt: int, node: dict[str, Any]) -> None:
        self.seen[(run_id, attempt)] = node

    def get(self, run_id: str, attempt: int) -> dict[str, Any] | None:
        return self.seen.get((run_id, attempt))
