"""The stats server of Section VII-F (the paper's "Python process 2"): a Flask app on 127.0.0.1 that samples
resources while the simple product runs.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

from study import failpoints, files
from study.casestudy.formula1 import regularity, running_mean
from study.casestudy.sampler import Sampler
from study.protocol import PAPER


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
                 interval: float = PAPER.test_interval_s, info: dict[str, Any] | None = None):
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
            failpoints.reached("browser.start")
            with self._lock:
                if self.state != "waiting":
                    return jsonify(error=f"already {self.state}; one /start per run"), 409
                self._pids_known.wait(10)

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
