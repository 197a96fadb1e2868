"""RQ1 measured: export real models to every deployment scenario of Tables IV-V and prove each one runs.

`data/deployment_scenarios.csv` is the current (2026) scenario table: one row per format, with its lifecycle
status and a source. For every row that can run here, the framework module (`study.deployment.backend_tf`,
`study.deployment.backend_torch`) exports the reference model, and a *fresh process* of the format's own runtime
(Python worker, Node.js, headless Chromium, or a Flask server on 127.0.0.1) reloads it and runs the same images. Each row gets:
export seconds, size on disk, load ms, batch-1 latency (median, p90; warm-up, 1 thread), peak RSS of the
runtime process, max |difference| vs the reference output and top-1 agreement, and whether a non-quantised format
is faithful under the one rule (`study.deployment.faithful`: within K x the reference's own noise floor, measured
once per framework by the backend's `noise_floor`; `faithful_fixed` beside it: the paper-comparable fixed gate).

    python -m study deploy --framework {tf,torch,all} [--quick] --csv FILE|-

A failing or stuck exporter/runtime gives a row with ok=False and the error; the run goes on. Rows are
appended to `<work>/rows.jsonl` as they finish, so a killed run keeps what it measured (`--resume`).

On a Ray cluster (`executor`, `deploy --cluster HOST:PORT`, notebook 01's `cluster`) each framework's formats are
split into parts (`matrix_parts`: as many per framework as the cluster has measuring nodes per framework), each a
task that holds a whole node (its latencies and load times are measured) and builds its framework's reference there
(seeded: the same on every node); every row names the node that measured it (`node`, as the local run's rows do).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import config, files
from study.casestudy.cluster import after_lost, this_node
from study.cache.keys import web_sources
from study.cache.step import Step
from study.deployment import faithful
from study.deployment.backend import get_backend, size_mb
from study.deployment.scenarios import (FRAMEWORKS, SCENARIOS_CSV, _framework_name, check_formats, runnable,
                                        scenarios)
from study.deployment.worker import _tail, run_export, runtime_pool
from study.errors import ResumeWarning, Skipped, StudyError
from study.report import and_list

# The CLI's columns, in this order; more measurements follow them.
COLUMNS = ["framework", "scenario_group", "format", "runtime", "status", "ok", "size_mb", "load_ms", "latency_ms",
           "max_abs_diff", "top1_agreement", "error"]
EXTRA_COLUMNS = ["latency_p90_ms", "export_s", "peak_rss_mb", "rel_diff", "min_cosine", "images", "model", "quantised",
                 "runtime_process", "warnings", "faithful", "faithful_fixed", "noise_floor", "tolerance", "rel_tolerance",
                 "tolerance_source", "node", "measure_s"]


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
    faithful: bool | None = None  # the one rule (study.deployment.faithful); None when nothing ran
    faithful_fixed: bool | None = None  # the paper-comparable fixed gate, beside it
    noise_floor: float | None = None  # the reference's, absolute
    tolerance: float | None = None  # absolute
    rel_tolerance: float | None = None  # relative to max |ref|, comparable with rel_diff
    tolerance_source: str = ""
    node: str = ""  # the machine (and Ray node) that measured it (`cluster.this_node`)
    measure_s: float | None = None  # the row's wall time: export, runtime process, judgement (`study plan`'s cost)


def fidelity(reference: np.ndarray, outputs: np.ndarray, floor=None) -> dict[str, Any]:
    """max |out - ref|, the same relative to max |ref|, the share of images whose argmax agrees, the smallest
    cosine, and the one rule's verdict at the reference's noise `floor` (`faithful.judge`)."""
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    outputs = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if reference.shape != outputs.shape:
        raise StudyError(f"deployed model returned shape {outputs.shape}, the reference {reference.shape}")
    j = faithful.judge(reference, outputs, floor)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(outputs, axis=1)
    cosine = float(np.min(np.sum(reference * outputs, axis=1) / np.where(norms > 0, norms, 1.0)))
    return {"max_abs_diff": j.max_abs_diff, "rel_diff": j.rel_diff, "top1_agreement": j.top1_agreement,
            "min_cosine": cosine, "rel_tolerance": j.rel_tolerance, "judgement": j, **j.fields()}


def reference_floor(backend, reference, work: Path):
    """The matrix reference's noise floor (`backend.noise_floor`), or why it was not measured (then the fixed gate
    judges its rows)."""
    try:
        return backend.noise_floor(reference, work)
    except Exception as exc:  # noqa: BLE001 - the rows are still measured; they say why they have no floor
        if os.environ.get("STUDY_DEBUG"):
            traceback.print_exc()
        return f"noise floor not measured: {type(exc).__name__}: {str(exc)[:200]}"


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




def measure_framework(framework: str, settings: Settings, work: Path, formats: list[str] | None = None,
                      done: set[str] = frozenset(), on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Export the framework's reference model to each scenario format, run each in its runtime, compare."""
    table = scenarios(framework)
    wanted = check_formats(formats, framework) if formats else list(table["format"])
    rows: list[Row] = []
    backend = None
    reference = floor = None
    for _, sc in table[table["format"].isin(wanted) & ~table["format"].isin(done)].iterrows():
        row = Row(framework=sc["framework"], scenario_group=sc["scenario_group"], format=sc["format"],
                  runtime=sc["runtime"], status=sc["status"])
        if not runnable(sc):
            row.error = f"not runnable here: {str(sc['runnable_here']).removeprefix('no: ')}"
        else:
            try:
                if backend is None:
                    backend = get_backend(framework)
                    reference = backend.reference(settings.quick, work)
                    np.save(work / "reference_outputs.npy", reference.outputs)
                    floor = reference_floor(backend, reference, work)
                t0 = time.perf_counter()
                _measure_row(row, backend, reference, settings, work, floor)
                row.measure_s = time.perf_counter() - t0
            except Skipped as exc:
                row.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a failing exporter is a row, not the end of the run
                row.ok = False
                row.error = _tail(f"{type(exc).__name__}: {exc}", 800)
                if os.environ.get("STUDY_DEBUG"):
                    traceback.print_exc()
        if reference is not None:
            row.model = reference.model_name
        row.node = this_node()
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def _measure_row(row: Row, backend, reference, settings: Settings, work: Path, floor=None) -> None:
    import warnings

    fmt = row.format
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        export = backend.export(fmt, reference, work, settings.quick)
        row.export_s = time.perf_counter() - t0
    row.warnings = _strip_ansi("; ".join(sorted({f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
                                            for w in caught if _relevant_warning(w)})))[:400]
    if getattr(export, "note", ""):
        row.warnings = "; ".join(w for w in (_strip_ansi(export.note), row.warnings) if w)
    row.size_mb = size_mb(export.path)
    row.quantised = export.quantised
    x = reference.images
    result = run_export(fmt, export, x, work, warmup=settings.warmup, repeats=settings.repeats,
                        timeout=settings.timeout)
    fid = fidelity(reference.outputs, result.outputs, floor)
    row.load_ms = result.load_ms
    row.latency_ms = statistics.median(result.latencies_ms)
    row.latency_p90_ms = float(np.percentile(result.latencies_ms, 90))
    row.peak_rss_mb = result.peak_rss_mb
    row.runtime_process = result.process
    row.images = len(x)
    for name in ("max_abs_diff", "rel_diff", "top1_agreement", "min_cosine", "faithful", "faithful_fixed", "noise_floor",
                 "tolerance", "rel_tolerance", "tolerance_source"):
        setattr(row, name, fid[name])
    row.ok = bool(export.quantised or fid["faithful"])  # a quantised format reports what it reaches
    if not row.ok:
        row.error = f"deployed output differs from the reference: {fid['judgement'].reason()}"


# Deprecations of the Python ecosystem itself, not of a deployment path.
_IRRELEVANT_WARNINGS = ("files() instead", "pkg_resources", "datetime.datetime.utcnow")


def _relevant_warning(w) -> bool:
    text = str(w.message)
    return ((issubclass(w.category, (DeprecationWarning, FutureWarning)) or "deprecat" in text.lower())
            and not any(s in text for s in _IRRELEVANT_WARNINGS))


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    df = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS + EXTRA_COLUMNS)
    df.attrs["source"] = "measured by study.deployment.matrix (python -m study deploy)"
    return df


def default_work_dir(quick: bool) -> Path:
    return config.cache_dir() / "deploy" / ("quick" if quick else "full")


def run_matrix(framework: str = "all", quick: bool = False, work: str | Path | None = None,
               formats: list[str] | None = None, resume: bool = False, progress: bool = False,
               reuse: bool = False, executor=None) -> pd.DataFrame:
    """The measured deployment matrix for 'tf', 'torch' or 'all' (one row per scenario format).

    `resume` keeps the rows of an interrupted run; `reuse` also returns a finished run's rows without measuring.
    Both only when those rows were made under the current key (`study.cache.step.Step`). `executor` (a
    `study.casestudy.ray_executor.RayExecutor`): the rows measured on its cluster, a part per node-holding task
    (`matrix_parts`); closed at the end."""
    try:
        return _run_matrix(framework, quick, work, formats, resume, progress, reuse, executor)
    finally:
        if executor is not None:
            executor.close()


def _run_matrix(framework, quick, work, formats, resume, progress, reuse, executor) -> pd.DataFrame:
    frameworks = list(FRAMEWORKS) if framework == "all" else [framework]
    for f in frameworks:
        _framework_name(f)
    if formats:
        check_formats(formats, framework)
    work = files.ensure_writable_dir(Path(work) if work else default_work_dir(quick))
    log = work / "rows.jsonl"
    # rows are keyed by the code, packages and machine that measured them (study.cache.keys): another key, re-measure
    step = Step.of(work, "deployment-matrix", [__name__], {"framework": framework, "quick": quick,
                   "formats": sorted(formats or [])}, inputs=[SCENARIOS_CSV], extra={"web": web_sources()})
    state = step.state()

    if reuse and state == "done" and log.exists():
        return _ordered_frame(_finished_rows(log))
    if resume and state == "foreign" and log.exists():
        print(f"[deploy] not resuming: {step.reason()}; measuring again", file=sys.stderr, flush=True)
    resume = (resume or reuse) and state != "foreign"
    previous = _finished_rows(log) if resume and log.exists() else []
    if not resume:
        log.unlink(missing_ok=True)
    step.start()
    settings = Settings.of(quick)
    rows = list(previous)

    def record(row: Row) -> None:
        with open(log, "a") as fh:  # one line per finished row: a killed run keeps what it measured
            fh.write(json.dumps(asdict(row), default=float) + "\n")
        if progress:
            state = "ok  " if row.ok else "FAIL"
            print(f"[deploy] {state} {row.framework:10s} {row.format:26s} "
                  f"{'' if row.ok else row.error[:110]}", file=sys.stderr, flush=True)

    subs = {}
    for f in frameworks:
        subs[f] = work / f
        if not resume and subs[f].exists():  # artefacts of an earlier run must not stand in for this run's
            shutil.rmtree(subs[f])
        subs[f].mkdir(parents=True, exist_ok=True)
    wanted = {f: [x for x in (formats or []) if x in set(scenarios(f)["format"])] or list(scenarios(f)["format"])
              for f in frameworks}
    done = {r.format for r in previous}
    if executor is None:
        with runtime_pool(work):  # Python rows fork from one process per runtime (study.deployment.worker)
            for f in frameworks:
                rows += measure_framework(f, settings, subs[f], wanted[f], done=done, on_row=record)
    else:
        parts = matrix_parts(wanted, done, subs, settings, nodes=len(executor.nodes))
        for _, part_rows, history in executor.each(measure_part, parts, part_key, what="deploy"):
            for row in part_rows:
                row.node += after_lost(history)
                record(row)
                rows.append(row)
    step.finish()
    return _ordered_frame(rows)


@dataclass(frozen=True)
class Part:
    """Some formats of one framework, measured together in one node-holding task (one reference built for them)."""

    framework: str
    formats: tuple[str, ...]
    index: int
    work: str  # the framework's folder (one part) or a part folder in it (several)
    settings: Settings


def matrix_parts(wanted: dict[str, list[str]], done: set[str], subs: dict[str, Path], settings: Settings,
                 nodes: int) -> list[Part]:
    """Each framework's formats not yet done, dealt round-robin into `nodes // frameworks` parts (at least one, at
    most one per format): on a cluster of N measuring nodes the parts fill them, and every part builds its
    framework's reference once (a part per format would build it once per format)."""
    per_framework = max(1, nodes // max(1, len(wanted)))
    parts = []
    for framework, formats in wanted.items():
        todo = [f for f in formats if f not in done]
        n = min(per_framework, len(todo))
        for i in range(n):
            work = subs[framework] if n == 1 else subs[framework] / f"part{i}"
            parts.append(Part(framework, tuple(todo[i::n]), i, str(work), settings))
    return parts


def part_key(part: Part) -> str:
    return f"deploy/{part.framework}/part{part.index}"


def measure_part(part: Part) -> list[Row]:
    """One part's rows, measured on the node its Ray task holds (`RayExecutor.each`)."""
    work = Path(part.work)
    work.mkdir(parents=True, exist_ok=True)
    with runtime_pool(work):
        return measure_framework(part.framework, part.settings, work, list(part.formats))


def _ordered_frame(rows: list[Row]) -> pd.DataFrame:
    order = {fmt: i for i, fmt in enumerate(scenarios()["format"])}
    return rows_frame(sorted(rows, key=lambda r: order.get(r.format, len(order))))


def _finished_rows(log: Path) -> list[Row]:
    """The rows a previous run appended to `log`; a line cut by a kill mid-write is dropped (that row is redone)."""
    rows = []
    for i, line in enumerate(log.read_text().splitlines() if log.exists() else [], 1):
        if not line.strip():
            continue
        try:
            rows.append(Row(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            warnings.warn(f"{log} line {i} is damaged ({type(exc).__name__}); that row is redone", ResumeWarning,
                          stacklevel=2)
    return rows


def matrix_for_profile(profile: config.Profile, work: str | Path | None = None, executor=None) -> pd.DataFrame:
    """The matrix a notebook shows: the profile's `matrix_formats` on the quick path (smoke: a few of each
    framework), or every format when it names none (embedded, paper).

    The deployment matrix needs no online input (the models are built or shipped locally), so `paper` measures
    the same as `embedded`. A finished matrix measured under the same key (code, packages, machine) is reused.
    `executor`: on a Ray cluster (`run_matrix`).
    """
    formats = list(profile.matrix_formats)
    if formats:
        return run_matrix("all", quick=True, work=work, formats=formats, reuse=True, executor=executor)
    return run_matrix("all", quick=False, work=work, reuse=True, executor=executor)


NOT_RUN = ("not runnable here", "skipped")  # how `measure_framework` words the rows it deliberately did not run


def failed(df: pd.DataFrame) -> pd.Series:
    """Rows whose export or run failed (the error is recorded), as opposed to ok rows and rows not run on purpose."""
    return ~df["ok"].astype(bool) & ~df["error"].fillna("").astype(str).str.startswith(NOT_RUN)



def tolerance_text() -> str:
    """The fidelity criterion of a non-quantised format, as a notebook prints it."""
    return f"non-quantised formats must be {faithful.describe()}"


def fidelity_reading(df: pd.DataFrame) -> str:
    """What the measured matrix says about fidelity: the non-quantised formats under the one rule, what the
    quantised ones reach and at what size, and which rows failed (with the start of their error)."""
    ran = df[df["latency_ms"].notna()]
    plain, quant = ran[~ran["quantised"].astype(bool)], ran[ran["quantised"].astype(bool)]
    within = plain[plain["faithful"].fillna(False).astype(bool)]
    parts = []
    if len(plain):
        parts.append(f"{len(within)} of the {len(plain)} non-quantised formats that ran compute the reference function "
                     f"(largest relative difference {plain['rel_diff'].max():.1e} against a relative tolerance of "
                     f"{_span(plain['rel_tolerance'])}; lowest top-1 agreement {plain['top1_agreement'].min():.0%})")
    if len(quant):
        float_mb = plain.groupby("framework")["size_mb"].median()
        parts.append("the quantised ones reach " + "; ".join(
            f"{r.format} a relative difference of {r.rel_diff:.1e} and {r.top1_agreement:.0%} top-1 agreement at "
            f"{r.size_mb:.3g} MB" + (f" ({r.size_mb / float_mb[r.framework]:.0%} of the median non-quantised size "
                                     f"of its framework)" if float_mb.get(r.framework, 0) > 0 else "")
            for r in quant.itertuples()))
    text = ("; ".join(parts) or "no format ran") + "."
    bad = df[failed(df)]
    if len(bad):
        text += " Failed (the row keeps its error): " + and_list(
            f"{r.format} ({str(r.error).splitlines()[0][:120]})" for r in bad.itertuples()) + "."
    skipped = df[~df["ok"].astype(bool) & ~failed(df)]
    if len(skipped):
        text += f" Not run on purpose: {and_list(skipped['format'])}."
    return text


def _span(values: pd.Series) -> str:
    """'1.2e-06' or '1.2e-06 to 3.4e-05' (K x each framework's noise floor, relative), or 'none measured'."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "none measured (the fixed gate judged)"
    return f"{v.min():.1e}" if f"{v.min():.1e}" == f"{v.max():.1e}" else f"{v.min():.1e} to {v.max():.1e}"
