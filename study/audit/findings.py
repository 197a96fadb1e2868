"""The study's findings at a glance: per research question and case-study part, the paper's headline claim, what the
paper's own tables give (re-derived, with its verdict) and what this run measured (with its own verdict), kept apart;
with the claim's noise label and how many of the part's claims reproduce.

The re-derived side is the audit (`study.audit.sections.audit`, with `study.audit.noise_labels.label`'s `noise`
column); the measured side reads this run's tables (`run_tables`: notebooks 01-06, by name) through one function per
part (`Part.measure`). Every cell is computed; which claim heads each part is typed data (`PARTS`), with the draft's
section to look at. A claim the paper's tables support and this run contradicts says both.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from study import paper
from study.errors import StudyError
from study.report import notebook_output

# The verdicts of the measured side: this run's value supports the claim, contradicts it, cannot speak to it (other
# members or synthetic inputs: the numbers differ by construction), or this run has no such measurement.
AGREES, DISAGREES, NOT_COMPARABLE, NOT_MEASURED = "agrees", "disagrees", "not comparable", "not measured"
MEASURED_VERDICTS = (AGREES, DISAGREES, NOT_COMPARABLE, NOT_MEASURED)
MOST = 0.5  # "most" of the assets: more than half


@dataclass(frozen=True)
class Measured:
    value: str
    verdict: str

    def __post_init__(self):
        if self.verdict not in MEASURED_VERDICTS:
            raise ValueError(f"measured verdict {self.verdict!r} not in {MEASURED_VERDICTS}")


Run = Mapping[str, pd.DataFrame]  # this run's tables by name (`run_tables`)


def _ints(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", str(text))]


def _truthy(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.lower().isin(("true", "1", "yes", "ok"))


def measure_rq1(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """Formats that exported, reloaded and agreed here, per framework (notebook 01's matrix)."""
    m = run.get("rq1_deployment_matrix")
    if m is None or not {"framework", "ok"} <= set(m.columns):
        return None
    ok = m.assign(ok=_truthy(m["ok"])).groupby("framework", sort=False)["ok"].agg(["sum", "count"])
    text = "; ".join(f"{fw}: {int(r['sum'])} of {int(r['count'])} formats tried ran here" for fw, r in ok.iterrows())
    tf = sum(int(r["sum"]) for fw, r in ok.iterrows() if str(fw).startswith("TensorFlow"))
    pt = sum(int(r["sum"]) for fw, r in ok.iterrows() if str(fw).startswith("PyTorch"))
    return Measured(text, AGREES if tf > pt else DISAGREES)


def measure_rq2(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """Families grouped by code in each zoo's oldest snapshot (notebook 02), against the numbers the claim states."""
    g = run.get("rq2_family_growth")
    if g is None or not {"source", "families"} <= set(g.columns):
        return None
    zoo = g["source"].str.split(" ").str[0]
    oldest = g.assign(zoo=zoo, date=g["source"].str.split(" ").str[-1]).sort_values("date").groupby("zoo").first()
    names = {"tfhub": "TF Hub", "pytorch-hub": "PyTorch Hub"}
    got = [int(oldest.loc[z, "families"]) for z in names if z in oldest.index]
    text = "; ".join(f"{names[z]} {int(oldest.loc[z, 'families'])} families ({oldest.loc[z, 'date']})"
                     for z in names if z in oldest.index) + ", grouped by code in the oldest snapshots"
    stated = _ints(claim["statement"])
    return Measured(text, AGREES if got == stated[:len(got)] and len(got) == len(names) else DISAGREES)


def measure_rq3(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """Share of TF Hub assets with two or more versions in the oldest snapshot (notebook 03)."""
    g = run.get("rq3_growth_2020_2024")
    if g is None or not {"snapshot", "assets", "share_ge2_versions"} <= set(g.columns) or not len(g):
        return None
    first = g.iloc[0]
    share = float(first["share_ge2_versions"])
    return Measured(f"{share:.1%} of {int(first['assets'])} assets ({first['snapshot']}) have two or more versions",
                    AGREES if share > MOST else DISAGREES)


def test_set_size(run: Run) -> int | None:
    """The test images of this run's case study: the browser test's images (notebook 05), else the sweep's."""
    for name, col in (("table_x_browser", "n_images"), ("decision_ours_table_ix_intervals", "n_test")):
        t = run.get(name)
        if t is not None and col in t.columns and t[col].notna().any():
            return int(pd.to_numeric(t[col], errors="coerce").max())
    return None


def measure_split(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """The size of this run's test split against Table XI's."""
    n = test_set_size(run)
    if n is None:
        return None
    theirs = int(paper.flower_split()["testing"].sum())
    what = f"{n} test images" + (" (synthetic flowers)" if synthetic else "")
    verdict = NOT_COMPARABLE if synthetic else AGREES if n == theirs else DISAGREES
    return Measured(what, verdict)


def _members(run: Run) -> set[str]:
    t = run.get("table_ix_finetuning")
    return set(t["model"]) if t is not None and "model" in t.columns else set()


def measure_browser(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """Browser runs that did not infer every test image (notebook 05), against the paper's count."""
    x = run.get("table_x_browser")
    if x is None or "n_images" not in x.columns or not len(x):
        return None
    images = pd.to_numeric(x["n_images"], errors="coerce")
    short = (images < images.max()) | ~x.get("status", pd.Series(["ok"] * len(x))).astype(str).eq("ok")
    text = f"{int(short.sum())} of {len(x)} browser runs did not infer every test image"
    same_members = _members(run) == set(paper.finetuning()["model"])
    stated = _ints(claim["paper_value"])
    if not same_members or not stated:
        return Measured(text + " (other members than the paper's)", NOT_COMPARABLE)
    return Measured(text, AGREES if int(short.sum()) == stated[0] else DISAGREES)


def measure_decision(run: Run, claim: pd.Series, synthetic: bool) -> Measured | None:
    """The pick of the paper's resources-first priorities on this run's tables (notebook 06)."""
    d = run.get("decision_ours_beside_paper")
    if d is None or not {"tables", "selected", "paper_choice"} <= set(d.columns):
        return None
    stated = d["paper_choice"].astype("string").fillna("").str.strip() != ""  # the rows of the paper's own tables
    theirs, ours = d[stated], d[~stated]
    if len(theirs) < 2 or len(ours) < 2:
        return None
    choice, pick = str(theirs["paper_choice"].iloc[1]), str(ours["selected"].iloc[1])
    text = f"{pick} on this run's tables"
    if choice not in _members(run):
        return Measured(text + f" ({choice} is not in this run's sweep)", NOT_COMPARABLE)
    return Measured(text, AGREES if pick == choice else DISAGREES)


@dataclass(frozen=True)
class Part:
    """One part of the study: its name, the audit sections it covers (prefixes of `claim_id`), its headline claim,
    where the draft shows it, and how this run measures the claim (None: it does not)."""

    name: str
    prefixes: tuple[str, ...]
    headline: str
    where: str
    measure: Callable[[Run, pd.Series, bool], Measured | None] | None = None


PARTS: tuple[Part, ...] = (
    Part("RQ1 deployment scenarios (Tables IV-V)", ("IV.",), "IV.more_scenarios", "Section RQ1; notebooks 01, 09",
         measure_rq1),
    Part("RQ2 families (Tables I-III)", ("III-B.", "V."), "V.families_aihub", "Section RQ2; notebook 02", measure_rq2),
    Part("RQ3 versions (Tables VI-VIII)", ("VI.", "VII-H."), "VI.most_versions", "Section RQ3; notebooks 03, 08",
         measure_rq3),
    Part("Case study data (Table XI)", ("VII-A.", "VII-B.", "VII-C."), "VII-B.table_xi.split",
         "Section Case study; notebook 04", measure_split),
    Part("Fine-tuning and browser test (Tables IX-X)", ("VII-E", "VII-F.", "VII-G.stuck", "VII-G.same", "VII-G.m"),
         "VII-G.stuck", "Section Case study; notebooks 04, 05", measure_browser),
    Part("The decision (VII-G, VII-I)", ("VII-G.1", "VII-G.2", "VII-I."), "VII-I.decision",
         "Section Case study, the decision; notebook 06", measure_decision),
)
COLUMNS = ["part", "paper_claim", "rederived", "rederived_verdict", "measured", "measured_verdict", "noise",
           "claims_reproduced", "where"]
# This run's tables the parts measure from, as notebook inputs ("NN:name", `study.report.notebook_output`).
RUN_TABLES = ("01:rq1_deployment_matrix", "02:rq2_family_growth", "03:rq3_growth_2020_2024", "04:table_ix_finetuning",
              "05:table_x_browser", "06:decision_ours_beside_paper", "06:decision_ours_table_ix_intervals")


def run_tables(profile: str, manifest: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], list[Path]]:
    """This run's tables of `RUN_TABLES` that exist for `profile` (a missing one: that part is not measured), and
    the files read."""
    found, paths = {}, []
    for ref in RUN_TABLES:
        try:
            out = notebook_output(ref, profile, manifest)
        except StudyError:
            continue
        if out.path.suffix == ".csv":
            found[ref.split(":", 1)[1]] = pd.read_csv(out.path)
            paths.append(out.path)
    return found, paths


def at_a_glance(claims: pd.DataFrame, run: Run | None = None, *, synthetic: bool = False) -> pd.DataFrame:
    """One row per `PARTS` entry from the audit's `claims` (claim_id, statement, derived_value, reproduced, and
    `noise` when labelled) and this run's tables `run` (None or missing tables: not measured): the headline claim,
    the value re-derived from the paper's tables and its verdict, the value this run measured and its verdict, and
    'k of n' claims of the part that reproduce. `synthetic`: the run's inputs are generated (its accuracies and
    test set cannot speak to the paper's)."""
    missing = [p.headline for p in PARTS if p.headline not in set(claims["claim_id"])]
    if missing:
        raise StudyError(f"the audit has no claim {', '.join(missing)}: study.audit.findings.PARTS names claims that "
                         "study.audit.sections no longer makes; update PARTS")
    rows = []
    by_id = claims.set_index("claim_id")
    for part in PARTS:
        mine = claims[claims["claim_id"].str.startswith(part.prefixes)]
        head = by_id.loc[part.headline]
        noise = str(head.get("noise", "") or "") if "noise" in claims else ""
        noise = "" if noise == "nan" else noise
        got = part.measure(run or {}, head, synthetic) if part.measure else None
        got = got or Measured("--", NOT_MEASURED)
        derived = head["derived_value"] if str(head["derived_value"]) not in ("", "nan") else head["note"]
        rows.append({"part": part.name, "paper_claim": head["statement"], "rederived": derived,
                     "rederived_verdict": head["reproduced"], "measured": got.value,
                     "measured_verdict": got.verdict, "noise": noise or "--",
                     "claims_reproduced": f"{int((mine['reproduced'] == 'yes').sum())} of {len(mine)}",
                     "where": part.where})
    return pd.DataFrame(rows, columns=COLUMNS)


def both_sides(row: Mapping) -> str:
    """One finding in words: the paper's tables' verdict and this run's, both said when they part."""
    on_tables = {"yes": "the paper's tables support it", "no": "the paper's tables contradict it",
                 "conditional": "the paper's tables support it only under a stated reading",
                 "not derivable": "the paper's tables cannot check it"}[str(row["rederived_verdict"])]
    measured = {AGREES: "this run's measurement agrees", DISAGREES: "this run's measurement contradicts it",
                NOT_COMPARABLE: "this run's measurement cannot speak to it",
                NOT_MEASURED: "this run did not measure it"}[str(row["measured_verdict"])]
    joint = "but" if (row["rederived_verdict"] in ("yes", "conditional")) == (row["measured_verdict"] == DISAGREES) \
        and row["measured_verdict"] in (AGREES, DISAGREES) else "and"
    return f"{on_tables}, {joint} {measured}"
