"""Choosing one family member from Table IX/X-shaped results (Sections VII-G and VII-I), as a tool.

The paper reads its tables in three ways, each a function here:

- `compare` — "this model uses less CPU than 14 (36.84 %) models": for one member and every resource
  column, how many other members use *more*. Equal values are the delicate part, so the tie rule is explicit:
  `strict` counts members with a strictly larger value (a tie is not "more"), `or_equal` counts members with a
  larger or equal value (a tie counts as "more"). The percentage is of all members of the table, the chosen one
  included (the paper's 14/38 = 36.84 %); `denominator="others"` divides by the other members instead.
- `accuracy_fronts` — the Pareto front of accuracy (higher is better) against each resource (lower is better):
  the members no other member beats on both; `study.decision.figures.accuracy_fronts` draws them.
- `select` — a priority-ordered choice ("inference resources first, then accuracy"): constraints filter,
  objectives keep the best candidates, in order; the result carries every step and the chosen member's evidence.

Inputs are the paper's Tables IX/X (`CaseStudyTables.paper()`) or our sweep's `table_ix.csv` / `table_x.csv`
(`CaseStudyTables.from_files`). Elapsed times are parsed from the tables' `H:MM:SS` text
(`study.paper.parse_elapse`), i.e. compared at the resolution the tables print, as the paper does.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from study import paper
from study.errors import StudyError
from study.report import INPUT_REF, notebook_output

TieRule = Literal["strict", "or_equal"]
Denominator = Literal["all", "others"]
TIE_RULES: dict[str, str] = {
    "strict": "counts members whose value is strictly larger (a tie is not 'more')",
    "or_equal": "counts members whose value is larger or equal (a tie counts as 'more')",
}
DENOMINATORS: dict[str, str] = {
    "all": "percent of all members of the table, the chosen one included (the paper: 14/38 = 36.84 %)",
    "others": "percent of the other members",
}


@dataclass(frozen=True)
class Resource:
    """One resource column of Table IX (training) or Table X (inference), named as the paper words it."""

    table: str  # "IX" | "X"
    column: str
    phase: str  # "training" | "inference"
    what: str  # "uses less <what> than ..."
    unit: str

    @property
    def key(self) -> str:
        return f"{self.table.lower()}.{self.column}"


RESOURCES: tuple[Resource, ...] = (
    Resource("IX", "delta_cpu", "training", "CPU", "ΔCPU %"),
    Resource("IX", "delta_mem", "training", "memory", "Δmemory %"),
    Resource("IX", "elapse", "training", "training time elapse", "s"),
    Resource("X", "cpu", "inference", "CPU usage", "CPU %"),
    Resource("X", "memory", "inference", "memory usage", "memory %"),
    Resource("X", "gpu", "inference", "GPU usage", "GPU %"),
    Resource("X", "gpu_memory", "inference", "GPU memory usage", "GPU memory %"),
    Resource("X", "elapse", "inference", "time elapse", "s"),
)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "IX": ("model", "delta_cpu", "delta_mem", "elapse", "accuracy"),
    "X": ("model", "cpu", "elapse", "memory", "gpu", "gpu_memory", "accuracy"),
}
PHASES = {"IX": "training", "X": "inference"}


# --- loading -------------------------------------------------------------------------------------

def load_table(source: str | Path | pd.DataFrame, kind: str, *, backend: str | None = None) -> pd.DataFrame:
    """A Table IX- or X-shaped table, validated: numeric resources, `elapse` in seconds (`elapse_hms` keeps the text).

    Empty cells are missing measurements (a failed run, no GPU); anything unparsable is a StudyError that
    names the file, the column and the row. A Table X with a `backend` column (our browser sweep: one row per
    model and TF.js backend) is narrowed to `backend`, which must be given when it holds several.
    """
    kind = kind.upper()
    if kind not in REQUIRED_COLUMNS:
        raise StudyError(f"unknown table kind {kind!r}; valid: IX (fine-tuning), X (testing)")
    if isinstance(source, pd.DataFrame):
        df, where = source.copy(), source.attrs.get("source", f"Table {kind}")
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise StudyError(f"Table {kind} file {path} does not exist; pass the table_{kind.lower()}.csv a sweep wrote")
        try:
            df = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise StudyError(f"{path} is not a readable CSV ({exc}); expected a Table {kind}-shaped table") from exc
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in df.columns]
    if missing:
        raise StudyError(f"{where} lacks column(s) {', '.join(missing)}; a Table {kind}-shaped table needs "
                         f"{', '.join(REQUIRED_COLUMNS[kind])}")
    if kind == "X" and "backend" in df.columns:  # Table IX's `backend` is the training framework (tf / torch)
        df = _one_backend(df, backend, where)
    elif backend:
        raise StudyError(f"{where} has no backend column; drop --backend {backend}")
    df["model"] = df["model"].astype("string").str.strip()
    if df["model"].isna().any() or (df["model"] == "").any():
        row = int(np.flatnonzero(df["model"].isna() | (df["model"] == ""))[0]) + 2
        raise StudyError(f"{where} line {row}: column model is empty; every row needs a model name")
    dupes = list(dict.fromkeys(df.loc[df["model"].duplicated(), "model"]))
    if dupes:
        raise StudyError(f"{where}: model(s) {', '.join(dupes)} appear more than once; keep one row per member")
    df["elapse_hms"] = df["elapse"]
    df["elapse"] = [_parse_elapse_cell(v, where, i, m) for i, (v, m) in enumerate(zip(df["elapse"], df["model"]))]
    for col in (c for c in REQUIRED_COLUMNS[kind] if c not in ("model", "elapse")):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise StudyError(f"{where} line {i + 2} (model {df['model'].iloc[i]}): column {col} value "
                             f"{df[col].iloc[i]!r} is not a number")
        df[col] = values.astype(float)
    acc = df["accuracy"].dropna()
    if not acc.between(0, 1).all():
        i = int(np.flatnonzero(~df["accuracy"].between(0, 1) & df["accuracy"].notna())[0])
        raise StudyError(f"{where} line {i + 2} (model {df['model'].iloc[i]}): accuracy {df['accuracy'].iloc[i]} "
                         "is outside [0, 1]; give top-1 accuracy as a fraction")
    df.attrs["source"] = where
    df.attrs["kind"] = kind
    return df


def backends(source: str | Path) -> list[str]:
    """The TF.js backends a Table X-shaped CSV holds rows for, in file order (empty without a backend column)."""
    df = pd.read_csv(source, keep_default_na=False, na_values=[""])
    return list(dict.fromkeys(df["backend"].dropna().astype(str))) if "backend" in df.columns else []


def _one_backend(df: pd.DataFrame, backend: str | None, where: str) -> pd.DataFrame:
    found = list(dict.fromkeys(df["backend"].dropna().astype(str)))
    if backend is None:
        if len(found) > 1:
            raise StudyError(f"{where} holds rows for backends {', '.join(found)}; choose one (--backend {found[0]})")
        return df.reset_index(drop=True)
    if backend not in found:
        raise StudyError(f"{where} has no rows for backend {backend!r}; valid: {', '.join(found) or '(none)'}")
    return df[df["backend"].astype(str) == backend].reset_index(drop=True)


def _parse_elapse_cell(value, where: str, i: int, model: str) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return np.nan
    try:
        return float(paper.parse_elapse(value))
    except ValueError as exc:
        raise StudyError(f"{where} line {i + 2} (model {model}): column elapse: {exc}") from exc


@dataclass
class CaseStudyTables:
    """Table IX (fine-tuning) and/or Table X (testing) of one study: the paper's or one of our sweeps."""

    ix: pd.DataFrame | None = None
    x: pd.DataFrame | None = None
    label: str = "ours"
    artefacts: list[Path] = field(default_factory=list)  # notebook outputs that named the tables (sweep_tables)

    def __post_init__(self) -> None:
        if self.ix is None and self.x is None:
            raise StudyError("no table given: pass a Table IX-shaped table (--table-ix) and/or a Table X-shaped one (--table-x)")
        if self.ix is not None and self.ix.attrs.get("kind") != "IX":
            self.ix = load_table(self.ix, "IX")
        if self.x is not None and self.x.attrs.get("kind") != "X":
            self.x = load_table(self.x, "X")

    @classmethod
    def paper(cls) -> CaseStudyTables:
        """The paper's Tables IX and X (data/paper/)."""
        return cls(load_table(paper.finetuning(), "IX"), load_table(paper.testing(), "X"), label="paper")

    @classmethod
    def from_files(cls, ix: str | Path | None = None, x: str | Path | None = None, label: str = "ours",
                   backend: str | None = None) -> CaseStudyTables:
        return cls(load_table(ix, "IX") if ix else None, load_table(x, "X", backend=backend) if x else None,
                   label=label if not backend else f"{label} ({backend})")

    @property
    def sources(self) -> list[Path]:
        """The files the tables were read from, and the notebook artefacts that named them (`sweep_tables`): a
        report's input checksums."""
        return [Path(df.attrs["source"]) for df in (self.ix, self.x)
                if df is not None and Path(str(df.attrs.get("source", ""))).is_file()] + list(self.artefacts)

    def table(self, kind: str) -> pd.DataFrame | None:
        return self.ix if kind == "IX" else self.x

    @property
    def models(self) -> list[str]:
        """Every member, in table order (Table X first, then members only in Table IX)."""
        seen: dict[str, None] = {}
        for df in (self.x, self.ix):
            if df is not None:
                seen.update(dict.fromkeys(df["model"]))
        return list(seen)

    def resources(self) -> list[Resource]:
        """The resource columns of the given tables that hold at least one measurement (no GPU: no GPU columns)."""
        out = []
        for r in RESOURCES:
            df = self.table(r.table)
            if df is not None and df[r.column].notna().any():
                out.append(r)
        return out

    def unmeasured(self) -> list[Resource]:
        return [r for r in RESOURCES if self.table(r.table) is not None and r not in self.resources()]

    def accuracy_key(self) -> str:
        """Which accuracy "accuracy" means: the deployed product's (Table X) when given, else Table IX's."""
        return "x.accuracy" if self.x is not None else "ix.accuracy"

    def values(self) -> pd.DataFrame:
        """One row per member, one column per resource key (`x.cpu`, `ix.elapse`, ...) plus accuracies."""
        parts = []
        for kind in ("X", "IX"):
            df = self.table(kind)
            if df is None:
                continue
            cols = [r.column for r in RESOURCES if r.table == kind] + ["accuracy"]
            part = df.set_index("model")[cols]
            part.columns = [f"{kind.lower()}.{c}" for c in cols]
            parts.append(part)
        wide = pd.concat(parts, axis=1).reindex(self.models)
        wide["accuracy"] = wide[self.accuracy_key()]
        wide.index.name = "model"
        return wide

    def weights(self) -> pd.Series:
        """Per member, what its weights are (`imagenet` / `random` / `own`: the sweep's `weights` column, Table IX's
        before Table X's); "" where the tables do not say (the paper's tables: its members are TF Hub's trained ones)."""
        out = pd.Series("", index=pd.Index(self.models, name="model"), dtype=object)
        for df in (self.x, self.ix):  # Table IX last: it wins
            if df is not None and "weights" in df.columns:
                given = df.set_index("model")["weights"].dropna().astype(str)
                out.loc[given.index] = given
        return out

    def blind(self) -> list[str]:
        """Members that do not see: randomly initialised stand-ins, never chosen (their accuracy is chance)."""
        w = self.weights()
        return list(w.index[w == RANDOM_WEIGHTS])

    def check_model(self, model: str, kind: str | None = None) -> None:
        kinds = [kind] if kind else [k for k in ("IX", "X") if self.table(k) is not None]
        for k in kinds:
            df = self.table(k)
            if df is not None and model not in set(df["model"]):
                raise StudyError(f"model {model!r} is not in Table {k} ({df.attrs.get('source', self.label)}); "
                                 f"valid names: {', '.join(df['model'])}")


# --- "uses less X than N (p %) models" -----------------------------------------------------------

@dataclass(frozen=True)
class LessThan:
    """How many members use more of a resource than `model` does."""

    n: int  # "uses less ... than n models"
    ties: int  # other members with exactly the same value
    n_models: int  # members with a value, the chosen one included
    percent: float


def uses_less_than(values: pd.Series, model: str, *, tie_rule: TieRule = "strict",
                   denominator: Denominator = "all") -> LessThan:
    """Count, among `values` (indexed by member), the members that use more than `model` (see TIE_RULES)."""
    if tie_rule not in TIE_RULES:
        raise StudyError(f"unknown tie rule {tie_rule!r}; valid: {', '.join(TIE_RULES)}")
    if denominator not in DENOMINATORS:
        raise StudyError(f"unknown denominator {denominator!r}; valid: {', '.join(DENOMINATORS)}")
    values = values.dropna()
    if model not in values.index:
        raise StudyError(f"model {model!r} has no value for {values.name or 'this resource'}; "
                         f"valid names: {', '.join(map(str, values.index))}")
    own = values.loc[model]
    others = values.drop(model)
    n = int((others > own).sum() if tie_rule == "strict" else (others >= own).sum())
    ties = int((others == own).sum())
    base = len(values) if denominator == "all" else len(others)
    return LessThan(n, ties, len(values), 100.0 * n / base if base else 0.0)  # alone: uses less than 0 of 0


def compare(tables: CaseStudyTables, model: str, *, tie_rule: TieRule = "strict",
            denominator: Denominator = "all") -> pd.DataFrame:
    """The paper's evidence for one member: per measured resource, "uses less X than N (p %) models"."""
    tables.check_model(model)
    rows = []
    wide = tables.values()
    for r in tables.resources():
        value = wide.loc[model, r.key]
        if pd.isna(value):  # e.g. a failed run: no measurement, no count
            rows.append({"model": model, "table": r.table, "phase": r.phase, "resource": r.key,
                         "tie_rule": tie_rule, "denominator": denominator, "statement": f"no {r.what} measured"})
            continue
        count = uses_less_than(wide[r.key].rename(r.key), model, tie_rule=tie_rule, denominator=denominator)
        shown = paper.format_elapse(value) if r.column == "elapse" else f"{value:g}"
        rows.append({
            "model": model, "table": r.table, "phase": r.phase, "resource": r.key, "value": value,
            "value_text": shown, "accuracy": wide.loc[model, f"{r.table.lower()}.accuracy"],
            "uses_less_than": count.n, "ties": count.ties, "n_models": count.n_models,
            "percent": count.percent, "tie_rule": tie_rule, "denominator": denominator,
            "statement": f"uses less {r.what} than {count.n} ({count.percent:.2f}%) models",
        })
    return pd.DataFrame(rows)


# --- Pareto fronts -------------------------------------------------------------------------------

def pareto_front(df: pd.DataFrame, *, maximize: Sequence[str] = (), minimize: Sequence[str] = ()) -> pd.Series:
    """True for rows no other row dominates (at least as good in every column, better in one); NaN rows: False."""
    cols = list(maximize) + list(minimize)
    if not cols:
        raise StudyError("a Pareto front needs at least one column to maximize or minimize")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise StudyError(f"no column(s) {', '.join(missing)} for the Pareto front; columns: {', '.join(map(str, df.columns))}")
    # Orient every column so that larger is better.
    m = np.column_stack([df[c].to_numpy(float) for c in maximize] + [-df[c].to_numpy(float) for c in minimize])
    ok = ~np.isnan(m).any(axis=1)
    front = np.zeros(len(df), dtype=bool)
    good = m[ok]
    for i, row in zip(np.flatnonzero(ok), good):
        dominated = ((good >= row).all(axis=1) & (good > row).any(axis=1)).any()
        front[i] = not dominated
    return pd.Series(front, index=df.index, name="on_front")


def accuracy_fronts(tables: CaseStudyTables) -> pd.DataFrame:
    """Per measured resource, every member's value and accuracy (of the same table), its `weights` and whether it is
    on the front. The fronts are over members that see: a random-init member's accuracy is chance, so it is listed
    (its resources are real) but never on a front (`on_front` False)."""
    wide = tables.values()
    weights = tables.weights()
    blind = set(tables.blind())
    parts = []
    for r in tables.resources():
        acc = f"{r.table.lower()}.accuracy"
        part = pd.DataFrame({"model": wide.index, "resource": r.key, "table": r.table, "phase": r.phase,
                             "what": r.what, "unit": r.unit, "value": wide[r.key].to_numpy(),
                             "accuracy": wide[acc].to_numpy()})
        part = part.dropna(subset=["value", "accuracy"]).reset_index(drop=True)
        part.insert(1, "weights", part["model"].map(weights).fillna(""))
        sees = ~part["model"].isin(blind)
        part["on_front"] = False
        if sees.any():
            part.loc[sees, "on_front"] = pareto_front(part[sees], maximize=["accuracy"], minimize=["value"])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def dominators(tables: CaseStudyTables, model: str, columns: Iterable[str] | None = None) -> list[str]:
    """Members that see (`CaseStudyTables.blind` left out: their accuracy is chance) at least as accurate and at most
    as resource-hungry as `model` on every column, better on one."""
    tables.check_model(model)
    wide = tables.values().drop(index=tables.blind())
    keys = list(columns) if columns is not None else [r.key for r in tables.resources()]
    acc = [k for k in wide.columns if k.endswith("accuracy") and k != "accuracy" and wide[k].notna().any()]
    sub = wide[acc + keys].dropna()
    if model not in sub.index:
        return []
    better = (sub[acc] >= sub.loc[model, acc]).all(axis=1) & (sub[keys] <= sub.loc[model, keys]).all(axis=1)
    strictly = (sub[acc] > sub.loc[model, acc]).any(axis=1) | (sub[keys] < sub.loc[model, keys]).any(axis=1)
    return [m for m in sub.index[better & strictly] if m != model]


# --- priority-ordered selection ------------------------------------------------------------------

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_CRITERION = re.compile(r"^\s*(?:(?P<kind>min|max)\s*:\s*(?P<target>[\w.]+)"  # objective
                        r"|(?P<col>[\w.]+)\s*(?P<op>>=|<=|>|<)\s*(?P<num>[-+0-9.eE]+))\s*$")  # constraint
GROUPS = ("training", "inference", "resources")
RANDOM_WEIGHTS = "random"  # a `weights` value (study.assets.zoo.weights): a randomly initialised member
SEES = "trained weights (random-init members are never chosen)"  # `narrow`'s first step when the tables hold some


@dataclass(frozen=True)
class Criterion:
    """One priority item: `max:accuracy`, `min:inference` (a phase), `min:x.cpu`, or a constraint `accuracy>0.62`."""

    text: str
    kind: str  # "max" | "min" | "constraint"
    target: str
    op: str | None = None
    threshold: float | None = None

    @classmethod
    def parse(cls, text: str) -> Criterion:
        m = _CRITERION.match(str(text))
        if not m:
            raise StudyError(f"priority item {text!r} is not understood; write max:accuracy, min:inference, "
                             "min:training, min:x.cpu, or a constraint like accuracy>=0.62 or x.memory<30")
        if m["kind"]:
            return cls(text.strip(), m["kind"], m["target"])
        try:
            threshold = float(m["num"])
        except ValueError as exc:
            raise StudyError(f"priority item {text!r}: {m['num']!r} is not a number") from exc
        return cls(text.strip(), "constraint", m["col"], m["op"], threshold)


@dataclass
class Selection:
    """The member a priority order picks, how each step narrowed the candidates, and the member's evidence."""

    model: str
    priority: tuple[Criterion, ...]
    steps: pd.DataFrame  # step, criterion, before, after, best, kept
    evidence: pd.DataFrame  # `compare` rows of the chosen member
    dominated_by: list[str] = field(default_factory=list)

    def summary(self) -> str:
        order = " > ".join(c.text for c in self.priority)
        extra = f"; dominated by {', '.join(self.dominated_by)}" if self.dominated_by else ""
        return f"{self.model} (priority {order}){extra}"


def resolve(tables: CaseStudyTables, target: str) -> str:
    """A column key of `tables.values()` for a name: `accuracy`, `x.cpu`, or an unambiguous bare column (`delta_cpu`)."""
    wide = tables.values()
    if target in wide.columns:
        return target
    hits = [r.key for r in tables.resources() if r.column == target]
    if len(hits) == 1:
        return hits[0]
    valid = ["accuracy"] + [k for k in wide.columns if k != "accuracy"] + list(GROUPS)
    if len(hits) > 1:
        raise StudyError(f"{target!r} is in both tables; write {' or '.join(hits)}")
    raise StudyError(f"no column {target!r} in the given tables; valid: {', '.join(valid)}")


def group_score(tables: CaseStudyTables, group: str, *, tie_rule: TieRule = "strict") -> pd.Series:
    """The paper's measure, averaged over a phase's resources: mean share of members a member uses less than.

    1.0 = uses less than every other member of every resource of the group; members lacking a value are NaN.
    """
    phases = {"training": ("training",), "inference": ("inference",), "resources": ("training", "inference")}[group]
    resources = [r for r in tables.resources() if r.phase in phases]
    if not resources:
        raise StudyError(f"no {group} resources in the given tables (give Table {'IX' if group == 'training' else 'X'})")
    wide, shares = tables.values(), {}
    for r in resources:  # `uses_less_than(denominator="others")` for every member at once (resampling calls this often)
        col = wide[r.key].dropna()
        v = col.to_numpy()
        more = (v[None, :] > v[:, None]) if tie_rule == "strict" else (v[None, :] >= v[:, None])
        shares[r.key] = pd.Series((more.sum(1) - (tie_rule != "strict")) / max(len(v) - 1, 1), col.index)
    return pd.DataFrame(shares).reindex(wide.index).mean(axis=1, skipna=False).rename(f"{group} score")


def select(tables: CaseStudyTables, priority: Sequence[str | Criterion], *, tie_rule: TieRule = "strict",
           denominator: Denominator = "all") -> Selection:
    """Apply `priority` in order: constraints drop members, objectives keep only the best; ties go to the next item.

    A group objective (`min:inference`) scores every member against all members of the table (`group_score`),
    as the paper's counts do, not only against the candidates left.

    Members lacking a value an item needs are dropped at that step (and the step says how many).
    A tie left after the last item is broken by table order, and the steps say so.
    """
    criteria = tuple(c if isinstance(c, Criterion) else Criterion.parse(c) for c in priority)
    chosen, steps = narrow(tables, criteria, tie_rule=tie_rule)
    return Selection(chosen, criteria, pd.DataFrame(steps),
                     compare(tables, chosen, tie_rule=tie_rule, denominator=denominator),
                     dominators(tables, chosen))


def narrow(tables: CaseStudyTables, criteria: Sequence[Criterion], *, tie_rule: TieRule = "strict") -> tuple[str, list]:
    """`select`'s rule alone (no evidence): the chosen member and each step; resampling calls it many times."""
    if not criteria:
        raise StudyError("an empty priority selects nothing; e.g. --priority max:accuracy")
    wide = tables.values()
    candidates = list(wide.index)
    steps = []
    blind = set(tables.blind())
    if blind:  # a random-init member's accuracy is chance and its product guesses: it is never chosen
        kept = [m for m in candidates if m not in blind]
        if not kept:
            raise StudyError(f"every member of the tables ({', '.join(candidates)}) is randomly initialised "
                             "(weights: random); a choice needs a member with trained weights, e.g. "
                             "efficientnet_lite0_tf (python -m study finetune --members efficientnet_lite0_tf)")
        steps.append({"step": 0, "criterion": SEES, "before": len(candidates), "after": len(kept),
                      "dropped_no_value": 0, "best": None, "kept": "; ".join(kept)})
        candidates = kept
    for i, c in enumerate(criteria, 1):
        if c.target in GROUPS:
            if c.kind != "min":
                raise StudyError(f"priority item {c.text!r}: a resource group is minimised; write min:{c.target}")
            score = group_score(tables, c.target, tie_rule=tie_rule)
            values, better = score, "max"
        else:
            values = wide[resolve(tables, c.target)]
            better = c.kind
        before = len(candidates)
        present = [m for m in candidates if pd.notna(values.get(m))]
        if c.kind == "constraint":
            kept = [m for m in present if _OPS[c.op](values[m], c.threshold)]
            if not kept:
                best = values[present].max() if c.op in (">", ">=") else values[present].min()
                raise StudyError(f"no candidate satisfies {c.text!r} (after the earlier items; best value "
                                 f"{best:.4g}); relax the threshold")
            best_value = None
        else:
            if not present:
                raise StudyError(f"no candidate has a value for {c.text!r}")
            sub = values[present]
            best_value = sub.max() if better == "max" else sub.min()
            kept = [m for m in present if np.isclose(sub[m], best_value, rtol=0, atol=1e-12)]
        steps.append({"step": i, "criterion": c.text, "before": before, "after": len(kept),
                      "dropped_no_value": before - len(present), "best": best_value, "kept": "; ".join(kept)})
        candidates = kept
    chosen = candidates[0]
    if len(candidates) > 1:
        steps.append({"step": len(criteria) + 1, "criterion": "table order (tie)", "before": len(candidates),
                      "after": 1, "dropped_no_value": 0, "best": None, "kept": chosen})
    return chosen, steps


# Sections VII-G and VII-I as priority orders (the 62 % is the paper's "better than 62%"), and what the paper chose.
PAPER_THRESHOLD = 0.62  # Section VII-I: "better than 62%"
PAPER_PRIORITIES: dict[str, tuple[str, ...]] = {
    "VII-G.1 fine-tuning machine not resource critical: best performing": ("max:accuracy",),
    "VII-I inference resources first, then performance (> 62 %)": (f"accuracy>{PAPER_THRESHOLD:g}", "min:inference",
                                                                   "max:accuracy"),
}
PAPER_CHOICES: dict[str, str] = dict(zip(PAPER_PRIORITIES, (paper.CHOICE_BEST_PERFORMING, paper.CHOICE_MOST_SUITABLE)))


def paper_like_priorities(tables: CaseStudyTables, k: int = 4) -> dict[str, tuple[str, ...]]:
    """PAPER_PRIORITIES for another sweep, over its members that see (`CaseStudyTables.blind` left out): the
    paper's own priorities when one of them is better than the paper's 62 %; otherwise the paper's "better than
    62 %" as what it did on its tables (it admitted its 4 best members): the accuracy of this sweep's k-th best."""
    blind = set(tables.blind())
    acc = tables.values()["accuracy"].drop(index=list(blind)).dropna().sort_values(ascending=False)
    if acc.empty:
        raise StudyError("no member with trained weights has an accuracy; nothing to select" if blind else
                         "no member has an accuracy; nothing to select")
    if (acc > PAPER_THRESHOLD).any():
        return dict(PAPER_PRIORITIES)
    threshold = acc.iloc[min(k, len(acc)) - 1]
    return {"VII-G.1 fine-tuning machine not resource critical: best performing": ("max:accuracy",),
            f"VII-I inference resources first, then performance (the {k} best)":
                (f"accuracy>={threshold:.12g}", "min:inference", "max:accuracy")}


def selections(tables: CaseStudyTables, priorities: dict[str, Sequence[str]], *,
               tie_rule: TieRule = "strict") -> pd.DataFrame:
    """One row per named priority order: what it selects from `tables`, and who dominates the pick."""
    rows = []
    for name, items in priorities.items():
        sel = select(tables, items, tie_rule=tie_rule)
        acc = tables.values().loc[sel.model, "accuracy"]
        rows.append({"tables": tables.label, "priority": name, "items": " > ".join(items), "selected": sel.model,
                     "accuracy": acc, "dominated_by": ", ".join(sel.dominated_by),
                     "paper_choice": PAPER_CHOICES.get(name, "") if tables.label == "paper" else ""})
    return pd.DataFrame(rows)


# Which file of the sweep's own folder a notebook artefact stands for (the sweep's runs/ and predictions/ sit beside it).
SWEEP_FILES = {"IX": "table_ix.csv", "X": "table_x.csv"}


def sweep_tables(table_ix: str | Path | None, table_x: str | Path | None, *, backend: str | None = None,
                 profile: str | None = None) -> tuple[CaseStudyTables | None, str]:
    """Our sweep's tables for a notebook, each named explicitly: a path (a Table IX / X-shaped CSV), or another
    notebook's output "NN:artefact" (e.g. "04:table_ix_finetuning"), resolved through results/manifest.json for
    `profile` to the sweep file that artefact was made from; "" or None skips that table. Bad input, a missing or
    other-profile artefact raise (one StudyError naming the notebook to run). Without `backend`, a Table X holding
    several backends is narrowed to the first. Returns (tables, note); `tables.sources` lists every file read,
    the manifest artefacts included (a report's inputs: a re-run of notebook NN makes the reader stale).
    """
    notes, paths, artefacts = [], {}, []
    for kind, given in (("IX", table_ix), ("X", table_x)):
        if not given:
            continue
        if isinstance(given, str) and INPUT_REF.fullmatch(given.strip()):
            if profile is None:
                raise StudyError(f"the notebook input {given!r} needs the profile it was made with")
            out = notebook_output(given, profile)
            paths[kind] = out.recorded_input(SWEEP_FILES[kind])
            artefacts.append(out.path)
            notes.append(f"{given}: {paths[kind]}")
        else:
            paths[kind] = Path(given)
    if not paths:
        return None, "no sweep tables given"
    tables = {}
    chosen_backend = backend or None
    for kind, path in paths.items():
        if kind == "X" and not chosen_backend and len(found := backends(path)) > 1:
            chosen_backend = found[0]
            notes.append(f"{path.name} holds backends {', '.join(found)}: using {chosen_backend}")
        tables[kind] = load_table(path, kind, backend=chosen_backend if kind == "X" else None)
    label = "ours" + (f" ({chosen_backend})" if chosen_backend and "X" in tables else "")
    return CaseStudyTables(tables.get("IX"), tables.get("X"), label=label, artefacts=artefacts), "; ".join(notes)
