"""RQ1 measured: export real models to every deployment scenario of Tables IV-V and prove each one runs.

`data/deployment_scenarios.csv` is the current (2026) scenario table: one row per format, with its lifecycle
status and a source. For every row that can run here, the framework module (`study.deploy_tf`,
`study.deploy_torch`) exports the reference model, and a *fresh process* of the format's own runtime
(Python worker, Node.js, headless Chromium, or a Flask server on 127.0.0.1) reloads it and runs the same images. Each row gets:
export seconds, size on disk, load ms, batch-1 latency (median, p90; warm-up, 1 thread), peak RSS of the
runtime process, max |difference| vs the reference output and top-1 agreement.

    python -m study deploy --framework {tf,torch,all} [--quick] --csv FILE|-

A failing or stuck exporter/runtime gives a row with ok=False and the error; the run goes on. Rows are
appended to `<work>/rows.jsonl` as they finish, so a killed run keeps what it measured (`--resume`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from study import config, files
from study.dataset import preprocess
from study.environment import free_port
from study.errors import StudyError

SCENARIOS_CSV = config.DATA / "deployment_scenarios.csv"
FRAMEWORKS = {"tf": "TensorFlow", "torch": "PyTorch"}
# The CLI's columns, in this order; more measurements follow them.
COLUMNS = ["framework", "scenario_group", "format", "runtime", "status", "ok", "size_mb", "load_ms", "latency_ms",
           "max_abs_diff", "top1_agreement", "error"]
EXTRA_COLUMNS = ["latency_p90_ms", "export_s", "peak_rss_mb", "rel_diff", "min_cosine", "images", "model", "quantised",
                 "runtime_process", "warnings"]
# Non-quantised formats must agree with the reference within this, relative to the output scale (max |ref|).
REL_TOLERANCE = 1e-4
THREADS = 1


class Skipped(Exception):
    """An exporter deliberately not run in this mode (e.g. AOTInductor in --quick); the row says why."""


# --- the scenario table ------------------------------------------------------------------------------------

def scenarios(framework: str | None = None) -> pd.DataFrame:
    """The current scenario table (`data/deployment_scenarios.csv`), optionally for 'tf' or 'torch'."""
    df = pd.read_csv(SCENARIOS_CSV, keep_default_na=False)
    df.attrs["source"] = "data/deployment_scenarios.csv (current deployment scenarios, 2026)"
    if framework is None or framework == "all":
        return df
    return df[df["framework"] == _framework_name(framework)].reset_index(drop=True)


def _framework_name(framework: str) -> str:
    if framework not in FRAMEWORKS:
        raise StudyError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}, all")
    return FRAMEWORKS[framework]


def runnable(row: pd.Series | dict) -> bool:
    return str(row["runnable_here"]).strip().lower() == "yes"


def check_formats(names: list[str] | None, framework: str = "all") -> list[str]:
    """The scenario formats to run: `names` validated against the table (StudyError listing valid names)."""
    valid = list(scenarios(framework)["format"])
    if not names:
        return valid
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise StudyError(f"unknown deployment format(s) {', '.join(unknown)} for framework {framework!r}; "
                         f"valid: {', '.join(valid)}")
    return list(names)


# --- inputs --------------------------------------------------------------------------------------------------

# Real photos shipped by installed packages (no download): scikit-image's data module, matplotlib's sample data.
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "retina", "colorwheel")
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")


def photos() -> dict[str, np.ndarray]:
    """The shipped real photos as uint8 RGB arrays, by name."""
    import matplotlib
    import skimage.data
    from PIL import Image

    out = {name: getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS}
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    for name in MATPLOTLIB_PHOTOS:
        out[Path(name).stem] = np.asarray(Image.open(sample / name).convert("RGB"))
    return out


def generated_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields (upsampled noise), float32 (n, size, size, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(n, 6, 6, 3), dtype=np.uint8)
    return np.stack([preprocess(c, size) for c in coarse]) if n else np.zeros((0, size, size, 3), np.float32)


def reference_images(size: int, quick: bool = False) -> tuple[np.ndarray, list[str]]:
    """The fixed evaluation set: every shipped photo (quick: the first 6) + generated images, NHWC in [0, 1]."""
    shipped = photos()
    names = list(shipped)[:6] if quick else list(shipped)
    n_generated = 2 if quick else 6
    x = np.concatenate([np.stack([preprocess(shipped[n], size) for n in names]), generated_images(n_generated, size)])
    return x.astype(np.float32), names + [f"generated_{i}" for i in range(n_generated)]


def check_images(x: object, size: int, layout: str = "NHWC") -> np.ndarray:
    """`x` as float32 images of the model's input form, or a StudyError naming the expected form."""
    expected = (f"float32 array (N, {size}, {size}, 3)" if layout == "NHWC" else f"float32 array (N, 3, {size}, {size})")
    arr = np.asarray(x) if not hasattr(x, "numpy") else np.asarray(x.numpy())
    shape_ok = arr.ndim == 4 and (arr.shape[1:] == ((size, size, 3) if layout == "NHWC" else (3, size, size)))
    if not shape_ok or arr.dtype != np.float32:
        raise StudyError(f"input has shape {tuple(arr.shape)} and dtype {arr.dtype}; the model expects a {expected} "
                         "with values in [0, 1] (use study.deploy.reference_images or study.dataset.load_images)")
    return arr


# --- measurements --------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One measured deployment scenario."""

    framework: str
    scenario_group: str
    format: str
    runtime: str
    status: str
    ok: bool = False
    size_mb: float | None = None
    load_ms: float | None = None
    latency_ms: float | None = None
    max_abs_diff: float | None = None
    top1_agreement: float | None = None
    error: str = ""
    latency_p90_ms: float | None = None
    export_s: float | None = None
    peak_rss_mb: float | None = None
    rel_diff: float | None = None
    min_cosine: float | None = None
    images: int | None = None
    model: str = ""
    quantised: bool = False
    runtime_process: str = ""
    warnings: str = ""


@dataclass
class RunResult:
    """What a runtime process reports: outputs for every image (batch 1) and its timings."""

    outputs: np.ndarray
    load_ms: float
    latencies_ms: list[float]
    peak_rss_mb: float
    process: str
    extra: dict = field(default_factory=dict)


def size_mb(path: str | Path) -> float:
    path = Path(path)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return total / 2**20


def fidelity(reference: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """max |out - ref|, the same relative to max |ref|, and the share of images whose argmax agrees."""
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    outputs = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if reference.shape != outputs.shape:
        raise StudyError(f"deployed model returned shape {outputs.shape}, the reference {reference.shape}")
    diff = float(np.max(np.abs(outputs - reference)))
    scale = float(np.max(np.abs(reference))) or 1.0
    agree = float(np.mean(reference.argmax(1) == outputs.argmax(1)))
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(outputs, axis=1)
    cosine = float(np.min(np.sum(reference * outputs, axis=1) / np.where(norms > 0, norms, 1.0)))
    return {"max_abs_diff": diff, "rel_diff": diff / scale, "top1_agreement": agree, "min_cosine": cosine}


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
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(config.ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _tail(text: str, n: int = 600) -> str:
    text = " ".join(text.strip().split())
    return text[-n:]


def run_python_worker(fmt: str, artifact: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int,
                      timeout: float) -> RunResult:
    """Reload `artifact` in a fresh Python process with only the format's runtime imported, and run `x`."""
    inputs, outputs, report = work / f"{fmt}.in.npy", work / f"{fmt}.out.npy", work / f"{fmt}.run.json"
    np.save(inputs, x)
    cmd = [sys.executable, "-m", "study.deploy", "--worker", fmt, str(artifact), str(inputs), str(outputs),
           str(report), str(warmup), str(repeats)]
    _run(cmd, timeout)
    info = json.loads(report.read_text())
    return RunResult(np.load(outputs), info["load_ms"], info["latencies_ms"], info["peak_rss_mb"],
                     f"python ({fmt} worker)", info.get("extra", {}))


def run_node(script: str, model: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int,
             timeout: float, name: str) -> RunResult:
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
    return RunResult(out, info["load_ms"], info["latency_ms"], info["max_rss_mb"], f"node {script}",
                     {k: v for k, v in info.items() if k.endswith("version")})


CHROMIUM_PAGE = "rq1_tfjs_page.html"


def run_chromium(model: Path, x: np.ndarray, work: Path, *, warmup: int, repeats: int, timeout: float,
                 name: str, backend: str = "wasm") -> RunResult:
    """Run a TF.js graph model on `x` in headless Chromium (`web/rq1_tfjs_page.html`), with study.browser's
    static server and Chromium runner: the page fetches the same raw float32 inputs as `run_node`, runs the
    same protocol and POSTs the raw outputs (/outputs) and its timings (/report) back; Chromium's whole
    process tree is stopped by PID when the page reports, fails or times out."""
    import threading
    import urllib.parse

    from study import browser, environment

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
    server = browser.LocalServer(
        {"node_modules": environment.node_modules(), "simple_product": browser.PAGE, "model": model.parent},
        content={f"/{CHROMIUM_PAGE}": web / CHROMIUM_PAGE, "/rq1_tfjs_page.mjs": web / "rq1_tfjs_page.mjs",
                 "/rq1_measure.mjs": web / "rq1_measure.mjs", "/inputs.f32": inputs.read_bytes()},
        posts={"/outputs": on_outputs, "/report": on_report, "/error": on_error})
    try:
        query = urllib.parse.urlencode({"model": f"/model/{model.name}", "inputs": "/inputs.f32",
                                        "shape": ",".join(map(str, x.shape)), "warmup": warmup, "repeats": repeats,
                                        "threads": THREADS, "backend": backend})
        page = browser.open_page(f"{server.origin}/{CHROMIUM_PAGE}?{query}", work / f"{name}.chromium.log", done,
                                 timeout)
    finally:
        server.close()
    if "error" in got:
        raise RuntimeError(f"the page failed in Chromium: {_tail(got['error'])}")
    if page.status != "done":
        raise RuntimeError(page.reason)
    info = got["report"]
    out = np.frombuffer(got["outputs"], dtype="<f4").reshape(info["output_shape"])
    return RunResult(out, info["load_ms"], info["latency_ms"], page.peak_tree_rss_mb,
                     f"headless Chromium {CHROMIUM_PAGE} (backend {info['backend']})",
                     {"browser_pid": page.browser_pid,
                      **{k: info[k] for k in ("tfjs_version", "user_agent", "backend") if k in info}})


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=config.ROOT,
                              env=set_single_thread_env(dict(os.environ)))
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"timed out after {timeout:.0f} s and was killed: {' '.join(cmd[:4])} ...") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {_tail(proc.stderr or proc.stdout)}")
    return proc


# --- REST: a Flask server on 127.0.0.1 speaking the TF Serving REST API ---------------------------------------

def run_rest(fmt: str, artifact: Path, x: np.ndarray, *, warmup: int, repeats: int, timeout: float,
             name: str = "model") -> RunResult:
    """Start the REST server for `artifact` in its own process, call it over HTTP, stop it by PID."""
    import urllib.error
    import urllib.request

    port = free_port()
    cmd = [sys.executable, "-m", "study.deploy", "--serve", fmt, str(artifact), str(port), name]
    server = subprocess.Popen(cmd, cwd=config.ROOT, env=set_single_thread_env(dict(os.environ)),
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
        return RunResult(outputs, meta["load_ms"], latencies, meta["peak_rss_mb"], "python Flask server",
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


# --- the matrix ----------------------------------------------------------------------------------------------

@dataclass
class Settings:
    quick: bool
    warmup: int
    repeats: int
    timeout: float  # per runtime process

    @classmethod
    def of(cls, quick: bool) -> Settings:
        return cls(quick=quick, warmup=3 if quick else 5, repeats=10 if quick else 50, timeout=300 if quick else 600)


def _backend(framework: str):
    if framework == "tf":
        from study import deploy_tf as module
    else:
        from study import deploy_torch as module
    return module


def measure_framework(framework: str, settings: Settings, work: Path, formats: list[str] | None = None,
                      done: set[str] = frozenset(), on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Export the framework's reference model to each scenario format, run each in its runtime, compare."""
    table = scenarios(framework)
    wanted = check_formats(formats, framework) if formats else list(table["format"])
    rows: list[Row] = []
    backend = None
    reference = None
    for _, sc in table[table["format"].isin(wanted) & ~table["format"].isin(done)].iterrows():
        row = Row(framework=sc["framework"], scenario_group=sc["scenario_group"], format=sc["format"],
                  runtime=sc["runtime"], status=sc["status"])
        if not runnable(sc):
            row.error = f"not runnable here: {str(sc['runnable_here']).removeprefix('no: ')}"
        else:
            try:
                if backend is None:
                    backend = _backend(framework)
                    reference = backend.reference(settings.quick, work)
                    np.save(work / "reference_outputs.npy", reference.outputs)
                _measure_row(row, backend, reference, settings, work)
            except Skipped as exc:
                row.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a failing exporter is a row, not the end of the run
                row.ok = False
                row.error = _tail(f"{type(exc).__name__}: {exc}", 800)
                if os.environ.get("STUDY_DEBUG"):
                    traceback.print_exc()
        if reference is not None:
            row.model = reference.model_name
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def _measure_row(row: Row, backend, reference, settings: Settings, work: Path) -> None:
    import warnings

    fmt = row.format
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        export = backend.export(fmt, reference, work, settings.quick)
        row.export_s = time.perf_counter() - t0
    row.warnings = _clean("; ".join(sorted({f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
                                            for w in caught if _relevant_warning(w)})))[:400]
    if getattr(export, "note", ""):
        row.warnings = "; ".join(w for w in (_clean(export.note), row.warnings) if w)
    row.size_mb = size_mb(export.path)
    row.quantised = export.quantised
    x = reference.images
    if export.runner == "python":
        result = run_python_worker(fmt, export.path, x, work, warmup=settings.warmup, repeats=settings.repeats,
                                   timeout=settings.timeout)
    elif export.runner == "rest":
        result = run_rest(fmt, export.path, x, warmup=settings.warmup, repeats=settings.repeats,
                          timeout=settings.timeout)
    elif export.runner == "chromium":
        result = run_chromium(export.model_file or export.path, x, work, warmup=settings.warmup,
                              repeats=settings.repeats, timeout=settings.timeout, name=fmt)
    else:  # a web/ Node.js script
        result = run_node(export.runner, export.model_file or export.path, x, work,
                          warmup=settings.warmup, repeats=settings.repeats, timeout=settings.timeout, name=fmt)
    fid = fidelity(reference.outputs, result.outputs)
    row.load_ms = result.load_ms
    row.latency_ms = statistics.median(result.latencies_ms)
    row.latency_p90_ms = float(np.percentile(result.latencies_ms, 90))
    row.peak_rss_mb = result.peak_rss_mb
    row.runtime_process = result.process
    row.images = len(x)
    row.max_abs_diff, row.rel_diff, row.top1_agreement = fid["max_abs_diff"], fid["rel_diff"], fid["top1_agreement"]
    row.min_cosine = fid["min_cosine"]
    if not export.quantised and (fid["rel_diff"] > REL_TOLERANCE or fid["top1_agreement"] < 1.0):
        row.ok = False
        row.error = (f"deployed output differs from the reference: relative max |diff| {fid['rel_diff']:.2e} "
                     f"(tolerance {REL_TOLERANCE:g}), top-1 agreement {fid['top1_agreement']:.0%}")
    else:
        row.ok = True


# Deprecations of the Python ecosystem itself, not of a deployment path.
_IRRELEVANT_WARNINGS = ("files() instead", "pkg_resources", "datetime.datetime.utcnow")


def _relevant_warning(w) -> bool:
    text = str(w.message)
    return ((issubclass(w.category, (DeprecationWarning, FutureWarning)) or "deprecat" in text.lower())
            and not any(s in text for s in _IRRELEVANT_WARNINGS))


def _clean(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    df = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS + EXTRA_COLUMNS)
    df.attrs["source"] = "measured by study.deploy (python -m study deploy)"
    return df


def default_work_dir(quick: bool) -> Path:
    return config.cache_dir() / "deploy" / ("quick" if quick else "full")


def run_matrix(framework: str = "all", quick: bool = False, work: str | Path | None = None,
               formats: list[str] | None = None, resume: bool = False, progress: bool = False) -> pd.DataFrame:
    """The measured deployment matrix for 'tf', 'torch' or 'all' (one row per scenario format)."""
    frameworks = list(FRAMEWORKS) if framework == "all" else [framework]
    for f in frameworks:
        _framework_name(f)
    if formats:
        check_formats(formats, framework)
    work = files.ensure_writable_dir(Path(work) if work else default_work_dir(quick))
    log = work / "rows.jsonl"
    previous = [Row(**json.loads(line)) for line in log.read_text().splitlines() if line.strip()] \
        if resume and log.exists() else []
    if not resume:
        log.unlink(missing_ok=True)
    settings = Settings.of(quick)
    rows = list(previous)

    def record(row: Row) -> None:
        with open(log, "a") as fh:  # one line per finished row: a killed run keeps what it measured
            fh.write(json.dumps(asdict(row), default=float) + "\n")
        if progress:
            state = "ok  " if row.ok else "FAIL"
            print(f"[deploy] {state} {row.framework:10s} {row.format:26s} "
                  f"{'' if row.ok else row.error[:110]}", file=sys.stderr, flush=True)

    for f in frameworks:
        sub = work / f
        if not resume and sub.exists():  # artefacts of an earlier run must not stand in for this run's
            shutil.rmtree(sub)
        sub.mkdir(parents=True, exist_ok=True)
        rows += measure_framework(f, settings, sub, [x for x in (formats or []) if x in set(scenarios(f)["format"])]
                                  or None, done={r.format for r in previous}, on_row=record)
    order = {fmt: i for i, fmt in enumerate(scenarios()["format"])}
    rows.sort(key=lambda r: order.get(r.format, len(order)))
    return rows_frame(rows)


# profile="smoke" (tests, CI): a few formats of each framework on the --quick path, about a minute.
SMOKE_FORMATS = ["saved_model", "litert_float32", "litert_dynamic_int8", "saved_model_c_api", "state_dict",
                 "dynamic_int8", "torchserve"]


def matrix_for_profile(profile: str | None = None, work: str | Path | None = None) -> pd.DataFrame:
    """The matrix a notebook shows: smoke -> SMOKE_FORMATS on the quick path; embedded / paper -> every format.

    The deployment matrix needs no online input (the models are built or shipped locally), so `paper` measures
    the same as `embedded`.
    """
    p = config.get_profile(profile)
    if p.name == "smoke":
        return run_matrix("all", quick=True, work=work, formats=SMOKE_FORMATS)
    return run_matrix("all", quick=False, work=work)


def status_changes() -> pd.DataFrame:
    """Paper Tables IV-V (2019) beside the current table: per paper scenario group, what became of each format."""
    from study import paper

    now = scenarios()
    old = paper.deployment_methods()
    old = old.assign(framework=old["framework"].replace({"TensorFlow 1": "TensorFlow"}))
    merged = now.merge(old[["framework", "scenario_group", "output_format", "calling_methods"]],
                       on=["framework", "scenario_group"], how="left")
    merged["in_paper"] = merged["output_format"].notna()
    cols = ["framework", "scenario_group", "output_format", "calling_methods", "format", "runtime", "status",
            "status_source", "in_paper"]
    out = merged[cols].rename(columns={"output_format": "paper_formats_2019", "calling_methods": "paper_calling",
                                       "format": "format_2026"})
    out.attrs["source"] = "paper Tables IV-V (2019) and data/deployment_scenarios.csv (2026)"
    return out


# --- CLI -----------------------------------------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deploy", help="RQ1: export real models to every deployment scenario and measure each")
    p.add_argument("--framework", default="all", choices=[*FRAMEWORKS, "all"])
    p.add_argument("--quick", action="store_true", help="small TF model, fewer images and repeats; skips AOTInductor")
    p.add_argument("--csv", default="-", metavar="FILE|-", help="where the matrix goes (default: stdout)")
    p.add_argument("--formats", nargs="+", metavar="FORMAT", help="only these scenario formats")
    p.add_argument("--work", default=None, help="folder for the exported artefacts (default: .cache/deploy/...)")
    p.add_argument("--resume", action="store_true", help="keep the rows a previous (killed) run already finished")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    df = run_matrix(args.framework, quick=args.quick, work=args.work, formats=args.formats, resume=args.resume,
                    progress=True)
    files.write_table(args.csv, df, what=f"scenarios ({int(df['ok'].sum())} ok)", command="deploy")
    return 0


# --- the runtime processes -----------------------------------------------------------------------------------

def _worker(fmt: str, artifact: str, inputs: str, outputs: str, report: str, warmup: str, repeats: str) -> None:
    """Load `artifact` with the format's own runtime, run every input at batch 1, report timings."""
    backend = _backend("tf" if scenarios("tf")["format"].eq(fmt).any() else "torch")
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
    backend = _backend("tf" if scenarios("tf")["format"].eq(fmt).any() else "torch")
    backend.import_runtime(fmt)
    t0 = time.perf_counter()
    predict, signature = backend.load_for_serving(fmt, Path(artifact))
    load_ms = (time.perf_counter() - t0) * 1e3
    make_app(predict, name, signature, load_ms).run(host="127.0.0.1", port=int(port), threaded=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(*sys.argv[2:9])
    elif sys.argv[1:2] == ["--serve"]:
        _serve(*sys.argv[2:6])
    else:
        raise SystemExit("internal entry point of study.deploy; use `python -m study deploy`")
