"""Nodes for the fine-tuning sweep: who measured a run (node identity) and a Ray cluster on one machine.

A *node* runs one measured run at a time: the Ray executor (`study.casestudy.ray_executor`) asks for one unit of the
custom resource `NODE_RESOURCE`, and every node offers exactly one (`ray start --resources '{"study_node": 1}'`),
so two measured runs never share a machine and Formula 1's deltas stay clean.

`node_identity()` says which machine measured a run (hostname, CPU model, cores, memory, GPU, and the Ray
node id when inside Ray); every run record carries it, whichever executor ran it.

`LocalCluster` starts a real multi-node Ray cluster on this machine, loopback only (tests, docs, trying it
out, and `--executor ray` without an address): `ray start --head` plus `ray start --address` workers, each
`--block`ed in its own process so that it is stopped by the PID we started, never by name.

    with LocalCluster(nodes=2) as cluster:     # 127.0.0.1:<free port>, 1 CPU and 1 study_node per node
        sweep(out, config.get_profile("smoke"), executor=RayExecutor(cluster.address))

    python -m study cluster --nodes 2           # the same from a shell; prints the address, Ctrl-C stops it

Loopback only, measured: every socket the cluster's processes listen on (GCS, raylets, object managers, workers,
agents) is on 127.0.0.1 (tests/casestudy/test_ray_loopback.py). Ray 2.60's servers listen on loopback only when
the node's address is literally 127.0.0.1 (any other address, 127.0.0.2 included, makes them listen on all
interfaces), but Ray's Python side rewrites "127.0.0.1"/"localhost" to the machine's routable address before
starting or joining a node. `loopback_kept()` turns that rewrite off for loopback addresses: in the `ray start`
processes (`python -m study.casestudy.cluster start ...`, Ray's own CLI under it) and around the driver's
`ray.init` (`study.casestudy.ray_executor`).
"""
from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.runtime.environment import free_port
from study.runtime.processes import popen, release
from study.errors import StudyError

NODE_RESOURCE = "study_node"  # one unit per node: a measured run holds a whole node
# Exactly 127.0.0.1: the one node address for which Ray's servers listen on loopback only (see `loopback_kept`).
LOOPBACK = "127.0.0.1"
# RAY_AUTH_MODE explicit: with it unset, Ray 2.60 turns token authentication on for a head node whenever
# ~/.ray/auth_token exists (any local `ray.init()` writes one) but not for the nodes joining it, which then fail.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
RAY_START_TIMEOUT = "timed out during startup"  # what Ray says when a raylet missed its 30 s to register


# --------------------------------------------------------------------------------- node identity
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, `platform.processor()` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the GPUs NVML sees (empty without a GPU or a driver; never raises)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            names = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                names.append(name.decode() if isinstance(name, bytes) else str(name))
            return names
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return []


def node_identity() -> dict[str, Any]:
    """Which machine this is: hostname, CPU model, cores, memory, GPU; plus Ray's node id / IP inside Ray."""
    import psutil

    gpus = gpu_names()
    node = {"hostname": platform.node(), "cpu_model": cpu_model(), "cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "gpu": ", ".join(gpus) if gpus else "none", "node_id": "local", "node_ip": ""}
    if "ray" in sys.modules:  # inside a Ray worker (never import ray just to ask)
        try:
            import ray

            if ray.is_initialized():
                node["node_id"] = ray.get_runtime_context().get_node_id()
                node["node_ip"] = ray.util.get_node_ip_address()
        except Exception:
            pass
    return node


def node_label(node: dict[str, Any]) -> str:
    """A short human label: `host (CPU model, N cores, GPU)` and the first 8 characters of Ray's node id."""
    nid = node.get("node_id") or "local"
    short = nid if nid == "local" else nid[:8]
    return f"{node.get('hostname', '?')}/{short} ({node.get('cpu_model', '?')}, {node.get('cores', '?')} cores, " \
           f"GPU: {node.get('gpu', 'none')})"


def after_lost(history: list[dict[str, Any]]) -> str:
    """What a row's `node` adds for the attempts lost before it (`RayExecutor.each`'s history): "" when none."""
    return "; after " + "; ".join(h["reason"] for h in history) if history else ""


@functools.lru_cache(maxsize=1)
def this_node() -> str:
    """`node_label` of the machine this process runs on (inside a Ray worker: with its node id), for a table's
    `node` column; a process never changes node, so it is asked once."""
    return node_label(node_identity())


# --------------------------------------------------------------------------------- loopback stays loopback
def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, an IPv4-mapped loopback (::ffff:127.0.0.1) or "localhost"."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return host == "localhost"
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@contextlib.contextmanager
def loopback_kept():
    """While inside, Ray keeps a loopback node / cluster address as given instead of rewriting it to the machine's
    routable address (`ray._private.services.resolve_ip_for_localhost`, Ray 2.60; other hosts are unchanged)."""
    from ray._private import services

    original = services.resolve_ip_for_localhost

    def resolve(host: str):
        return host if host and is_loopback(host) else original(host)

    services.resolve_ip_for_localhost = resolve
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original


# --------------------------------------------------------------------------------- a cluster on this machine
def ray_command() -> list[str]:
    """How to run Ray's CLI with loopback kept (`python -m study.casestudy.cluster ...` = `ray ...`), or a
    StudyError saying how to install Ray."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise StudyError("the optional package ray is not installed in this environment; install the optional "
                         "extra: .venv/bin/pip install -c requirements/lock.txt -r requirements/ray.txt")
    return [sys.executable, "-m", "study.casestudy.cluster"]


@dataclass
class LocalNode:
    """One `ray start --block` process we started (its children: raylet, workers, and the head's GCS)."""

    index: int
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> list[int]:
        """PIDs of this node's process tree (the `ray start` process first)."""
        import psutil

        try:
            root = psutil.Process(self.pid)
            return [self.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []


@dataclass
class LocalCluster:
    """A real Ray cluster of `nodes` nodes on loopback (127.0.0.1): node 0 is the head; each offers 1 `NODE_RESOURCE`.

    Small by default (1 CPU, 200 MB object store, no dashboard) so that it fits beside a training worker.
    """

    nodes: int = 2
    num_cpus: int = 1
    object_store_mb: int = 200
    port: int | None = None
    temp_dir: Path | None = None  # Ray's session folder root; short (Unix socket paths), default /tmp/study-ray-*
    started: list[LocalNode] = field(default_factory=list)
    start_timeout: float = 90.0
    start_attempts: int = 3

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, **QUIET_ENV}

    def start(self) -> LocalCluster:
        if self.nodes < 1:
            raise StudyError(f"a cluster needs at least 1 node (got {self.nodes})")
        self.port = self.port or free_port(LOOPBACK)
        self._own_temp = self.temp_dir is None
        self.temp_dir = Path(self.temp_dir or tempfile.mkdtemp(prefix="study-ray-", dir="/tmp"))
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        try:
            for i in range(self.nodes):
                self.add_node()
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self) -> LocalNode:
        """Start one more node (the head first) and wait until it has joined.

        Ray gives a starting raylet a fixed 30 s to register with the GCS; on a saturated machine that can pass.
        Such a start is stopped (its whole tree, by PID) and tried again, up to `start_attempts` times.
        """
        for attempt in range(1, self.start_attempts + 1):
            if attempt > 1 and not self.started:
                self.port = free_port(LOOPBACK)  # a fresh head: nothing may still hold the old GCS port
            node = self._start_node()
            why = self._wait_started(node)
            if not why:
                return node
            self._stop_node(node)
            self.started.remove(node)
            if RAY_START_TIMEOUT not in why or attempt == self.start_attempts:
                raise StudyError(why)
        raise AssertionError("unreachable")

    def _start_node(self) -> LocalNode:
        head = not self.started
        index = len(self.started)
        cmd = [*ray_command(), "start", "--block", f"--node-ip-address={LOOPBACK}", f"--num-cpus={self.num_cpus}",
               "--num-gpus=0", f"--resources={json.dumps({NODE_RESOURCE: 1})}",
               f"--object-store-memory={self.object_store_mb * 10**6}", "--disable-usage-stats"]
        if head:
            cmd += ["--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--ray-client-server-port={free_port(LOOPBACK)}", f"--temp-dir={self.temp_dir}"]
        else:
            cmd += [f"--address={self.address}"]
        cmd += [f"--dashboard-agent-listen-port={free_port(LOOPBACK)}", f"--metrics-export-port={free_port(LOOPBACK)}",
                f"--runtime-env-agent-port={free_port(LOOPBACK)}"]
        log = Path(self.temp_dir) / f"node{index}.log"
        with open(log, "w") as fh:
            proc = popen(cmd, role=f"ray-node{index}", group=True, stdout=fh, stderr=subprocess.STDOUT,
                         env=self.env())
        node = LocalNode(index, proc, log)
        self.started.append(node)
        return node

    def _wait_started(self, node: LocalNode) -> str:
        """"" when the node joined, else why not (with the end of its log)."""
        deadline = time.monotonic() + self.start_timeout
        while "Ray runtime started" not in node.log.read_text(errors="replace"):
            if node.proc.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join(node.log.read_text(errors="replace").strip().splitlines()[-5:])
                role = "worker" if node.index else "head"
                return f"Ray node {node.index} ({role}) did not start (exit code {node.proc.poll()}); log {node.log}: {tail}"
            time.sleep(0.2)
        return ""

    def kill_node(self, index: int) -> list[int]:
        """SIGKILL a node's whole process tree at once (a machine dying mid-run); returns the PIDs killed."""
        node = self.started[index]
        pids = node.tree()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.proc.wait()
        return pids

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the nodes we started, workers first: SIGTERM to each `ray start --block`, SIGKILL what is left."""
        for node in reversed(self.started):
            self._stop_node(node, timeout)
        self.started.clear()
        if getattr(self, "_own_temp", False) and self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    @staticmethod
    def _stop_node(node: LocalNode, timeout: float = 20.0) -> None:
        """SIGTERM the node's `ray start --block` (it stops its own children), then SIGKILL what is left."""
        import psutil

        leftovers = node.tree()[1:]
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        for pid in leftovers:  # anything that outlived its `ray start` (by PID, from the tree we started)
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        release(node.proc)  # its group guard: the group is gone, no kill needed

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # `ray ARGS` with loopback kept: how LocalCluster starts its nodes
    with loopback_kept():
        from ray.scripts.scripts import main

        sys.argv = ["ray", *sys.argv[1:]]
        sys.exit(main())
