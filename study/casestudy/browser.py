"""Section VII-F: the fine-tuned assets in the browser "simple product" (Table X).

For every fine-tuned member (the sweep's `models/<member>/{saved_model/ | model.pt}` + `meta.json`):

1. **convert** it for the browser, recording seconds and size: a TF member's SavedModel to a TF.js graph model
   (`study.runtime.tfjs`), run by TF.js; a PyTorch member's classifier to ONNX (`study.casestudy.onnx_web`), run by
   ONNX Runtime Web (wasm) on the same page (`RUNTIMES`; Table X's `runtime` column says which);
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

The answers are checked against Python and Node.js in `study.casestudy.browser_checks`. On a Ray cluster
(`browser_test(executor=...)`, notebook 05's `cluster`) each member is a task that holds a node.
`LocalServer` (static files + POST endpoints) and `open_page` (Chromium under a watchdog, stopped by PID) are
also what `study.deployment.matrix` runs its TF.js-in-Chromium row with.
CLI: `python -m study browser-test --profile P --models DIR [--backend wasm|webgl|cpu ...] --out DIR`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study import config, files
from study.assets.refs import asset_id
from study.cache.keys import web_sources
from study.cache.step import Step
from study.casestudy import finetune, onnx_web
from study.casestudy.cluster import after_lost, this_node
from study.casestudy.stand_ins import tiny_classifiers
from study.casestudy.stats_server import StatsServer
from study.errors import ResumeWarning, StudyError
from study.paper import format_elapse
from study.profiles import Limits  # the watchdog's limits (seconds): to `/start`, without progress, in all
from study.protocol import PAPER
from study.runtime import environment, tfjs
from study.runtime.chromium import Browser, WEBGL_FLAGS, log_tail
from study.runtime.servers import StaticServer

PAPER_COLUMNS = ("model", "cpu", "elapse", "memory", "gpu", "gpu_memory", "accuracy")
TABLE_X_COLUMNS = PAPER_COLUMNS + ("backend", "n_images", "status", "ms_per_image",
                                   "elapse_s", "cpu_tree", "peak_rss_mb", "n_samples", "assets_lock", "asset",
                                   "asset_sha256",  # asset: its reference and content hash, as in Table IX
                                   "runtime",  # what ran it: "TF.js wasm (Chromium)", "ONNX Runtime Web wasm (Chromium)"
                                   "weights",  # imagenet | random | own, as in Table IX (study.assets.zoo.weights)
                                   "node")  # the machine that ran it (study.casestudy.cluster.node_label), as in Table IX
OPTIONAL_X_COLUMNS = ("assets_lock", "asset", "asset_sha256", "runtime", "weights", "node")  # older tables still read
CONVERSION_COLUMNS = ("model", "status", "seconds", "size_mb", "files", "fingerprint", "error", "format")
BACKENDS = ("wasm", "webgl", "cpu")
# ok: /stop received; partial / timeout: the watchdog stopped a run with / without inferred images;
# error: the page reported an exception; browser_exited: Chromium died; invalid: the sampler died mid-run;
# conversion_failed / skipped (a backend its runtime lacks, or a backend with no browser path): no run.
STATUSES = ("ok", "partial", "timeout", "error", "browser_exited", "invalid", "conversion_failed", "skipped")
PAGE = config.SIMPLE_PRODUCT
NODE_SCRIPT = config.WEB / "run_simple_product_node.mjs"


@dataclass(frozen=True)
class Runtime:
    """How a member's backend reaches the browser: the converted format and the page that runs it."""

    name: str  # the page's `runtime` query parameter
    label: str  # Table X's `runtime` column, {backend} filled in
    format: str  # conversion.csv's `format`
    folder: str  # the converted models' folder under the browser test's out
    file: str  # the converted model's file in its folder
    page: str  # the page file in the page folder (web/simple_product/)
    backends: tuple[str, ...]  # the `backend`s it runs on
    python: str  # the reference it is compared with


RUNTIMES = {  # keyed by the member's backend (meta.json)
    "tf": Runtime("tfjs", "TF.js {backend} (Chromium)", "tfjs_graph_model", "tfjs", "model.json", "index.html",
                  BACKENDS, "TensorFlow (Python)"),
    "torch": Runtime("onnx", "ONNX Runtime Web {backend} (Chromium)", "onnx", "onnx", onnx_web.MODEL_FILE,
                     "onnx.html", ("wasm",), "PyTorch (Python)"),
}


def profile_limits(profile: config.Profile) -> Limits:
    """The watchdog's limits of a profile's runs (`profile.browser_limits`)."""
    return profile.browser_limits


# --- The models to test -----------------------------------------------------------------------------

@dataclass
class TunedModel:
    """One fine-tuned asset as the sweep left it: `models/<member>/{saved_model/ | model.pt, meta.json}`."""

    name: str
    folder: Path
    backend: str
    input_size: int
    class_names: tuple[str, ...]
    images: list[tuple[Path, int]]
    test_accuracy: float | None = None
    assets_lock: str | None = None  # the asset folder's lock digest the model was fine-tuned from (paper profile)
    asset: dict[str, Any] | None = None  # the identity of the asset it was fine-tuned from (meta.json's "asset")
    profile: str | None = None  # the profile it was fine-tuned under (meta.json), to rebuild a torch classifier
    weights: str = ""  # imagenet | random | own (meta.json; study.assets.zoo.weights): what its accuracy supports

    @property
    def saved_model(self) -> Path:
        return self.folder / "saved_model"

    @property
    def model_pt(self) -> Path:
        return self.folder / "model.pt"

    @property
    def runtime(self) -> Runtime | None:
        """How it reaches the browser (`RUNTIMES`); None: its backend has no browser path."""
        return RUNTIMES.get(self.backend)

    @property
    def original(self) -> Path:
        """The file the browser's model is converted from: the SavedModel's graph, or the torch checkpoint."""
        return self.model_pt if self.backend == "torch" else self.saved_model / "saved_model.pb"

    @property
    def convertible(self) -> bool:
        return self.runtime is not None and self.original.is_file()

    def fingerprint(self) -> str:
        """Identifies this exact fine-tuned model (graph, variable index with its tensor checksums, meta.json; a
        torch member: its checkpoint and meta.json)."""
        import hashlib

        h = hashlib.sha256()
        parts = ((self.model_pt, self.folder / "meta.json") if self.backend == "torch" else
                 (self.saved_model / "saved_model.pb", self.saved_model / "variables" / "variables.index",
                  self.folder / "meta.json"))
        for part in parts:
            h.update(files.sha256(part).encode() if part.is_file() else b"-")
        return h.hexdigest()[:16]

    def fine_tuned_under(self) -> config.Profile:
        """The profile it was fine-tuned under (its meta.json's name), else the default one."""
        return config.PROFILES.get(self.profile or "", config.PROFILES[config.DEFAULT_PROFILE])


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
                              test_accuracy=meta.get("test_accuracy"), assets_lock=meta.get("assets_lock"),
                              asset=meta.get("asset"), profile=meta.get("profile"), weights=meta.get("weights", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise StudyError(f"{meta_path} lacks {exc} (needs input_size, class_names, test_images[path, label]); "
                             "rerun the fine-tuning sweep for this member") from exc
        found.append(model)
    if members:
        members = [asset_id(m) for m in members]  # asset references name their sweep folders by readable id
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
    format: str = ""  # the runtime's format (`Runtime.format`): tfjs_graph_model | onnx
    model_json: Path | None = None  # the converted model's file: model.json (TF.js) or model.onnx

    def row(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in CONVERSION_COLUMNS}


def converted_path(out: Path, model: TunedModel) -> Path:
    """Where `browser_test` keeps `model`'s converted file under its `out` (`<folder>/<member>/<file>`)."""
    runtime = model.runtime or RUNTIMES["tf"]
    return Path(out) / runtime.folder / model.name / runtime.file


def convert(model: TunedModel, out_dir: Path) -> Conversion:
    """The fine-tuned model in its browser format in `out_dir` (time and size on disk): SavedModel -> TF.js graph
    model, torch classifier -> ONNX (`onnx_web.export`); failures become a status."""
    fingerprint, runtime = model.fingerprint(), model.runtime
    if not model.convertible:
        why = (f"backend {model.backend!r} has no browser path (TF members run as TF.js, torch members as ONNX)"
               if runtime is None else f"no {model.original.name} in {model.original.parent}")
        return Conversion(model.name, "skipped", error=why, fingerprint=fingerprint,
                          format=runtime.format if runtime else "")

    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    try:
        if runtime.name == "onnx":
            path = onnx_web.export(model.model_pt, model.fine_tuned_under(), out_dir, model.input_size)
        else:
            path = tfjs.convert_saved_model(model.saved_model, out_dir)
    except Exception as exc:  # a model that fails conversion is a row, the run continues
        return Conversion(model.name, "failed", seconds=time.perf_counter() - start, fingerprint=fingerprint,
                          format=runtime.format, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
    seconds = time.perf_counter() - start
    parts = [path] if runtime.name == "onnx" else [path, *tfjs.weight_files(path)]
    return Conversion(model.name, "ok", seconds=seconds, size_mb=sum(p.stat().st_size for p in parts) / 2**20,
                      files=len(parts), fingerprint=fingerprint, format=runtime.format, model_json=path)


# --- Static server (the paper's Nginx) ----------------------------------------------------------------


# --- Stats server (Flask, the paper's "Python process 2") ---------------------------------------------


# --- Headless Chromium ----------------------------------------------------------------------------------


# --- One model in the browser ---------------------------------------------------------------------------

@dataclass
class BrowserRun:
    """What one (model, backend) run gives: the Table X row and the record behind it."""

    row: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)


def run_browser(model: TunedModel, model_json: Path, out: Path, *, backend: str = "wasm",
                limits: Limits = config.PROFILES[config.DEFAULT_PROFILE].browser_limits, page: Path = PAGE,
                batch: int = 1, interval: float = PAPER.test_interval_s) -> BrowserRun:
    """The simple product for one converted model (`model_json`: its model.json or model.onnx) in headless
    Chromium, under the watchdog: the runtime's page (`Runtime.page`) of the page folder."""
    runtime = model.runtime
    if backend not in BACKENDS:
        raise StudyError(f"unknown TF.js backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if runtime is None or backend not in runtime.backends:
        raise StudyError(f"{model.name} (backend {model.backend!r}) has no browser runtime on {backend!r}; its "
                         f"runtime runs {', '.join(runtime.backends) if runtime else 'nowhere'}")
    if not (Path(page) / runtime.page).is_file():
        raise StudyError(f"no {runtime.page} in the page folder {page}")
    key = f"{model.name}__{backend}"
    static = StaticServer(page, Path(model_json).parent, model.images, model.input_size)
    stats = browser = None
    try:
        stats = StatsServer(out / "runs" / f"{key}.json", out / "samples" / f"{key}.csv",
                            allow_origin=static.origin, n_expected=len(model.images), interval=interval,
                            info={"model": model.name, "backend": backend, "n_expected": len(model.images)})
        query = urllib.parse.urlencode({"model": f"/model/{Path(model_json).name}", "images": "/images/manifest.json",
                                        "stats": stats.url, "backend": backend, "batch": batch,
                                        "runtime": runtime.name})
        browser = Browser(f"{static.origin}/simple_product/{runtime.page}?{query}", out / "logs" / f"{key}.chromium.log",
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
    return BrowserRun(table_x_row(model, backend, status, record), record)


def table_x_row(model: TunedModel, backend: str, status: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """One Table X row (TABLE_X_COLUMNS) of `model` from a run record."""
    r = record or {}
    elapse = r.get("elapse_s")
    asset = model.asset or {}
    return {"model": model.name, "cpu": r.get("cpu"), "elapse": format_elapse(elapse) if elapse is not None else None,
            "memory": r.get("memory"), "gpu": r.get("gpu"), "gpu_memory": r.get("gpu_memory"),
            "accuracy": r.get("accuracy"), "backend": backend, "n_images": r.get("n", 0), "status": status,
            "ms_per_image": r.get("ms_per_image"), "elapse_s": elapse, "cpu_tree": r.get("cpu_tree"),
            "peak_rss_mb": r.get("peak_rss_mb"), "n_samples": r.get("n_samples", 0), "assets_lock": model.assets_lock,
            "asset": asset.get("ref"), "asset_sha256": asset.get("sha256"),
            "runtime": model.runtime.label.format(backend=backend) if model.runtime else None, "weights": model.weights,
            "node": this_node()}



# --- The sweep over models and backends -------------------------------------------------------------------

def _read_table(path: Path, columns: tuple[str, ...]):
    import pandas as pd

    if path.exists():
        if (problem := files.damage(path)) is None:
            return pd.read_csv(path).reindex(columns=list(columns))  # a table from before a column was added
        warnings.warn(f"{problem}: its rows are redone", ResumeWarning, stacklevel=2)
    return pd.DataFrame(columns=list(columns))


def _converted(model_json: Path) -> bool:
    """A whole converted model: an ONNX file `onnx_web.export` finished, or a TF.js model whose model.json parses
    and every weight file it names is there."""
    if Path(model_json).suffix == ".onnx":
        return onnx_web.exported(model_json)
    try:
        return files.damage(model_json) is None and all(p.is_file() for p in tfjs.weight_files(model_json))
    except (OSError, ValueError, KeyError):
        return False


@dataclass(frozen=True)
class MemberTest:
    """One member's part of the browser test: its conversion (unless a fresh one is on disk), then a run per backend.
    Independent of every other member's: an executor may place it on any node that reads and writes `out`
    (`browser_test(executor=...)`, a Ray task that holds a node: the runs are measured)."""

    model: TunedModel
    out: Path
    backends: tuple[str, ...]
    convert: bool
    limits: Limits
    page: Path
    batch: int
    where: str = ""  # "i/n" in the progress lines
    progress: bool = False


def _member_key(job: MemberTest) -> str:
    return f"browser/{job.model.name}"


def run_member(job: MemberTest) -> tuple[Conversion | None, list[dict[str, Any]]]:
    """`job`'s conversion (None when it reused one) and Table X rows, its runs' records and logs under `job.out`."""
    model, model_json = job.model, converted_path(job.out, job.model)
    conv, ok = None, True
    if job.convert:
        conv = convert(model, model_json.parent)
        ok = conv.status == "ok"
        _say(job, f"conversion {conv.status}"
                  f"{f' in {conv.seconds:.1f} s, {conv.size_mb:.2f} MB' if ok else ': ' + conv.error}")
    rows = []
    for backend in job.backends:
        if not ok or backend not in model.runtime.backends:
            rows.append(table_x_row(model, backend, "skipped" if not model.convertible or ok else "conversion_failed"))
            if ok:
                _say(job, f"[{backend}]: skipped (its runtime runs {', '.join(model.runtime.backends)} only)")
            continue
        run = run_browser(model, model_json, job.out, backend=backend, limits=job.limits, page=job.page,
                          batch=job.batch)
        rows.append(run.row)
        r = run.row
        acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        _say(job, f"[{backend}]: {r['status']}, {r['n_images']} images, accuracy {acc}, {r['elapse']}"
                  + (f" ({run.record.get('reason')})" if run.record.get("reason") else ""))
    return conv, rows


def _say(job: MemberTest, what: str) -> None:
    if job.progress:
        print(f"[browser-test] {job.where} {job.model.name} {what}", file=sys.stderr, flush=True)


def _tested(jobs: list[MemberTest], executor) -> Iterator[tuple[MemberTest, Conversion | None, list[dict[str, Any]]]]:
    """Each member's conversion and rows: here one after another, or a Ray task per member on the executor's
    cluster (`study.casestudy.ray_executor.RayExecutor.each`: a lost member runs again on another node; its rows'
    `node` then names the lost attempts)."""
    if executor is None:
        for job in jobs:
            yield (job, *run_member(job))
        return
    for job, (conv, rows), history in executor.each(run_member, jobs, _member_key, what="browser-test"):
        for row in rows:
            row["node"] += after_lost(history)
        _say(job, "on the cluster: " + ", ".join(f"{r['backend']} {r['status']}" for r in rows))
        yield job, conv, rows


def browser_test(models: str | Path, out: str | Path, *, profile: config.Profile,
                 backends: tuple[str, ...] = ("wasm",), members: list[str] | None = None,
                 limits: Limits | None = None, redo: bool = False, page: Path = PAGE, batch: int = 1,
                 progress: bool = True, executor=None):
    """Convert and test every fine-tuned model in the browser; writes `out/table_x.csv` (resumable).

    Rows already in `table_x.csv` for a (model, backend) are kept unless `redo`. Conversion results go to
    `out/conversion.csv`, TF.js models to `out/tfjs/<model>/` (ONNX: `out/onnx/`), per-run records to `out/runs/`,
    samples to `out/samples/`, Chromium logs to `out/logs/`. With `executor` (a `RayExecutor`; the caller closes
    it) each member is a task that holds a node of its cluster; every node must read and write `out` and the sweep
    at the same path.
    """
    import pandas as pd

    limits = limits or profile_limits(profile)
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
    # rows are reused only under the same key: code, web/ pages and runners, packages, machine (study.cache.keys)
    step = Step.of(out, "browser-test", [__name__], {"profile": profile.name, "batch": batch,
                                                    "page": str(page)}, extra={"web": web_sources()})
    if step.state() == "foreign":
        if table_path.exists() and progress:
            print(f"[browser-test] earlier rows in {out} not reused ({step.reason()}): measuring again", flush=True)
        table_path.unlink(missing_ok=True)
        conv_path.unlink(missing_ok=True)
    step.start()
    table = _read_table(table_path, TABLE_X_COLUMNS)
    conversions = _read_table(conv_path, CONVERSION_COLUMNS)
    done = set() if redo else set(zip(table["model"], table["backend"]))
    jobs = []
    for i, model in enumerate(found, 1):
        previous = conversions[conversions["model"] == model.name]
        fresh = (not previous.empty and "fingerprint" in previous
                 and str(previous["fingerprint"].iloc[-1]) == model.fingerprint())
        # rows of an earlier version of this model (a new sweep) are redone
        todo = [b for b in backends if redo or not fresh or (model.name, b) not in done]
        if todo:
            reconvert = (redo or not fresh or previous["status"].iloc[-1] != "ok"
                         or not _converted(converted_path(out, model)))
            jobs.append(MemberTest(model, out, tuple(todo), reconvert, limits, Path(page), batch,
                                   f"{i}/{len(found)}", progress))
    for job, conv, rows in _tested(jobs, executor):
        if conv is not None:
            conversions = pd.concat([conversions[conversions["model"] != job.model.name],
                                     pd.DataFrame([conv.row()])], ignore_index=True)
            files.write_csv(conv_path, conversions)
        keys = {(job.model.name, b) for b in job.backends}
        keep = [k not in keys for k in zip(table["model"], table["backend"])]
        table = pd.concat([table[keep], pd.DataFrame(rows, columns=list(TABLE_X_COLUMNS))], ignore_index=True)
        files.write_csv(table_path, table[list(TABLE_X_COLUMNS)])  # after every model: a crash loses nothing
    step.finish()
    return read_table_x(table_path)


@dataclasses.dataclass
class TableX:
    """Our Table X (`ours`: one backend), every row run (`table`), the conversions, and the latency members."""

    table: Any
    ours: Any
    conversion: Any
    latency_members: list[str]


def latency_members_for(profile: config.Profile, given: int = 0) -> int:
    """How many of the smallest TF.js models the latency comparison runs on: `given`, or 0 for the profile's."""
    if given < 0:
        raise StudyError(f"latency_members must be 0 (the profile's: {profile.latency_members}) or more, not {given}")
    return given or profile.latency_members


def table_x_and_latency_runs(models: str | Path, out: str | Path, *, profile: config.Profile,
                             backend: str = "wasm", latency_backends: tuple[str, ...] = BACKENDS,
                             latency_members: int = 0, executor=None) -> TableX:
    """Table X on `backend` for every member, then `latency_backends` on the `latency_members` smallest TF.js
    models (by converted size; 0: the profile's number, `latency_members_for`) for the latency comparison, beside
    which the smallest ONNX model (a PyTorch member) is compared on its Table X row; both resumable in `out`. With
    `executor` (a `RayExecutor`, closed at the end) the members run on its cluster, one per node."""
    latency_members = latency_members_for(profile, latency_members)
    try:
        table = browser_test(models, out, profile=profile, backends=(backend,), executor=executor)
        conversion = _read_table(Path(out) / "conversion.csv", CONVERSION_COLUMNS)
        ok = conversion[conversion["status"] == "ok"].sort_values("size_mb")
        formats = ok["format"].fillna(RUNTIMES["tf"].format)  # tables from before the column: TF.js only
        small = ok[formats == RUNTIMES["tf"].format]["model"].head(latency_members).tolist()
        if small:
            table = browser_test(models, out, profile=profile, backends=tuple(latency_backends), members=small,
                                 executor=executor)
    finally:
        if executor is not None:
            executor.close()
    small += ok[formats == RUNTIMES["torch"].format]["model"].head(1).tolist()
    return TableX(table, table[table["backend"] == backend].reset_index(drop=True), conversion, small)


def read_table_x(path: str | Path):
    """Our Table X as written by `browser_test`."""
    import pandas as pd

    df = pd.read_csv(path)
    missing = [c for c in TABLE_X_COLUMNS if c not in df.columns and c not in OPTIONAL_X_COLUMNS]
    if missing:
        raise StudyError(f"{path} is not a browser-test table (missing {', '.join(missing)}); rerun browser-test")
    return df


def default_out(profile: config.Profile) -> Path:  # notebook 05's (and `make reproduce`'s) results/browser/<profile>
    return config.results_dir() / "browser" / profile.name


def sweep_models(profile: config.Profile, models: str | Path | None = None) -> Path:
    """The fine-tuned models to test: `models` (a sweep's --out DIR), else the profile's sweep of notebook 04
    (`study.casestudy.finetune.default_out`, results/finetune/<profile>); when that has none, a profile with
    `stand_ins` (smoke) builds `tiny_classifiers` (seconds) and the others run the fine-tuning sweep there first."""
    path = Path(models) if models else finetune.default_out(profile)
    try:
        models_root(path)
        return path
    except StudyError:
        if models:
            raise
    if profile.stand_ins:
        return tiny_classifiers(config.cache_dir() / f"browser-{profile.name}-models", profile)
    finetune.sweep(path, profile)
    return path
