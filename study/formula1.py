"""Formula 1 of Section VII-G and the per-run summaries of Table IX.

    ΔS_avg = (1/n) Σ S_running − (1/m) Σ S_cooldown                                   (Formula 1)

S is a sampled usage (CPU %, memory %), the running mean is over the n samples taken while training, the
cool-down mean over the m samples of *both* cool-down periods (the paper: 6 before + 6 after, "m = 12").
`summarize` turns one run's samples into a Table IX row; `aggregate` averages repeats and gives the spread.
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


# The numeric summary columns of one run, in Table IX order after the paper's own.
SUMMARY_COLUMNS = ("delta_cpu", "delta_mem", "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb", "gpu",
                   "gpu_memory", "n_samples")


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
    return out.reset_index()
