"""Noise that covers a re-run: how far the same cells moved between earlier runs of this machine.

Back-to-back repeats inside one run (`tables/noise_model.csv`) miss how much a machine's speed drifts from hour to
hour. `between_runs(snapshots)` measures that drift from the results history (`study.runs.history`): for every
resource column of the compared tables, each row's coefficient of variation over the snapshots of one machine and
profile, the median over rows per noise key (as the within-run model pools its members). `judging(a, b, history)`
is the model a comparison uses: per key, the larger of the within-run model (measured or stated) and the
between-run one, its source naming both.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from study.decision import uncertainty
from study.runs import compare, history

MIN_RUNS = 3  # snapshots of one machine and profile before their spread counts as between-run noise


def same_machine(snapshots: Sequence[Path], machine: dict, profile: str) -> list[Path]:
    """The snapshots made on `machine` (CPU model and cores) with `profile`."""
    want = (machine.get("cpu_model"), machine.get("cores"))
    out = []
    for snap in snapshots:
        info = history.read_info(snap)
        got = info.get("machine") or {}
        if info.get("profile") == profile and (got.get("cpu_model"), got.get("cores")) == want:
            out.append(snap)
    return out


def _values(folder: Path, spec: compare.TableSpec) -> dict[tuple[str, str], float]:
    """(row key, column) -> value of the resource columns of one table of one snapshot."""
    opened = compare.ResultsFolder.open(folder, "history")
    df = opened.table(spec.name)
    if df is None:
        return {}
    out = {}
    for key, row in compare._keyed(df, spec.keys).items():
        for c in spec.columns:
            if c.kind == "resource" and c.name in row.index:
                v = pd.to_numeric(row[c.name], errors="coerce")
                if pd.notna(v):
                    out[(key, c.name)] = float(v)
    return out


def between_runs(snapshots: Sequence[Path]) -> uncertainty.NoiseModel | None:
    """The between-run noise of these snapshots (one machine and profile); None below MIN_RUNS snapshots."""
    if len(snapshots) < MIN_RUNS:
        return None
    cv: dict[str, float] = {}
    evidence: dict[str, uncertainty.CvEstimate] = {}
    for spec in compare.TABLES:
        per_cell: dict[tuple[str, str], list[float]] = {}
        for snap in snapshots:
            for cell, v in _values(snap, spec).items():
                per_cell.setdefault(cell, []).append(v)
        by_key: dict[str, list[float]] = {}
        for (_, column), values in per_cell.items():
            arr = np.asarray(values, float)
            if len(arr) >= MIN_RUNS and arr.mean() != 0:
                key = next(c.noise or c.name for c in spec.columns if c.name == column)
                by_key.setdefault(key, []).append(float(arr.std(ddof=1) / abs(arr.mean())))
        for key, cvs in by_key.items():
            arr = np.asarray(cvs)
            cv[key] = float(np.median(arr))
            evidence[key] = uncertainty.CvEstimate(cv[key], float(np.min(arr)), float(np.max(arr)),
                                                   len(snapshots), len(arr))
    if not cv:
        return None
    return uncertainty.NoiseModel(cv, source=f"between-run spread of {len(snapshots)} earlier runs of this machine "
                                             "(results/history/)", evidence=evidence)


def combine(within: uncertainty.NoiseModel, between: uncertainty.NoiseModel | None) -> uncertainty.NoiseModel:
    """Per key the larger cv of the two models (its evidence with it); the within-run default for other keys."""
    if between is None:
        return within
    keys = set(within.cv) | set(between.cv)
    cv, evidence = {}, {}
    for k in keys:
        wins = between if between.cv_of(k) > within.cv_of(k) else within
        cv[k] = wins.cv_of(k)
        if k in wins.evidence:
            evidence[k] = wins.evidence[k]
    return uncertainty.NoiseModel(cv, within.default_cv, f"{within.source}; widened by the {between.source}",
                                  evidence)


def judging(a: str | Path, b: str | Path, earlier: Sequence[Path] = ()) -> uncertainty.NoiseModel:
    """The noise model that judges A against B: the folders' own (measured repeats, else stated), widened by the
    between-run spread of `earlier` snapshots (`same_machine` picks them)."""
    within = compare.noise_model(compare.ResultsFolder.open(a, "A"), compare.ResultsFolder.open(b, "B"))
    return combine(within, between_runs(earlier))
