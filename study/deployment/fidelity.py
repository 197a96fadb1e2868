"""RQ1 meets the case study: what each deployment format does to every fine-tuned member of a sweep.

For every fine-tuned classifier of a sweep's output folder (`models/<member>/{saved_model/ | model.pt, meta.json}`),
RQ1's backends (`study.deployment.backend_tf` / `backend_torch`) export it to each format that runs here for its
framework, and RQ1's runtime processes (`study.deployment.worker`: a fresh Python worker, Node.js, headless
Chromium) reload it and run the member's **test split** at batch 1. Per member x format:

    max |out - ref| and the same relative to max |ref|, top-1 agreement, accuracy before / after,
    size on disk, load time, p50 / p90 latency (warm-up excluded), export seconds

Status `faithful` under the one rule (`study.deployment.faithful`): outputs within K x the reference's own noise
floor and every test image keeps its top-1 class (`status_fixed` beside it: the paper-comparable fixed gate);
otherwise the failure class after Jajal et al.'s converter-failure study
(arXiv 2303.17708): `conversion_crash`, `unsupported_op` (the crash names an operator the target lacks),
`runtime_crash` (the converted model does not load or run), `wrong_output` (runs, outputs differ, accuracy kept)
or `accuracy_drop` (runs, test accuracy lower) - with the error text.

    python -m study deploy --sweep DIR [--formats ...] [--members ...] --csv FILE|-

Rows are appended to `<work>/rows.jsonl` as they finish; each records its key (model fingerprint + format +
code version + timing settings) and is reused only while that key holds, so a changed model is re-measured.

Each row also carries the reference's own noise floor and the tolerance derived from it (`tolerance_source` says
when the floor could not be measured and the fixed gate judged instead); rows not faithful are localised
(`study.deployment.localise`: the first divergent layer, its failure class, the per-layer curve in
`<work>/layer_divergence.csv`) after every member is measured, all of them or the worst per format
(`Settings.localise`).

On a Ray cluster (`executor=RayExecutor(address=...)`: `deploy --sweep DIR --cluster HOST:PORT`, notebook 09's
`cluster`) each member is one task that holds a whole node (its latencies are measured) and every row names the node
that measured it (`node`, as Table IX's); the rows come back to the driver, which records them as a local run does.
Every node must read the sweep's folder and the fidelity work folder at the same path (docs/cluster.md).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from study import config, failpoints, files
from study.casestudy import dataset
from study.casestudy.browser import find_models
from study.casestudy.cluster import after_lost, this_node
from study.casestudy.training import load_torch_classifier
from study.deployment import faithful, localise
from study.deployment.backend import Export, get_backend, size_mb
from study.deployment.backend_torch import to_nchw
from study.deployment.intermediates import TFGraph
from study.deployment.localise import CURVE_COLUMNS, POLICIES, worst_images
from study.deployment.worker import _tail, run_export, runtime_pool
from study.errors import Skipped, StudyError
from study.profiles import FidelitySettings
from study.runtime.images import load_images

CODE_VERSION = 3  # bump when a measurement or its judgement changes: every recorded row is then recomputed
CALIBRATION_IMAGES = 32  # full-integer quantisation is calibrated on this many *training* images

# The formats each framework's fine-tuned classifiers are measured in (the SavedModel / torch module reload first:
# the baseline), all of which run here. `tfjs_graph_model_browser` starts Chromium: only the first
# `browser_members` TF members get it.
FORMATS: dict[str, tuple[str, ...]] = {
    "tf": ("saved_model", "tfjs_graph_model_node", "tfjs_graph_model_browser", "litert_float32",
           "litert_dynamic_int8", "litert_full_int8"),
    "torch": ("torch_export", "onnx", "onnx_int8", "onnx_web_node"),
}
BASELINE = {"tf": "saved_model", "torch": "torch_export"}
BROWSER_FORMATS = ("tfjs_graph_model_browser",)
STATUSES = ("faithful", "conversion_crash", "unsupported_op", "runtime_crash", "wrong_output", "accuracy_drop",
            "skipped")
COLUMNS = ["member", "framework", "format", "status", "faithful", "status_fixed", "faithful_fixed", "max_abs_diff",
           "rel_diff", "top1_agreement",
           "accuracy_before", "accuracy_after", "size_mb", "original_size_mb", "load_ms", "latency_p50_ms",
           "latency_p90_ms", "export_s", "measure_s", "images", "quantised", "runtime_process", "noise_floor", "tolerance",
           "tolerance_source", "first_divergence", "first_divergence_index", "divergence_before", "divergence_after",
           "failure_class", "localisation", "localise_s", "error", "node", "fingerprint", "key"]

# What a converter or runtime says when the target lacks an operator (TFLite, TF.js, ONNX, torch.export).
_UNSUPPORTED = re.compile(r"unsupported op|not supported|is not supported|no (?:kernel|implementation|registered)|"
                          r"op(?:eration)?s? (?:are|is) not|could not find .*op|unknown op|Unsupported Ops", re.I)


@dataclass(frozen=True)
class Settings(FidelitySettings):
    """Timing repeats, the runtime processes' timeout and the localisation policy (fields and defaults:
    `study.profiles.FidelitySettings`; per profile: `profile.fidelity`)."""

    @classmethod
    def of(cls, profile: config.Profile, localise: str | None = None) -> Settings:
        """The profile's settings (`profile.fidelity`); `localise` (or STUDY_LOCALISE) overrides its policy."""
        values = dataclasses.asdict(profile.fidelity)
        policy = localise or os.environ.get("STUDY_LOCALISE") or values["localise"]

        if policy not in POLICIES:
            raise StudyError(f"unknown localisation policy {policy!r}; valid: {', '.join(POLICIES)}")
        return cls(**{**values, "localise": policy})



# --- what a row is keyed on -----------------------------------------------------------------------------------

def model_fingerprint(model) -> str:
    """Identifies one fine-tuned model exactly (`browser.TunedModel`; torch: model.pt and meta.json)."""
    if model.backend == "tf":
        return model.fingerprint()
    h = hashlib.sha256()
    for part in (model.folder / "model.pt", model.folder / "meta.json"):
        h.update(files.sha256(part).encode() if part.is_file() else b"-")
    return h.hexdigest()[:16]


def cell_key(fingerprint: str, fmt: str, settings: Settings) -> str:
    """The key a row is made under: the model, the format, this code's version and the timing settings."""
    text = json.dumps({"model": fingerprint, "format": fmt, "code": CODE_VERSION, "warmup": settings.warmup,
                       "repeats": settings.repeats}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the judgement --------------------------------------------------------------------------------------------

CRASHED = ("conversion_crash", "runtime_crash", "unsupported_op")  # failed runs (exit 1); the rest are findings


def crash_class(stage: str, exc: BaseException) -> str:
    """`conversion_crash` / `runtime_crash`, or `unsupported_op` when the message names a missing operator."""
    if _UNSUPPORTED.search(str(exc)):
        return "unsupported_op"
    return "conversion_crash" if stage == "export" else "runtime_crash"


def judge(reference: np.ndarray, outputs: np.ndarray, labels: np.ndarray, floor=None) -> dict[str, Any]:
    """Compare a deployed model's outputs with the original's on the same test images under the one rule
    (`faithful.judge` at the reference's noise `floor`; without one, the fixed gate judges and the row says so)."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if ref.shape != out.shape:
        error = f"deployed model returned shape {out.shape}, the original {ref.shape}"
        return {"status": "wrong_output", "status_fixed": "wrong_output", "faithful": False, "faithful_fixed": False,
                "error": error}
    j = faithful.judge(ref, out, floor)
    before = float(np.mean(ref.argmax(1) == labels)) if len(ref) else math.nan
    after = float(np.mean(out.argmax(1) == labels)) if len(ref) else math.nan
    row = {"max_abs_diff": j.max_abs_diff, "rel_diff": j.rel_diff, "top1_agreement": j.top1_agreement,
           "accuracy_before": before, "accuracy_after": after, "error": "", **j.fields()}
    failed = "accuracy_drop" if after < before else "wrong_output"
    row["status"] = "faithful" if j.faithful else failed
    row["status_fixed"] = "faithful" if j.faithful_fixed else failed
    if not j.faithful:
        row["error"] = f"outputs differ from the original: {j.reason()}, accuracy {before:.1%} -> {after:.1%}"
    return row


# --- one member ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberJob:
    """One member's formats to measure: independent of every other member's (an executor may place it anywhere
    the sweep's folder and the dataset are readable)."""

    member: str
    folder: str  # models/<member>
    backend: str  # tf | torch
    formats: tuple[str, ...]
    keys: dict[str, str] = field(hash=False)
    fingerprint: str
    work: str
    settings: Settings
    profile: config.Profile


def _test_split(model) -> tuple[np.ndarray, np.ndarray]:
    paths = [p for p, _ in model.images]
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise StudyError(f"{model.folder}/meta.json lists test images that are gone (e.g. {missing[0]}); "
                         "rebuild the data (python -m study data synth) or rerun the sweep")
    return load_images(paths, model.input_size), np.array([label for _, label in model.images])


def calibration_images(model, profile: config.Profile, n: int = CALIBRATION_IMAGES) -> np.ndarray:
    """`n` training images of the split the member was fine-tuned on, spread over the classes (never test images):
    that of the profile its meta.json records (by name), else of `profile`."""
    meta = json.loads((model.folder / "meta.json").read_text())
    recorded = config.PROFILES[meta["profile"]] if meta.get("profile") else profile
    split = dataset.load_split(recorded, seed=int(meta.get("seed", 0)))
    train = split.train
    picked = [train[i] for i in np.linspace(0, len(train) - 1, min(n, len(train))).astype(int)]
    tested = {str(p) for p, _ in model.images}
    return load_images([p for p, _ in picked if str(p) not in tested], model.input_size)


def _reference(model, x: np.ndarray, calibration: np.ndarray, profile: config.Profile):
    backend = get_backend(model.backend)
    if model.backend == "tf":
        return backend, backend.classifier_reference(model.name, model.saved_model, x, calibration)

    module = load_torch_classifier(model.folder / "model.pt", profile)
    return backend, backend.classifier_reference(model.name, module, x, calibration)


def _noise_floor(model, ref, profile: config.Profile):
    """The reference's own noise floor on the test split (`localise.NoiseFloor`), or the error text."""
    try:
        if model.backend == "tf":
            return localise.floor_tf(TFGraph(model.saved_model), model.saved_model, ref.images)

        return localise.floor_torch(ref.module, lambda: load_torch_classifier(model.folder / "model.pt", profile),
                                    ref.images)
    except Exception as exc:  # noqa: BLE001 - the rows are still measured; they say why they have no floor
        if os.environ.get("STUDY_DEBUG"):
            traceback.print_exc()
        return f"noise floor not measured: {type(exc).__name__}: {str(exc)[:200]}"


def _finish(row: dict[str, Any], floor, fmt: str) -> dict[str, Any]:
    """The floor's fields and the node, and for a crash its failure class (nothing ran to localise)."""
    row["node"] = this_node()
    if isinstance(floor, str):
        row.setdefault("tolerance_source", f"fixed gate: {floor}")
    else:
        row.update(noise_floor=floor.value, tolerance=floor.tolerance, noise_scale=floor.scale,
                   noise_parts={k: float(v) for k, v in floor.parts.items()})
    row.setdefault("status_fixed", row["status"])  # a crash or a skip: no gate judged it
    row.setdefault("faithful_fixed", False)
    if row["status"] in localise.CRASH_CLASSES:
        row.update(localise.crash_fields(row))
    elif fmt in localise.NOT_INSPECTED and row["status"] not in ("faithful", ""):
        row["localisation"] = localise.NOT_INSPECTED[fmt]
    return row


def measure_member(job: MemberJob) -> Iterator[dict[str, Any]]:
    """Export one fine-tuned member to each of `job.formats`, run each in its runtime, judge it; yields each row as
    it is finished (the driver records it at once). Never raises for a failing format (that is a row); raises
    StudyError only for bad input (a missing model or test images)."""
    model = find_models(Path(job.folder).parent, [job.member])[0]
    work = Path(job.work)
    if work.exists():  # artefacts converted from an earlier model must not stand in for this one's
        shutil.rmtree(work)
    work.mkdir(parents=True)
    x, labels = _test_split(model)
    original = model.saved_model if model.backend == "tf" else model.folder / "model.pt"
    base = {"member": model.name, "framework": model.backend, "fingerprint": job.fingerprint,
            "original_size_mb": size_mb(original), "images": len(x)}
    backend, ref = _reference(model, x, calibration_images(model, job.profile), job.profile)
    floor = _noise_floor(model, ref, job.profile)
    for fmt in job.formats:
        row = {**base, "format": fmt, "key": job.keys[fmt], "status": "", "faithful": False, "error": ""}
        stage = "export"
        try:
            t0 = time.perf_counter()
            export = backend.export(fmt, ref, work, False)
            row["export_s"] = time.perf_counter() - t0
            row["size_mb"], row["quantised"] = size_mb(export.path), export.quantised
            row["artefact"], row["model_file"] = str(export.path), str(export.model_file or "")
            stage = "runtime"
            s = job.settings
            t0 = time.perf_counter()
            result = run_export(fmt, export, ref.images, work, warmup=s.warmup, repeats=s.repeats, timeout=s.timeout)
            row["measure_s"] = time.perf_counter() - t0  # the runtime process: start, load, test split, timing
            row.update(load_ms=result.load_ms, latency_p50_ms=statistics.median(result.latencies_ms),
                       latency_p90_ms=float(np.percentile(result.latencies_ms, 90)),
                       runtime_process=result.process, **judge(ref.outputs, result.outputs, labels, floor))

            row["worst_images"] = worst_images(ref.outputs, result.outputs)
        except Skipped as exc:
            row.update(status="skipped", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failing converter or runtime is a row, not the end of the run
            row.update(status=crash_class(stage, exc), error=_tail(f"{type(exc).__name__}: {exc}", 800))
            if os.environ.get("STUDY_DEBUG"):
                traceback.print_exc()
        yield _finish(row, floor, fmt)


# --- where a non-faithful row diverges (study.deployment.localise), after every member is measured -------------

def _artefact(row: dict[str, Any], model, x: np.ndarray, job: MemberJob):
    """The row's converted artefact as exported (re-exported when its folder was cleaned)."""
    path = Path(row.get("artefact") or "")
    if row.get("artefact") and path.exists():
        model_file = Path(row["model_file"]) if row.get("model_file") else None
        return Export(path, "", quantised=bool(row.get("quantised")), model_file=model_file)
    backend, ref = _reference(model, x, calibration_images(model, job.profile), job.profile)
    Path(job.work).mkdir(parents=True, exist_ok=True)
    return backend.export(row["format"], ref, Path(job.work), False)


def localise_member(job: MemberJob, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Localise each of one member's `rows`; yields each row with its localisation fields (the curve is written to
    `<work>/layers/<member>__<format>.csv`). A format nobody can inspect says so in the row."""
    model = find_models(Path(job.folder).parent, [job.member])[0]
    x, _ = _test_split(model)
    if model.backend == "tf":
        reference = {"framework": "tf", "graph": TFGraph(model.saved_model)}
        layout = x
    else:
        reference = {"framework": "torch", "module": load_torch_classifier(model.folder / "model.pt", job.profile)}
        layout = to_nchw(x)
    layers_dir = Path(job.work).parent / "layers"
    for row in rows:
        row = dict(row)
        try:
            export = _artefact(row, model, x, job)
            picked = row.get("worst_images") or list(range(min(localise.LOCALISE_IMAGES, len(x))))
            scale = float(row.get("noise_scale") or 0.0)
            output_floor = np.nan_to_num(float(row.get("noise_floor") or 0.0)) / scale if scale else 0.0
            fields, table = localise.localise(row["format"], export, reference, layout[picked], output_floor)
            row.update(fields)
            files.write_csv(layers_dir / f"{job.member}__{row['format']}.csv",
                            table.assign(member=job.member, format=row["format"])[localise.CURVE_COLUMNS])
        except StudyError as exc:
            row.update(localisation=f"not inspectable: {exc}", first_divergence="")
        except Exception as exc:  # noqa: BLE001 - a failing inspection is recorded, the sweep goes on
            row.update(localisation=_localise_failed(exc), first_divergence="")
        yield row


def _localise_failed(exc: BaseException) -> str:
    if os.environ.get("STUDY_DEBUG"):
        traceback.print_exc()
    return f"localisation failed: {type(exc).__name__}: {str(exc)[:300]}"


def layer_curves(work: str | Path, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-layer divergence curves of the localised rows under `work` (of `df`'s rows when given)."""
    parts = [pd.read_csv(p) for p in sorted((Path(work) / "layers").glob("*__*.csv"))]
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CURVE_COLUMNS)
    if df is not None:
        localised = df[pd.to_numeric(df["localise_s"], errors="coerce").notna()]
        keep = set(zip(localised["member"], localised["format"]))
        curves = curves[[(m, f) in keep for m, f in zip(curves["member"], curves["format"])]]
    return curves.reset_index(drop=True)


# --- the driver ----------------------------------------------------------------------------------------------

def default_work_dir(sweep: str | Path) -> Path:
    return Path(sweep) / "deploy_fidelity"


def read_rows(log: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest recorded row per (member, format) of `log` (unreadable lines are skipped: they are redone)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                row = json.loads(line)
                latest[(row["member"], row["format"])] = row
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return latest


def check_formats(formats: Sequence[str] | None) -> list[str] | None:
    if not formats:
        return None
    valid = [f for fmts in FORMATS.values() for f in fmts]
    unknown = [f for f in formats if f not in valid]
    if unknown:
        raise StudyError(f"no per-member fidelity for format(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return list(formats)


def plan(sweep: str | Path, formats: Sequence[str] | None = None, members: Sequence[str] | None = None,
         settings: Settings | None = None, work: str | Path | None = None, browser_members: int = 1, *,
         profile: config.Profile) -> list[MemberJob]:
    """Every member's job with its keyed formats (browser formats for the first `browser_members` TF members)."""
    wanted = check_formats(formats)
    settings = settings or Settings.of(profile)
    work = Path(work) if work else default_work_dir(sweep)
    jobs, n_tf = [], 0
    for model in find_models(sweep, list(members) if members else None):
        if model.backend not in FORMATS:
            raise StudyError(f"{model.folder}/meta.json: unknown backend {model.backend!r}; valid: {', '.join(FORMATS)}")
        fmts = [f for f in FORMATS[model.backend] if wanted is None or f in wanted]
        if model.backend == "tf":
            if n_tf >= browser_members:
                fmts = [f for f in fmts if f not in BROWSER_FORMATS]
            n_tf += 1
        if not fmts:
            continue
        fingerprint = model_fingerprint(model)
        jobs.append(MemberJob(model.name, str(model.folder), model.backend, tuple(fmts),
                              {f: cell_key(fingerprint, f, settings) for f in fmts}, fingerprint,
                              str(work / model.name), settings, profile))
    return jobs


def run_fidelity(sweep: str | Path, formats: Sequence[str] | None = None, members: Sequence[str] | None = None, *,
                 work: str | Path | None = None, profile: config.Profile, browser_members: int = 1,
                 settings: Settings | None = None, progress: bool = False,
                 measure: Callable[[MemberJob], Iterable[dict[str, Any]]] = measure_member,
                 executor=None) -> pd.DataFrame:
    """The per-member fidelity table of a sweep: recorded rows whose key still holds are reused, the rest measured
    (here, or with `executor`, a `study.casestudy.ray_executor.RayExecutor`, a member per node; closed at the end)."""
    try:
        return _run_fidelity(sweep, formats, members, work=work, profile=profile, browser_members=browser_members,
                             settings=settings, progress=progress, measure=measure, executor=executor)
    finally:
        if executor is not None:
            executor.close()


def _run_fidelity(sweep, formats, members, *, work, profile, browser_members, settings, progress, measure,
                  executor) -> pd.DataFrame:
    work = Path(work) if work else default_work_dir(sweep)
    jobs = plan(sweep, formats, members, settings, work, browser_members, profile=profile)  # bad input fails first
    if not jobs:
        raise StudyError(f"nothing to measure in {sweep}: no member has any of the formats {', '.join(formats or [])}")
    work = files.ensure_writable_dir(work)
    log = work / "rows.jsonl"
    recorded = read_rows(log)
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    with runtime_pool(work):  # Python rows fork from one process per runtime (study.deployment.worker)
        todo = []
        for job in jobs:
            fresh = [f for f in job.formats if recorded.get((job.member, f), {}).get("key") != job.keys[f]]
            rows.update({(job.member, f): recorded[(job.member, f)] for f in job.formats if f not in fresh})
            if fresh:
                todo.append(dataclasses.replace(job, formats=tuple(fresh)))
        for row in _measured(todo, measure, executor):
            with open(log, "a") as fh:  # one line per finished row: a killed run keeps what it measured
                fh.write(json.dumps(row, default=float) + "\n")
            failpoints.reached("fidelity.row-appended")
            rows[(row["member"], row["format"])] = row
            if progress:
                print(f"[deploy --sweep] {row['status']:16s} {row['member']:24s} {row['format']:26s} "
                      f"{row['error'][:90]}", file=sys.stderr, flush=True)
        _localise_rows(jobs, rows, log, settings or jobs[0].settings, progress)
    df = pd.DataFrame([rows[(j.member, f)] for j in jobs for f in j.formats if (j.member, f) in rows])
    df = df.reindex(columns=COLUMNS)
    for col in ("status_fixed", "tolerance_source", "first_divergence", "failure_class", "localisation", "node"):
        df[col] = df[col].astype(object).where(df[col].notna(), "")
    policy = (settings or jobs[0].settings).localise
    unexplained = ~df["status"].isin(["faithful", "", "skipped"]) & df["localisation"].eq("")
    df.loc[unexplained, "localisation"] = (f"not localised: --localise {policy}"
                                           + (" localises only the worst row per format" if policy == "worst" else ""))
    curves = layer_curves(work, df)
    files.write_csv(work / "layer_divergence.csv", curves)
    df.attrs["source"] = f"measured by study.deployment.fidelity (python -m study deploy --sweep {sweep})"
    df.attrs["layers"] = str(work / "layer_divergence.csv")
    return df


def _task_key(job: MemberJob) -> str:
    return f"fidelity/{job.member}"


def _measure_held(measure, job: MemberJob) -> list[dict[str, Any]]:
    """One member's rows, measured on the node its Ray task holds (`RayExecutor.each`)."""
    failpoints.reached("fidelity.on-node")
    with runtime_pool(Path(job.work).parent):
        return list(measure(job))


def _measured(jobs: Sequence[MemberJob], measure, executor) -> Iterator[dict[str, Any]]:
    """Each job's rows: one member after another here, or on the executor's cluster a task per member, its rows as
    it ends. A member lost with its node is measured again on another while the executor's retries last (its rows
    name the lost attempts); lost for good, it is one error once the other members' rows are recorded (a re-run
    measures only what is missing)."""
    if executor is None:
        for job in jobs:
            yield from measure(job)
        return
    for _, rows, history in executor.each(functools.partial(_measure_held, measure), jobs, _task_key,
                                          what="deploy --sweep"):
        for row in rows:
            row["node"] += after_lost(history)
            yield row


def _localise_rows(jobs: Sequence[MemberJob], rows: dict[tuple[str, str], dict[str, Any]], log: Path,
                   settings: Settings, progress: bool) -> None:
    """Localise the rows the policy picks (each recorded as a new line of `log`: a killed run resumes)."""
    chosen = localise.select(rows.values(), settings.localise, BASELINE.values())
    for job in jobs:
        mine = [r for r in chosen if r["member"] == job.member and r["format"] in job.formats]
        if not mine:
            continue
        for row in localise_member(job, mine):
            with open(log, "a") as fh:
                fh.write(json.dumps(row, default=float) + "\n")
            rows[(row["member"], row["format"])] = row
            if progress:
                print(f"[deploy --sweep] localised {row['member']:24s} {row['format']:26s} "
                      f"{row.get('failure_class', '')}: {row.get('first_divergence', '')[:60]}",
                      file=sys.stderr, flush=True)
