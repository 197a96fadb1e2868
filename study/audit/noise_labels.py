"""The paper audit's second verdict: does each *comparative* claim survive the measurement noise?

`study.audit.sections` says whether a claim follows from the printed tables (`reproduced`). This module labels the claims
that compare members — "uses less X than N models", ranks, "best", "not the most resource consuming",
"more acceptable", "the most suitable model" — by what intervals on the compared numbers say (`noise`):

- `supported` — every comparison the claim rests on is separated by the data;
- `within noise` — the claim (true or false as printed) rests on differences the intervals cannot separate;
- `contradicted` — a comparison the claim rests on goes the other way, separably;
- `within measurement error` — `supported` or `contradicted` by the intervals, but only through a difference of
  Table IX's ΔCPU, ΔMEM or elapse smaller than the error of the paper's 5 s sampling at the compared members' run
  lengths (`sampling_error.ErrorModel`, measured in notebook 04): taken as no separation, the label would change.

Intervals (`noise_evidence` states them): accuracy, Wilson over the images each member inferred (Table XI's test
split, fewer for the runs that stopped early); a resource, the `uncertainty.NoiseModel` around its single reading
(the paper has one run per member). Two members are separated when the interval of their difference excludes 0.
The decisions (VII-G.1, VII-I) are labelled by how often the paper's choice is picked over resamples
(`uncertainty.stability`): at least `STABLE` supported, below `RARE` contradicted.

The sampling error of two members compared on a Table IX resource is the root sum of squares of each member's
(`ErrorModel.bound` at the member's printed elapse); a claim is labelled `within measurement error` when the
labels computed with every separation smaller than it taken as `within noise` differ from the plain ones.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from study.casestudy import sampling_error
from study.decision import choice, uncertainty
from study.errors import StudyError

LABELS = ("supported", "within noise", "contradicted", "within measurement error")
# Each label in one sentence, for a reader (the draft defines them where it first uses them).
DEFINITIONS = {
    "supported": "every comparison the claim rests on is separated by the intervals on the compared numbers",
    "within noise": "the claim rests on differences the intervals cannot separate, whether it is true or false as printed",
    "contradicted": "a comparison the claim rests on goes the other way, separably",
    "within measurement error": "the label rests on a difference of Table IX's resources smaller than the error of "
                                "the paper's sampling interval",
}
MEASURED = {"ix.delta_cpu": "delta_cpu", "ix.delta_mem": "delta_mem", "ix.elapse": sampling_error.ELAPSE}
COLUMNS = ["noise", "noise_evidence"]
RESAMPLES, SEED = 200, 0  # the audit's decision-stability run (notebook 07 may pass others)
STABLE, RARE = 0.95, 0.05  # selection frequency of the paper's choice: supported / contradicted thresholds


class Bounds:
    """Every member's value and interval for each column of `tables.values()`; with `measurement`, compare() can
    take separations of Table IX resources smaller than the sampling error as within noise (`coarse`)."""

    def __init__(self, tables: choice.CaseStudyTables, n_test, noise: uncertainty.NoiseModel, level: float,
                 measurement: sampling_error.ErrorModel | None = None, coarse: bool = False):
        self.value = tables.values()
        self.measurement, self.coarse = measurement, coarse
        self.lo, self.hi = self.value.copy(), self.value.copy()
        for key in self.value.columns:
            if key.endswith("accuracy"):
                n = self.value.index.map(lambda m: n_test.get(m, uncertainty.test_images())).to_numpy(float)
                lo, hi = uncertainty.wilson(np.round(self.value[key].to_numpy(float) * n), n, level)
            else:
                lo, hi = noise.interval(key, self.value[key], level)
            self.lo[key], self.hi[key] = lo, hi

    def compare(self, key: str, model: str) -> pd.Series:
        """Per other member: +1 separably larger than `model`, -1 separably smaller, 0 within noise (NaN: no value)."""
        v, lo, hi = self.value[key], self.lo[key], self.hi[key]
        a, b = uncertainty.difference_interval(v, lo, hi, v[model], lo[model], hi[model])
        out = pd.Series(np.select([a > 0, b < 0], [1, -1], 0), index=v.index, dtype=float)
        if self.coarse and self.measurement is not None and key in MEASURED:
            out[(v - v[model]).abs() < self.measurement_error(key, model)] = 0
        return out.where(v.notna()).drop(model).dropna()

    def measurement_error(self, key: str, model: str) -> pd.Series:
        """Per member, the sampling error of its difference from `model` on `key` (-inf where not measured, so no
        difference is below it)."""
        runs = self.value["ix.elapse"] if "ix.elapse" in self.value else pd.Series(np.nan, index=self.value.index)
        err = runs.map(lambda r: self.measurement.bound(MEASURED[key], r))
        return np.sqrt(err ** 2 + err[model] ** 2).fillna(-np.inf)

    def text(self, key: str, model: str) -> str:
        return f"{model} {key} {self.value.loc[model, key]:.4g} [{self.lo.loc[model, key]:.4g}, {self.hi.loc[model, key]:.4g}]"


def _range_label(low: int, high: int, claimed: int) -> str:
    return "supported" if low == high == claimed else "within noise" if low <= claimed <= high else "contradicted"


def _count(b: Bounds, model: str, key: str, n: int) -> tuple[str, str]:
    """'uses less X than n models': at least n members use separably more."""
    c = b.compare(key, model)
    more, amb, less = int((c > 0).sum()), int((c == 0).sum()), int((c < 0).sum())
    label = "supported" if more >= n else "contradicted" if more + amb < n else "within noise"
    return label, (f"{b.text(key, model)}: {more} member(s) use separably more, {amb} within noise, "
                   f"{less} separably less; the claimed {n} needs {max(n - more, 0)} of those within noise")


def _rank(b: Bounds, model: str, key: str, rank: int) -> tuple[str, str]:
    """'the r-th best' on `key` (higher is better): the ranks the intervals allow."""
    c = b.compare(key, model)
    better, amb = int((c > 0).sum()), int((c == 0).sum())
    return _range_label(better + 1, better + amb + 1, rank), (
        f"{b.text(key, model)}: {better} member(s) separably better, {amb} within noise: rank {better + 1}"
        + (f"-{better + amb + 1}" if amb else "") + f" (claimed {rank})")


def _direction(b: Bounds, model: str, other: str, keys: Sequence[str], sign: int, what: str) -> tuple[str, str]:
    """`model` is `what` than `other` on every key (sign -1: smaller, +1: larger)."""
    per = {k: int(b.compare(k, other).get(model, 0)) * sign for k in keys}
    label = ("contradicted" if any(v < 0 for v in per.values()) else
             "supported" if all(v > 0 for v in per.values()) else "within noise")
    words = {1: f"separably {what}", 0: "within noise", -1: "separably the opposite"}
    return label, f"{model} vs {other}: " + "; ".join(f"{k} {words[v]}" for k, v in per.items())


def _not_heaviest(b: Bounds, model: str, keys: Sequence[str]) -> tuple[str, str]:
    """`model` is not the most resource-consuming member on any of `keys`."""
    parts, labels = [], []
    for k in keys:
        c = b.compare(k, model)
        heavier, amb = int((c > 0).sum()), int((c == 0).sum())
        labels.append("supported" if heavier else "within noise" if amb else "contradicted")
        parts.append(f"{k}: {heavier} separably heavier, {amb} within noise")
    label = "contradicted" if "contradicted" in labels else "within noise" if "within noise" in labels else "supported"
    return label, f"{model}: " + "; ".join(parts)


def _above(b: Bounds, model: str, key: str, threshold: float) -> tuple[str, str]:
    """'the worst among members better than threshold'."""
    lo, hi = b.lo[key], b.hi[key]
    c = b.compare(key, model)
    straddle = [m for m in b.value.index if lo[m] <= threshold <= hi[m]]
    sure_above = [m for m in c.index if lo[m] > threshold]
    if hi[model] < threshold or any(c[m] < 0 for m in sure_above):
        label = "contradicted"
    elif lo[model] > threshold and all(c[m] > 0 or hi[m] < threshold for m in c.index):
        label = "supported"
    else:
        label = "within noise"
    return label, (f"{b.text(key, model)}; {len(straddle)} member(s) have an interval containing {threshold:g}, "
                   f"{len(sure_above)} other(s) are separably above it")


def _decision(freq: pd.DataFrame, name: str, choice: str) -> tuple[str, str]:
    part = freq[freq["priority"] == name]
    got = part.loc[part["model"] == choice, "frequency"]
    f = float(got.iloc[0]) if len(got) else 0.0
    top = part.sort_values("frequency", ascending=False).iloc[0]
    label = "supported" if f >= STABLE else "contradicted" if f < RARE else "within noise"
    return label, (f"{choice} chosen in {f:.1%} of {int(part['n_resamples'].iloc[0])} resamples (seed "
                   f"{int(part['seed'].iloc[0])}); most often {top['model']} ({top['frequency']:.1%}); "
                   f"thresholds: supported >= {STABLE:.0%}, contradicted < {RARE:.0%}")


def label(claims: pd.DataFrame, count_claims: Sequence, *, best: str, fourth: str, n_test: Mapping[str, float],
          tables: choice.CaseStudyTables | None = None, noise: uncertainty.NoiseModel | None = None,
          n_resamples: int = RESAMPLES, seed: int = SEED, level: float = uncertainty.LEVEL,
          measurement: sampling_error.ErrorModel | None = None) -> pd.DataFrame:
    """`claims` (the audit) with `noise` / `noise_evidence` for its comparative claims ('' elsewhere).

    `count_claims` are the audit's "N (p%)" claims (claim_id, model, resource, n); `best` / `fourth` the paper's
    two choices; `n_test` the images each member's accuracy is a fraction of; `measurement` the error of the
    paper's sampling interval (None: no claim is labelled `within measurement error`).
    """
    tables = tables or choice.CaseStudyTables.paper()
    noise = noise or uncertainty.NoiseModel()
    b = Bounds(tables, dict(n_test), noise, level)
    found = _labels(b, tables, count_claims, best, fourth)
    if measurement is not None:
        coarse = _labels(Bounds(tables, dict(n_test), noise, level, measurement, coarse=True), tables, count_claims,
                         best, fourth)
        found = within_measurement_error(found, coarse, measurement)
    freq = uncertainty.stability(tables, choice.PAPER_PRIORITIES, n_resamples=n_resamples, seed=seed,
                                 noise=noise, n_test=n_test)
    names = list(choice.PAPER_PRIORITIES)
    found.update({
        "VII-G.1.decision": _decision(freq, names[0], choice.PAPER_CHOICES[names[0]]),
        "VII-I.decision": _decision(freq, names[1], choice.PAPER_CHOICES[names[1]]),
    })
    missing = sorted(set(found) - set(claims["claim_id"]))
    if missing:
        raise StudyError(f"noise labels for claims the audit does not have: {', '.join(missing)}")
    measured = [f"{k} {noise.label(k)}" for k in noise.evidence]
    intervals = (f"95% intervals: accuracy Wilson over the images inferred; resources {noise.describe()}; noise model: "
                 + "; ".join(measured + [f"others {noise.label('*')}"]) if level == 0.95 else f"{level:.0%} intervals")
    out = claims.copy()
    out["noise"] = out["claim_id"].map(lambda i: found[i][0] if i in found else "")
    out["noise_evidence"] = out["claim_id"].map(lambda i: f"{found[i][1]} ({intervals})" if i in found else "")
    out.attrs.update(claims.attrs, stability=freq)
    return out


def noise_table(claims: pd.DataFrame) -> pd.DataFrame:
    """Comparative claims (a `noise` label) counted by reproduced verdict x noise label: one column per label of
    `LABELS` whether it occurs or not, so two runs' tables always have the same columns (`study compare`)."""
    comparative = claims[claims["noise"] != ""]
    table = pd.crosstab(comparative["reproduced"], comparative["noise"])
    return table.reindex(columns=[*LABELS, *sorted(set(table.columns) - set(LABELS))], fill_value=0).reset_index()


def within_measurement_error(plain: Mapping[str, tuple[str, str]], coarse: Mapping[str, tuple[str, str]],
                             measurement: sampling_error.ErrorModel) -> dict[str, tuple[str, str]]:
    """`plain` labels, with `within measurement error` where a `supported` / `contradicted` one changes once the
    separations smaller than the sampling error are taken as within noise (`coarse`)."""
    out = dict(plain)
    for i, (got, why) in plain.items():
        if got in ("supported", "contradicted") and i in coarse and coarse[i][0] != got:
            out[i] = ("within measurement error", f"{why}; {got} only through difference(s) smaller than the "
                      f"{measurement.label()} (without them: {coarse[i][0]})")
    return out


def _labels(b: Bounds, tables: choice.CaseStudyTables, count_claims: Sequence, best: str, fourth: str
            ) -> dict[str, tuple[str, str]]:
    """The labels of the claims that compare members on the tables' values (not the decisions)."""
    train = [r.key for r in tables.resources() if r.phase == "training"]
    infer = [r.key for r in tables.resources() if r.phase == "inference"]
    names = list(choice.PAPER_PRIORITIES)
    threshold = next(c.threshold for c in map(choice.Criterion.parse, choice.PAPER_PRIORITIES[names[1]])
                     if c.kind == "constraint")
    found: dict[str, tuple[str, str]] = {}
    for c in count_claims:
        found[f"{c.claim_id}.count"] = found[f"{c.claim_id}.percent"] = _count(b, c.model, c.resource, c.n)
    found.update({
        "VII-G.1.best": _rank(b, best, "x.accuracy", 1),
        "VII-G.2.fourth": _rank(b, fourth, "x.accuracy", 4),
        "VII-G.2.worst_above_62": _above(b, fourth, "x.accuracy", threshold),
        "VII-G.1.not_heaviest": _not_heaviest(b, best, train),
        "VII-G.2.not_heaviest": _not_heaviest(b, best, infer),
        "VII-G.2.more_acceptable": _direction(b, fourth, best, infer, -1, "lighter"),
        "VII-G.2.demands_more": _direction(b, fourth, best, train, 1, "heavier"),
    })
    return found
