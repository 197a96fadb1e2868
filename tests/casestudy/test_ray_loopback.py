"""`--executor ray` never opens a port beyond loopback and never joins a cluster it was not named.

The slow test runs a real `finetune --profile smoke --executor ray` without an address and lists, while it runs,
every listening socket of its process tree (the driver, the Ray cluster it started, Ray's workers: by PID,
recursively); any address other than loopback fails it. The fast tests check, with Ray's `init` replaced,
which cluster the executor joins: its own (started, then stopped) without an address, exactly the named one
with `--address` / `$RAY_ADDRESS`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from study.casestudy import cluster as cluster_mod
from study.runtime import processes
from study.casestudy import ray_executor
from study.casestudy.cluster import is_loopback
from tests.conftest import needs_ray

MEMBER = "mobilenet_v1_025_128"  # the smallest smoke member


def listening(root: int) -> set[tuple[int, str, str, int]]:
    """(pid, name, ip, port) of every LISTEN socket (TCP/UDP, IPv4/IPv6) in `root`'s process tree, by PID."""
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    found = set()
    for proc in procs:
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((proc.pid, name, conn.laddr.ip, conn.laddr.port))
        except psutil.Error:  # ended between the listing and now
            continue
    return found


def test_loopback_addresses():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.0.2.2", "::ffff:192.0.2.2", "10.0.0.1", "example.org"):
        assert not is_loopback(host), host


@pytest.mark.slow
@needs_ray
def test_finetune_on_ray_without_an_address_listens_on_loopback_only(tmp_path, shared_zoo):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"STUDY_CACHE_DIR": str(tmp_path / "cache"), "STUDY_RESULTS_DIR": str(tmp_path / "results"),
            "STUDY_ZOO_DIR": str(shared_zoo)}  # the member built once a run
    out = tmp_path / "sweep"
    log_file = tmp_path / "finetune.log"
    with open(log_file, "w") as fh:  # a file, not a pipe nobody reads while it runs (a full pipe would block it)
        proc = processes.popen([sys.executable, "-m", "study", "finetune", "--profile", "smoke", "--executor", "ray",
                                "--members", MEMBER, "--out", str(out)], role="test-finetune", env=env, text=True,
                               stdout=fh, stderr=subprocess.STDOUT)  # dies with the test run (PR_SET_PDEATHSIG)
    seen: set[tuple[int, str, str, int]] = set()
    try:
        while proc.poll() is None:  # the whole run: cluster start, data and asset preparation, the measured run
            seen |= listening(proc.pid)
            time.sleep(0.5)
        log = log_file.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()  # its cluster's nodes die with it (group guards)
            proc.wait()
    assert proc.returncode == 0, log[-3000:]
    names = {name for _, name, _, _ in seen}
    # not vacuous: Ray's own servers were seen listening (GCS, raylet, workers)
    assert {"gcs_server", "raylet"} <= names, sorted(seen)
    beyond = sorted(s for s in seen if not is_loopback(s[2]))
    assert not beyond, f"listening beyond loopback: {beyond}"
    # the cluster it started is stopped: none of the processes that listened outlives the command
    alive = [pid for pid, *_ in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive
    assert (out / "table_ix.csv").is_file()


# ------------------------------------------------------------------- which cluster (Ray's init replaced)
class _Joined(Exception):
    """Raised by the stand-in `ray.init` once it has recorded its arguments (nothing else runs)."""


@pytest.fixture
def fake_ray(monkeypatch):
    import ray  # the tests that use this fixture carry `needs_ray` (a missing Ray fails under CI, never skips)

    calls: dict = {"init": [], "clusters": []}

    def init(**kwargs):
        calls["init"].append(kwargs)
        raise _Joined

    class FakeCluster:
        def __init__(self, nodes: int = 1, **_):
            self.nodes, self.stopped = nodes, False
            calls["clusters"].append(self)

        @property
        def address(self) -> str:
            return "127.0.0.1:54321"

        def start(self):
            return self

        def stop(self):
            self.stopped = True

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_executor, "LocalCluster", FakeCluster)
    monkeypatch.setattr(ray_executor, "_check_address", lambda address, timeout: address.rpartition(":")[0])
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return calls


@needs_ray
def test_without_an_address_it_starts_and_stops_its_own_loopback_cluster(fake_ray):
    with pytest.raises(_Joined):
        ray_executor.RayExecutor()
    [init], [own] = fake_ray["init"], fake_ray["clusters"]
    assert init["address"] == own.address and own.nodes == 1  # its own cluster, never "auto" or None
    assert own.stopped  # a failed start stops what it started


@needs_ray
def test_a_named_cluster_is_joined_and_none_started(fake_ray, monkeypatch):
    with pytest.raises(_Joined):
        ray_executor.RayExecutor(address="10.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    with pytest.raises(_Joined):
        ray_executor.RayExecutor()
    assert [c["address"] for c in fake_ray["init"]] == ["10.0.0.1:6379", "10.0.0.2:6379"]
    assert not fake_ray["clusters"]


@needs_ray
def test_loopback_kept_only_inside_and_only_for_loopback():
    from ray._private import services

    original = services.resolve_ip_for_localhost
    with cluster_mod.loopback_kept():
        assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
        assert services.resolve_ip_for_localhost("10.0.0.1") == "10.0.0.1"
    assert services.resolve_ip_for_localhost is original
