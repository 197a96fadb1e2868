"""Formula 1 of Section VII-G and the per-run summaries of Table IX.

    ΔS_avg = (1/n) Σ S_running − (1/m) Σ S_cooldown                                   (Formula 1)

S is a sampled usage (CPU %, memory %), the running mean is over the n samples taken while training, the
cool-down mean over the m samples of *both* cool-down periods (the paper: 6 before + 6 after, "m = 12").
`summarize` turns one run's samples into a Table IX row; `aggregate` averages repeats and gives the spread.

Each row also says how regular the sampling was (`regularity`: median and largest interval between samples,
grid slots skipped after stalls), and `validity` names the reason a run's samples cannot carry Formula 1
(too few samples covering a full interval in a phase), so such a run is `invalid`, not silently averaged.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

RUNNING = "running"
COOLDOWN = ("cooldown-before", "cooldown-after")


def delta(samples: pd.DataFrame, column: str, *, running: str = RUNNING,
          cooldown: tuple[str, ...] = COOLDOWN) -> float:
    """Formula 1 for `column`: mean while running − mean while cooling down (NaN when either side is empty)."""
    run = pd.to_numeric(samples.loc[samples["phase"] == running, column], errors="coerce").dropna()
    cool = pd.to_numeric(samples.loc[samples["phase"].isin(cooldown), column], errors="coerce").dropna()
    if run.empty or cool.empty:
        return math.nan
    return float(run.mean() - cool.mean())


def running_mean(samples: pd.DataFrame, column: str, running: str = RUNNING) -> float:
    """Plain mean while running (GPU columns; Table X, which has no cool-down)."""
    values = pd.to_numeric(samples.loc[samples["phase"] == running, column], errors="coerce").dropna()
    return float(values.mean()) if not values.empty else math.nan


# How regular the sampling of a run was (the sampler skips slots after a stall instead of bunching samples).
REGULARITY_COLUMNS = ("interval_median_s", "interval_max_s", "missed_slots")
# The numeric summary columns of one run, in Table IX order after the paper's own.
SUMMARY_COLUMNS = ("delta_cpu", "delta_mem", "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb", "gpu",
                   "gpu_memory", "n_samples", *REGULARITY_COLUMNS)
MIN_RUNNING_SAMPLES = 2  # a mean "while running" over fewer is one reading, not a usage


def intervals(samples: pd.DataFrame) -> pd.Series:
    """Seconds each sample's CPU values cover (time since the previous sample; the first since sampler start)."""
    t = pd.to_numeric(samples.get("t", pd.Series(dtype=float)), errors="coerce")
    return t.diff().fillna(t)


def regularity(samples: pd.DataFrame) -> dict[str, float | int]:
    """Median and largest interval between samples, and grid slots skipped after stalls (`missed` column)."""
    dt = intervals(samples).dropna()
    missed = pd.to_numeric(samples.get("missed", pd.Series(dtype=float)), errors="coerce").fillna(0)
    return {"interval_median_s": float(dt.median()) if not dt.empty else math.nan,
            "interval_max_s": float(dt.max()) if not dt.empty else math.nan,
            "missed_slots": int(missed.sum())}


def validity(samples: pd.DataFrame, interval: float, *, min_running: int = MIN_RUNNING_SAMPLES,
             min_cooldown: int = 1, cooldown: tuple[str, ...] = COOLDOWN) -> str:
    """Why these samples cannot carry Formula 1, or "" when they can.

    A sample is valid when its CPU values cover at least half the sampling `interval` (a sample right after
    another measures noise); each cool-down period needs `min_cooldown` valid samples, the running phase
    `min_running`.
    """
    valid = samples[intervals(samples) >= 0.5 * interval]
    counts = valid["phase"].value_counts()
    problems = [f"{counts.get(phase, 0)} valid sample(s) in {phase} (need {need})"
                for phase, need in ((cooldown[0], min_cooldown), (RUNNING, min_running), (cooldown[1], min_cooldown))
                if counts.get(phase, 0) < need]
    return "too few samples for Formula 1: " + ", ".join(problems) if problems else ""


def summarize(samples: pd.DataFrame) -> dict[str, float | int]:
    """One run's Table IX measurements from its samples (Formula 1 for system and process-tree CPU / memory)."""
    rss = pd.to_numeric(samples.get("tree_rss_mb", pd.Series(dtype=float)), errors="coerce").dropna()
    return {
        "delta_cpu": delta(samples, "cpu"),
        "delta_mem": delta(samples, "mem"),
        "delta_cpu_tree": delta(samples, "tree_cpu"),
        "delta_mem_tree": delta(samples, "tree_mem"),
        "peak_rss_mb": float(rss.max()) if not rss.empty else math.nan,
        "gpu": running_mean(samples, "gpu"),
        "gpu_memory": running_mean(samples, "gpu_memory"),
        "n_samples": int(len(samples)),
        **regularity(samples),
    }


def aggregate(runs: pd.DataFrame, by: str = "model", values: tuple[str, ...] = ("delta_cpu", "delta_mem",
              "elapse_s", "accuracy", "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb", "gpu", "gpu_memory"),
              ) -> pd.DataFrame:
    """Mean per `by` over repeats, plus `<value>_std` (sample standard deviation; NaN with one repeat)."""
    grouped = runs.groupby(by, sort=False)
    mean = grouped[list(values)].mean()
    std = grouped[list(values)].std(ddof=1).add_suffix("_std")
    out = mean.join(std)
    out["repeats"] = grouped.size()
    out["n_samples"] = grouped["n_samples"].sum() if "n_samples" in runs else np.nan
    # regularity over all repeats: the typical and the worst interval, every skipped slot
    for column, how in (("interval_median_s", "median"), ("interval_max_s", "max"), ("missed_slots", "sum")):
        out[column] = grouped[column].agg(how) if column in runs else np.nan
    return out.reset_index()
