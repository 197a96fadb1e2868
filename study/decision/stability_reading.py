"""The decision under uncertainty, read (Sections VII-G and VII-I; notebook 06): which members the test split can
tell apart, and how often the paper's two choices survive a re-measurement.

The paper prints one number per member and resource and chooses on them as if they were exact. Whether that
choice stands depends on two things this module puts into words and tables, on the paper's tables and on ours:

- `paper_intervals` / `our_intervals` — Tables IX and X with an interval beside every number
  (`uncertainty.with_intervals`): accuracy is k of n test images (Wilson), a resource has a bootstrap interval
  only where a sweep repeated the member.
- `accuracy_separation` / `interval_reading` — how wide an accuracy's interval is against the gaps between
  members adjacent in accuracy, and which members the data cannot separate from the most accurate one: when the
  interval is wider than most gaps, "the best performing member" is a pick among equals.
- `stability_table` / `draft_numbers` — the selection frequency of every member when the tables are resampled
  and the paper's priority orders re-applied (`uncertainty.stability`), and the two percentages the paper
  draft quotes: how often each of the paper's choices is kept.

Every sentence is generated from the tables (notebook prose carries no typed numbers: tests/test_notebook_prose.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from study import paper
from study.decision import choice, uncertainty

# the draft's name for each of choice.PAPER_PRIORITIES, in its order: decision_stability_paper_choice_<key>
DRAFT_KEYS: tuple[str, ...] = ("accuracy", "resources")
RANKING_COLUMNS: tuple[str, ...] = ("model", "accuracy", "accuracy_lo", "accuracy_hi", "n_test", "resource_interval")


# --- the tables with intervals -------------------------------------------------------------------

def paper_intervals(inferred: Mapping[str, float]) -> dict[str, pd.DataFrame]:
    """The paper's Tables IX and X with 95 % intervals, `{"IX": ..., "X": ...}`.

    `inferred`: per member, the test images its accuracy is a fraction of (`audit.section_vii.inferred_images`: the runs that
    stopped early inferred fewer than Table XI's split), so each Wilson interval has the right n. The paper ran
    every member once, so its resources have no interval (`uncertainty.NO_INTERVAL`).
    """
    return {kind: uncertainty.with_intervals(load(), kind, n_test=dict(inferred))
            for kind, load in (("IX", paper.finetuning), ("X", paper.testing))}


@dataclass(frozen=True)
class SweepEvidence:
    """What one of our sweeps holds beyond its tables: repeats (resource intervals, resampling over runs) and
    per-image predictions (accuracy resampled over the images themselves, and the test split's size)."""

    repeats: pd.DataFrame | None
    predictions: dict[str, pd.DataFrame] | None
    note: str  # what was found, for the notebook to print

    @property
    def n_test(self) -> dict[str, int] | None:
        """Per member, the images of the sweep's own test split (None without predictions: Table XI's split)."""
        return {m: len(p) for m, p in (self.predictions or {}).items()} or None


def sweep_evidence(ours: choice.CaseStudyTables) -> SweepEvidence:
    """The repeats and predictions of the sweep folder that wrote `ours` (`uncertainty.sweep_evidence`)."""
    repeats, predictions, note = uncertainty.sweep_evidence(ours)
    return SweepEvidence(repeats, predictions, note)


def our_intervals(ours: choice.CaseStudyTables, repeats: pd.DataFrame | None = None,
                  n_test: Mapping[str, float] | None = None, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Our Tables IX and X (those `ours` holds) with 95 % intervals, `{"IX": ..., "X": ...}`.

    Repeats and the per-member test split belong to the fine-tuning sweep, so they apply to Table IX only; Table
    X (the browser run, one reading per member) gets Wilson intervals over Table XI's split and no resource
    interval. `seed` fixes the bootstrap over repeats.
    """
    return {kind: uncertainty.with_intervals(df, kind, repeats=repeats if kind == "IX" else None, seed=seed,
                                             n_test=n_test if kind == "IX" else None)
            for kind, df in (("IX", ours.ix), ("X", ours.x)) if df is not None}


def accuracy_ranking(table_with_intervals: pd.DataFrame, top: int = 8) -> pd.DataFrame:
    """The `top` most accurate members with their accuracy interval and what their resources' intervals rest on."""
    cols = [c for c in RANKING_COLUMNS if c in table_with_intervals.columns]
    return table_with_intervals.sort_values("accuracy", ascending=False)[cols].head(top)


# --- what the accuracy intervals let us say ---------------------------------------------------------

@dataclass(frozen=True)
class AccuracySeparation:
    """How finely a table's accuracies separate members: the median Wilson half-width against the gaps between
    members adjacent in accuracy, and the members within noise of the most accurate one."""

    most_accurate: str
    half_width: float  # median half-width of the accuracy intervals
    narrower: float  # share of the gaps between members adjacent in accuracy that are narrower than `half_width`
    separability: pd.DataFrame  # every other member against `most_accurate` (uncertainty.separability)

    @property
    def within_noise(self) -> list[str]:
        """The members the data cannot tell apart from the most accurate one."""
        return list(self.separability.loc[~self.separability["separable"], "model"])

    def text(self) -> str:
        return (f"On the paper's test split an accuracy's {uncertainty.LEVEL:.0%} Wilson interval is "
                f"±{self.half_width:.3f} (median half-width), wider than {self.narrower:.0%} of the gaps between "
                f"members adjacent in accuracy. {len(self.within_noise)} of the {len(self.separability)} other "
                f"members are within noise of the most accurate, `{self.most_accurate}`: "
                f"{', '.join(self.within_noise)}.")


def accuracy_separation(table_with_intervals: pd.DataFrame) -> AccuracySeparation:
    """`AccuracySeparation` of a table with accuracy intervals (`paper_intervals(...)["X"]`): the test split's
    noise set against the differences the paper's "best performing" choice rests on."""
    df = table_with_intervals
    most_accurate = df.set_index("model")["accuracy"].idxmax()
    by_acc = df.dropna(subset=["accuracy"]).sort_values("accuracy")
    half = float(((by_acc["accuracy_hi"] - by_acc["accuracy_lo"]) / 2).median())
    narrower = float((by_acc["accuracy"].diff().dropna() < half).mean())
    return AccuracySeparation(most_accurate, half, narrower, uncertainty.separability(df, most_accurate))


def interval_reading(paper_x_with_intervals: pd.DataFrame) -> str:
    """The notebook's reading of the paper's Table X with intervals (`report.text`): the median interval against
    the gaps, and the members within noise of the most accurate one, every number from the table."""
    return accuracy_separation(paper_x_with_intervals).text()


# --- decision stability ---------------------------------------------------------------------------

def stability_table(paper_tables: choice.CaseStudyTables, ours: choice.CaseStudyTables | None = None, *,
                    noise: uncertainty.NoiseModel | None = None, n_resamples: int = 1000, seed: int = 0,
                    tie_rule: choice.TieRule = "strict", inferred: Mapping[str, float] | None = None,
                    evidence: SweepEvidence | None = None) -> pd.DataFrame:
    """Selection frequencies of every member (`uncertainty.stability`), the paper's tables under its own
    priorities first, then ours (when given) under `choice.paper_like_priorities`, one frame (`tables` says
    which). Both are resampled with the same seed and noise model, so the two can be read side by side.

    `inferred`: the paper's images per member (as `paper_intervals`); `evidence`: our sweep's repeats and
    predictions (`sweep_evidence`; without it our resources move within `noise` and accuracies are Binomial).
    """
    parts = [uncertainty.stability(paper_tables, choice.PAPER_PRIORITIES, n_resamples=n_resamples, seed=seed,
                                   tie_rule=tie_rule, noise=noise, n_test=inferred)]
    if ours is not None:
        ev = evidence or SweepEvidence(None, None, "")
        parts.append(uncertainty.stability(ours, choice.paper_like_priorities(ours), n_resamples=n_resamples,
                                           seed=seed, tie_rule=tie_rule, noise=noise, n_test=ev.n_test,
                                           repeats=ev.repeats, predictions=ev.predictions))
    return pd.concat(parts, ignore_index=True)


def stability_caption(n_resamples: int, seed: int, noise: uncertainty.NoiseModel) -> str:
    """The stability table's caption: how many resamples, the seed, and which noise model moved single readings."""
    return (f"Selection frequency of each member over {n_resamples} resamples (seed {seed}); single "
            f"Table IX readings moved within the {noise.label('ix.delta_cpu').split(':')[0]} noise model")


def draft_numbers(stability: pd.DataFrame, label: str = "paper") -> dict[str, tuple]:
    """The numbers the paper draft quotes from the stability analysis, `{name: (value, description, fmt)}` (for
    `Report.numbers`): per paper priority order, the percent of resamples in which it keeps the paper's choice
    (`choice.PAPER_CHOICES`; 0 when no resample does). `stability`: `stability_table`'s frame (only its rows
    for the tables labelled `label` are read) or the paper's part alone."""
    rows = stability[stability["tables"] == label]
    n_resamples = int(rows["n_resamples"].iloc[0])
    out: dict[str, tuple] = {}
    for name, key in zip(choice.PAPER_PRIORITIES, DRAFT_KEYS):
        kept = rows.loc[(rows["priority"] == name) & (rows["model"] == choice.PAPER_CHOICES[name]), "frequency"]
        out[f"decision_stability_paper_choice_{key}"] = (
            100 * float(kept.sum()), f"percent of {n_resamples} resamples in which {name.split()[0]} keeps the "
            "paper's choice", "{:.0f}")
    return out
