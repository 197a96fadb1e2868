"""Repeated runs of a few members, beside the sweep: the measured noise of Table IX's resources
(`uncertainty.NoiseModel.from_repeats`) and the error of coarse sampling intervals (`sampling_error`), from one
small sweep of its own, so that the whole sweep is not run N times.

`plan(profile)` (the profile's `noise_plan`, study.profiles) says which members are repeated, how often, at which
fine sampling interval and with which cool-down. The runs are a sweep (`finetune.sweep`) into `default_out(profile)`
(results/finetune/<profile>-repeats/) under the profile's own configuration except the interval and the cool-down,
so they resume and are keyed like the sweep; Table IX itself is not changed by them.

    table = run(profile)                              # the repeated runs (resumes)
    noise = uncertainty.NoiseModel.from_repeats(uncertainty.sweep_repeats(default_out(profile)))
    errors = sampling_errors(default_out(profile))    # every run, interval and phase offset
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from study import config
from study.casestudy import finetune, sampling_error
from study.decision import uncertainty
from study.errors import StudyError
from study.profiles import RepeatPlan


def plan(profile: config.Profile) -> RepeatPlan | None:
    """The profile's repeated runs (`profile.noise_plan`); None: it repeats none beside its sweep."""
    return profile.noise_plan


def default_out(profile: config.Profile) -> Path:
    """results/finetune/<profile>-repeats/: beside the sweep's folder."""
    main = finetune.default_out(profile)
    return main.with_name(f"{main.name}-repeats")


def run(profile: config.Profile, out: str | Path | None = None, *, progress: bool = False,
        **overrides) -> pd.DataFrame:
    """The profile's repeated runs (a sweep of `plan(profile)`); their Table IX (means and spreads)."""
    p = plan(profile)
    if p is None:
        raise StudyError(f"profile {profile.name} repeats no members beside its sweep; "
                         "use python -m study finetune --repeats N")
    return finetune.sweep(out or default_out(profile), profile, list(p.members), repeats=p.repeats,
                          interval=p.interval, cooldown_samples=p.cooldown_samples, progress=progress, **overrides)


def _ok_runs(out: Path) -> list[dict]:
    runs = [r for r in uncertainty.read_records(out) if r.get("status") == "ok"]
    if runs:
        latest = json.dumps(runs[-1].get("config"), sort_keys=True)
        runs = [r for r in runs if json.dumps(r.get("config"), sort_keys=True) == latest]
    return sorted(runs, key=lambda r: (str(r.get("member")), int(r.get("repeat", 0))))


def _trace(out: Path, member: str, repeat: int) -> pd.DataFrame:
    samples = finetune.load_samples(out, member)
    return samples[samples["repeat"] == repeat].drop(columns="repeat").reset_index(drop=True)


def sampling_errors(out: str | Path, intervals: Sequence[float] = sampling_error.INTERVALS_S) -> pd.DataFrame:
    """`sampling_error.sampling_errors` of every ok run of a sweep folder, with `run` (member/r<k>) and `member`."""
    out = Path(out)
    parts = []
    for r in _ok_runs(out):
        trace = _trace(out, r["member"], int(r["repeat"]))
        if len(trace) < 2:
            continue
        e = sampling_error.sampling_errors(trace, intervals)
        parts.append(e.assign(run=f"{r['member']}/r{r['repeat']}", member=r["member"]))
    if not parts:
        return pd.DataFrame(columns=[*sampling_error.ERROR_COLUMNS, "run", "member"])
    return pd.concat(parts, ignore_index=True)


def cpu_check(out: str | Path) -> pd.DataFrame:
    """Per ok run: the process tree's CPU-seconds integrated from the fine trace beside the kernel's CPU time of the
    worker (`cpu_s` in its result, user + system, at its end), their difference and ratio; NaN where a run has no kernel
    figure (recorded before the worker reported it)."""
    out = Path(out)
    rows = []
    for r in _ok_runs(out):
        trace = _trace(out, r["member"], int(r["repeat"]))
        integrated = sampling_error.integrated_cpu_seconds(trace, "tree_cpu") if "tree_cpu" in trace else math.nan
        kernel = (r.get("worker") or {}).get("cpu_s")
        kernel = float(kernel) if kernel is not None else math.nan
        rows.append({"run": f"{r['member']}/r{r['repeat']}", "member": r["member"],
                     "interval_s": sampling_error.fine_interval(trace) if len(trace) > 1 else math.nan,
                     "elapse_s": r.get("elapse_s"), "integrated_cpu_s": integrated, "kernel_cpu_s": kernel,
                     "difference_s": integrated - kernel,
                     "ratio": integrated / kernel if kernel and kernel == kernel else math.nan})
    return pd.DataFrame(rows, columns=["run", "member", "interval_s", "elapse_s", "integrated_cpu_s", "kernel_cpu_s",
                                       "difference_s", "ratio"])


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def noise_reading(noise, repeats: pd.DataFrame) -> str:
    """One paragraph: which noise model this run measured, per Table IX resource, and where the default stands."""
    if repeats is None or repeats.empty or not noise.evidence:
        return (f"No member has two or more ok runs here, so every resource is judged by the stated default "
                f"({noise.label('*')}).")
    per = repeats.groupby("model").size()
    parts = [f"{key.split('.', 1)[1]} {noise.label(key)}" for key in noise.evidence]
    return (f"The noise of a single reading, measured from {len(repeats)} runs of {len(per)} members "
            f"({', '.join(f'`{m}` {n}' for m, n in per.items())}): " + "; ".join(parts) +
            f". Resources measured once per member elsewhere (Table X) keep the stated default ({noise.label('*')}).")


def sampling_reading(table: pd.DataFrame, check: pd.DataFrame, interval_s: float = 5.0) -> str:
    """One paragraph on the sampling error: the paper's interval, the run lengths, the runs shorter than an
    interval and the invalid offsets, and the kernel check."""
    if table.empty:
        return "No ok run with a fine trace: the sampling error could not be measured."
    fine = check["interval_s"].median() if len(check) else math.nan
    runs = int(table["runs"].max())
    parts = [f"From {runs} runs sampled every {fine:.2g} s, lasting "
             f"{table['run_s_min'].min():.1f}–{table['run_s_max'].max():.1f} s"]
    at = table[(table["interval_s"] == interval_s)].set_index("quantity")
    errs = [f"{q} errs by {at.loc[q, 'mean']:+.2f} {unit} on average, |error| {at.loc[q, 'p95_abs']:.3g} {unit} at the "
            f"95th percentile and {at.loc[q, 'max_abs']:.3g} {unit} at most"
            for q, unit in (("delta_cpu", "pp"), ("delta_mem", "pp"), (sampling_error.ELAPSE, "s"))
            if q in at.index and at.loc[q, "max_abs"] == at.loc[q, "max_abs"]]
    if errs:
        parts.append(f"at {interval_s:g} s (the paper's interval) " + ", ".join(errs))
    for interval, g in table.groupby("interval_s"):
        g = g.iloc[0]
        notes = []
        if g["runs_shorter"]:
            notes.append(f"{int(g['runs_shorter'])} of {int(g['runs'])} runs are shorter than it")
        if g["invalid"]:
            notes.append(f"{int(g['invalid'])} of {int(g['offsets'])} subsampled traces have no cool-down sample "
                         "(no value)")
        if notes:
            parts.append(f"at {interval:g} s " + " and ".join(notes))
    ok = check.dropna(subset=["ratio"])
    if len(ok):
        parts.append(f"the integrated process-tree CPU is {ok['ratio'].min():.3f}–{ok['ratio'].max():.3f} times the "
                     f"kernel's CPU time of the worker over {len(ok)} runs ({ok['difference_s'].min():.2f}–"
                     f"{ok['difference_s'].max():.2f} CPU-seconds more; likely the worker's exit after it read its own "
                     "CPU time, which the Sampler still sees)")
    else:
        parts.append("no run recorded the kernel's CPU time of its worker, so the integral is not checked")
    return "; ".join(parts) + "."
