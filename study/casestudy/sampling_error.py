"""The error of a coarse sampling interval (issue 27, item 2): what 1 s, 5 s (the paper), 10 s and 15 s sampling
would have reported, measured on one fine-interval trace of the Sampler.

A sample's CPU values integrate over the interval that ends at it (`study.casestudy.sampler`), so a coarse
sample taken at the moment of fine sample k, `m` fine intervals after the previous coarse one, reports exactly
the time-weighted mean of the CPU values of fine samples k-m+1 .. k. Memory is a point reading: the coarse sample
reports the fine reading at k. Its phase is the phase at k (a sample is labelled when it is taken). Subsampling
the fine trace at every phase offset 0 .. m-1 gives every alignment of the coarse grid against the run's phase
boundaries; Formula 1 (`study.casestudy.formula1.delta`) on each subsampled trace, minus Formula 1 on the fine
trace, is the error that interval would have made. The error comes from the coarse windows that straddle a phase
boundary (a window labelled `running` that began in the cool-down, and the reverse) and from memory read at a
point; elapse, as a coarse sampler sees it (its running samples times its interval), is off by less than one
interval.

    errors = sampling_errors(samples)            # one row per interval, offset and quantity
    summary = error_summary(errors)             # per interval and quantity: mean, sd, percentiles, max |error|

Only coarse windows that lie wholly inside the trace count. A subsampled trace with no valid sample in a phase
gives NaN (counted as `invalid` in the summary): its cool-down was shorter than one coarse interval.

`integrated_cpu_seconds` turns a trace's CPU column back into CPU-seconds, to check it against the kernel's CPU
time of the process tree (`psutil.Process.cpu_times`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.casestudy import formula1
from study.errors import StudyError
from study.report import INPUT_REF, notebook_output

INTERVALS_S = (1.0, 5.0, 10.0, 15.0)  # 1 s (the paper's browser test), 5 s (its fine-tuning), MLflow/W&B, CodeCarbon


@dataclass(frozen=True)
class Quantity:
    """A number Formula 1 reports from a trace column: `integrated` values average over a window (CPU %), the
    others are point readings (memory %)."""

    name: str
    column: str
    integrated: bool


QUANTITIES = (Quantity("delta_cpu", "cpu", True), Quantity("delta_mem", "mem", False),
              Quantity("delta_cpu_tree", "tree_cpu", True), Quantity("delta_mem_tree", "tree_mem", False))
ELAPSE = "elapse_s"
ERROR_COLUMNS = ["interval_s", "effective_interval_s", "offset", "offset_s", "run_s", "quantity", "fine", "coarse",
                 "error", "n_running", "n_cooldown"]


def fine_interval(samples: pd.DataFrame) -> float:
    """The trace's sampling interval: the median time between samples."""
    dt = formula1.intervals(samples).iloc[1:].dropna()
    if dt.empty or not dt.median() > 0:
        raise StudyError(f"a trace of {len(samples)} sample(s) has no sampling interval; it needs >= 2 samples "
                         "with increasing `t` (a Sampler's samples)")
    return float(dt.median())


def _check(samples: pd.DataFrame) -> None:
    missing = [c for c in ("t", "phase") if c not in samples.columns]
    if missing:
        raise StudyError(f"a trace needs columns t and phase (a Sampler's samples); missing: {', '.join(missing)}")


def subsample(samples: pd.DataFrame, step: int, offset: int,
              quantities: Sequence[Quantity] = QUANTITIES) -> pd.DataFrame:
    """What a sampler taking every `step`-th fine sample, starting at phase `offset` (0 .. step-1), records.

    Coarse sample i is taken at fine sample k = offset + step - 1 + i * step; integrated columns are the
    time-weighted mean over fine samples k-step+1 .. k, point readings are the value at k; `t` and `phase` are k's.
    """
    _check(samples)
    if step < 1 or not 0 <= offset < step:
        raise StudyError(f"subsample: step {step} must be >= 1 and offset {offset} in 0 .. {step - 1}")
    df = samples.reset_index(drop=True)
    dt = formula1.intervals(df).to_numpy(float)
    ends = np.arange(offset + step - 1, len(df), step)
    out = {"t": df["t"].to_numpy(float)[ends], "phase": df["phase"].to_numpy()[ends]}
    cum_dt = np.concatenate([[0.0], np.cumsum(dt)])
    for q in quantities:
        if q.column not in df.columns:
            continue
        v = pd.to_numeric(df[q.column], errors="coerce").to_numpy(float)
        if q.integrated:
            cum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(v) * dt)])
            out[q.column] = (cum[ends + 1] - cum[ends + 1 - step]) / (cum_dt[ends + 1] - cum_dt[ends + 1 - step])
            gaps = np.concatenate([[0], np.cumsum(np.isnan(v))])
            out[q.column][(gaps[ends + 1] - gaps[ends + 1 - step]) > 0] = np.nan  # a window with a missing value
        else:
            out[q.column] = v[ends]
    coarse = pd.DataFrame(out)
    coarse.attrs["interval"] = float(np.median(np.diff(out["t"]))) if len(ends) > 1 else math.nan
    return coarse


def running_seconds(samples: pd.DataFrame, interval: float, running: str = formula1.RUNNING) -> float:
    """Elapse as a sampler at `interval` sees it: its samples labelled running, each standing for one interval."""
    return float((samples["phase"] == running).sum() * interval)


def _report(samples: pd.DataFrame, interval: float, quantities: Sequence[Quantity]) -> dict[str, float]:
    got = {q.name: formula1.delta(samples, q.column) for q in quantities if q.column in samples.columns}
    return got | {ELAPSE: running_seconds(samples, interval)}


def sampling_errors(samples: pd.DataFrame, intervals: Sequence[float] = INTERVALS_S, *,
                    quantities: Sequence[Quantity] = QUANTITIES, truth: Mapping[str, float] | None = None,
                    ) -> pd.DataFrame:
    """Per coarse interval, phase offset and quantity: what Formula 1 (and elapse) would have reported, and its
    error against the fine trace (or against `truth`, e.g. {"elapse_s": the run's wall-clock elapse}).

    Columns `ERROR_COLUMNS`: `interval_s` asked, `effective_interval_s` (a whole number of fine intervals),
    `offset` (fine samples) and `offset_s`, `run_s` (the run length: the fine elapse), `fine` (the reference),
    `coarse`, `error` = coarse - fine, and the coarse samples while running and cooling down. An interval shorter
    than the trace's own is skipped.
    """
    _check(samples)
    fine_dt = fine_interval(samples)
    fine = _report(samples, fine_dt, quantities) | dict(truth or {})
    rows = []
    for interval in intervals:
        step = int(round(interval / fine_dt))
        if step < 1:
            continue
        for offset in range(step):
            coarse = subsample(samples, step, offset, quantities)
            n_run = int((coarse["phase"] == formula1.RUNNING).sum())
            n_cool = int(coarse["phase"].isin(formula1.COOLDOWN).sum())
            for name, value in _report(coarse, step * fine_dt, quantities).items():
                rows.append({"interval_s": float(interval), "effective_interval_s": step * fine_dt, "offset": offset,
                             "offset_s": offset * fine_dt, "run_s": fine[ELAPSE], "quantity": name,
                             "fine": fine[name], "coarse": value, "error": value - fine[name],
                             "n_running": n_run, "n_cooldown": n_cool})
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def error_summary(errors: pd.DataFrame, by: Sequence[str] = ("interval_s", "quantity")) -> pd.DataFrame:
    """The error distribution over phase offsets (and over runs, when `errors` holds several): per group, the
    offsets, how many gave no value (`invalid`), mean, sd, 5th/50th/95th percentile and the largest |error|,
    the run length(s) and the error relative to the fine value's magnitude (`max_abs_rel`)."""
    def stats(g: pd.DataFrame) -> pd.Series:
        e = g["error"].dropna()
        rel = (e.abs() / g.loc[e.index, "fine"].abs()).replace(np.inf, np.nan)
        return pd.Series({"offsets": len(g), "invalid": int(g["error"].isna().sum()),
                          "run_s_min": g["run_s"].min(), "run_s_max": g["run_s"].max(),
                          "mean": e.mean(), "sd": e.std(ddof=1) if len(e) > 1 else math.nan,
                          "p05": e.quantile(0.05), "p50": e.quantile(0.5), "p95": e.quantile(0.95),
                          "max_abs": e.abs().max(), "max_abs_rel": rel.max()})

    cols = list(by)
    return errors.groupby(cols, sort=True)[[c for c in errors.columns if c not in cols]].apply(stats).reset_index()


def integrated_cpu_seconds(samples: pd.DataFrame, column: str = "tree_cpu", cores: int | None = None,
                           phases: Sequence[str] | None = None) -> float:
    """CPU-seconds a trace's `column` stands for: Σ value/100 × cores × interval (the Sampler's CPU columns are %
    of all cores; `cores` defaults to `psutil.cpu_count()`, the scale the Sampler divides by), over `phases`."""
    import psutil

    cores = cores or psutil.cpu_count() or 1
    values = pd.to_numeric(samples[column], errors="coerce").fillna(0.0).to_numpy(float)
    dt = formula1.intervals(samples).to_numpy(float)
    keep = samples["phase"].isin(phases).to_numpy() if phases else np.ones(len(samples), bool)
    return float(np.sum(values[keep] / 100.0 * cores * dt[keep]))


# --- several runs: the table, the model the audit uses, the figure ------------------------------------------------
SCALED = ("delta_cpu", "delta_mem", "delta_cpu_tree", "delta_mem_tree")  # Formula 1 deltas: error × run length


def error_table(errors: pd.DataFrame) -> pd.DataFrame:
    """`error_summary` per interval and quantity over every run in `errors` (column `run` names a run), plus the
    runs measured, how many were shorter than the interval (`runs_shorter`: their coarse trace has at most one
    running sample), the 95th percentile of |error| (`p95_abs`) and, for Formula 1's deltas, `p95_abs_x_run_s`: the 95th percentile of |error| × the run's
    length, the constant of the error model `ErrorModel` (a delta's error comes from the windows that straddle a
    phase boundary, whose weight is one interval over the run's length)."""
    if errors.empty:
        return pd.DataFrame(columns=["interval_s", "quantity", "runs", "runs_shorter", "offsets", "invalid",
                                     "run_s_min", "run_s_max", "mean", "sd", "p05", "p50", "p95", "max_abs",
                                     "max_abs_rel", "p95_abs", "p95_abs_x_run_s"])
    summary = error_summary(errors)
    run = errors["run"] if "run" in errors.columns else pd.Series(0, index=errors.index)
    rows = []
    for (interval, quantity), g in errors.groupby(["interval_s", "quantity"], sort=True):
        lengths = g.assign(run=run.loc[g.index]).groupby("run")["run_s"].first()
        scaled = (g["error"].abs() * g["run_s"]).dropna()
        rows.append({"interval_s": interval, "quantity": quantity, "runs": len(lengths),
                     "runs_shorter": int((lengths < interval).sum()), "p95_abs": g["error"].abs().quantile(0.95),
                     "p95_abs_x_run_s": float(scaled.quantile(0.95)) if quantity in SCALED and len(scaled) else math.nan})
    extra = pd.DataFrame(rows)
    out = extra.merge(summary, on=["interval_s", "quantity"])
    first = ["interval_s", "quantity", "runs", "runs_shorter"]
    return out[first + [c for c in out.columns if c not in first]]


@dataclass(frozen=True)
class ErrorModel:
    """How far a coarse sampler at `interval_s` can be from the truth, at a run length: for Formula 1's deltas
    `scaled[q] / run_s` (the 95th percentile of |error| × run length over the measured runs), for elapse the 95th
    percentile of |error| whatever the length (a coarse sampler's elapse is off by less than one interval)."""

    interval_s: float
    scaled: Mapping[str, float]
    absolute: Mapping[str, float]
    runs: int

    def bound(self, quantity: str, run_s: float) -> float:
        """The sampling error of `quantity` (delta_cpu, delta_mem, elapse_s, ...) for a run of `run_s` seconds;
        NaN when it was not measured. A run shorter than the interval counts as one interval long."""
        if quantity in self.absolute:
            return float(self.absolute[quantity])
        if quantity in self.scaled and run_s == run_s:
            return float(self.scaled[quantity]) / max(float(run_s), self.interval_s)
        return math.nan

    def label(self) -> str:
        return f"sampling error at {self.interval_s:g} s measured on {self.runs} runs"

    @classmethod
    def from_table(cls, table: pd.DataFrame, interval_s: float = 5.0) -> ErrorModel | None:
        """The model of `interval_s` from an `error_table` (e.g. notebook 04's `sampling_error`); None when the table
        has no valid error at that interval."""
        need = {"interval_s", "quantity", "runs", "p95_abs", "p95_abs_x_run_s"}
        if need - set(table.columns):
            raise StudyError(f"a sampling-error table lacks column(s) {', '.join(sorted(need - set(table.columns)))}; "
                             "write it with sampling_error.error_table")
        part = table[np.isclose(pd.to_numeric(table["interval_s"], errors="coerce"), interval_s)]
        scaled = {str(r.quantity): float(r.p95_abs_x_run_s) for r in part.itertuples()
                  if str(r.quantity) in SCALED and r.p95_abs_x_run_s == r.p95_abs_x_run_s}
        absolute = {ELAPSE: float(r.p95_abs) for r in part.itertuples() if r.quantity == ELAPSE and r.p95_abs == r.p95_abs}
        if not scaled and not absolute:
            return None
        return cls(float(interval_s), scaled, absolute, int(part["runs"].max()))


LABELS = {"delta_cpu": "ΔCPU error (pp)", "delta_mem": "ΔMEM error (pp)", ELAPSE: "elapse error (s)"}


def error_figure(errors: pd.DataFrame, quantities: Sequence[str] = ("delta_cpu", "delta_mem", ELAPSE)):
    """The error of each coarse interval against the fine trace, one panel per quantity: every run and phase
    offset as a point (jittered), the median as a bar (the offsets with no value are counted in `error_table`)."""
    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    intervals = sorted(errors["interval_s"].unique()) if len(errors) else list(INTERVALS_S)
    fig, axes = plots.figure("full", height=2.4, ncols=len(quantities), layout="constrained")
    rng = np.random.default_rng(0)
    for ax, q in zip(np.atleast_1d(axes), quantities):
        part = errors[errors["quantity"] == q]
        ticks = []
        for i, interval in enumerate(intervals):
            g = part[part["interval_s"] == interval]
            e = g["error"].dropna().to_numpy(float)
            if len(e):
                ax.scatter(i + rng.uniform(-0.25, 0.25, len(e)), e, s=3, alpha=0.35, lw=0,
                           color=plots.SOURCE_COLORS["reproduced"])
                ax.hlines(np.median(e), i - 0.3, i + 0.3, color="black", lw=1.2)
            ticks.append(f"{interval:g} s")
        ax.axhline(0, color="0.6", lw=0.6, zorder=0)
        ax.set_xticks(range(len(intervals)), ticks)
        ax.set_xlim(-0.6, len(intervals) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(LABELS.get(q, q))
        ax.set_xlabel("sampling interval")
    return fig


def model_input(given, profile: str | None = None, interval_s: float = 5.0) -> tuple[ErrorModel | None, list]:
    """The sampling-error model a notebook is given: notebook 04's table "04:sampling_error" (resolved through
    results/manifest.json for `profile`), an `error_table` CSV, or ""/None: none. Returns the model at `interval_s`
    (None when not measured there) and the files read (a report's inputs)."""
    from pathlib import Path

    if not given:
        return None, []

    if isinstance(given, str) and INPUT_REF.fullmatch(given.strip()):
        if profile is None:
            raise StudyError(f"the notebook input {given!r} needs the profile it was made with")
        path = notebook_output(given, profile).path
    else:
        path = Path(given)
    if not path.is_file():
        raise StudyError(f"sampling-error table {path} does not exist; pass notebook 04's '04:sampling_error'")
    return ErrorModel.from_table(pd.read_csv(path), interval_s), [path]
