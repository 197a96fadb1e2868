"""Section VII-F: the fine-tuned assets as TF.js models in the browser "simple product" (Table X).

For every fine-tuned TF member (the sweep's `models/<member>/saved_model` + `meta.json`):

1. **convert** the SavedModel to a TF.js graph model (`study.tfjs`), recording seconds and size;
2. serve the project's page (`web/simple_product/`), the npm folder, the model and the test images from a
   local **static server** (the paper used Nginx);
3. start the **stats server**, a real Flask app on 127.0.0.1: the page's GET `/start` starts the resource
   `Sampler` (1 s, browser process tree included), GET `/progress` records how far inference got, GET
   `/stop?accuracy=..&n=..` is validated (400 and nothing written when malformed), stops sampling, writes
   the accuracy and samples and shuts the server down; a second `/start` is a 409;
4. run **headless Chromium** (fresh profile) on the page under a **watchdog**: a page that never calls
   `/stop` or stops making progress is killed and recorded as `partial` (with the images it did infer) or
   `timeout` (none) — the paper stopped five stuck runs by hand; ours stops them itself;
5. stop every process it started, by PID, and append the row to `table_x.csv`.

`python_reference` infers the same images with TensorFlow in Python (accuracy and per-image latency to
compare against), `node_check` runs the converted model in Node.js (pure `@tensorflow/tfjs` + wasm).
`LocalServer` (static files + POST endpoints) and `open_page` (Chromium under a watchdog, stopped by PID) are
also what `study.deploy` runs its TF.js-in-Chromium row with.
CLI: `python -m study browser-test --profile P --models DIR [--backend wasm|webgl|cpu ...] --out DIR`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import mimetypes
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from study import config, environment, files
from study.errors import StudyError

PAPER_COLUMNS = ("model", "cpu", "elapse", "memory", "gpu", "gpu_memory", "accuracy")
TABLE_X_COLUMNS = PAPER_COLUMNS + ("backend", "n_images", "status", "ms_per_image",
                                   "elapse_s", "cpu_tree", "peak_rss_mb", "n_samples")
CONVERSION_COLUMNS = ("model", "status", "seconds", "size_mb", "files", "fingerprint", "error")
BACKENDS = ("wasm", "webgl", "cpu")
# ok: /stop received; partial / timeout: the watchdog stopped a run with / without inferred images;
# error: the page reported an exception; browser_exited: Chromium died; invalid: the sampler died mid-run;
# conversion_failed / skipped (no TF.js path, e.g. torch members): no run.
STATUSES = ("ok", "partial", "timeout", "error", "browser_exited", "invalid", "conversion_failed", "skipped")
# --disable-gpu leaves WebGL to SwiftShader (software); Chromium wants that opted into explicitly.
WEBGL_FLAGS = ("--enable-unsafe-swiftshader",)
PAGE = config.WEB / "simple_product"
NODE_SCRIPT = config.WEB / "run_simple_product_node.mjs"
SAMPLE_INTERVAL = 1.0  # Section VII-F: stats every second while testing
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-breakpad", "--no-default-browser-check", "--enable-logging=stderr", "--v=0")


@dataclass(frozen=True)
class Limits:
    """The watchdog's limits (seconds): to reach `/start`, without progress while inferring, in all."""

    start: float
    stall: float
    total: float


PROFILE_LIMITS = {"smoke": Limits(start=30, stall=30, total=90), "embedded": Limits(start=60, stall=60, total=600),
                  "paper": Limits(start=120, stall=120, total=1800)}


# --- The models to test -----------------------------------------------------------------------------

@dataclass
class TunedModel:
    """One fine-tuned asset as the sweep left it: `models/<member>/{saved_model/, meta.json}`."""

    name: str
    folder: Path
    backend: str
    input_size: int
    class_names: tuple[str, ...]
    images: list[tuple[Path, int]]
    test_accuracy: float | None = None

    @property
    def saved_model(self) -> Path:
        return self.folder / "saved_model"

    @property
    def convertible(self) -> bool:
        return self.backend == "tf" and (self.saved_model / "saved_model.pb").is_file()

    def fingerprint(self) -> str:
        """Identifies this exact fine-tuned model (graph, variable index with its tensor checksums, meta.json)."""
        import hashlib

        h = hashlib.sha256()
        for part in (self.saved_model / "saved_model.pb", self.saved_model / "variables" / "variables.index",
                     self.folder / "meta.json"):
            h.update(files.sha256(part).encode() if part.is_file() else b"-")
        return h.hexdigest()[:16]


def models_root(path: str | Path) -> Path:
    """`DIR/models` for a sweep's --out DIR, or DIR itself when it already holds member folders."""
    path = Path(path)
    if (path / "models").is_dir():
        return path / "models"
    if path.is_dir() and any((p / "meta.json").is_file() for p in path.iterdir() if p.is_dir()):
        return path
    raise StudyError(f"no fine-tuned models in {path} (expected {path}/models/<member>/meta.json); "
                     "run `python -m study finetune --out DIR` first and pass that DIR to --models")


def find_models(path: str | Path, members: list[str] | None = None) -> list[TunedModel]:
    """The fine-tuned models under `path` (a sweep's --out DIR), optionally only `members`."""
    root = models_root(path)
    found = []
    for meta_path in sorted(root.glob("*/meta.json")):
        if meta_path.parent.name.startswith("."):
            continue  # a sweep's staging folder (.<member>.new / .old)
        meta = json.loads(meta_path.read_text())
        try:
            images = [(Path(i["path"]), int(i["label"])) for i in meta["test_images"]]
            model = TunedModel(name=meta.get("member", meta_path.parent.name), folder=meta_path.parent,
                              backend=meta.get("backend", "tf"), input_size=int(meta["input_size"]),
                              class_names=tuple(meta["class_names"]), images=images,
                              test_accuracy=meta.get("test_accuracy"))
        except (KeyError, TypeError, ValueError) as exc:
            raise StudyError(f"{meta_path} lacks {exc} (needs input_size, class_names, test_images[path, label]); "
                             "rerun the fine-tuning sweep for this member") from exc
        found.append(model)
    if members:
        names = {m.name for m in found}
        unknown = [m for m in members if m not in names]
        if unknown:
            raise StudyError(f"no fine-tuned model for {', '.join(unknown)} in {root}; found: {', '.join(sorted(names))}")
        found = [m for m in found if m.name in members]
    return found


# --- Conversion ---------------------------------------------------------------------------------------

@dataclass
class Conversion:
    model: str
    status: str  # ok | failed | skipped
    seconds: float = math.nan
    size_mb: float = math.nan
    files: int = 0
    error: str = ""
    fingerprint: str = ""
    model_json: Path | None = None

    def row(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in CONVERSION_COLUMNS}


def convert(model: TunedModel, out_dir: Path) -> Conversion:
    """SavedModel -> TF.js graph model in `out_dir` (time and size on disk); failures become a status."""
    fingerprint = model.fingerprint()
    if not model.convertible:
        why = (f"backend {model.backend!r} has no TF.js path (the paper tested TF members only)"
               if model.backend != "tf" else f"no SavedModel in {model.saved_model}")
        return Conversion(model.name, "skipped", error=why, fingerprint=fingerprint)
    from study import tfjs

    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    try:
        model_json = tfjs.convert_saved_model(model.saved_model, out_dir)
    except Exception as exc:  # a model that fails conversion is a row, the run continues
        return Conversion(model.name, "failed", seconds=time.perf_counter() - start, fingerprint=fingerprint,
                          error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    seconds = time.perf_counter() - start
    parts = [model_json, *tfjs.weight_files(model_json)]
    return Conversion(model.name, "ok", seconds=seconds, size_mb=sum(p.stat().st_size for p in parts) / 2**20,
                      files=len(parts), fingerprint=fingerprint, model_json=model_json)


# --- Static server (the paper's Nginx) ----------------------------------------------------------------

mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")


# A POST handler of LocalServer: request body -> (HTTP status, JSON answer).
PostHandler = Callable[[bytes], tuple[int, dict[str, Any]]]
MAX_POST_BYTES = 256 * 2**20


class LocalServer:
    """A static file server on 127.0.0.1 (own thread) for the pages run in headless Chromium.

    /<root>/...  a file under one of `roots` (folder name -> folder), never outside it
    /<path>      an exact entry of `content` (URL path -> file or bytes)
    POST /<path> an entry of `posts` (URL path -> handler of the body); same origin as the page, so no CORS
    """

    def __init__(self, roots: dict[str, Path], *, content: dict[str, Path | bytes] | None = None,
                 posts: dict[str, PostHandler] | None = None):
        self.roots = {name: Path(folder) for name, folder in roots.items()}
        self.content = dict(content or {})
        self.posts = dict(posts or {})
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def translate_path(self, path: str) -> str:
                return str(server.resolve(urllib.parse.unquote(urllib.parse.urlsplit(path).path)) or "/nonexistent")

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                content = server.content.get(path)
                if isinstance(content, bytes):
                    self._answer(200, content, mimetypes.guess_type(path)[0] or "application/octet-stream")
                    return
                super().do_GET()

            def do_POST(self) -> None:
                handler = server.posts.get(urllib.parse.urlsplit(self.path).path)
                length = int(self.headers.get("Content-Length") or 0)
                if handler is None or not 0 <= length <= MAX_POST_BYTES:
                    code, answer = (404, {"error": f"no POST endpoint {self.path}"}) if handler is None else \
                        (413, {"error": f"body of {length} bytes (limit {MAX_POST_BYTES})"})
                else:
                    try:
                        code, answer = handler(self.rfile.read(length))
                    except Exception as exc:  # noqa: BLE001 - a bad body is a 400 for the page, not a dead server
                        code, answer = 400, {"error": f"{type(exc).__name__}: {exc}"}
                self._answer(code, json.dumps(answer).encode(), "application/json")

            def _answer(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "no-store")
                super().end_headers()

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="static-server", daemon=True)
        self._thread.start()

    def resolve(self, url_path: str) -> Path | None:
        """The file behind a URL path, never outside its root."""
        if isinstance(self.content.get(url_path), Path):
            return self.content[url_path]
        parts = [p for p in url_path.split("/") if p]
        if not parts or parts[0] not in self.roots:
            return None
        root = self.roots[parts[0]].resolve()
        target = root.joinpath(*parts[1:]).resolve()
        return target if target == root or root in target.parents else None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class StaticServer(LocalServer):
    """Serves the page, the npm folder, one TF.js model and the test images on 127.0.0.1 (own thread).

    /simple_product/...   the page (`page` folder)       /node_modules/...  web/node_modules
    /model/...            the TF.js model folder          /images/manifest.json, /images/<i><ext>
    """

    def __init__(self, page: Path, model_dir: Path, images: list[tuple[Path, int]], size: int):
        self.images = [Path(p) for p, _ in images]
        self.manifest = json.dumps({"size": size, "images": [
            {"url": f"/images/{i}{p.suffix.lower()}", "label": label} for i, (p, label) in enumerate(images)]}).encode()
        super().__init__({"simple_product": Path(page), "node_modules": environment.node_modules(),
                          "model": Path(model_dir)}, content={"/images/manifest.json": self.manifest})

    def resolve(self, url_path: str) -> Path | None:
        parts = [p for p in url_path.split("/") if p]
        if len(parts) == 2 and parts[0] == "images" and parts[1] != "manifest.json":
            index = parts[1].split(".")[0]
            if index.isdigit() and int(index) < len(self.images):
                return self.images[int(index)]
            return None
        return super().resolve(url_path)


# --- Stats server (Flask, the paper's "Python process 2") ---------------------------------------------

def _number(args, key: str, kind=float, low: float | None = None, high: float | None = None):
    """Parse query argument `key` as `kind` within [low, high]; a ValueError says what is wrong."""
    raw = args.get(key)
    if raw is None or raw == "":
        raise ValueError(f"missing {key}")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}={raw!r} is not finite")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{key}={raw!r} is outside [{low}, {high}]")
    return value


class StatsServer:
    """The Flask stats server of one browser run, bound to 127.0.0.1 (port chosen by the OS).

    GET /start     start the Sampler (browser process tree included); 409 when already started
    GET /progress  n, correct so far (lets the watchdog record a partial run)
    GET /stop      accuracy in [0, 1], n images (1..expected); optional correct, ms_per_image, predictions;
                   400 and nothing written when malformed; stops sampling, writes `record`, shuts down
    GET /error     message: the page failed; recorded, sampling stops
    Every answer carries `Access-Control-Allow-Origin: <the page's origin>` so the page can read it.
    """

    def __init__(self, record: Path, samples: Path, *, allow_origin: str, n_expected: int | None = None,
                 interval: float = SAMPLE_INTERVAL, info: dict[str, Any] | None = None):
        from flask import Flask, jsonify, request
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        self.record_path, self.samples_path = Path(record), Path(samples)
        self.allow_origin, self.n_expected, self.interval = allow_origin, n_expected, interval
        self.info = dict(info or {})
        self.state = "waiting"  # -> sampling -> stopped | error | aborted
        self.sampler = None
        self.started_at: float | None = None  # time.monotonic() of /start
        self.started_wall: float | None = None
        self.progress = {"n": 0, "correct": 0}
        self.last_activity = time.monotonic()
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._pids: list[int] = []
        self._pids_known = threading.Event()
        self._lock = threading.Lock()
        self._closed = False

        app = Flask(f"study-stats-{id(self)}")

        @app.after_request
        def cors(response):
            response.headers["Access-Control-Allow-Origin"] = self.allow_origin
            response.headers["Vary"] = "Origin"
            response.headers["Cache-Control"] = "no-store"
            return response

        @app.get("/start")
        def start():
            with self._lock:
                if self.state != "waiting":
                    return jsonify(error=f"already {self.state}; one /start per run"), 409
                self._pids_known.wait(10)
                from study.sampler import Sampler

                self.samples_path.unlink(missing_ok=True)
                self.sampler = Sampler(interval=self.interval, out=self.samples_path).start(self._pids)
                self.started_at, self.started_wall = time.monotonic(), time.time()
                self.last_activity = self.started_at
                self.state = "sampling"
                self.info.update({k: v for k, v in request.args.items() if k in ("backend",)})
                return jsonify(status="sampling", interval=self.interval, pids=self._pids)

        @app.get("/progress")
        def progress():
            try:
                n = _number(request.args, "n", int, 0, self.n_expected)
                correct = _number(request.args, "correct", int, 0, n)
            except ValueError as exc:
                return jsonify(error=str(exc)), 400
            with self._lock:
                if self.state != "sampling":
                    return jsonify(error=f"not sampling ({self.state})"), 409
                self.progress = {"n": n, "correct": correct}
                self.last_activity = time.monotonic()
            return jsonify(status="sampling", **self.progress)

        @app.get("/stop")
        def stop():
            try:
                payload = self._validate_stop(request.args)
            except ValueError as exc:
                return jsonify(error=f"bad /stop: {exc}; expected /stop?accuracy=<0..1>&n=<images>"), 400
            with self._lock:
                if self.state != "sampling":
                    return jsonify(error=f"/stop while {self.state}; call /start first"), 409
                elapse = time.monotonic() - self.started_at
                self.progress = {"n": payload["n"], "correct": payload.get("correct", self.progress["correct"])}
                self.result = self._finish("ok", elapse, payload)
                self.state = "stopped"
            self.done.set()
            threading.Thread(target=self.shutdown, daemon=True).start()  # after this answer is sent
            return jsonify(status="stopped", accuracy=payload["accuracy"], n=payload["n"])

        @app.get("/error")
        def error():
            with self._lock:
                self.error = (request.args.get("message") or "unknown error")[:2000]
                self.state = "error"  # the runner records the run (abort) and stops the sampler
            self.done.set()
            return jsonify(status="error")

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="stats-server", daemon=True)
        self._thread.start()

    def _validate_stop(self, args) -> dict[str, Any]:
        payload = {"accuracy": _number(args, "accuracy", float, 0.0, 1.0),
                   "n": _number(args, "n", int, 1, self.n_expected)}
        if args.get("correct") not in (None, ""):
            payload["correct"] = _number(args, "correct", int, 0, payload["n"])
            if abs(payload["correct"] / payload["n"] - payload["accuracy"]) > 1e-6:
                raise ValueError(f"accuracy={payload['accuracy']} != correct/n = {payload['correct']}/{payload['n']}")
        if args.get("ms_per_image") not in (None, ""):
            payload["ms_per_image"] = _number(args, "ms_per_image", float, 0.0)
        if args.get("predictions"):
            try:
                predictions = [int(p) for p in args["predictions"].split(",")]
            except ValueError:
                raise ValueError("predictions must be comma-separated class indices") from None
            if len(predictions) != payload["n"]:
                raise ValueError(f"{len(predictions)} predictions for n={payload['n']}")
            payload["predictions"] = predictions
        return payload

    def set_pids(self, pids: list[int]) -> None:
        """The browser's PID(s): the Sampler watches their process trees from /start on."""
        self._pids = list(pids)
        self._pids_known.set()

    def _stop_sampler(self):
        if self.sampler is None:
            return None
        sampler, self.sampler = self.sampler, None
        try:
            if sampler.alive and sampler.samples_in("running") < 1:
                sampler.wait_samples(1, "running")  # a run shorter than the interval still gets one sample
        except Exception:
            pass
        try:
            return sampler.stop()
        finally:
            sampler.close()

    def _finish(self, status: str, elapse: float | None, payload: dict[str, Any]) -> dict[str, Any]:
        """Stop sampling, summarise, write the run record (atomically); returns it."""
        samples = self._stop_sampler()
        died = bool(samples is not None and samples.attrs.get("sampler_died"))
        if died and status == "ok":
            status = "invalid"  # the resource columns cannot be trusted; never silently reported
        record = {**self.info, "status": status, "elapse_s": elapse, "started": self.started_wall,
                  "samples_csv": str(self.samples_path), **payload, **summarize_samples(samples),
                  "sampler_died": died}
        files.write_text(self.record_path, json.dumps(record, indent=2, default=str) + "\n")
        return record

    def abort(self, status: str, reason: str) -> dict[str, Any]:
        """The watchdog's end of a run: record what was measured and inferred so far."""
        with self._lock:
            if self.result is not None:
                return self.result
            n, correct = self.progress["n"], self.progress["correct"]
            if status == "partial" and not n:
                status = "timeout"  # stopped before a single image was inferred
            elapse = time.monotonic() - self.started_at if self.started_at is not None else None
            payload = {"accuracy": correct / n if n else None, "n": n, "correct": correct, "reason": reason,
                       **({"error": self.error} if self.error else {})}
            self.result = self._finish(status, elapse, payload)
            self.state = "aborted" if status != "error" else "error"
        self.done.set()
        return self.result

    def shutdown(self) -> None:
        """Stop serving (idempotent); a sampler still running is stopped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        if self.sampler is not None:
            with self._lock:
                self._stop_sampler()


def summarize_samples(samples) -> dict[str, Any]:
    """Table X's resource columns from one run's samples: plain means while running (no cool-down)."""
    from study.formula1 import regularity, running_mean

    if samples is None or len(samples) == 0:
        return {"cpu": None, "memory": None, "gpu": None, "gpu_memory": None, "cpu_tree": None,
                "peak_rss_mb": None, "n_samples": 0}
    peak = samples["tree_rss_mb"].max()

    def clean(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)

    return {"cpu": clean(running_mean(samples, "cpu")), "memory": clean(running_mean(samples, "mem")),
            "gpu": clean(running_mean(samples, "gpu")), "gpu_memory": clean(running_mean(samples, "gpu_memory")),
            "cpu_tree": clean(running_mean(samples, "tree_cpu")), "peak_rss_mb": clean(peak),
            "n_samples": int(len(samples)), **regularity(samples)}


# --- Headless Chromium ----------------------------------------------------------------------------------

def stop_tree(pid: int, grace: float = 0.0) -> list[int]:
    """Stop process `pid`, its descendants and whatever else runs in its session, each by its PID.

    With `grace` > 0 they get SIGTERM first; SIGKILL for the rest (a headless browser has nothing to save:
    Chromium's orderly shutdown alone takes ~2 s). Returns the PIDs that were signalled.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        procs = {p.pid: p for p in (root, *root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return []
    if os.getsid(0) != pid:  # started with start_new_session: its session id is its PID
        for p in psutil.process_iter():
            try:
                if p.pid not in procs and os.getsid(p.pid) == pid:
                    procs[p.pid] = p  # e.g. a helper re-parented after its parent died
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
    todo = list(procs.values())
    if grace > 0:
        for p in todo:
            try:
                p.send_signal(signal.SIGTERM)  # psutil checks the PID still names the same process
            except psutil.NoSuchProcess:
                pass
        _, todo = psutil.wait_procs(todo, timeout=grace)
    for p in todo:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + 5
    while (alive := [p for p in todo if not _dead(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive:
        raise StudyError(f"could not stop processes {[p.pid for p in alive]} (started as part of PID {pid})")
    return list(procs)


def _dead(proc) -> bool:
    """Gone, or a zombie (killed; only its parent or init still has to reap it)."""
    import psutil

    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    try:
        proc.wait(0)  # reap it when it is our child
    except (psutil.TimeoutExpired, psutil.NoSuchProcess, ChildProcessError):
        pass
    return True


class Browser:
    """Headless Chromium on one URL with a fresh profile; `close()` stops its whole tree by PID."""

    def __init__(self, url: str, log: Path, binary: Path | None = None, extra_flags: tuple[str, ...] = ()):
        self.binary = binary or environment.chromium()
        self.profile = Path(tempfile.mkdtemp(prefix="study-chromium-"))
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log, "wb")
        cmd = [str(self.binary), *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={self.profile}", url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # our Ctrl-C does not reach it; we stop it

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def close(self) -> None:
        stop_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - stop_tree already SIGKILLed it
            self.proc.kill()
            self.proc.wait()
        self._log_fh.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class PageRun:
    """How `open_page` ended: `done` (the page signalled), `timeout` or `browser_exited` (with `reason`)."""

    status: str
    seconds: float
    peak_tree_rss_mb: float
    browser_pid: int
    reason: str = ""


def tree_rss_mb(pid: int) -> float:
    """Resident set of process `pid` and its descendants (MiB; shared pages counted once per process)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def open_page(url: str, log: Path, done: threading.Event, timeout: float, *,
              extra_flags: tuple[str, ...] = (), poll: float = 0.1) -> PageRun:
    """Headless Chromium (`Browser`) on `url` until the page sets `done` (e.g. from a POST handler of a
    `LocalServer`), Chromium exits, or `timeout` seconds pass; the whole tree is stopped by PID either way.
    Tracks the tree's peak RSS while it waits."""
    browser = Browser(url, log, extra_flags=extra_flags)
    start, peak = time.monotonic(), 0.0
    try:
        while True:
            peak = max(peak, tree_rss_mb(browser.pid))
            if done.wait(poll):
                return PageRun("done", time.monotonic() - start, peak, browser.pid)
            if browser.exited():
                return PageRun("browser_exited", time.monotonic() - start, peak, browser.pid,
                               f"Chromium exited with code {browser.proc.returncode}: {log_tail(browser.log)}")
            if time.monotonic() - start > timeout:
                return PageRun("timeout", time.monotonic() - start, peak, browser.pid,
                               f"the page did not finish within {timeout:.0f} s "
                               f"({log_tail(browser.log, match='CONSOLE') or 'no console output'})")
    finally:
        browser.close()


def log_tail(path: Path, lines: int = 5, match: str = "") -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if match in ln]
    except OSError:
        return ""
    return " | ".join(text[-lines:])[:500]


# --- One model in the browser ---------------------------------------------------------------------------

@dataclass
class BrowserRun:
    """What one (model, backend) run gives: the Table X row and the record behind it."""

    row: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


def run_browser(model: TunedModel, model_json: Path, out: Path, *, backend: str = "wasm",
                limits: Limits = PROFILE_LIMITS["embedded"], page: Path = PAGE, batch: int = 1,
                interval: float = SAMPLE_INTERVAL) -> BrowserRun:
    """The simple product for one converted model in headless Chromium, under the watchdog."""
    if backend not in BACKENDS:
        raise StudyError(f"unknown TF.js backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if not (Path(page) / "index.html").is_file():
        raise StudyError(f"no index.html in the page folder {page}")
    key = f"{model.name}__{backend}"
    static = StaticServer(page, Path(model_json).parent, model.images, model.input_size)
    stats = browser = None
    try:
        stats = StatsServer(out / "runs" / f"{key}.json", out / "samples" / f"{key}.csv",
                            allow_origin=static.origin, n_expected=len(model.images), interval=interval,
                            info={"model": model.name, "backend": backend, "n_expected": len(model.images)})
        query = urllib.parse.urlencode({"model": f"/model/{Path(model_json).name}", "images": "/images/manifest.json",
                                        "stats": stats.url, "backend": backend, "batch": batch})
        browser = Browser(f"{static.origin}/simple_product/index.html?{query}", out / "logs" / f"{key}.chromium.log",
                          extra_flags=WEBGL_FLAGS if backend == "webgl" else ())
        stats.info.update(browser_pid=browser.pid, chromium_log=str(browser.log))
        stats.set_pids([browser.pid])
        launched = time.monotonic()
        while not stats.done.wait(0.2):
            now = time.monotonic()
            if browser.exited():
                stats.abort("browser_exited", f"Chromium exited with code {browser.proc.returncode}: "
                                              f"{log_tail(browser.log)}")
            elif stats.state == "waiting" and now - launched > limits.start:
                stats.abort("timeout", f"the page did not call /start within {limits.start:.0f} s "
                                       f"({log_tail(browser.log, match='CONSOLE') or 'no console output'})")
            elif stats.state == "sampling" and now - stats.last_activity > limits.stall:
                stats.abort("partial", f"no progress for {limits.stall:.0f} s (stalled)")
            elif now - launched > limits.total:
                stats.abort("partial", f"not finished within {limits.total:.0f} s")
        if stats.state == "error" and stats.result is None:
            stats.abort("error", f"the page failed: {stats.error}")
        record = dict(stats.result or {})
    finally:
        if browser is not None:
            browser.close()
        if stats is not None:
            stats.shutdown()
        static.close()
    status = record.get("status", "error")
    return BrowserRun(table_x_row(model.name, backend, status, record), record)


def table_x_row(model: str, backend: str, status: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Table X row (TABLE_X_COLUMNS) from a run record."""
    from study.paper import format_elapse

    r = record or {}
    elapse = r.get("elapse_s")
    return {"model": model, "cpu": r.get("cpu"), "elapse": format_elapse(elapse) if elapse is not None else None,
            "memory": r.get("memory"), "gpu": r.get("gpu"), "gpu_memory": r.get("gpu_memory"),
            "accuracy": r.get("accuracy"), "backend": backend, "n_images": r.get("n", 0), "status": status,
            "ms_per_image": r.get("ms_per_image"), "elapse_s": elapse, "cpu_tree": r.get("cpu_tree"),
            "peak_rss_mb": r.get("peak_rss_mb"), "n_samples": r.get("n_samples", 0)}


# --- The sweep over models and backends -------------------------------------------------------------------

def _read_table(path: Path, columns: tuple[str, ...]):
    import pandas as pd

    if path.exists():
        return pd.read_csv(path)
    return pd.DataFrame(columns=list(columns))


def browser_test(models: str | Path, out: str | Path, *, profile: str | None = None,
                 backends: tuple[str, ...] = ("wasm",), members: list[str] | None = None,
                 limits: Limits | None = None, redo: bool = False, page: Path = PAGE, batch: int = 1,
                 progress: bool = True):
    """Convert and test every fine-tuned model in the browser; writes `out/table_x.csv` (resumable).

    Rows already in `table_x.csv` for a (model, backend) are kept unless `redo`. Conversion results go to
    `out/conversion.csv`, TF.js models to `out/tfjs/<model>/`, per-run records to `out/runs/`,
    samples to `out/samples/`, Chromium logs to `out/logs/`.
    """
    import pandas as pd

    prof = config.get_profile(profile)
    limits = limits or PROFILE_LIMITS[prof.name]
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise StudyError(f"unknown TF.js backend {', '.join(bad)}; valid: {', '.join(BACKENDS)}")
    environment.chromium()  # missing Chromium / npm packages: fail before converting anything
    environment.node_modules()
    out = files.ensure_writable_dir(out)
    found = find_models(models, members)
    if not found:
        raise StudyError(f"no fine-tuned models found under {models}")
    table_path, conv_path = out / "table_x.csv", out / "conversion.csv"
    table = _read_table(table_path, TABLE_X_COLUMNS)
    conversions = _read_table(conv_path, CONVERSION_COLUMNS)
    done = set() if redo else set(zip(table["model"], table["backend"]))
    for i, model in enumerate(found, 1):
        model_json = out / "tfjs" / model.name / "model.json"
        previous = conversions[conversions["model"] == model.name]
        fresh = (not previous.empty and "fingerprint" in previous
                 and str(previous["fingerprint"].iloc[-1]) == model.fingerprint())
        # rows of an earlier version of this model (a new sweep) are redone
        todo = [b for b in backends if redo or not fresh or (model.name, b) not in done]
        if not todo:
            continue
        if redo or not fresh or previous["status"].iloc[-1] != "ok" or not model_json.is_file():
            conv = convert(model, out / "tfjs" / model.name)
            conversions = pd.concat([conversions[conversions["model"] != model.name],
                                     pd.DataFrame([conv.row()])], ignore_index=True)
            files.write_csv(conv_path, conversions)
            ok = conv.status == "ok"
            if progress:
                print(f"[browser-test] {i}/{len(found)} {model.name}: conversion {conv.status}"
                      f"{f' in {conv.seconds:.1f} s, {conv.size_mb:.2f} MB' if ok else ': ' + conv.error}", flush=True)
        else:
            ok = True
        rows = []
        for backend in todo:
            if not ok:
                status = "skipped" if not model.convertible else "conversion_failed"
                rows.append(table_x_row(model.name, backend, status))
                continue
            run = run_browser(model, model_json, out, backend=backend, limits=limits, page=page, batch=batch)
            rows.append(run.row)
            if progress:
                r = run.row
                acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
                print(f"[browser-test] {i}/{len(found)} {model.name} [{backend}]: {r['status']}, "
                      f"{r['n_images']} images, accuracy {acc}, {r['elapse']}"
                      + (f" ({run.record.get('reason')})" if run.record.get("reason") else ""), flush=True)
        keys = {(model.name, b) for b in todo}
        keep = [k not in keys for k in zip(table["model"], table["backend"])]
        table = pd.concat([table[keep], pd.DataFrame(rows, columns=list(TABLE_X_COLUMNS))], ignore_index=True)
        files.write_csv(table_path, table[list(TABLE_X_COLUMNS)])  # after every model: a crash loses nothing
    return read_table_x(table_path)


def read_table_x(path: str | Path):
    """Our Table X as written by `browser_test`."""
    import pandas as pd

    df = pd.read_csv(path)
    missing = [c for c in TABLE_X_COLUMNS if c not in df.columns]
    if missing:
        raise StudyError(f"{path} is not a browser-test table (missing {', '.join(missing)}); rerun browser-test")
    return df


# --- The same images in Python and in Node.js ------------------------------------------------------------

def python_reference(model: TunedModel, *, batch: int = 1, repeats_warmup: int = 1) -> dict[str, Any]:
    """TensorFlow in Python on the same test images and preprocessing: accuracy, per-image latency, predictions."""
    import numpy as np
    import tensorflow as tf

    from study.dataset import load_images

    x = load_images([p for p, _ in model.images], model.input_size)
    labels = np.array([label for _, label in model.images])
    fn = tf.saved_model.load(str(model.saved_model)).signatures["serving_default"]
    for _ in range(repeats_warmup):
        _ = fn(tf.constant(x[:1]))
    predictions, seconds = [], 0.0
    for i in range(0, len(x), batch):
        xb = tf.constant(x[i:i + batch])
        t = time.perf_counter()
        y = next(iter(fn(xb).values())).numpy()
        seconds += time.perf_counter() - t
        predictions.extend(np.argmax(y, axis=1).tolist())
    predictions = np.array(predictions)
    return {"model": model.name, "n": len(labels), "correct": int((predictions == labels).sum()),
            "accuracy": float((predictions == labels).mean()) if len(labels) else math.nan,
            "ms_per_image": 1000 * seconds / max(len(labels), 1), "predictions": predictions.tolist()}


def node_check(model: TunedModel, model_json: Path, *, backend: str = "wasm", batch: int = 1,
               timeout: float = 300) -> dict[str, Any]:
    """The converted model in Node.js (pure @tensorflow/tfjs + wasm/cpu) on Python-preprocessed images."""
    import numpy as np

    from study.dataset import load_images

    node = shutil.which("node")
    if node is None:
        raise StudyError("Node.js not found; install it: apt-get install -y nodejs npm")
    environment.node_modules()
    x = np.ascontiguousarray(load_images([p for p, _ in model.images], model.input_size), dtype="<f4")
    with tempfile.TemporaryDirectory(prefix="study-node-") as tmp:
        (Path(tmp) / "x.bin").write_bytes(x.tobytes())
        (Path(tmp) / "x.json").write_text(json.dumps({"shape": list(x.shape), "labels": [l for _, l in model.images]}))
        proc = subprocess.Popen([node, str(NODE_SCRIPT), "--model", str(model_json), "--inputs", f"{tmp}/x.bin",
                                 "--meta", f"{tmp}/x.json", "--backend", backend, "--batch", str(batch)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_tree(proc.pid)
            proc.communicate()
            raise StudyError(f"Node.js check of {model.name} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise StudyError(f"Node.js check of {model.name} failed: {stderr.strip().splitlines()[-1:] or stderr}")
    return {"model": model.name, **json.loads(stdout.strip().splitlines()[-1])}


# --- Browser vs Python ----------------------------------------------------------------------------------

def python_predictions(models: str | Path, model: TunedModel) -> list[int]:
    """TensorFlow-in-Python's predictions on the model's test images: the sweep's `predictions/<member>.csv`
    (written at test time by the same `load_images` preprocessing), else computed now (`python_reference`)."""
    import pandas as pd

    csv = models_root(models).parent / "predictions" / f"{model.name}.csv"
    if csv.is_file():
        df = pd.read_csv(csv)
        if [str(p) for p in df["path"]] == [str(p) for p, _ in model.images]:
            return df["prediction"].astype(int).tolist()
    return python_reference(model)["predictions"]


def accuracy_comparison(models: str | Path, out: str | Path):
    """Per (model, backend): accuracy in the browser vs TensorFlow in Python on the same images, the
    difference in images, and per-image agreement of the predictions."""
    import pandas as pd

    rows = []
    for model in find_models(models):
        python = None
        labels = [label for _, label in model.images]
        for record_path in sorted((Path(out) / "runs").glob(f"{model.name}__*.json")):
            record = json.loads(record_path.read_text())
            if record.get("model") != model.name or record.get("status") != "ok" or "predictions" not in record:
                continue
            python = python if python is not None else python_predictions(models, model)
            n = len(labels)
            python_correct = sum(p == l for p, l in zip(python, labels))
            rows.append({"model": model.name, "backend": record["backend"], "n_images": n,
                         "accuracy_browser": record["accuracy"], "accuracy_python": python_correct / n,
                         "diff_images": record.get("correct", round(record["accuracy"] * n)) - python_correct,
                         "agreement": sum(a == b for a, b in zip(record["predictions"], python)) / n})
    return pd.DataFrame(rows, columns=["model", "backend", "n_images", "accuracy_browser", "accuracy_python",
                                       "diff_images", "agreement"])


def latency_comparison(models: str | Path, table, members: list[str]):
    """Per-image inference latency (ms, batch 1, after a warm-up) of each TF.js backend in Chromium (from
    `table`, our Table X) and of TensorFlow in Python on the same images, for `members`."""
    import pandas as pd

    rows = []
    for model in find_models(models, members):
        ok = table[(table["model"] == model.name) & (table["status"] == "ok")]
        rows += [{"model": model.name, "runtime": f"TF.js {r.backend} (Chromium)", "ms_per_image": r.ms_per_image}
                 for r in ok.itertuples()]
        if model.convertible:
            rows.append({"model": model.name, "runtime": "TensorFlow (Python)",
                         "ms_per_image": python_reference(model)["ms_per_image"]})
    return pd.DataFrame(rows, columns=["model", "runtime", "ms_per_image"])


def sweep_models(profile: str, models: str | Path | None = None) -> Path:
    """The fine-tuned models to test: `models` (a sweep's --out DIR), else the profile's sweep of notebook 04
    (`study.finetune.default_out`, results/finetune/<profile>); when that has none, the smoke profile builds
    `tiny_classifiers` (seconds) and other profiles run the fine-tuning sweep there first."""
    from study import finetune

    path = Path(models) if models else finetune.default_out(profile)
    try:
        models_root(path)
        return path
    except StudyError:
        if models:
            raise
    if config.get_profile(profile).name == "smoke":
        return tiny_classifiers(config.cache_dir() / "browser-smoke-models", profile="smoke")
    finetune.sweep(path, profile)
    return path


# --- Tiny stand-ins for the sweep's models (tests, the notebook's smoke run) -----------------------------

def tiny_classifiers(out: str | Path, profile: str = "smoke", sizes: tuple[int, ...] = (32, 48), epochs: int = 40,
                     seed: int = 0) -> Path:
    """Small MobileNet-style classifiers (conv, batch norm, ReLU6, depthwise conv) trained on the profile's
    split, saved exactly as the fine-tuning sweep saves its models (`out/models/<name>/saved_model` with
    `serving_default`: float32 images (N, S, S, 3) in [0, 1] -> softmax (N, C), plus `meta.json`).

    For when no sweep output exists and seconds matter (the sweep's smoke run takes about a minute): they go
    through the same conversion, page and stats server. Their evaluation images are the split's test +
    validation images (more images make the browser-vs-Python comparison stricter). Returns `out`.
    """
    import numpy as np
    import pandas as pd
    import tf_keras as keras

    from study import dataset, finetune

    out = Path(out)
    split = dataset.load_split(profile, seed=seed)
    evaluation = split.test + split.validation
    layers = keras.layers
    for size in sizes:
        name = f"tiny_mobilenet_{size}"
        folder = out / "models" / name
        if (folder / "meta.json").is_file():
            continue
        keras.utils.set_random_seed(seed)
        images = keras.Input((size, size, 3), name="images")
        x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(images)
        x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.5)(x))
        x = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, strides=2, padding="same")(x))
        x = layers.Conv2D(32, 1, use_bias=False)(x)
        x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.5)(x))
        probabilities = layers.Dense(len(split.class_names), activation="softmax")(layers.GlobalAveragePooling2D()(x))
        model = keras.Model(images, probabilities, name=name)
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        model.fit(dataset.load_images([p for p, _ in split.train], size), np.array([l for _, l in split.train]),
                  epochs=epochs, batch_size=16, verbose=0)
        x_eval = dataset.load_images([p for p, _ in evaluation], size)
        predictions = model.predict(x_eval, verbose=0).argmax(1)
        accuracy = float((predictions == [l for _, l in evaluation]).mean())

        tmp = folder.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        finetune.save_classifier(model, tmp / "saved_model", size)
        files.write_text(tmp / "meta.json", json.dumps({
            "member": name, "backend": "tf", "input_size": size, "class_names": list(split.class_names),
            "test_accuracy": accuracy, "profile": profile, "seed": seed, "note": "study.browser.tiny_classifiers",
            "test_images": [{"path": str(p), "label": int(l)} for p, l in evaluation]}, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        files.write_csv(out / "predictions" / f"{name}.csv", pd.DataFrame(
            {"path": [str(p) for p, _ in evaluation], "label": [l for _, l in evaluation], "prediction": predictions}))
        os.replace(tmp, folder)  # a killed build leaves no half-written model behind
    return out


# --- CLI --------------------------------------------------------------------------------------------------

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("browser-test", help="Table X: TF.js conversion + the simple product in headless Chromium")
    p.add_argument("--profile", default=None, help="smoke | embedded | paper (default: $PROFILE or embedded)")
    p.add_argument("--models", required=True, type=Path, help="the fine-tuning sweep's --out DIR (or its models/)")
    p.add_argument("--backend", nargs="+", default=["wasm"], choices=BACKENDS, help="TF.js backend(s) (default wasm)")
    p.add_argument("--out", type=Path, default=None, help="output DIR (default: results/browser/<profile>)")
    p.add_argument("--members", nargs="+", metavar="MEMBER", help="only these fine-tuned members")
    p.add_argument("--timeout", type=float, default=None, help="watchdog: seconds per run in all")
    p.add_argument("--stall", type=float, default=None, help="watchdog: seconds without progress")
    p.add_argument("--redo", action="store_true", help="rerun (model, backend) pairs already in table_x.csv")
    p.add_argument("--node", action="store_true",
                   help="quick check instead: the converted models in Node.js vs TensorFlow in Python")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    prof = config.get_profile(args.profile)
    out = args.out or config.results_dir() / "browser" / prof.name
    limits = PROFILE_LIMITS[prof.name]
    if args.timeout or args.stall:
        limits = dataclasses.replace(limits, total=args.timeout or limits.total, stall=args.stall or limits.stall)
    if args.node:
        return _cli_node(args, out)
    table = browser_test(args.models, out, profile=prof.name, backends=tuple(args.backend), members=args.members,
                         limits=limits, redo=args.redo)
    print(table[list(TABLE_X_COLUMNS[:11])].to_string(index=False))
    bad = table[~table["status"].isin(["ok", "skipped"])]
    print(f"[browser-test] {len(table) - len(bad)} of {len(table)} runs ok or skipped -> {Path(out) / 'table_x.csv'}")
    return 1 if len(bad) else 0


def _cli_node(args: argparse.Namespace, out: Path) -> int:
    import pandas as pd

    rows = []
    for model in find_models(args.models, args.members):
        conv = convert(model, Path(out) / "tfjs" / model.name)
        if conv.status != "ok":
            rows.append({"model": model.name, "status": conv.status, "error": conv.error})
            continue
        ref = python_reference(model)
        for backend in [b for b in args.backend if b != "webgl"]:
            res = node_check(model, conv.model_json, backend=backend)
            agree = sum(a == b for a, b in zip(res["predictions"], ref["predictions"])) / max(ref["n"], 1)
            rows.append({"model": model.name, "status": "ok", "backend": backend, "n": res["n"],
                         "accuracy_node": res["accuracy"], "accuracy_python": ref["accuracy"],
                         "agreement": agree, "ms_per_image_node": res["ms_per_image"],
                         "ms_per_image_python": ref["ms_per_image"]})
    df = pd.DataFrame(rows)
    files.write_csv(Path(out) / "node_check.csv", df)
    print(df.to_string(index=False))
    return 0
