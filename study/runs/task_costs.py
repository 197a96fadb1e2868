"""Measured task costs, read from a run's records and scaled to a profile: the input of `study.runs.plan`.

A measured run (`make reproduce` / `study reproduce --profile P`) leaves each task's cost in its records:
each notebook's seconds (`<results>/reproduce/<notebook>.json`), each sweep run's `elapse_s`, `train_s` and the
worker's `features_s` (`finetune/<P>/runs/<member>/r<k>.json`, its `artifacts/result.json`; the repeated runs in
`finetune/<P>-repeats/`), each conversion's seconds and each browser run's start and `elapse_s`
(`browser/<P>/conversion.csv`, `runs/*.json`), each fidelity row's `export_s`, `load_ms`, `measure_s` and
`localise_s` (`finetune/<P>/deploy_fidelity/rows.jsonl`), each deployment-matrix row's `measure_s`
(`tables/rq1_deployment_matrix.csv`), each published version's fine-tuning and browser runs
(`rq3_versions/<member>/finetune/<version>/{sweep,browser}`). `plan_profile` turns them into the planned profile's
task kinds, each part scaled by what that profile changes (members' FLOPs and parameters from
`data/zoo_complexity.csv`, images, epochs and mode, cool-downs) with the assumption of each factor written beside
it. Notebooks 02, 03, 06, 07 and 10 have no task kinds here: their measured time carries over, serial.
"""
from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import config, paper
from study.assets import flowers, zoo
from study.casestudy import executors, noise_runs
from study.deployment import fidelity, fidelity_analysis, matrix, scenarios
from study.errors import StudyError
from study.protocol import PAPER
from study.releases import publish
from study.runs.plan import Factor, NotebookPlan, Part, Plan, TaskKind, serial_part

SWEEP_NB, BROWSER_NB, FIDELITY_NB = "04_case_study_finetuning", "05_case_study_browser", "09_rq1_fidelity_per_member"
MATRIX_NB, VERSIONS_NB = "01_rq1_deployment", "08_rq3_version_publishing"
FULL_PASSES = 3.0  # full fine-tuning: an epoch's forward + backward through the backbone ~ 3 forward passes
BROWSER_MEMBERS = 1  # notebook 09's default: TF members that also get TF.js in headless Chromium


@dataclass(frozen=True)
class SweepRun:
    member: str
    elapse_s: float
    train_s: float
    features_s: float
    cooldown_s: float  # both cool-downs of the run: 2 x cooldown_samples x interval
    epochs: int
    mode: str
    images: int  # train + validation + test
    n_test: int


@dataclass(frozen=True)
class BrowserRun:
    member: str
    started: float
    elapse_s: float
    n_images: int


@dataclass(frozen=True)
class Conversion:
    member: str
    seconds: float


@dataclass(frozen=True)
class FidelityRow:
    member: str
    format: str
    faithful: bool
    export_s: float
    load_s: float
    measure_s: float
    localise_s: float | None  # None: not localised
    images: int


@dataclass(frozen=True)
class MatrixRow:
    format: str
    seconds: float  # the row's wall time (`measure_s`; older runs: export + load + every timed pass, estimated)


@dataclass(frozen=True)
class VersionRun:
    sweep: SweepRun
    browser_s: float  # its TF.js conversion and browser runs (0: none)


@dataclass(frozen=True)
class Measured:
    """What one measured run of `profile` recorded (every list may be empty where that notebook did not run)."""

    profile: config.Profile
    results: Path
    notebook_s: dict[str, float]
    sweep: list[SweepRun]
    repeats: list[SweepRun]
    conversions: dict[str, float]  # member -> seconds
    browser: list[BrowserRun]
    fidelity: list[FidelityRow]
    cores: int
    source: dict[str, str]
    matrix: list[MatrixRow] = ()
    versions: list[VersionRun] = ()


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StudyError(f"{path}: unreadable record ({exc}); re-run the notebook that writes it") from exc


def missing_error(results: Path, name: str) -> StudyError:
    return StudyError(f"plan: no measured run of profile {name!r} in {results}/reproduce/ (each notebook's "
                      f"record, with its seconds): make one with `python -m study reproduce --profile {name}` "
                      f"(`make reproduce PROFILE={name}`), or name a results folder that has one with --results")


def recorded_profiles(results: Path) -> list[str]:
    """The profiles of the notebook records in `results`/reproduce/, the most notebooks first."""
    counts: dict[str, int] = {}
    for path in sorted((results / "reproduce").glob("*.json")):
        name = str(_json(path).get("parameters", {}).get("profile", ""))
        if name:
            counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda n: -counts[n])


def _sweep_runs(folder: Path) -> list[SweepRun]:
    runs = []
    for path in sorted(folder.glob("runs/*/r*.json")):
        rec = _json(path)
        if rec.get("status") != "ok":
            continue
        cfg = rec.get("config", {})
        result = path.with_suffix("") / "artifacts" / "result.json"
        worker = _json(result) if result.is_file() else {}
        timings = worker.get("timings", {})
        images = sum(int(worker.get(k, 0)) for k in ("n_train", "n_validation", "n_test"))
        runs.append(SweepRun(rec["member"], float(rec["elapse_s"]), float(rec.get("train_s") or 0),
                             float(timings.get("features_s") or 0),
                             2 * float(cfg["cooldown_samples"]) * float(cfg["interval"]), int(cfg["epochs"]),
                             str(cfg["mode"]), images, int(worker.get("n_test", 0))))
    return runs


def _browser_runs(folder: Path) -> list[BrowserRun]:
    runs = []
    for path in sorted(folder.glob("runs/*.json")):
        rec = _json(path)
        if rec.get("status") == "ok" and rec.get("started"):
            runs.append(BrowserRun(rec["model"], float(rec["started"]), float(rec["elapse_s"]), int(rec["n"])))
    return sorted(runs, key=lambda r: r.started)


def _fidelity_rows(path: Path) -> list[FidelityRow]:
    if not path.is_file():
        return []
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            last[(row["member"], row["format"])] = row  # a row appended again (localised) replaces the first
    return [FidelityRow(r["member"], r["format"], bool(r.get("faithful")), float(r.get("export_s") or 0),
                        float(r.get("load_ms") or 0) / 1000, float(r.get("measure_s") or 0),
                        None if r.get("localise_s") is None else float(r["localise_s"]), int(r.get("images") or 0))
            for r in last.values() if r.get("status") != "skipped"]


def _matrix_rows(table: Path, profile: config.Profile) -> list[MatrixRow]:
    """The matrix rows that ran (a runtime process was timed), with their wall time."""
    if not table.is_file():
        return []
    settings = matrix.Settings.of(quick=bool(profile.matrix_formats))
    rows = []
    with table.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if not r.get("latency_ms"):
                continue  # not run here (or failed before its runtime): no cost to plan
            seconds = r.get("measure_s") or ""
            if not seconds:  # a run before measure_s was recorded: export + load + the passes it timed
                seconds = (float(r.get("export_s") or 0) + float(r.get("load_ms") or 0) / 1000
                           + float(r["latency_ms"]) / 1000 * (settings.warmup + settings.repeats
                                                              + int(float(r.get("images") or 0))))
            rows.append(MatrixRow(r["format"], float(seconds)))
    return rows


def _version_runs(results: Path) -> list[VersionRun]:
    runs = []
    for folder in sorted(results.glob("rq3_versions/*/finetune/*")):
        browser = folder / "browser"
        conversion = browser / "conversion.csv"
        converted = 0.0
        if conversion.is_file():
            with conversion.open(encoding="utf-8") as f:
                converted = sum(float(r["seconds"]) for r in csv.DictReader(f) if r.get("status") == "ok")
        browser_s = converted + sum(b.elapse_s for b in _browser_runs(browser))
        runs += [VersionRun(run, browser_s) for run in _sweep_runs(folder / "sweep")]
    return runs


def _source(results: Path, finished: list[str]) -> dict[str, str]:
    snaps = sorted((results / "history").glob("*/snapshot.json"))
    info = _json(snaps[-1]) if snaps else {}
    machine = info.get("machine", {})
    host = f"{machine.get('cpu_model', '')}, {machine.get('cores', '')} cores" if machine else ""
    return {"results": str(results), "finished": max(finished)[:10] if finished else "",
            "commit": str(info.get("commit", ""))[:12], "host": host}


def measure(results: str | Path, profile: config.Profile) -> Measured:
    """The task costs a run of `profile` recorded in `results`; one error naming the command that makes them."""
    results = Path(results)
    records = [_json(p) for p in sorted((results / "reproduce").glob("*.json"))]
    records = [r for r in records if r.get("parameters", {}).get("profile") == profile.name]
    if not records:
        raise missing_error(results, profile.name)
    sweep_dir = results / "finetune" / profile.name
    first = sorted(sweep_dir.glob("runs/*/r*.json"))
    cores = int(_json(first[0]).get("node", {}).get("cores") or 0) if first else 0
    conversion = results / "browser" / profile.name / "conversion.csv"
    conversions: dict[str, float] = {}
    if conversion.is_file():
        with conversion.open(encoding="utf-8") as f:
            conversions = {r["model"]: float(r["seconds"]) for r in csv.DictReader(f) if r.get("status") == "ok"}
    return Measured(
        profile=profile, results=results, notebook_s={str(r["notebook"]): float(r["seconds"]) for r in records},
        sweep=_sweep_runs(sweep_dir), repeats=_sweep_runs(sweep_dir.with_name(f"{profile.name}-repeats")),
        conversions=conversions, browser=_browser_runs(results / "browser" / profile.name),
        fidelity=_fidelity_rows(sweep_dir / "deploy_fidelity" / "rows.jsonl"), cores=cores,
        source=_source(results, [str(r.get("finished", "")) for r in records]),
        matrix=_matrix_rows(results / "tables" / "rq1_deployment_matrix.csv", profile),
        versions=_version_runs(results))


# --- scaled to the planned profile ---------------------------------------------------------------------------
def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _complexity(column: str) -> dict[str, float]:
    cat = zoo.catalog()
    return {str(n): float(v) for n, v in zip(cat["name"], cat[column]) if v == v}  # NaN: not measured


def known(items: list[Any], column: str) -> list[Any]:
    """The measured items (each with a `.member`) whose member's `column` is known: the ones a part scaled by it
    averages over (all of them when none is known: then the factor is 1)."""
    names = _complexity(column)
    return [x for x in items if x.member in names] or items


def member_factor(name: str, column: str, planned: list[str], measured: list[str]) -> Factor:
    """planned / measured mean of a member property (FLOPs per image, parameters) over the members each runs."""
    known = _complexity(column)
    p = [known[m] for m in planned if m in known]
    m = [known[x] for x in dict.fromkeys(measured) if x in known]
    if not p or not m:
        return Factor(name, 1.0, f"{column} unknown for the planned or the measured members: not scaled")
    return Factor(name, _mean(p) / _mean(m), f"cost grows with {column} (data/zoo_complexity.csv): mean "
                  f"{_mean(p):.3g} over the {len(p)} planned members / {_mean(m):.3g} over the {len(m)} measured")


def planned_images(profile: config.Profile) -> tuple[int, int]:
    """(all images, test images) the profile fine-tunes and tests on: its synthetic set, or Flower Photos."""
    if profile.synth is None:
        split = paper.flower_split()
        return int(split["total"].sum()), int(split["testing"].sum())
    spec = flowers.synth_spec(profile)
    n = len(flowers.CLASS_NAMES)
    return spec.per_class * n, n * int(spec.per_class * PAPER.testing_fraction)


def _ratio(name: str, planned: float, measured: float, what: str) -> Factor:
    if measured <= 0:
        return Factor(name, 1.0, f"{what}: not recorded in the measured run; not scaled")
    return Factor(name, planned / measured, f"{what}: {planned:.4g} planned / {measured:.4g} measured")


def _sweep_kind(runs: list[SweepRun], target: config.Profile, units: int, cooldown_s: float, name: str,
                flops: Factor, units_assumption: str, notebook: str = SWEEP_NB,
                extra: tuple[Part, ...] = ()) -> TaskKind:
    cfg = executors.sweep_config(target)
    images, _ = planned_images(target)
    m_images = _mean([r.images for r in runs])
    img = _ratio("images", images, m_images, "a pass costs in proportion to its images")
    fixed = _mean([max(0.0, r.elapse_s - r.features_s - r.train_s - r.cooldown_s) for r in runs])
    features, train = _mean([r.features_s for r in known(runs, "flops")]), _mean([r.train_s for r in runs])
    m_epochs, m_mode = runs[0].epochs, runs[0].mode
    parts = [Part("start-up, load, test, save (as measured)", fixed),
             Part("cool-downs", _mean([r.cooldown_s for r in runs]),
                  (_ratio("cool-downs", cooldown_s, _mean([r.cooldown_s for r in runs]),
                          "2 cool-downs x samples x interval (s)"),))]
    if cfg.mode == m_mode or cfg.mode == "frozen":
        parts += [Part("features (a forward pass)", features, (img, flops)),
                  Part("training", train, (img, _ratio("epochs", cfg.epochs, m_epochs, "training grows with epochs")))]
    else:  # measured frozen (a head on cached features), planned full: every epoch through the backbone
        parts += [Part("training, full (from a forward pass)", features,
                       (img, flops, Factor("epochs x full pass", cfg.epochs * FULL_PASSES,
                                           f"{cfg.epochs} epochs, each forward + backward through the backbone "
                                           f"~ {FULL_PASSES:g} forward passes (assumed; the measured run was "
                                           f"{m_mode})")))]
    return TaskKind(notebook, name, (*parts, *extra), units, len(runs), holds_node=True,
                    units_assumption=units_assumption)


def _sweep_kinds(m: Measured, target: config.Profile, planned: list[str]) -> tuple[TaskKind, ...]:
    if not m.sweep:
        return ()
    flops = member_factor("member FLOPs", "flops", planned, [r.member for r in known(m.sweep, "flops")])
    cfg = executors.sweep_config(target)
    kinds = [_sweep_kind(m.sweep, target, len(planned), 2 * cfg.cooldown_samples * cfg.interval, "sweep run",
                         flops, f"{len(planned)} members x 1 repeat")]
    repeat = noise_runs.plan(target)
    if repeat and m.repeats:
        kinds.append(_sweep_kind(m.repeats, target, len(repeat.members) * repeat.repeats, 2 * repeat.cooldown_s,
                                 "repeated run", member_factor("member FLOPs", "flops", list(repeat.members),
                                                               [r.member for r in known(m.repeats, "flops")]),
                                 f"{len(repeat.members)} members x {repeat.repeats} repeats"))
    return tuple(kinds)


def _browser_kinds(m: Measured, target: config.Profile, planned: list[str]) -> tuple[TaskKind, ...]:
    """Notebook 05's conversions and browser runs: a member's task holds a node (`browser_test(executor=...)`)."""
    kinds = []
    if m.conversions:
        converted = known([Conversion(k, v) for k, v in m.conversions.items()], "params")
        params = member_factor("member parameters", "params", planned, [c.member for c in converted])
        kinds.append(TaskKind(BROWSER_NB, "TF.js conversion", (Part("conversion", _mean([c.seconds for c in converted]),
                                                                    (params,)),),
                              len(planned), len(m.conversions), holds_node=True,
                              units_assumption=f"{len(planned)} members, each in its member's task"))
    if m.browser:
        gaps = [b.started - a.started - a.elapse_s for a, b in zip(m.browser, m.browser[1:])]
        _, n_test = planned_images(target)
        members = {b.member for b in m.browser}
        extra = len(m.browser) - len(members)  # the latency runs on other backends: a fixed few members
        scaled = known(m.browser, "flops")
        flops = member_factor("member FLOPs", "flops", planned, [b.member for b in scaled])
        parts = (Part("Chromium, page, model load (between runs)", max(0.0, _mean(gaps))),
                 Part("inference", _mean([b.elapse_s for b in scaled]),
                      (_ratio("images", n_test, _mean([b.n_images for b in scaled]), "test images inferred"),
                       flops)))
        kinds.append(TaskKind(BROWSER_NB, "browser run", parts, len(planned) + extra, len(m.browser),
                              holds_node=True, units_assumption=f"{len(planned)} members + {extra} latency runs "
                                                                "on other backends, as measured"))
    return tuple(kinds)


def planned_fidelity_rows(target: config.Profile, planned: list[str]) -> int:
    """Rows (member x format) notebook 09 measures for the planned profile, with its default browser members."""
    wanted = fidelity_analysis.formats_for_profile(target)
    n, n_tf = 0, 0
    for member in planned:
        backend = zoo.get_member(member).backend
        fmts = [f for f in fidelity.FORMATS.get(backend, ()) if wanted is None or f in wanted]
        if backend == "tf":
            if n_tf >= BROWSER_MEMBERS:
                fmts = [f for f in fmts if f not in fidelity.BROWSER_FORMATS]
            n_tf += 1
        n += len(fmts)
    return n


def _localised(m: Measured, target: config.Profile, rows: int) -> int:
    policy = fidelity.Settings.of(target).localise
    bad = [r for r in m.fidelity if not r.faithful]
    if policy == "none" or not bad:
        return 0
    if policy == "all":
        return round(rows * len(bad) / len(m.fidelity))
    wanted = fidelity_analysis.formats_for_profile(target)
    formats = {f for fmts in fidelity.FORMATS.values() for f in fmts if wanted is None or f in wanted}
    return round(len(formats) * len({r.format for r in bad}) / len({r.format for r in m.fidelity}))


def _fidelity_kinds(m: Measured, target: config.Profile, planned: list[str]) -> tuple[TaskKind, ...]:
    if not m.fidelity:
        return ()
    rows = planned_fidelity_rows(target, planned)
    by_params, by_flops = known(m.fidelity, "params"), known(m.fidelity, "flops")
    params = member_factor("member parameters", "params", planned, [r.member for r in by_params])
    _, n_test = planned_images(target)
    settings, measured_settings = fidelity.Settings.of(target), fidelity.Settings.of(m.profile)
    passes = (_ratio("single-image passes", n_test + settings.warmup + settings.repeats,
                     _mean([r.images for r in by_flops]) + measured_settings.warmup + measured_settings.repeats,
                     "every test image once, then warm-up + timed repeats of one image (batch 1)"),
              member_factor("member FLOPs", "flops", planned, [r.member for r in by_flops]))
    localised = [r.localise_s for r in known(m.fidelity, "params") if r.localise_s is not None]
    localised = localised or [r.localise_s for r in m.fidelity if r.localise_s is not None]
    n_loc = _localised(m, target, rows)
    # a member's exports and measurements run in its task, which holds a node (study.deployment.fidelity on Ray)
    kinds = [TaskKind(FIDELITY_NB, "export", (Part("export", _mean([r.export_s for r in by_params]), (params,)),),
                      rows, len(m.fidelity), holds_node=True,
                      units_assumption=f"{rows} member x format rows, in their member's task"),
             TaskKind(FIDELITY_NB, "measure", (Part("runtime load", _mean([r.load_s for r in m.fidelity])),
                                               Part("inference and timing, with the runtime's start", _mean(
                                                   [max(0.0, r.measure_s - r.load_s) for r in by_flops]),
                                                   passes)),
                      rows, len(m.fidelity), holds_node=True, units_assumption=f"{rows} member x format rows")]
    if localised:
        kinds.append(TaskKind(FIDELITY_NB, "localisation", (Part("localise", _mean(localised), (params,)),),
                              n_loc, len(localised), holds_node=False, on_driver=True,
                              units_assumption=f"localise={settings.localise}: the measured share of "
                                               "non-faithful rows (formats) of the planned ones"))
    return tuple(kinds)


def _matrix_kinds(m: Measured, target: config.Profile) -> tuple[TaskKind, ...]:
    """Notebook 01's rows: a part of a framework's formats per task, which holds a node (`run_matrix(executor=...)`);
    planned as one row per task, the reference each part builds left in the serial part."""
    if not m.matrix:
        return ()
    table = scenarios.scenarios()
    here = table[table.apply(scenarios.runnable, axis=1)]["format"]  # formats that run on this kind of machine
    planned = int(here.isin(target.matrix_formats).sum()) if target.matrix_formats else len(here)
    path = "quick" if m.profile.matrix_formats else "full"
    same = bool(target.matrix_formats) == bool(m.profile.matrix_formats)
    return (TaskKind(MATRIX_NB, "deployment row", (Part("export, runtime process, judgement", _mean(
        [r.seconds for r in m.matrix])),), planned, len(m.matrix), holds_node=True,
        units_assumption=f"{planned} formats that run here, each the measured rows' mean"
                         + ("" if same else f" (assumed: the {path} path was measured)")),)


def _version_kinds(m: Measured, target: config.Profile) -> tuple[TaskKind, ...]:
    """Notebook 08's versions: each fine-tuned (and browser-tested) in a task that holds a node
    (`finetune_versions(executor=...)`)."""
    if not m.versions:
        return ()
    names = target.version_costs.versions
    units = len(names) if names else len(publish.versions())
    cfg = executors.sweep_config(target)
    runs = [v.sweep for v in m.versions]
    extra = ()
    if target.version_costs.browser_backends:
        extra = (Part("TF.js conversion and browser runs (as measured)", _mean([v.browser_s for v in m.versions])),)
    return (_sweep_kind(runs, target, units, 2 * cfg.cooldown_samples * cfg.interval, "version fine-tuning",
                        member_factor("member FLOPs", "flops", [target.version_costs.member],
                                      [m.profile.version_costs.member]),
                        f"{units} versions ({'the profile' + chr(39) + 's' if names else 'every version'})",
                        notebook=VERSIONS_NB, extra=extra),)


def measured_task_s(m: Measured) -> dict[str, float]:
    """{notebook: seconds its measured run spent in tasks}: the sweep's and the repeated runs, the conversions and
    the browser runs (first start to last end), the fidelity rows' export, measurement and localisation, the
    deployment matrix's rows, the versions' fine-tuning and browser runs."""
    browser = (m.browser[-1].started + m.browser[-1].elapse_s - m.browser[0].started) if m.browser else 0.0
    return {SWEEP_NB: sum(r.elapse_s for r in m.sweep + m.repeats),
            BROWSER_NB: sum(m.conversions.values()) + browser,
            FIDELITY_NB: sum(r.export_s + r.measure_s + (r.localise_s or 0.0) for r in m.fidelity),
            MATRIX_NB: sum(r.seconds for r in m.matrix),
            VERSIONS_NB: sum(v.sweep.elapse_s + v.browser_s for v in m.versions)}


def plan_profile(m: Measured, target: config.Profile, cores: int | None = None) -> Plan:
    """The planned profile's notebooks from the measured run's task costs (nodes of `cores` cores; default: the
    measured node's)."""
    planned = [x.name for x in zoo.members(target)]
    by_nb = {SWEEP_NB: _sweep_kinds(m, target, planned), BROWSER_NB: _browser_kinds(m, target, planned),
             FIDELITY_NB: _fidelity_kinds(m, target, planned), MATRIX_NB: _matrix_kinds(m, target),
             VERSIONS_NB: _version_kinds(m, target)}
    notebooks = []
    for nb, seconds in sorted(m.notebook_s.items()):
        tasks = by_nb.get(nb, ())
        notebooks.append(NotebookPlan(nb, seconds, serial_part(seconds, measured_task_s(m).get(nb, 0.0)), tasks))
    return Plan(target.name, m.profile.name, cores or m.cores or 1, tuple(notebooks), m.source)
