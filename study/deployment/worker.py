"""The runtime processes of the deployment matrix: each format loaded and timed in a fresh process of its own runtime
(Python, Node.js, Chromium, a REST server).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study import config, files
from study.runtime import processes
from study.deployment.backend import THREADS, get_backend
from study.deployment.scenarios import framework_of
from study.errors import StudyError
from study.runtime.environment import free_port


@dataclass
class RuntimeRun:
    """What a runtime process reports: outputs for every image (batch 1) and its timings."""

    outputs: np.ndarray
    load_ms: float
    latencies_ms: list[float]
    peak_rss_mb: float
    process: str
    extra: dict = field(default_factory=dict)


def peak_rss_mb() -> float:
    """Peak resident set of this process: VmHWM of /proc/self/status (MiB).

    Not `ru_maxrss`: Linux carries it across fork + exec, so a fresh worker would report its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_runs(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, warmup: int, repeats: int
              ) -> tuple[np.ndarray, list[float]]:
    """Outputs of `predict` on every image at batch 1, then `repeats` timed runs of image 0 after `warmup`."""
    outputs = np.concatenate([np.asarray(predict(x[i:i + 1])).reshape(1, -1) for i in range(len(x))])
    for _ in range(warmup):
        predict(x[:1])
    latencies = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(x[:1])
        latencies.append((time.perf_counter() - t0) * 1e3)
    return outputs, latencies


def set_single_thread_env(env: dict[str, str]) -> dict[str, str]:
    env = dict(env)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        env[var] = str(THREADS)
    env = processes.quiet_env(env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(config.ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _tail(text: str, n: int = 600) -> str:
    text = " ".join(text.strip().split())
    return text[-n:]


def run_python_worker(fmt: str, artifact: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int,
                      timeout: float) -> RuntimeRun:
    """Reload `artifact` in a fresh Python process with only the format's runtime imported, and run `x`."""
    inputs, outputs, report = work / f"{fmt}.in.npy", work / f"{fmt}.out.npy", work / f"{fmt}.run.json"
    np.save(inputs, x)
    cmd = [sys.executable, "-m", "study.deployment.worker", "--worker", fmt, str(artifact), str(inputs), str(outputs),
           str(report), str(warmup), str(repeats)]
    _run(cmd, timeout)
    info = json.loads(report.read_text())
    return RuntimeRun(np.load(outputs), info["load_ms"], info["latencies_ms"], info["peak_rss_mb"],
                     f"python ({fmt} worker)", info.get("extra", {}))


def run_node(script: str, model: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int,
             timeout: float, name: str) -> RuntimeRun:
    """Run a web/ Node.js runner (TF.js or onnxruntime-web) on `x` (raw float32 files, JSON report)."""
    if not (config.WEB / "node_modules").is_dir():
        raise StudyError("web/node_modules is missing; run `make npm` (cd web && npm ci)")
    inputs, outputs = work / f"{name}.in.f32", work / f"{name}.out.f32"
    np.ascontiguousarray(x, dtype="<f4").tofile(inputs)
    cmd = ["node", str(config.WEB / script), "--model", str(model), "--input", str(inputs),
           "--shape", ",".join(map(str, x.shape)), "--output", str(outputs), "--warmup", str(warmup),
           "--repeats", str(repeats), "--threads", str(THREADS)]
    proc = _run(cmd, timeout)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    out = np.fromfile(outputs, dtype="<f4").reshape(info["output_shape"])
    return RuntimeRun(out, info["load_ms"], info["latency_ms"], info["max_rss_mb"], f"node {script}",
                     {k: v for k, v in info.items() if k.endswith("version")})


CHROMIUM_PAGE = "rq1_tfjs_page.html"


def run_chromium(model: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int, timeout: float,
                 name: str, backend: str = "wasm") -> RuntimeRun:
    """Run a TF.js graph model on `x` in headless Chromium (`web/rq1_tfjs_page.html`), with study.runtime's
    static server and Chromium runner: the page fetches the same raw float32 inputs as `run_node`, runs the
    same protocol and POSTs the raw outputs (/outputs) and its timings (/report) back; Chromium's whole
    process tree is stopped by PID when the page reports, fails or times out."""
    import threading
    import urllib.parse

    from study.runtime import chromium, environment, servers

    model = Path(model)
    inputs = work / f"{name}.in.f32"
    np.ascontiguousarray(x, dtype="<f4").tofile(inputs)
    got: dict = {}
    done = threading.Event()

    def on_outputs(body: bytes) -> tuple[int, dict]:
        if not body or len(body) % 4:
            return 400, {"error": f"outputs must be raw float32 bytes; got {len(body)} bytes"}
        got["outputs"] = body
        return 200, {"bytes": len(body)}

    def on_report(body: bytes) -> tuple[int, dict]:
        info = json.loads(body)
        shape = info.get("output_shape") or []
        if "outputs" not in got or int(np.prod(shape)) * 4 != len(got["outputs"]):
            return 400, {"error": f"/report: output_shape {shape} does not match the POSTed outputs; "
                                  "POST /outputs (raw float32) first"}
        got["report"] = info
        done.set()
        return 200, {"status": "received"}

    def on_error(body: bytes) -> tuple[int, dict]:
        got["error"] = json.loads(body or b"{}").get("message", "unknown error")
        done.set()
        return 200, {"status": "recorded"}

    web = config.WEB
    server = servers.LocalServer(
        {"node_modules": environment.node_modules(), "simple_product": config.SIMPLE_PRODUCT, "model": model.parent},
        content={f"/{CHROMIUM_PAGE}": web / CHROMIUM_PAGE, "/rq1_tfjs_page.mjs": web / "rq1_tfjs_page.mjs",
                 "/rq1_measure.mjs": web / "rq1_measure.mjs", "/inputs.f32": inputs.read_bytes()},
        posts={"/outputs": on_outputs, "/report": on_report, "/error": on_error})
    try:
        query = urllib.parse.urlencode({"model": f"/model/{model.name}", "inputs": "/inputs.f32",
                                        "shape": ",".join(map(str, x.shape)), "warmup": warmup, "repeats": repeats,
                                        "threads": THREADS, "backend": backend})
        page = chromium.open_page(f"{server.origin}/{CHROMIUM_PAGE}?{query}", work / f"{name}.chromium.log", done,
                                 timeout)
    finally:
        server.close()
    if "error" in got:
        raise RuntimeError(f"the page failed in Chromium: {_tail(got['error'])}")
    if page.status != "done":
        raise RuntimeError(page.reason)
    info = got["report"]
    out = np.frombuffer(got["outputs"], dtype="<f4").reshape(info["output_shape"])
    return RuntimeRun(out, info["load_ms"], info["latency_ms"], page.peak_tree_rss_mb,
                     f"headless Chromium {CHROMIUM_PAGE} (backend {info['backend']})",
                     {"browser_pid": page.browser_pid,
                      **{k: info[k] for k in ("tfjs_version", "user_agent", "backend") if k in info}})


def run_export(fmt: str, export, x: np.ndarray, work: Path, *, warmup: int, repeats: int,
               timeout: float) -> RuntimeRun:
    """Run an exported artefact (`backend.Export`) on `x` in the fresh runtime process its runner names."""
    if export.runner == "python":
        return run_python_worker(fmt, export.path, x, work, warmup=warmup, repeats=repeats, timeout=timeout)
    if export.runner == "rest":
        return run_rest(fmt, export.path, x, warmup=warmup, repeats=repeats, timeout=timeout)
    if export.runner == "chromium":
        return run_chromium(export.model_file or export.path, x, work, warmup=warmup, repeats=repeats,
                            timeout=timeout, name=fmt)
    return run_node(export.runner, export.model_file or export.path, x, work,  # a web/ Node.js script
                    warmup=warmup, repeats=repeats, timeout=timeout, name=fmt)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        proc = processes.run(cmd, role="deployment-runtime", capture_output=True, text=True, timeout=timeout,
                             cwd=config.ROOT, env=set_single_thread_env(dict(os.environ)))
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"timed out after {timeout:.0f} s and was killed: {' '.join(cmd[:4])} ...") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {_tail(proc.stderr or proc.stdout)}")
    return proc


def run_rest(fmt: str, artifact: Path, x: np.ndarray, *, warmup: int, repeats: int, timeout: float,
             name: str = "model") -> RuntimeRun:
    """Start the REST server for `artifact` in its own process, call it over HTTP, stop it by PID."""
    import urllib.error
    import urllib.request

    port = free_port()
    cmd = [sys.executable, "-m", "study.deployment.worker", "--serve", fmt, str(artifact), str(port), name]
    server = processes.popen(cmd, role="rest-server", cwd=config.ROOT, env=set_single_thread_env(dict(os.environ)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/v1/models/{name}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"REST server exited {server.returncode}: {_tail(server.stderr.read())}")
            try:
                with urllib.request.urlopen(base, timeout=5) as resp:
                    status = json.loads(resp.read())
                if status["model_version_status"][0]["state"] == "AVAILABLE":
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"REST server on port {port} not ready after {timeout:.0f} s")
            time.sleep(0.1)

        def predict(batch: np.ndarray) -> np.ndarray:
            body = json.dumps({"instances": batch.tolist()}).encode()
            req = urllib.request.Request(f"{base}:predict", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return np.asarray(json.loads(resp.read())["predictions"], np.float32)

        outputs, latencies = time_runs(predict, x, warmup, repeats)
        with urllib.request.urlopen(f"{base}/metadata", timeout=5) as resp:
            meta = json.loads(resp.read())
        return RuntimeRun(outputs, meta["load_ms"], latencies, meta["peak_rss_mb"], "python Flask server",
                         {"signature": meta["signature"]})
    finally:
        server.terminate()  # by PID
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr:
            server.stderr.close()


def make_app(predict: Callable[[np.ndarray], np.ndarray], name: str, signature: dict, load_ms: float):
    """A Flask app with TF Serving's REST endpoints: GET /v1/models/<name>[/metadata], POST ...:predict."""
    from flask import Flask, jsonify, request

    app = Flask(f"study-deploy-{name}")

    @app.get(f"/v1/models/{name}")
    def status():
        return jsonify({"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                  "status": {"error_code": "OK", "error_message": ""}}]})

    @app.get(f"/v1/models/{name}/metadata")
    def metadata():
        return jsonify({"model_spec": {"name": name, "version": "1"}, "signature": signature,
                        "load_ms": load_ms, "peak_rss_mb": peak_rss_mb()})

    @app.post(f"/v1/models/{name}:predict")
    def predict_route():
        payload = request.get_json(force=True, silent=True) or {}
        if "instances" not in payload:
            return jsonify({"error": 'body must be JSON {"instances": [...]}'}), 400
        try:
            x = np.asarray(payload["instances"], dtype=np.float32)
            return jsonify({"predictions": np.asarray(predict(x)).tolist()})
        except (StudyError, ValueError) as exc:
            return jsonify({"error": str(exc)}), 400

    return app


def _worker(fmt: str, artifact: str, inputs: str, outputs: str, report: str, warmup: str, repeats: str) -> None:
    """Load `artifact` with the format's own runtime, run every input at batch 1, report timings."""
    backend = get_backend(framework_of(fmt))
    x = np.load(inputs)
    backend.import_runtime(fmt)
    t0 = time.perf_counter()
    predict = backend.load(fmt, Path(artifact))
    load_ms = (time.perf_counter() - t0) * 1e3
    out, latencies = time_runs(predict, x, int(warmup), int(repeats))
    np.save(outputs, out)
    files.write_text(report, json.dumps({"load_ms": load_ms, "latencies_ms": latencies,
                                         "peak_rss_mb": peak_rss_mb()}))


def _serve(fmt: str, artifact: str, port: str, name: str) -> None:
    backend = get_backend(framework_of(fmt))
    backend.import_runtime(fmt)
    t0 = time.perf_counter()
    predict, signature = backend.load_for_serving(fmt, Path(artifact))
    load_ms = (time.perf_counter() - t0) * 1e3
    make_app(predict, name, signature, load_ms).run(host="127.0.0.1", port=int(port), threaded=False)


if __name__ == "__main__":
    processes.quiet_tensorflow()
    if sys.argv[1:2] == ["--worker"]:
        _worker(*sys.argv[2:9])
    elif sys.argv[1:2] == ["--serve"]:
        _serve(*sys.argv[2:6])
    else:
        raise SystemExit("internal entry point of study.deployment.worker; use `python -m study deploy`")
