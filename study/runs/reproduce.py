"""Run the numbered notebooks in order through papermill; a failure names the notebook and the cell.

Each notebook run is keyed by what produced it (`study.cache.keys`): its code cells, its parameters, the source of
every `study` module it uses (transitively), the inputs it declared to `Report` (their checksums now), the lock
files and the machine. A notebook whose key equals that of its last successful run, and whose outputs are all
present with the recorded checksums, is not run again. The record of a run
(`<results>/reproduce/<notebook>.json`) is written last, atomically, and removed before the notebook starts,
so an interrupted run is never taken as done.

A run that executes a notebook is bracketed by the host-speed probe (`study.runs.hostprobe`, written to
`<results>/host_probe.json`); a run where every notebook succeeded is snapshotted (`study.runs.history`) and ends with
its verdict against the shipped reference of its profile, or the reference named (`study.runs.verdict`: printed,
and written to `<results>/verdict/`).
"""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study import files
from study.assets.flowers import check_profile_inputs
from study.assets.folder import active_digest
from study.cache import keys
from study.config import NOTEBOOKS, PROFILES, ROOT, Profile, results_dir
from study.errors import StudyError
from study.report import _display, read_manifest
from study.runs import compare, history, hostprobe, verdict
from study.runtime import processes

DEFAULT_SECONDS = 60.0  # ETA for a notebook with no recorded duration


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The study's notebooks in run order (`NN_name.ipynb`), optionally those whose name contains an `only` item."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        picked = [nb for nb in found if any(o in nb.stem for o in only)]
        if not picked:
            raise StudyError(f"no notebook matches {only}; notebooks: {', '.join(nb.stem for nb in found)}")
        return picked
    return found


@dataclass
class NotebookRun:
    notebook: str
    output: Path
    seconds: float
    cached: bool = False


def _output_path(notebook: Path, out_dir: Path | None = None) -> Path:
    return Path(out_dir or results_dir() / "notebooks") / notebook.name


def run_notebook(notebook: Path, parameters: dict[str, Any], out_dir: Path | None = None) -> NotebookRun:
    """Execute one notebook with papermill into `out_dir` (default `results/notebooks/`).

    The executed copy is written beside its place and renamed into it when the run ends (a killed run leaves
    only the hidden partial file); a failing run's copy, with the traceback, is kept in place.
    """
    import papermill as pm  # heavy; only when running

    # Kernels inherit this environment and our fd 2: TensorFlow's log knobs, and its load-time lines filtered.
    processes.quiet_tensorflow()
    # ... and import this checkout's `study`: a kernel starts in notebooks/, where an editable install of another
    # checkout (a shared virtualenv) would otherwise win and write that checkout's results.
    if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != str(ROOT):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

    output = _output_path(notebook, out_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial.ipynb")
    start = time.perf_counter()
    try:
        with contextlib.nullcontext() if processes.verbose() else processes.native_stderr_filtered():
            pm.execute_notebook(str(notebook), str(partial), parameters=parameters, kernel_name="python3",
                                cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        os.replace(partial, output)
        first_line = (exc.source or "").strip().splitlines()[:1]
        raise StudyError(
            f"notebook {notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}"
            f"{': ' + first_line[0] if first_line else ''}): {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: {output}"
        ) from exc
    os.replace(partial, output)
    return NotebookRun(notebook.stem, output, time.perf_counter() - start)


# ------------------------------------------------------------------------------ notebook keys
def code_cells(notebook: Path) -> list[str]:
    doc = json.loads(notebook.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in doc["cells"] if c["cell_type"] == "code"]


def declared_parameters(notebook: Path) -> set[str]:
    """The names the notebook's `parameters` cell assigns (what papermill may set)."""
    doc = json.loads(notebook.read_text())
    cells = [c for c in doc["cells"] if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    names: set[str] = set()
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def parameters_for(nbs: Sequence[Path], params: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook's parameters: `profile` and the extra ones it declares (a notebook without one keeps its key);
    an extra parameter no selected notebook declares is a StudyError naming it."""
    declared = {nb: declared_parameters(nb) for nb in nbs}
    unknown = [k for k in params if k != "profile" and not any(k in d for d in declared.values())]
    if unknown:
        raise StudyError(f"no notebook run here has the parameter(s) {', '.join(unknown)}; a notebook's parameters "
                         f"are its first code cell (tagged `parameters`), e.g. notebooks/{nbs[0].name}" if nbs else
                         f"no notebook selected for the parameter(s) {', '.join(unknown)}")
    return {nb: {k: v for k, v in params.items() if k == "profile" or k in declared[nb]} for nb in nbs}


def notebook_modules(notebook: Path, root: Path = ROOT) -> dict[str, str]:
    """{'study/x.py': digest} for every `study` module the notebook's code uses, transitively."""
    names: set[str] = set()
    for src in code_cells(notebook):
        names |= keys.imported_modules(keys.parse(src, notebook.name), root=root)
    return {keys.module_path(m, root): d for m, d in keys.module_closure(names, root).items()}


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def record_path(notebook: Path) -> Path:
    return results_dir() / "reproduce" / f"{notebook.stem}.json"


def read_record(notebook: Path) -> dict[str, Any] | None:
    try:
        return json.loads(record_path(notebook).read_text())
    except (OSError, ValueError):
        return None


def notebook_components(notebook: Path, parameters: dict[str, Any], inputs: list[str] = (),
                        root: Path = ROOT) -> dict[str, str]:
    """The named parts of a notebook's key; names are what a `re-run: ... changed` line shows."""
    comps = {"code cells": keys.digest([keys.code_digest(s, notebook.name) for s in code_cells(notebook)])}
    comps |= {f"parameter {k}": keys.digest(v) for k, v in parameters.items()}
    comps |= notebook_modules(notebook, root)
    comps |= {f"input {p}": keys.file_digest(_resolve(p)) for p in inputs}
    comps |= keys.environment()
    comps["machine"] = keys.digest(keys.machine())

    profile = PROFILES.get(parameters.get("profile"))  # the notebook's parameter: a name, read back here
    if profile is not None and profile.online and (lock := active_digest()):
        comps["asset folder"] = lock  # other TF Hub / Flower Photos bytes (STUDY_ASSETS): run again
    return comps


@dataclass
class Plan:
    """What `reproduce` will do with one notebook, and why."""

    notebook: Path
    components: dict[str, str]
    reason: str | None  # None: cached
    record: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return keys.key_of(self.components)

    @property
    def expected_seconds(self) -> float:
        return float((self.record or {}).get("seconds") or DEFAULT_SECONDS) if self.reason else 0.0

    def line(self) -> str:
        return f"cached (key {self.key[:4]}…)" if self.reason is None else f"re-run: {self.reason}"


def _why(old: dict[str, str], new: dict[str, str]) -> str:
    diff = keys.changed(old, new)
    params = [d for d in diff if d.startswith("parameter ")]
    first = (params or diff)[:3]
    more = f" (+{len(diff) - len(first)} more)" if len(diff) > len(first) else ""
    return f"{', '.join(first)} changed{more}"


def plan(notebook: Path, parameters: dict[str, Any], force: bool = False) -> Plan:
    """Whether `notebook` must run with `parameters` (and why) or is cached."""
    rec = read_record(notebook)
    comps = notebook_components(notebook, parameters, sorted((rec or {}).get("inputs", {})))
    if force:
        return Plan(notebook, comps, "forced", rec)
    if rec is None:
        return Plan(notebook, comps, "no finished run recorded", rec)
    if rec.get("components") != comps:
        return Plan(notebook, comps, _why(rec.get("components", {}), comps), rec)
    for path, sha in rec.get("outputs", {}).items():
        p = _resolve(path)
        if not p.is_file():
            return Plan(notebook, comps, f"output missing ({path})", rec)
        if files.sha256(p) != sha:
            return Plan(notebook, comps, f"output changed ({path})", rec)
    return Plan(notebook, comps, None, rec)


def _finished(notebook: Path, parameters: dict[str, Any], started: str, run: NotebookRun,
              before: dict[str, str] | None = None) -> None:
    """Record a successful run: its outputs (this run's manifest entries + executed copy) and inputs. The key is
    that of the code as it was when the run started (`before`: a notebook or module edited while it ran is stale),
    with the digests of the inputs it recorded."""
    ours = {p: e for p, e in read_manifest()["artifacts"].items()
            if e.get("notebook") == notebook.stem and e.get("created", "") >= started}
    outputs = {p: files.sha256(_resolve(p)) for p in ours if _resolve(p).is_file()}
    outputs[_display(run.output)] = files.sha256(run.output)
    inputs = sorted({i for e in ours.values() for i in e.get("inputs", {})})
    comps = notebook_components(notebook, parameters, inputs)
    if before is not None:
        comps |= {k: v for k, v in before.items() if not k.startswith("input ")}
    files.write_text(record_path(notebook), json.dumps({
        "notebook": notebook.stem, "key": keys.key_of(comps), "components": comps, "parameters": parameters,
        "inputs": {i: comps[f"input {i}"] for i in inputs}, "outputs": outputs, "seconds": round(run.seconds, 1),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, indent=2, sort_keys=True) + "\n")


def run_if_needed(notebook: Path, parameters: dict[str, Any], force: bool = False,
                  planned: Plan | None = None) -> tuple[Plan, NotebookRun]:
    """Run `notebook` unless cached; the record is removed first and written only when the run succeeded.
    `planned`: a plan made since the last notebook ran (nothing it reads can have changed)."""
    p = planned or plan(notebook, parameters, force)
    if p.reason is None:
        return p, NotebookRun(notebook.stem, _output_path(notebook), 0.0, cached=True)
    record_path(notebook).unlink(missing_ok=True)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(timespec="seconds")
    run = run_notebook(notebook, parameters)
    _finished(notebook, parameters, started, run, before=p.components)
    return p, run


def code_versions(plans: dict[Path, Plan]) -> dict[str, str]:
    """{notebook: code version} of this checkout (`study.runs.history.code_version` of each plan's key)."""
    return {nb.stem: history.code_version(p.components) for nb, p in plans.items()}


def judge(profile: Profile, plans: dict[Path, Plan], reference: str | Path | None = None) -> verdict.Verdict | None:
    """The run's verdict against the shipped reference (or `reference`), printed on stderr and written to
    results/verdict/; a reference that cannot be read is a warning (the results are written all the same)."""
    try:
        got = verdict.against(results_dir(), profile, ref=reference, code=code_versions(plans))
        where = verdict.write(got, results_dir())
    except (StudyError, OSError) as exc:
        print(f"[reproduce] warning: no verdict against the reference ({exc})", file=sys.stderr)
        return None
    for line in got.lines():
        print(f"[reproduce] verdict: {line}", file=sys.stderr)
    print(f"[reproduce] verdict written to {where}/", file=sys.stderr)
    return got


def reproduce(profile: Profile, only: list[str] | None = None, extra: dict[str, Any] | None = None, *,
              force: bool = False, dry_run: bool = False, progress: bool = True,
              reference: str | Path | None = None) -> list[NotebookRun]:
    """Run every notebook (or `only` some) with `profile` (resolved by the caller: `config.get_profile`), skipping
    cached ones; stop at the first failure.

    `force`: run every selected notebook, and make every keyed step inside it recompute once (`STUDY_FORCE`).
    `dry_run`: print what would run and why, run nothing (returns no runs).
    `reference`: the results folder, snapshot or archive the verdict judges this run by (default: the shipped
    reference of `profile`, `study.runs.reference`).
    """
    from tqdm import tqdm

    check_profile_inputs(profile)
    nbs = notebooks(only)
    params = parameters_for(nbs, {"profile": profile.name, **(extra or {})})  # each notebook: what it declares
    plans = {nb: plan(nb, params[nb], force) for nb in nbs}
    if dry_run:
        for nb, p in plans.items():
            print(f"[reproduce] {nb.stem}: {p.line()}", flush=True)
        print("[reproduce] dry run: nothing was run (a later notebook may also re-run when an earlier one "
              "changes the inputs it reads)")
        return []
    with files.exclusive(results_dir() / "reproduce", "`study reproduce`"):  # one writer of results/ at a time
        previous_force = os.environ.get("STUDY_FORCE")
        if force:
            os.environ["STUDY_FORCE"] = uuid.uuid4().hex  # kernels inherit it: each step recomputes once
        total = sum(p.expected_seconds for p in plans.values())
        bar = tqdm(total=round(total), unit="s", disable=not progress, dynamic_ncols=True,
                   bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        runs: list[NotebookRun] = []
        probe = hostprobe.start() if any(p.reason for p in plans.values()) else None
        try:
            for i, nb in enumerate(nbs, 1):
                bar.set_description(f"notebook {i}/{len(nbs)} {nb.stem}")
                # plans made before any notebook ran stay valid; after one ran, inputs may have changed
                p, run = run_if_needed(nb, params[nb], force, None if any(not r.cached for r in runs) else plans[nb])
                tqdm.write(f"[reproduce] {nb.stem}: {p.line()}"
                           + ("" if run.cached else f" -> done in {run.seconds:.1f} s"), file=sys.stderr)
                bar.update(min(round(plans[nb].expected_seconds), bar.total - bar.n))
                runs.append(run)
        finally:
            bar.close()
            if force:
                os.environ.pop("STUDY_FORCE", None)
                if previous_force is not None:
                    os.environ["STUDY_FORCE"] = previous_force
        if probe is not None and any(not r.cached for r in runs):  # the host's speed over the measured run
            hostprobe.write(results_dir(), probe.finish())
        # every notebook succeeded: a compact snapshot for `study compare`, and the verdict against the reference
        history.record(profile.name, runs, tables=compare.table_names(), versions=compare.table_versions())
        judge(profile, plans, reference)
    return runs
