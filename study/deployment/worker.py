"""The runtime processes of the deployment matrix: each format loaded and timed in a fresh process of its own runtime
(Python, Node.js, Chromium, a REST server).

A Python row's fresh process is started either by `python -m study.deployment.worker` (its own interpreter, ~3.5 s
of importing TensorFlow or torch before the measured load) or, inside `runtime_pool()`, forked from a runtime process
that already imported the same runtime (`Backend.runtime_of`) and nothing else: the fork is a fresh address space with
the same modules imported, its resident set is filled to the runtime process's before the load (so `peak_rss_mb`
counts the runtime as a fresh process does), and it loads, runs and exits like the fresh interpreter would.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study import config, files
from study.deployment.backend import THREADS, get_backend
from study.deployment.scenarios import framework_of
from study.errors import StudyError
from study.runtime import chromium, environment, processes, servers
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
    """Reload `artifact` in a fresh Python process with only the format's runtime imported, and run `x`
    (forked from the runtime's process inside `runtime_pool()`, else a new interpreter)."""
    inputs, outputs, report = work / f"{fmt}.in.npy", work / f"{fmt}.out.npy", work / f"{fmt}.run.json"
    np.save(inputs, x)
    args = [fmt, str(artifact), str(inputs), str(outputs), str(report), str(warmup), str(repeats)]
    if _POOL is not None:
        _POOL.run(fmt, args, work / f"{fmt}.log", timeout)
        process = f"python ({fmt} worker, forked from the {_POOL.runtime(fmt)} runtime process)"
    else:
        _run([sys.executable, "-m", "study.deployment.worker", "--worker", *args], timeout)
        process = f"python ({fmt} worker)"
    info = json.loads(report.read_text())
    return RuntimeRun(np.load(outputs), info["load_ms"], info["latencies_ms"], info["peak_rss_mb"], process,
                      info.get("extra", {}))


# --- runtime processes to fork fresh workers from -------------------------------------------------------------

class _RuntimeProcess:
    """`python -m study.deployment.worker --runtime FMT`: imports FMT's runtime once, then forks one worker per
    request (a JSON line on its stdin) and answers two JSON lines on its stdout: the worker's PID, then its exit."""

    def __init__(self, fmt: str, log: Path, timeout: float) -> None:
        self.log = log
        self._err = open(log, "ab")
        self.proc = processes.popen([sys.executable, "-m", "study.deployment.worker", "--runtime", fmt],
                                    role="deployment-runtime-process", cwd=config.ROOT,
                                    env=set_single_thread_env(dict(os.environ)), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=self._err)
        self._buffer = b""
        self._line(timeout)  # {"ready": pid}: the runtime is imported

    def _line(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the runtime process exited {self.proc.wait()}: "
                                   f"{_tail(self.log.read_text(errors='replace'))}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, args: list[str], log: Path, timeout: float) -> None:
        self.proc.stdin.write((json.dumps({"args": args, "log": str(log)}) + "\n").encode())
        self.proc.stdin.flush()
        pid = self._line(60)["pid"]
        try:
            code = self._line(timeout)["exit"]
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)  # by PID; the runtime process reaps it and stays usable
            self._line(60)
            raise RuntimeError(f"timed out after {timeout:.0f} s and was killed: worker {args[0]} (pid {pid})") from None
        if code != 0:
            raise RuntimeError(f"exit {code}: {_tail(log.read_text(errors='replace') if log.exists() else '')}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()  # EOF: it exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # by PID
            self.proc.wait()
        self.proc.stdout.close()
        self._err.close()


class RuntimePool:
    """One runtime process per runtime, started on first use and stopped when the pool closes."""

    def __init__(self, work: Path, start_timeout: float = 600) -> None:
        self.work, self.start_timeout = work, start_timeout
        self.processes: dict[str, _RuntimeProcess] = {}

    @staticmethod
    def runtime(fmt: str) -> str:
        return get_backend(framework_of(fmt)).runtime_of(fmt)

    def run(self, fmt: str, args: list[str], log: Path, timeout: float) -> None:
        name = self.runtime(fmt)
        proc = self.processes.get(name)
        if proc is not None and proc.proc.poll() is not None:  # it died (out of memory, a signal): start another
            proc.close()
            proc = None
        if proc is None:
            proc = self.processes[name] = _RuntimeProcess(fmt, self.work / f"runtime-{name}.log", self.start_timeout)
        proc.run(args, log, timeout)

    def close(self) -> None:
        for proc in self.processes.values():
            proc.close()
        self.processes.clear()


_POOL: RuntimePool | None = None


@contextlib.contextmanager
def runtime_pool(work: Path) -> Iterator[RuntimePool]:
    """Inside it, Python rows fork from a runtime process per runtime instead of starting an interpreter each
    (~3.5 s of import each); the runtime processes are stopped by PID when it ends (and die with this process)."""
    global _POOL
    if _POOL is not None:  # nested: the outer pool serves
        yield _POOL
        return
    _POOL = RuntimePool(Path(work))
    try:
        yield _POOL
    finally:
        pool, _POOL = _POOL, None
        pool.close()


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


PAGE = os.sysconf("SC_PAGE_SIZE")
MADV_POPULATE_READ = 22  # Linux >= 5.14


def _resident_file_pages() -> list[tuple[int, int]]:
    """(address, length) of every run of file-backed pages this process has mapped (/proc/self/pagemap, bit 63)."""
    ranges = []
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pagemap:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) < 6 or not parts[5].startswith("/") or "r" not in parts[1]:
                continue
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            pagemap.seek(lo // PAGE * 8)
            data = pagemap.read((hi - lo) // PAGE * 8)
            start = None
            for i, entry in enumerate(struct.unpack(f"{len(data) // 8}Q", data) + (0,)):
                if entry >> 63 and start is None:
                    start = i
                elif not entry >> 63 and start is not None:
                    ranges.append((lo + start * PAGE, (i - start) * PAGE))
                    start = None
    return ranges


def _runtime_process(fmt: str) -> None:
    """Import `fmt`'s runtime, then fork a `_worker` per request line until stdin closes (see `_RuntimeProcess`).

    A fork shares the file-backed pages (libraries) without mapping them, so its resident set would start below
    a fresh interpreter's; the child maps the pages this process has resident (MADV_POPULATE_READ) before it loads,
    so that its peak RSS counts the runtime as a fresh process's does."""
    answers = os.dup(1)  # the protocol's own pipe: whatever the runtime prints goes to the log instead
    os.dup2(2, 1)
    get_backend(framework_of(fmt)).import_runtime(fmt)
    resident = _resident_file_pages()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def answer(obj: dict) -> None:
        os.write(answers, (json.dumps(obj) + "\n").encode())

    answer({"ready": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the worker: dies with this process, writes to its own log, never returns
            code = 1
            try:
                libc.prctl(processes.PR_SET_PDEATHSIG, signal.SIGKILL)
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
                os.close(0)
                os.close(answers)
                for address, length in resident:
                    libc.madvise(address, length, MADV_POPULATE_READ)
                _worker(*request["args"])
                code = 0
            except BaseException:  # noqa: BLE001 - reported through the exit code and the log
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        processes.log_pid(pid, "deployment-runtime")
        answer({"pid": pid})
        answer({"exit": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])})


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
    elif sys.argv[1:2] == ["--runtime"]:
        _runtime_process(sys.argv[2])
    else:
        raise SystemExit("internal entry point of study.deployment.worker; use `python -m study deploy`")
