"""Decisions under uncertainty (Sections VII-G and VII-I): intervals on every number that drives a comparison in
Tables IX/X, and how often each member would be chosen if the measurements were taken again.

- `wilson` — accuracy is k correct of n test images, so its interval is binomial (Wilson score); n is Table XI's
  test split (`test_images`) unless a table says how many images each member inferred (`n_images`).
- `with_intervals` — a Table IX/X-shaped frame plus `accuracy_lo/hi` and, for every resource column, `<col>_lo/hi`:
  a percentile bootstrap of the mean over repeats where there are >= 2, otherwise no interval and the row says
  `single run — no interval` (`resource_interval`).
- `difference_interval` / `separable` — whether two members differ by more than their noise (Newcombe's MOVER
  combination of the two intervals; for Wilson limits it is Newcombe's hybrid score interval).
- `draws` + `stability` — resample the tables N times and re-apply a priority order (`choice.narrow`) to each;
  the frequency with which each member is chosen says how stable the decision is. Accuracies are resampled
  over the test images (the sweep's per-image predictions; Binomial(n, acc) where there are none, e.g. the
  paper), resources over repeats (where there are >= 2) or else within `NoiseModel` (a stated relative noise).

Every resample comes from `numpy.random.default_rng(seed)`: the same seed gives the same frequencies.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from study import config, page, paper
from study.decision import choice
from study.errors import StudyError
from study.profiles import DEFAULT_RESAMPLES
from study.report import INPUT_REF, notebook_output

LEVEL = 0.95
NO_INTERVAL = "single run — no interval"
DEFAULT_CV = 0.10  # stated default noise of a single resource reading: 10 % relative standard deviation
ELAPSE_RESOLUTION_S = 1.0  # Tables IX/X print whole seconds: a printed elapse hides up to ±0.5 s
RESOURCE_COLUMNS = {kind: tuple(r.column for r in choice.RESOURCES if r.table == kind) for kind in ("IX", "X")}
REPEAT_COLUMNS = ("delta_cpu", "delta_mem", "elapse", "accuracy")  # what a sweep's run records hold per repeat


def resamples_for(profile: config.Profile | str, given: int = 0) -> int:
    """The number of resamples a notebook uses: `given` when > 0, else the profile's default (`profile.resamples`;
    a name no profile has: DEFAULT_RESAMPLES). A notebook's parameters may give the profile by the name its manifest
    records."""
    if given and given > 0:
        return int(given)
    if isinstance(profile, str):
        profile = config.PROFILES.get(profile)
    return profile.resamples if profile is not None else DEFAULT_RESAMPLES


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise StudyError(f"confidence level {level} is not between 0 and 1 (e.g. 0.95)")
    return NormalDist().inv_cdf(0.5 + level / 2)


def test_images() -> int:
    """Table XI's test split: the number of images each accuracy of Tables IX/X is a fraction of."""
    return int(paper.flower_split()["testing"].sum())


# --- intervals -----------------------------------------------------------------------------------

def wilson(k, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes in n trials (array-friendly; NaN where n is 0 or missing)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = _z(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    bad = ~(n > 0)
    return np.where(bad, np.nan, centre - half), np.where(bad, np.nan, centre + half)


def bootstrap_interval(values: Sequence[float], *, n_resamples: int = 2000, seed: int = 0,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (repeats); (NaN, NaN) with fewer than 2."""
    x = np.asarray(pd.Series(values, dtype=float).dropna())
    if len(x) < 2:
        return math.nan, math.nan
    means = x[np.random.default_rng(seed).integers(0, len(x), (n_resamples, len(x)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def difference_interval(a, a_lo, a_hi, b, b_lo, b_hi) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a − b from each value's own interval (Newcombe's MOVER; Wilson limits: his method 10)."""
    a, a_lo, a_hi, b, b_lo, b_hi = (np.asarray(v, float) for v in (a, a_lo, a_hi, b, b_lo, b_hi))
    d = a - b
    return d - np.sqrt((a - a_lo) ** 2 + (b_hi - b) ** 2), d + np.sqrt((a_hi - a) ** 2 + (b - b_lo) ** 2)


def separable(a, a_lo, a_hi, b, b_lo, b_hi) -> np.ndarray:
    """True where the interval of a − b excludes 0: the data separate the two values."""
    lo, hi = difference_interval(a, a_lo, a_hi, b, b_lo, b_hi)
    return (lo > 0) | (hi < 0)


def _test_counts(df: pd.DataFrame, n_test: int | Mapping[str, float] | pd.Series | None) -> np.ndarray:
    """Images each row's accuracy is a fraction of: `n_test` (a number or per model), else `n_images`, else Table XI."""
    if isinstance(n_test, (Mapping, pd.Series)):
        return df["model"].map(dict(n_test)).fillna(test_images()).to_numpy(float)
    if n_test is not None:
        return np.full(len(df), float(n_test))
    if "n_images" in df.columns:
        return pd.to_numeric(df["n_images"], errors="coerce").where(lambda s: s > 0, test_images()).to_numpy(float)
    return np.full(len(df), float(test_images()))


def with_intervals(table: pd.DataFrame | str | Path, kind: str, *, n_test=None, repeats: pd.DataFrame | None = None,
                   n_resamples: int = 2000, seed: int = 0, level: float = LEVEL) -> pd.DataFrame:
    """`table` (Table IX/X-shaped, the paper's or ours) with interval columns beside its numbers.

    `accuracy_lo/hi`: Wilson over `n_test` images (see `_test_counts`). `<resource>_lo/hi`: bootstrap of the mean
    over the member's repeats in `repeats` (`sweep_repeats`), when it has >= 2; `resource_interval` says which.
    """
    kind = kind.upper()
    df = table if isinstance(table, pd.DataFrame) and table.attrs.get("kind") == kind else choice.load_table(table, kind)
    df = df.copy()
    n = _test_counts(df, n_test)
    df["n_test"] = n.astype(int)
    df["accuracy_lo"], df["accuracy_hi"] = wilson(np.round(df["accuracy"].to_numpy(float) * n), n, level)
    reps = _repeat_groups(repeats)
    labels = []
    for i, model in enumerate(df["model"]):
        runs = reps.get(model)
        count = 0 if runs is None else len(runs)
        labels.append(f"bootstrap over {count} repeats ({level:.0%})" if count >= 2 else NO_INTERVAL)
        for col in RESOURCE_COLUMNS[kind]:
            values = runs[col] if count >= 2 and col in runs else ()
            lo, hi = bootstrap_interval(values, n_resamples=n_resamples, seed=seed + i, level=level)
            df.loc[df.index[i], [f"{col}_lo", f"{col}_hi"]] = lo, hi
    df["resource_interval"] = labels
    return df


def _repeat_groups(repeats: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if repeats is None or repeats.empty:
        return {}
    return {str(m): g for m, g in repeats.groupby("model", sort=False)}


# --- a sweep's repeats and per-image predictions ----------------------------------------------------

def read_records(out: str | Path) -> list[dict[str, Any]]:
    """Every run record of a sweep folder (`runs/<member>/r<k>.json`, written by `study.casestudy.finetune`;
    unreadable ones are skipped: the sweep reruns them)."""
    records = []
    for path in sorted(Path(out).glob("runs/*/r*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return records


def sweep_repeats(out: str | Path) -> pd.DataFrame:
    """One row per ok run of a sweep folder (`runs/<member>/r<k>.json`): model, repeat and Table IX's numbers."""
    rows = [{"model": r.get("member"), "repeat": r.get("repeat"), "config": str(r.get("config")),
             **{c: r.get("elapse_s" if c == "elapse" else c) for c in REPEAT_COLUMNS}}
            for r in read_records(out) if r.get("status") == "ok"]
    df = pd.DataFrame(rows, columns=["model", "repeat", "config", *REPEAT_COLUMNS])
    if df["config"].nunique() > 1:  # records of an older configuration are not repeats of this table's runs
        df = df[df["config"] == df["config"].iloc[-1]]
    df[list(REPEAT_COLUMNS)] = df[list(REPEAT_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    return df.drop(columns="config").reset_index(drop=True)


def sweep_predictions(out: str | Path) -> dict[str, pd.DataFrame]:
    """Per member, its per-image test predictions (`predictions/<member>.csv`: path, label, prediction)."""
    found = {}
    for path in sorted(Path(out).glob("predictions/*.csv")):
        df = pd.read_csv(path)
        if not {"path", "label", "prediction"} <= set(df.columns):
            raise StudyError(f"{path} lacks path/label/prediction columns; rerun the sweep for this member")
        found[path.stem] = df
    return found


def sweep_evidence(tables: choice.CaseStudyTables, sweep: str | Path | None = None
                   ) -> tuple[pd.DataFrame | None, dict[str, pd.DataFrame] | None, str]:
    """Repeats and per-image predictions of the sweep that wrote `tables` (default: the folder of its Table IX)."""
    if sweep is None and tables.ix is not None and Path(str(tables.ix.attrs.get("source", ""))).is_file():
        sweep = Path(tables.ix.attrs["source"]).parent
    if sweep is None:
        return None, None, "no sweep folder: accuracies Binomial, resources within the noise model"
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise StudyError(f"--sweep {sweep} is not a folder; pass the folder a sweep wrote (runs/, predictions/)")
    repeats, predictions = sweep_repeats(sweep), sweep_predictions(sweep)
    most = int(repeats.groupby("model").size().max()) if not repeats.empty else 0
    return repeats, predictions, (f"{sweep}: {len(repeats)} ok runs (at most {most} repeats per member), "
                                  f"per-image predictions of {len(predictions)} members")


# --- the noise model for single readings ---------------------------------------------------------

def _pct(x: float) -> str:
    return f"{100 * x:.2g}%" if 100 * x < 10 else f"{100 * x:.0f}%"


@dataclass(frozen=True)
class CvEstimate:
    """A measured relative noise of one resource: the median over members of each member's coefficient of
    variation over its repeats, its percentile bootstrap interval (members resampled, each with its own cv: a
    cluster bootstrap; NaN from a single member, where resampling members has nothing to vary), and the runs and
    members it comes from."""

    cv: float
    lo: float
    hi: float
    runs: int
    members: int

    def label(self) -> str:
        if self.members < 2:
            return f"measured: cv {_pct(self.cv)} from {self.runs} runs of one member (no interval)"
        return f"measured: cv {_pct(self.cv)} [{_pct(self.lo)}, {_pct(self.hi)}] from {self.runs} runs"


def _cv_estimate(groups: Sequence[np.ndarray], *, n_resamples: int, seed: int, level: float) -> CvEstimate | None:
    """`CvEstimate` from each member's repeats (members with < 2 values or a zero mean are left out)."""
    groups = [g[~np.isnan(g)] for g in groups]
    groups = [g for g in groups if len(g) >= 2 and g.mean() != 0]
    if not groups:
        return None
    cvs = np.array([g.std(ddof=1) / abs(g.mean()) for g in groups])
    runs = int(sum(len(g) for g in groups))
    if len(cvs) == 1:  # the bootstrap resamples members: one member would give a zero-width interval, not one
        return CvEstimate(float(cvs[0]), math.nan, math.nan, runs, 1)
    medians = np.median(cvs[np.random.default_rng(seed).integers(0, len(cvs), (n_resamples, len(cvs)))], axis=1)
    tail = 100 * (1 - level) / 2
    return CvEstimate(float(np.median(cvs)), float(np.percentile(medians, tail)),
                      float(np.percentile(medians, 100 - tail)), runs, len(groups))


@dataclass(frozen=True)
class NoiseModel:
    """How far a single resource reading could move if measured again: Normal(v, (cv·|v|)²) per resource key
    (`ix.delta_cpu`, `x.elapse`, ...), plus, for elapse, the whole second the tables round to (uniform ±0.5 s).

    `evidence` holds, per key, the measurement behind its cv (`CvEstimate`); `label(key)` says which noise model
    judges a value of that key: `measured: cv X [lo, hi] from n runs`, or `assumed: cv X`."""

    cv: Mapping[str, float] = field(default_factory=dict)
    default_cv: float = DEFAULT_CV
    source: str = f"stated default: {DEFAULT_CV:.0%} relative standard deviation for every single-run resource"
    evidence: Mapping[str, CvEstimate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.default_cv >= 0 or any(not v >= 0 for v in self.cv.values()):
            raise StudyError(f"noise model: relative standard deviations must be >= 0 (got {self.default_cv}, {dict(self.cv)})")

    def cv_of(self, key: str) -> float:
        return float(self.cv.get(key, self.default_cv))

    def interval(self, key: str, values, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Where a single reading `values` of resource `key` could lie if measured again (± z standard deviations)."""
        v = np.asarray(values, float)
        var = (self.cv_of(key) * np.abs(v)) ** 2 + (ELAPSE_RESOLUTION_S ** 2 / 12 if key.endswith("elapse") else 0.0)
        half = _z(level) * np.sqrt(var)
        return v - half, v + half

    def describe(self) -> str:
        own = ", ".join(f"{k} {v:.1%}" for k, v in self.cv.items())
        return (f"{self.source}" + (f" ({own}; others {self.default_cv:.0%})" if own else "")
                + f"; elapse also ±{ELAPSE_RESOLUTION_S / 2:g} s printed resolution")

    def label(self, key: str) -> str:
        """Which noise model judges a value of `key`: `measured: cv X [lo, hi] from n runs` or `assumed: cv X`."""
        return self.evidence[key].label() if key in self.evidence else f"assumed: cv {_pct(self.cv_of(key))}"

    @classmethod
    def from_repeats(cls, repeats: pd.DataFrame | None, default_cv: float = DEFAULT_CV, *, n_resamples: int = 2000,
                     seed: int = 0, level: float = LEVEL) -> NoiseModel:
        """The median coefficient of variation over members with >= 2 repeats, per Table IX resource, with its
        bootstrap interval (`evidence`); the stated default where no member has repeats (and for Table X, which
        is measured once per member)."""
        groups = {m: g for m, g in _repeat_groups(repeats).items() if len(g) >= 2}
        if not groups:
            return cls(default_cv=default_cv)
        evidence = {}
        for i, col in enumerate(RESOURCE_COLUMNS["IX"]):
            values = [pd.to_numeric(g[col], errors="coerce").to_numpy(float) for g in groups.values() if col in g]
            if est := _cv_estimate(values, n_resamples=n_resamples, seed=seed + i, level=level):
                evidence[f"ix.{col}"] = est
        return cls({k: e.cv for k, e in evidence.items()}, default_cv,
                   f"our repeats' median coefficient of variation over {len(groups)} members", evidence)

    def to_frame(self) -> pd.DataFrame:
        """One row per measured key and one for the default (`resource` '*'): cv, its interval, runs, label."""
        rows = [{"resource": k, "cv": self.cv_of(k), "cv_lo": e.lo if (e := self.evidence.get(k)) else math.nan,
                 "cv_hi": e.hi if e else math.nan, "runs": e.runs if e else 0, "members": e.members if e else 0,
                 "label": self.label(k)} for k in self.cv]
        rows.append({"resource": "*", "cv": self.default_cv, "cv_lo": math.nan, "cv_hi": math.nan, "runs": 0,
                     "members": 0, "label": self.label("*")})
        return pd.DataFrame(rows)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, source: str = "a saved noise model") -> NoiseModel:
        """The model `to_frame` wrote (e.g. `results/tables/noise_model.csv`)."""
        need = {"resource", "cv", "cv_lo", "cv_hi", "runs", "members"}
        if need - set(df.columns):
            raise StudyError(f"{source} lacks column(s) {', '.join(sorted(need - set(df.columns)))}; "
                             "write it with NoiseModel.to_frame()")
        rows = {str(r.resource): r for r in df.itertuples()}
        default = float(rows.pop("*").cv) if "*" in rows else DEFAULT_CV
        evidence = {k: CvEstimate(float(r.cv), float(r.cv_lo), float(r.cv_hi), int(r.runs), int(r.members))
                    for k, r in rows.items() if int(r.runs) > 0}
        return cls({k: float(r.cv) for k, r in rows.items()}, default, source, evidence)


def noise_model_input(given: str | Path | None, profile: str | None = None) -> tuple[NoiseModel, list[Path]]:
    """The noise model a notebook is given: another notebook's output "NN:name" (e.g. "04:noise_model", resolved
    through results/manifest.json for `profile`: missing or of another profile is one StudyError naming the
    notebook to run), a CSV `NoiseModel.to_frame` wrote, or ""/None: the stated default. Returns the model and the
    files it was read from (a report's inputs)."""
    if not given:
        return NoiseModel(), []

    if isinstance(given, str) and INPUT_REF.fullmatch(given.strip()):
        if profile is None:
            raise StudyError(f"the notebook input {given!r} needs the profile it was made with")
        path = notebook_output(given, profile).path
        source = f"{given} ({profile} profile)"
    else:
        path, source = Path(given), str(given)
    if not path.is_file():
        raise StudyError(f"noise model {path} does not exist; pass notebook 04's '04:noise_model' or a CSV "
                         "NoiseModel.to_frame() wrote")
    return NoiseModel.from_frame(pd.read_csv(path), source=f"the noise model of {source}"), [path]


def noise_reading(noise: NoiseModel, keys: Sequence[str]) -> str:
    """Which noise model judged single readings of `keys`: one clause per key, its label."""
    measured = [k for k in keys if k in noise.evidence]
    assumed = [k for k in keys if k not in noise.evidence]
    parts = [f"{k} {noise.label(k)}" for k in measured]
    if assumed:
        parts.append(f"{', '.join(assumed)} {noise.label(assumed[0])}" if len({noise.cv_of(k) for k in assumed}) == 1
                     else "; ".join(f"{k} {noise.label(k)}" for k in assumed))
    return "Single readings were judged by " + "; ".join(parts) + f" (source: {noise.source})."


# --- resampling and decision stability -----------------------------------------------------------

@dataclass
class Resampling:
    """What a decision-stability run used: its size, its seed and how each kind of number was resampled."""

    n_resamples: int
    seed: int
    noise: NoiseModel
    methods: dict[str, str] = field(default_factory=dict)  # resource key or "accuracy" -> how

    def describe(self) -> str:
        kinds = sorted(set(self.methods.values()))
        return f"{self.n_resamples} resamples, seed {self.seed}; " + "; ".join(kinds)


def draws(tables: choice.CaseStudyTables, *, n_resamples: int, seed: int = 0, noise: NoiseModel | None = None,
          n_test=None, repeats: pd.DataFrame | None = None,
          predictions: Mapping[str, pd.DataFrame] | None = None) -> tuple[Iterator[choice.CaseStudyTables], Resampling]:
    """`n_resamples` re-measured versions of `tables` (a generator) and how they were made.

    Accuracy: with per-image `predictions`, the test images are resampled (the same draw for every member, so
    members are compared on the same images), centred on the table's value; otherwise Binomial(n, acc) / n.
    Where a member has >= 2 `repeats`, the repeats are resampled too (their mean moves as a bootstrap mean).
    A resource with >= 2 repeats is resampled over them; a single reading moves within `noise`.
    """
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise StudyError(f"--bootstrap {n_resamples!r}: the number of resamples must be a whole number >= 1 (e.g. 1000)")
    noise = noise or NoiseModel()
    rng = np.random.default_rng(seed)
    reps = {m: g for m, g in _repeat_groups(repeats).items() if len(g) >= 2}
    info = Resampling(int(n_resamples), int(seed), noise)
    image_draws = _image_draws(predictions or {}, n_resamples, rng)
    columns: dict[tuple[str, str], np.ndarray] = {}
    for kind in ("IX", "X"):
        df = tables.table(kind)
        if df is None:
            continue
        n = _test_counts(df, n_test)
        acc = df["accuracy"].to_numpy(float)
        out = np.empty((n_resamples, len(df)))
        for j, model in enumerate(df["model"]):
            if model in image_draws and not np.isnan(acc[j]):
                boot, own = image_draws[model]
                out[:, j] = acc[j] + boot - own
                info.methods[f"{kind} accuracy {model}"] = "accuracy: test images resampled (per-image predictions)"
            else:
                ok = not np.isnan(acc[j]) and n[j] > 0
                out[:, j] = rng.binomial(int(n[j]), acc[j], n_resamples) / n[j] if ok else np.nan
                info.methods[f"{kind} accuracy {model}"] = "accuracy: Binomial(n test images, accuracy) / n"
            if kind == "IX" and model in reps:
                out[:, j] += _repeat_shift(reps[model]["accuracy"], n_resamples, rng)
        columns[(kind, "accuracy")] = np.clip(out, 0, 1)
        for col in RESOURCE_COLUMNS[kind]:
            values = df[col].to_numpy(float)
            key = f"{kind.lower()}.{col}"
            cv = noise.cv_of(key)
            out = values + rng.normal(0.0, 1.0, (n_resamples, len(df))) * cv * np.abs(values)
            if col == "elapse":
                out += rng.uniform(-ELAPSE_RESOLUTION_S / 2, ELAPSE_RESOLUTION_S / 2, out.shape)
            for j, model in enumerate(df["model"]):
                if kind == "IX" and model in reps:
                    out[:, j] = values[j] + _repeat_shift(reps[model][col], n_resamples, rng)
                    info.methods[f"{key} {model}"] = "resources: repeats resampled (bootstrap mean)"
                elif not np.isnan(values[j]):
                    info.methods[f"{key} {model}"] = f"resources: single reading within the noise model ({noise.describe()})"
            columns[(kind, col)] = out

    base = tables.values()
    where = {kind: base.index.get_indexer(tables.table(kind)["model"]) for kind in ("IX", "X") if tables.table(kind) is not None}

    def generate() -> Iterator[choice.CaseStudyTables]:
        for i in range(n_resamples):
            parts, wide = {}, base.copy()
            for kind in where:
                parts[kind] = tables.table(kind).copy()
            for (kind, col), values in columns.items():
                parts[kind][col] = values[i]
                column = np.full(len(base), np.nan)
                column[where[kind]] = values[i]
                wide[f"{kind.lower()}.{col}"] = column
            wide["accuracy"] = wide[tables.accuracy_key()]
            yield _Resample(parts.get("IX"), parts.get("X"), label=tables.label, wide=wide)

    return generate(), info


@dataclass
class _Resample(choice.CaseStudyTables):
    """One resample of the tables: `values()` is built with it (`draws`), not recomputed by every step of `narrow`."""

    wide: pd.DataFrame | None = None

    def values(self) -> pd.DataFrame:
        return self.wide.copy() if self.wide is not None else super().values()


def _repeat_shift(values: pd.Series, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How far the bootstrap mean of the repeats moves from their mean, per resample."""
    x = values.dropna().to_numpy(float)
    if len(x) < 2:
        return np.zeros(n_resamples)
    return x[rng.integers(0, len(x), (n_resamples, len(x)))].mean(axis=1) - x.mean()


def _image_draws(predictions: Mapping[str, pd.DataFrame], n_resamples: int,
                 rng: np.random.Generator) -> dict[str, tuple[np.ndarray, float]]:
    """Per member, its accuracy on each resample of the test images and on all of them.

    Members that predicted the same images share one draw of image indices (a paired comparison)."""
    by_images: dict[tuple, list[str]] = {}
    for model, df in predictions.items():
        if len(df):
            by_images.setdefault(tuple(df["path"].astype(str)), []).append(model)
    out = {}
    for paths, models in by_images.items():
        idx = rng.integers(0, len(paths), (n_resamples, len(paths)))
        for model in models:
            df = predictions[model]
            correct = (df["label"].to_numpy() == df["prediction"].to_numpy()).astype(float)
            out[model] = (correct[idx].mean(axis=1), float(correct.mean()))
    return out


def stability(tables: choice.CaseStudyTables, priorities: Mapping[str, Sequence[str]], *, n_resamples: int = 1000,
              seed: int = 0, tie_rule: choice.TieRule = "strict", noise: NoiseModel | None = None, n_test=None,
              repeats: pd.DataFrame | None = None, predictions: Mapping[str, pd.DataFrame] | None = None,
              ) -> pd.DataFrame:
    """Per priority order and member: how often it is chosen over `n_resamples` resamples (see `draws`).

    Columns: tables, priority, items, model, selected (count), frequency, point_choice (what the order picks on
    the tables as printed), n_resamples, seed, method. Members never chosen are omitted.
    """
    if tie_rule not in choice.TIE_RULES:  # `narrow` leaves this to `select`'s evidence step
        raise StudyError(f"unknown tie rule {tie_rule!r}; valid: {', '.join(choice.TIE_RULES)}")
    criteria = {name: tuple(map(choice.Criterion.parse, items)) for name, items in priorities.items()}
    point = {name: choice.narrow(tables, c, tie_rule=tie_rule)[0] for name, c in criteria.items()}
    generated, info = draws(tables, n_resamples=n_resamples, seed=seed, noise=noise, n_test=n_test,
                            repeats=repeats, predictions=predictions)
    counts: dict[str, dict[str, int]] = {name: {} for name in criteria}
    for resample in generated:
        for name, c in criteria.items():
            try:
                chosen = choice.narrow(resample, c, tie_rule=tie_rule)[0]
            except StudyError:  # e.g. no member passes a threshold in this resample
                chosen = "(none)"
            counts[name][chosen] = counts[name].get(chosen, 0) + 1
    rows = [{"tables": tables.label, "priority": name, "items": " > ".join(c.text for c in criteria[name]),
             "model": model, "selected": k, "frequency": k / n_resamples, "point_choice": model == point[name],
             "n_resamples": n_resamples, "seed": seed, "method": info.describe()}
            for name in criteria for model, k in sorted(counts[name].items(), key=lambda kv: -kv[1])]
    out = pd.DataFrame(rows)
    for name, model in point.items():  # the point choice is always listed, even when no resample picks it
        if not ((out["priority"] == name) & (out["model"] == model)).any():
            out = pd.concat([out, pd.DataFrame([{**rows[0], "priority": name, "model": model, "selected": 0,
                                                 "frequency": 0.0, "point_choice": True,
                                                 "items": " > ".join(c.text for c in criteria[name])}])],
                            ignore_index=True)
    out.attrs["resampling"] = info
    return out


def robustness(frequencies: pd.DataFrame, choices: Mapping[str, str] | None = None) -> str:
    """One sentence from `stability`'s frequencies: per tables and priority order, how often the choice (the
    stated one in `choices`, else what the rule picks on the printed tables) is picked, and the most frequent
    member where that is another."""
    n = int(frequencies["n_resamples"].iloc[0])
    per_tables: dict[str, list[str]] = {}
    for (label, name), part in frequencies.groupby(["tables", "priority"], sort=False):
        choice = (choices or {}).get(name) if label == "paper" else None
        choice = choice or part.loc[part["point_choice"], "model"].iloc[0]
        got = part.loc[part["model"] == choice, "frequency"]
        top = part.sort_values("frequency", ascending=False).iloc[0]
        text = f"{choice} ({name.split()[0]}) in {float(got.iloc[0]) if len(got) else 0.0:.0%}"
        if top["model"] != choice:
            text += f" (most often {top['model']}, {top['frequency']:.0%})"
        per_tables.setdefault(label, []).append(text)
    return (f"Over {n} resamples, the choice is kept: " +
            "; ".join(f"{label} tables: " + ", ".join(parts) for label, parts in per_tables.items()) + ".")


def plot_stability(frequencies: pd.DataFrame, *, top: int = 8, highlight: Sequence[str] = ()):
    """One panel per (tables, priority order): each member's selection frequency, the point choice dark. Panels
    share the frequency axis; the figure grows with the bars of its fullest row (one 7 pt label per bar)."""
    import textwrap

    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    groups = list(frequencies.groupby(["tables", "priority"], sort=False))
    ncols = min(2, len(groups))
    nrows = -(-len(groups) // ncols)
    bars = [min(top, len(part)) for _, part in groups]
    per_row = [max(bars[r * ncols:(r + 1) * ncols]) for r in range(nrows)]
    rows_in = [0.9 + 1.3 * plots.ROW_PITCH_IN * n for n in per_row]  # title, x axis and the bars of each row
    fig, axes = plots.figure("full", height=min(page.FIGURE_MAX_HEIGHT_IN, sum(rows_in)), nrows=nrows, ncols=ncols,
                             squeeze=False, sharex=True, layout="constrained", gridspec_kw={"height_ratios": rows_in})
    for ax, ((label, name), part) in zip(axes.flat, groups):
        part = part.sort_values("frequency", ascending=False).head(top).iloc[::-1]
        colors = [plots.SOURCE_COLORS["reproduced"] if p else "#bbbbbb" for p in part["point_choice"]]
        ax.barh(part["model"].str.removeprefix("mobilenet_"), part["frequency"], color=colors, height=0.7,
                edgecolor=["black" if m in highlight else "none" for m in part["model"]])
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(f"{label}: {name.split()[0]}\n" + textwrap.fill(str(part["items"].iloc[0]), 36))
        ax.tick_params(axis="x", labelbottom=True)
    for ax, ((_, _), part) in zip(axes[-1], groups[(nrows - 1) * ncols:]):
        ax.set_xlabel(f"selection frequency ({int(part['n_resamples'].iloc[0])} resamples)")
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    return fig


def separability(tables_with_intervals: pd.DataFrame, reference: str, column: str = "accuracy") -> pd.DataFrame:
    """Every member against `reference` on `column`: the difference, its interval and whether the data separate them."""
    df = tables_with_intervals.set_index("model")
    if reference not in df.index:
        raise StudyError(f"model {reference!r} is not in the table; valid names: {', '.join(df.index)}")
    ref = df.loc[reference]
    lo, hi = difference_interval(df[column], df[f"{column}_lo"], df[f"{column}_hi"],
                                 ref[column], ref[f"{column}_lo"], ref[f"{column}_hi"])
    out = pd.DataFrame({"model": df.index, "reference": reference, "column": column,
                        "difference": df[column].to_numpy() - ref[column], "diff_lo": lo, "diff_hi": hi})
    out["separable"] = (out["diff_lo"] > 0) | (out["diff_hi"] < 0)
    return out[out["model"] != reference].reset_index(drop=True)
