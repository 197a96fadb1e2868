"""The study's expensive work on a real 2-node Ray cluster (loopback): the sweep (04), the browser test (05), the
deployment matrix (01), the version costs (08) and the per-member fidelity (09) give the same rows as local, one
measured task per node, every row naming its node; a killed Ray worker is recorded and retried elsewhere, and a node
lost mid-sweep (its raylet killed) has its member measured again on the other. Skips, with the install command,
when the optional `ray` is absent (fails under CI)."""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psutil
import pytest

from study.casestudy.cluster import LocalCluster, node_identity
from study.errors import StudyError
from tests.conftest import needs_browser, needs_ray
from tests.failpoint import Armed
from tests.releases.conftest import published  # noqa: F401 - the session's published versions (a fixture)

pytestmark = [needs_ray, pytest.mark.slow, pytest.mark.stress]

SMOKE = ["mobilenet_v1_025_128", "mobilenet_v2_035_96"]  # the smoke profile's two tiny MobileNets: seconds a run


def _finetune(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study", "finetune", "--profile", "smoke", "--members", *SMOKE,
                             *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_ray_worker(proc: psutil.Process) -> list[int]:
    """SIGKILL the Ray worker process alone (by PID); returns it and the run's processes it leaves behind."""
    left = [p.pid for p in proc.children(recursive=True)]  # the Sampler (exits on EOF) and the training worker
    proc.send_signal(signal.SIGKILL)
    return [proc.pid, *left]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, shared_zoo):
    """The smoke sweep run locally and on a 2-node cluster whose first measured Ray worker is killed mid-run. The
    members come from the run's shared zoo (built once a run; Ray passes STUDY_ZOO_DIR on to the nodes' tasks)."""
    root = tmp_path_factory.mktemp("ray-sweeps")
    env = {**os.environ, "STUDY_CACHE_DIR": str(root / "cache"), "STUDY_RESULTS_DIR": str(root / "results"),
           "STUDY_ZOO_DIR": str(shared_zoo)}
    local = _finetune(["--out", str(root / "local")], env)  # builds the cached inputs both sweeps use
    # the first training worker on the cluster waits mid-run (its retry, the second arrival, does not): the nodes
    # inherit this from the environment they are started in, and their workers from them
    armed = Armed(root / "failpoints", "training.running@1")
    cluster = LocalCluster(nodes=2)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in armed.env({}).items():
                mp.setenv(name, value)
            cluster.start()  # meanwhile: only the accuracies of the local sweep are compared, not its timings
        local_out, local_err = local.communicate(timeout=400)
        assert local.returncode == 0, local_err[-3000:]
        ray_run = _finetune(["--executor", "ray", "--address", cluster.address, "--retries", "1",
                             "--out", str(root / "ray")], env)
        training = psutil.Process(armed.wait("training.running", ray_run))  # mid-run, on one of the nodes
        assert "study.casestudy.training" in training.cmdline()
        node_pids = {pid for node in cluster.started for pid in node.tree()}
        worker = training.parent()  # the Ray worker that runs the measured run
        assert worker.pid in node_pids, "the waiting training worker is not the cluster's"
        killed = {"pid": worker.pid, "pids": _kill_ray_worker(worker)}
        ray_out, ray_err = ray_run.communicate(timeout=400)
        yield {"root": root, "local": root / "local", "ray": root / "ray", "killed": killed, "cluster": cluster,
               "env": env, "ray_rc": ray_run.returncode, "ray_log": ray_out + ray_err}
    finally:
        if local.poll() is None:
            local.kill()
        cluster.stop()


def _threads(out: Path, member: str) -> dict:
    return json.loads((out / "runs" / member / "r0.json").read_text()).get("worker", {}).get("threads", {})


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/r*.json"))]


def test_ray_sweep_gives_the_local_table_ix_rows(sweeps):
    assert sweeps["ray_rc"] == 0, sweeps["ray_log"][-3000:]
    local = pd.read_csv(sweeps["local"] / "table_ix.csv").set_index("model")
    ray = pd.read_csv(sweeps["ray"] / "table_ix.csv").set_index("model")
    assert list(ray.columns) == list(local.columns)  # same file, same columns
    assert sorted(ray.index) == sorted(local.index) == sorted(SMOKE)
    assert (ray["status"] == "ok").all() and (local["status"] == "ok").all()
    for member in SMOKE:
        # Tolerance: one test image. Same seed, data and libraries, but the node's thread count may reorder
        # floating-point sums; in practice the accuracies are equal.
        n_test = len(json.loads((sweeps["ray"] / "models" / member / "meta.json").read_text())["test_images"])
        if abs(ray.loc[member, "accuracy"] - local.loc[member, "accuracy"]) > 1 / n_test + 1e-9:
            a, b = (pd.read_csv(sweeps[k] / "predictions" / f"{member}.csv") for k in ("local", "ray"))
            differ = int((a["prediction"].to_numpy() != b["prediction"].to_numpy()).sum())
            pytest.fail(f"{member}: accuracy {local.loc[member, 'accuracy']} local, {ray.loc[member, 'accuracy']} "
                        f"on Ray, {differ} of {n_test} test predictions differ; worker threads "
                        f"{_threads(sweeps['local'], member)} / {_threads(sweeps['ray'], member)}")
        for col in ("delta_cpu", "delta_mem", "elapse_s", "peak_rss_mb"):
            assert math.isfinite(ray.loc[member, col]), (member, col)
        # the contract layout, filled from the artefacts the nodes sent back
        assert (sweeps["ray"] / "models" / member / "saved_model" / "saved_model.pb").exists()
        preds = pd.read_csv(sweeps["ray"] / "predictions" / f"{member}.csv")
        assert (preds["label"] == preds["prediction"]).mean() == pytest.approx(ray.loc[member, "accuracy"])
        samples = pd.read_csv(sweeps["ray"] / "samples" / f"{member}.csv")
        assert {"cooldown-before", "running", "cooldown-after"} <= set(samples["phase"])


def test_node_identity_is_in_every_row(sweeps):
    here = node_identity()
    for kind in ("local", "ray"):
        for rec in _records(sweeps[kind]):
            node = rec["node"]
            assert {"hostname", "cpu_model", "cores", "gpu", "node_id"} <= set(node), kind
            assert node["hostname"] == here["hostname"] and node["cores"] == here["cores"]
            assert (node["node_id"] == "local") == (kind == "local")
    ray = pd.read_csv(sweeps["ray"] / "table_ix.csv")
    assert ray["node"].str.contains(here["hostname"]).all()


def test_no_two_measured_runs_overlap_on_a_node(sweeps):
    windows = []
    for rec in _records(sweeps["ray"]):
        node = rec["node"]
        samples = pd.read_csv(sweeps["ray"] / "samples" / f"{rec['member']}.csv")
        # the node was held around the whole measured window (first to last sample)
        assert node["held_from"] <= samples["timestamp"].min() and samples["timestamp"].max() <= node["held_to"]
        windows.append((node["node_id"], node["held_from"], node["held_to"], rec["member"]))
    windows.sort()
    # the killed run was retried on the node the other member held: two measured runs queued on one node
    assert len(windows) == 2 and len({w[0] for w in windows}) == 1, windows
    for (node_a, _, end_a, m_a), (node_b, start_b, _, m_b) in zip(windows, windows[1:]):
        if node_a == node_b:
            assert end_a <= start_b, f"{m_a} and {m_b} overlapped on node {node_a[:8]}"


def test_a_killed_ray_worker_is_recorded_and_retried_on_another_node(sweeps):
    assert sweeps["killed"], "no measured run was seen on the cluster to kill"
    assert sweeps["ray_rc"] == 0, sweeps["ray_log"][-3000:]
    retried = [r for r in _records(sweeps["ray"]) if r["node"].get("attempts")]
    assert len(retried) == 1, [r["node"] for r in _records(sweeps["ray"])]
    rec = retried[0]
    failed = rec["node"]["attempts"][0]
    assert failed["attempt"] == 1 and rec["node"]["attempt"] == 2 and rec["status"] == "ok"
    assert failed["error"] in ("WorkerCrashedError", "NodeDiedError", "RayTaskError", "OwnerDiedError"), failed
    assert failed["node_id"] and failed["node_id"] != rec["node"]["node_id"]  # elsewhere
    assert f"{rec['member']}/r0: failed (attempt 1 on" in sweeps["ray_log"]  # recorded (and said) as it happened
    # nothing of the killed run outlives the sweep (its training worker is stopped before the next measured run)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in sweeps["killed"]["pids"])


# one format (the node loss is per member: a task holds a node for all of its formats; more formats repeat the rows)
FIDELITY_FORMATS = ["litert_float32"]
BROWSER_MEMBER = SMOKE[0]


def _raylet(node) -> psutil.Process:
    """The raylet of a node we started (a child of its `ray start --block`, found in its tree by PID)."""
    kids = [psutil.Process(pid) for pid in node.tree()[1:]]
    raylets = [k for k in kids if k.name() == "raylet"]
    assert len(raylets) == 1, [(k.pid, k.name()) for k in kids]
    return raylets[0]


def _deploy(sweep: Path, out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "study", "deploy", "--sweep", str(sweep), "--profile", "smoke",
                             "--members", *SMOKE, "--formats", *FIDELITY_FORMATS, "--work", str(out / "work"),
                             "--csv", str(out / "fidelity.csv"), *extra], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _side_by_side(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Run the commands at once (a local run beside a cluster run: no timing is compared), each to a zero exit;
    their (stdout, stderr). Whatever is left is stopped by PID."""
    runs = {k: subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for k, cmd in commands.items()}
    try:
        logs = {k: proc.communicate(timeout=600) for k, proc in runs.items()}
    finally:
        for proc in runs.values():
            if proc.poll() is None:
                proc.kill()
    for k, proc in runs.items():
        assert proc.returncode == 0, logs[k][1][-3000:]
    return logs


@needs_browser
def test_the_browser_test_on_the_cluster_gives_the_local_table_x_rows(sweeps, tmp_path):
    """Notebook 05's work on the cluster (`browser-test --cluster`): the member's conversion and Chromium run in a
    task that holds a node; Table X's rows equal a local run's and name the Ray node."""
    env = sweeps["env"]  # the sweeps' cache, results and zoo
    args = [sys.executable, "-m", "study", "browser-test", "--profile", "smoke", "--models", str(sweeps["local"]),
            "--members", BROWSER_MEMBER, "--out"]
    _side_by_side({k: [*args, str(tmp_path / k), *extra]
                   for k, extra in (("local", []), ("ray", ["--cluster", sweeps["cluster"].address]))}, env)
    here, there = (pd.read_csv(tmp_path / k / "table_x.csv").set_index(["model", "backend"]) for k in ("local", "ray"))
    assert list(there.index) == list(here.index) == [(BROWSER_MEMBER, "wasm")]
    for col in ("status", "n_images", "accuracy", "runtime", "weights", "asset_sha256"):
        assert there[col].tolist() == here[col].tolist(), col
    hostname = node_identity()["hostname"]
    assert here["node"].str.startswith(f"{hostname}/local ").all()
    assert there["node"].str.match(rf"{re.escape(hostname)}/[0-9a-f]{{8}} ").all(), there["node"].tolist()
    assert (tmp_path / "ray" / "runs" / f"{BROWSER_MEMBER}__wasm.json").exists()  # the node wrote where asked



MATRIX_FORMATS = ["saved_model", "state_dict"]  # one format of each framework: a part per framework, one per node


def test_the_deployment_matrix_on_the_cluster_measures_a_part_per_node(sweeps, tmp_path):
    """Notebook 01's work on the cluster (`deploy --cluster`): each framework's formats a task that holds a node (two
    frameworks, two nodes: one each, both named). Both formats are lossless exports of a seeded reference, so their
    rows are what any run gives (the local matrix's own tests: tests/deployment/test_matrix.py): ok, faithful, every
    image's class kept."""
    env = sweeps["env"]  # the sweeps' cache, results and zoo
    _side_by_side({"ray": [sys.executable, "-m", "study", "deploy", "--quick", "--formats", *MATRIX_FORMATS,
                           "--cluster", sweeps["cluster"].address, "--work", str(tmp_path / "work"),
                           "--csv", str(tmp_path / "m.csv")]}, env)
    there = pd.read_csv(tmp_path / "m.csv").set_index("format")
    assert list(there.index) == MATRIX_FORMATS and there["framework"].tolist() == ["TensorFlow", "PyTorch"]
    assert there["ok"].all() and there["faithful"].all() and (there["top1_agreement"] == 1.0).all(), there.T
    assert (there["images"] > 0).all() and (there["measure_s"] > 0).all() and (there["latency_ms"] > 0).all()
    hostname = node_identity()["hostname"]
    named = {m for text in there["node"] for m in re.findall(rf"{re.escape(hostname)}/([0-9a-f]{{8}}) ", text)}
    assert len(named) == 2, there["node"].tolist()  # each part on a node of its own
    assert {p.name for p in (tmp_path / "work").iterdir()} >= {"tf", "torch", "rows.jsonl"}  # where a local run puts them


def test_the_version_costs_on_the_cluster_fine_tune_a_version_on_a_node(sweeps, published, tmp_path):
    """Notebook 08's work on the cluster (`finetune_versions(executor=...)`): a version fine-tuned by the sweep
    harness in a task that holds a node; its row is the sweep's Table IX row there and names the Ray node."""
    code = ("import sys\nfrom study.casestudy.executors import get_executor\nfrom study.config import PROFILES\n"
            "from study.releases import publish\n"
            "ex = get_executor('ray', address=sys.argv[3], retries=1)\n"
            "t = publish.finetune_versions(sys.argv[1], sys.argv[2], PROFILES['smoke'], ['v5'], executor=ex)\n"
            "t.to_csv(sys.argv[2] + '/costs.csv', index=False)\n")
    env = sweeps["env"]  # the sweeps' cache, results and zoo
    _side_by_side({"ray": [sys.executable, "-c", code, str(published), str(tmp_path), sweeps["cluster"].address]}, env)
    costs = pd.read_csv(tmp_path / "costs.csv")
    t9 = pd.read_csv(tmp_path / "v5_tf2_saved_model" / "sweep" / "table_ix.csv")  # the node wrote where asked
    assert costs["name"].tolist() == ["v5_tf2_saved_model"] and costs["status"].tolist() == ["ok"]
    assert costs["accuracy"].tolist() == t9["accuracy"].tolist() and 0 <= costs["accuracy"].iloc[0] <= 1
    assert costs["asset_sha256"].tolist() == t9["asset_sha256"].tolist()
    hostname = node_identity()["hostname"]
    assert costs["node"].str.match(rf"{re.escape(hostname)}/[0-9a-f]{{8}} ").all(), costs["node"].tolist()
    assert t9["node"].tolist() == costs["node"].tolist()  # the harness's row and the version's name the same node


# Last of the cluster's tests: it loses a node (the tests before it need both).
def test_a_node_lost_mid_sweep_its_member_is_measured_again_and_every_fidelity_row_completes(sweeps, tmp_path):
    """Notebook 09's work on the cluster (`deploy --sweep --cluster`), a task per member holding a node: both members
    wait on their nodes (a failpoint: the node told to the driver, nothing measured yet); the worker node's raylet is
    killed (the node lost, as when its machine dies) and the other member released. The lost member is measured again
    on the head; every row completes, equals a local run's, and names the nodes; nothing of the lost node survives."""
    env = sweeps["env"]  # the sweeps' cache, results and zoo
    local = _deploy(sweeps["local"], tmp_path / "local", env)  # beside the cluster run: no timing is compared
    armed = Armed(tmp_path / "failpoints", "fidelity.on-node@1", "fidelity.on-node@2")
    cluster = sweeps["cluster"]
    head, worker = cluster.started[0], cluster.started[1]
    ray_run = _deploy(sweeps["local"], tmp_path / "ray", armed.env(env), "--cluster", cluster.address,
                      "--retries", "1")
    try:
        waiting = {hit: armed.wait(f"fidelity.on-node@{hit}", ray_run) for hit in (1, 2)}  # one task on each node
        on_worker = [hit for hit, pid in waiting.items() if pid in worker.tree()]
        on_head = [hit for hit, pid in waiting.items() if pid in head.tree()]
        assert len(on_worker) == len(on_head) == 1, (waiting, head.tree(), worker.tree())
        lost_tree = worker.tree()
        raylet = _raylet(worker)
        raylet.kill()  # by PID: the node's raylet, the node lost
        raylet.wait(timeout=30)
        armed.release(f"fidelity.on-node@{on_head[0]}")
        ray_out, ray_err = ray_run.communicate(timeout=600)
        local_out, local_err = local.communicate(timeout=600)
    finally:
        for proc in (local, ray_run):
            if proc.poll() is None:
                proc.kill()
    assert local.returncode == 0, local_err[-3000:]
    assert ray_run.returncode == 0, ray_err[-3000:]
    keys = ["member", "framework", "format"]
    here, there = (pd.read_csv(tmp_path / k / "fidelity.csv").set_index(keys).sort_index() for k in ("local", "ray"))
    assert list(there.index) == list(here.index) and len(here) == len(SMOKE) * len(FIDELITY_FORMATS)
    for col in ("status", "faithful", "status_fixed", "images"):
        assert there[col].tolist() == here[col].tolist(), col
    for col in ("top1_agreement", "accuracy_before", "accuracy_after"):  # one test image, as Table IX's accuracy
        assert ((there[col] - here[col]).abs() <= 1 / here["images"] + 1e-9).all(), (col, here[col], there[col])
    hostname = node_identity()["hostname"]
    assert here["node"].str.startswith(f"{hostname}/local ").all()
    assert there["node"].str.startswith(f"{hostname}/").all() and not there["node"].str.contains("/local ").any()
    again = there["node"].str.contains("after attempt 1 on ")
    lost_member = {m for m, a in zip(there.index.get_level_values("member"), again) if a}
    assert len(lost_member) == 1 and again.sum() == len(FIDELITY_FORMATS), there["node"].tolist()  # one member again
    named = {m for text in there["node"] for m in re.findall(rf"{re.escape(hostname)}/([0-9a-f]{{8}}) ", text)}
    assert len(named) == 2, there["node"].tolist()  # both nodes: the lost one (in the history) and the head
    member = lost_member.pop()
    assert f"lost fidelity/{member}: attempt 1 on " in ray_err and "again on another node" in ray_err
    # nothing of the lost node outlives it: its `ray start`, its Ray workers, the member's runtime processes
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in lost_tree)


def test_an_orphaned_training_worker_is_stopped_before_the_next_run(tmp_path, monkeypatch):
    from study.casestudy import ray_executor

    monkeypatch.setattr(ray_executor, "RUNNING_DIR", tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()  # the Ray worker that owned the run: dead
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "study.casestudy.training"],
                              start_new_session=True)
    (tmp_path / f"{gone.pid}.pid").write_text(f"{orphan.pid}\n")
    (tmp_path / f"{os.getpid()}.pid").write_text(f"{orphan.pid}\n")  # a live owner: left alone
    try:
        assert ray_executor._stop_orphans() == [orphan.pid]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        assert [p.name for p in tmp_path.iterdir()] == [f"{os.getpid()}.pid"]
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_bad_addresses_and_options_are_clear_errors(tmp_path, monkeypatch):
    from study.casestudy.ray_executor import RayExecutor, artifacts_root

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    import ray

    with pytest.raises(StudyError, match="no Ray cluster answers at 127.0.0.2:9"):
        RayExecutor(address="127.0.0.2:9")
    # fails at the address probe, before Ray's reconnect loop (how fast: benchmarks/bench_fail_fast.py)
    assert not ray.is_initialized()
    with pytest.raises(StudyError, match="only shared folders"):
        artifacts_root("s3://bucket/x")
    assert artifacts_root("file:///mnt/shared") == Path("/mnt/shared")
    proc = subprocess.run([sys.executable, "-m", "study", "finetune", "--profile", "smoke", "--retries", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "--retries only apply to --executor ray" in proc.stderr
