"""Did my re-run reproduce yours? `python -m study compare A B`: two results folders, cell by cell.

A and B are results folders (what `make reproduce` writes: `manifest.json`, `tables/*.csv`, `numbers/*.json`; or a
snapshot of one under `results/history/`, `study.runs.history`). Every generated number and every cell of the
paper-comparable tables (`TABLES`: Tables I-III verdicts, the deployment matrix, Table IX, Table X, fidelity,
audit, decision) becomes one row keyed by table + row + column, with `a`, `b`, `difference` (b - a), the interval
of that difference (`lo`, `hi`) and what it is (`interval`), and a `label` (`LABELS`):

- `identical` — the same value (both empty counts as the same);
- `within noise` — a number whose difference interval contains 0: an accuracy under Wilson's interval over its
  images (Newcombe's MOVER for the difference), a resource under the noise model (`uncertainty.NoiseModel`:
  measured where the folder has `tables/noise_model.csv`, else the stated default; the caller may pass one that
  also covers between-run variation, `study.runs.drift`; `interval` says which); a time (`Column.timed`) after
  dividing B's by a slowdown between none and the host-speed ratio of the two runs' probes (`study.runs.hostprobe`,
  `Speed.factor`: the probe bounds a run's slowdown), the probes' spread added to the noise; another resource with how far the two hosts' speeds were apart (|ratio - 1|) added to its noise; a decision that changed to a member the stability analysis (`decision_stability`) already chose in
  at least 1 - level of its resamples (an unstable choice: it says so instead of flipping);
- `moved` — a number beyond that interval, or a count or text that changed (they are exact: no interval);
- `flipped` — a verdict, a noise label or a decision that changed;
- `only in A` / `only in B` — a table, row or column one folder does not have.

Which columns identify a row and what kind each compared column is lives in `TABLES` (typed data, one place);
other tables and columns are not compared. `table_versions()` is each compared table's version (its spec's digest
and `TableSpec.version`, bumped by hand when a column's meaning changes): a reference run records them
(`study.runs.reference`), and one written with other versions is stale. A and B may be archives
(`study.runs.archive`): their results folder is read, after every checksum is checked.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from study import files
from study.cache import keys
from study.decision import uncertainty
from study.errors import StudyError
from study.runs import archive, history, hostprobe

Kind = Literal["accuracy", "resource", "count", "exact", "verdict", "noise", "decision"]
LABELS = ("identical", "within noise", "moved", "flipped", "only in A", "only in B")
FLIPS: frozenset[str] = frozenset({"verdict", "noise", "decision"})  # a change of these kinds is `flipped`
COLUMNS = ["table", "row", "column", "kind", "a", "b", "difference", "lo", "hi", "interval", "label"]
NOISE_TABLE = "noise_model"  # tables/noise_model.csv: a measured `NoiseModel.to_frame()`, when a notebook wrote one
NUMBERS = "numbers"  # the pseudo-table of results/numbers/*.json
EXACT = "exact"


@dataclass(frozen=True)
class Column:
    """A compared column: its kind; for an accuracy the column holding its number of images (`n`, in this table,
    or in table `n_table` on the same row keys; default Table XI's test split); for a resource its noise-model
    key (`noise`, e.g. `ix.delta_cpu`)."""

    name: str
    kind: Kind
    n: str | None = None
    noise: str | None = None
    n_table: str | None = None
    timed: bool = False  # a duration: judged after dividing B's by the host-speed ratio (study.runs.hostprobe)


@dataclass(frozen=True)
class TableSpec:
    """A paper-comparable table: `results/tables/<name>.csv`, the columns that identify a row, those compared.
    `others`: the kind of every column not named and not a key (tables whose columns are data, e.g. counts per
    verdict); None: other columns are not compared."""

    name: str
    title: str
    keys: tuple[str, ...]
    columns: tuple[Column, ...] = ()
    others: Kind | None = None
    version: int = 1  # bump when a compared column's meaning changes while its name stays (units, definition)

    def compared(self, frame_columns: Iterable[str]) -> list[Column]:
        named = {c.name for c in self.columns}
        extra = [Column(c, self.others) for c in frame_columns if self.others and c not in named | set(self.keys)]
        return [*self.columns, *extra]


def _family_rows(name: str, title: str) -> TableSpec:
    return TableSpec(name, title, ("table", "domain", "algorithm", "training_data"),
                     (Column("verdict", "verdict"), Column("our_families", "count"), Column("our_members", "exact")))


TABLES: tuple[TableSpec, ...] = (
    _family_rows("rq2_table_i_vs_ours", "Table I verdicts"),
    _family_rows("rq2_table_ii_iii_vs_ours", "Tables II-III verdicts"),
    TableSpec("rq2_verdicts", "Tables I-III verdict counts", ("table",), others="count"),
    TableSpec("rq1_deployment_matrix", "deployment matrix", ("framework", "format", "runtime"), (
        Column("status", "verdict"), Column("ok", "verdict"), Column("top1_agreement", "accuracy", n="images"),
        Column("size_mb", "resource", noise="rq1.size_mb"),
        Column("load_ms", "resource", noise="rq1.load_ms", timed=True),
        Column("latency_ms", "resource", noise="rq1.latency_ms", timed=True))),
    TableSpec("table_ix_finetuning", "Table IX", ("model",), (
        Column("status", "verdict"),  # the images of each accuracy: notebook 06's table of it with intervals
        Column("accuracy", "accuracy", n="n_test", n_table="decision_ours_table_ix_intervals"),
        Column("delta_cpu", "resource", noise="ix.delta_cpu"), Column("delta_mem", "resource", noise="ix.delta_mem"),
        Column("elapse_s", "resource", noise="ix.elapse", timed=True), Column("repeats", "count"),
        Column("delta_cpu_tree", "resource", noise="ix.delta_cpu_tree"),
        Column("delta_mem_tree", "resource", noise="ix.delta_mem_tree"),
        Column("peak_rss_mb", "resource", noise="ix.peak_rss_mb"))),
    TableSpec("table_x_browser", "Table X", ("model", "backend"), (
        Column("status", "verdict"), Column("accuracy", "accuracy", n="n_images"),
        Column("cpu", "resource", noise="x.cpu"), Column("memory", "resource", noise="x.memory"),
        Column("gpu", "resource", noise="x.gpu"), Column("gpu_memory", "resource", noise="x.gpu_memory"),
        Column("elapse_s", "resource", noise="x.elapse", timed=True),
        Column("ms_per_image", "resource", noise="x.ms_per_image", timed=True),
        Column("n_images", "count"))),
    TableSpec("rq1_fidelity_per_member", "fidelity", ("member", "framework", "format"), (
        Column("status", "verdict"), Column("faithful", "verdict"),
        Column("top1_agreement", "accuracy", n="images"), Column("accuracy_before", "accuracy", n="images"),
        Column("accuracy_after", "accuracy", n="images"), Column("size_mb", "resource", noise="fidelity.size_mb"),
        Column("latency_p50_ms", "resource", noise="fidelity.latency_p50_ms", timed=True))),
    TableSpec("rq1_fidelity_decision", "fidelity decision", ("criterion",), (
        Column("selected", "decision"), Column("changed", "decision"), Column("deployable", "count"))),
    TableSpec("audit_paper_claims", "audit", ("claim_id",), (
        Column("reproduced", "verdict"), Column("noise", "noise"), Column("derived_value", "exact"))),
    TableSpec("audit_paper_summary", "audit summary", ("section",), others="count"),
    TableSpec("audit_paper_noise", "audit noise", ("reproduced",), others="count"),
    TableSpec("decision_paper_selections", "decision (paper tables)", ("tables", "priority"), (
        Column("selected", "decision"), Column("accuracy", "accuracy"))),
    TableSpec("decision_ours_beside_paper", "decision", ("tables", "priority"), (
        Column("selected", "decision"), Column("accuracy", "accuracy"))),
    TableSpec("decision_stability", "decision stability", ("tables", "priority", "model"), (
        Column("point_choice", "decision"), Column("frequency", "accuracy", n="n_resamples"))),
)
TITLES: dict[str, str] = {t.name: t.title for t in TABLES} | {NUMBERS: "generated numbers"}  # names for a reader
# Numbers whose value is a decision (a member's name): a change is `flipped`; other strings and numbers are exact.
DECISION_NUMBERS = ("decision_pick_", "decision_paper_choice_")
STABILITY_TABLE = "decision_stability"  # how often each member is chosen over resamples (tables, priority, model)


def table_versions() -> dict[str, str]:
    """{table: version} of every compared table and of the generated numbers: `TableSpec.version` and the digest
    of what `compare` reads from it (keys, columns, kinds), so a renamed or re-kinded column changes it."""
    versions = {t.name: f"{t.version}-{keys.digest(repr(t))[:12]}" for t in TABLES}
    return versions | {NUMBERS: f"1-{keys.digest(repr(DECISION_NUMBERS))[:12]}"}


def table_names() -> list[str]:
    """The tables `compare` reads (and `study.runs.history` keeps): the compared ones, those that count their images,
    and the noise model."""
    helpers = [c.n_table for t in TABLES for c in t.columns if c.n_table]
    return list(dict.fromkeys([t.name for t in TABLES] + helpers + [NOISE_TABLE]))


# --- results folders --------------------------------------------------------------------------------

HOW = ("pass a folder written by `make reproduce` (results/, or STUDY_RESULTS_DIR) or a snapshot under "
       "results/history/")


@dataclass
class ResultsFolder:
    """A results folder, checked: its manifest reads, and its profile(s) and commit(s) are known."""

    path: Path
    which: str  # "A" or "B"
    manifest: dict[str, Any] = field(repr=False)
    profiles: tuple[str, ...]
    commits: tuple[str, ...]

    @classmethod
    def open(cls, path: str | Path, which: str) -> ResultsFolder:
        path = Path(path)
        if path.is_file() and archive.is_archive(path):
            path = archive.results_of(path)  # checked, unpacked once per process
        if not path.is_dir():
            raise StudyError(f"results folder {which} ({path}) {'is not a folder' if path.exists() else 'does not exist'}; "
                             + HOW)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise StudyError(f"{path} ({which}) is not a results folder: it has no manifest.json; " + HOW)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise StudyError(f"{manifest_path} ({which}) is damaged ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:120]}); rerun `make reproduce` to rewrite it, or compare "
                             "a snapshot from results/history/") from None
        artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
        if not isinstance(artifacts, dict) or not all(isinstance(e, dict) for e in artifacts.values()):
            raise StudyError(f"{manifest_path} ({which}) is damaged: it lacks an `artifacts` object of entries; "
                             "rerun `make reproduce` to rewrite it, or compare a snapshot from results/history/")
        info = history.read_info(path)
        profiles = {str(e.get("parameters", {}).get("profile")) for e in artifacts.values()
                    if isinstance(e.get("parameters"), dict) and e["parameters"].get("profile")}
        if info.get("profile"):
            profiles = {str(info["profile"])}
        commits = {str(e["git_commit"]) for e in artifacts.values() if e.get("git_commit")}
        return cls(path, which, manifest, tuple(sorted(profiles)), tuple(sorted(commits)))

    def table(self, name: str) -> pd.DataFrame | None:
        path = self.path / "tables" / f"{name}.csv"
        if not path.exists():
            return None
        if problem := files.damage(path):
            raise StudyError(f"{problem} (results folder {self.which}); rerun the notebook that writes it "
                             "(`make reproduce FORCE=1 ONLY=NN`) or compare a snapshot from results/history/")
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str) if path.stat().st_size else None

    def numbers(self) -> dict[str, Any]:
        found = {}
        for path in sorted((self.path / NUMBERS).glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                found[str(record.get("name") or path.stem)] = record.get("value")
            except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
                raise StudyError(f"{path} (results folder {self.which}) is damaged ({type(exc).__name__}); rerun "
                                 "the notebook that writes it, or compare a snapshot from results/history/") from None
        return found

    def describe(self) -> str:
        return (f"{self.which} = {self.path} (profile {'/'.join(self.profiles) or 'unknown'}, "
                f"commit {'/'.join(c[:12] for c in self.commits) or 'unknown'})")


def noise_model(*folders: ResultsFolder) -> uncertainty.NoiseModel:
    """The measured noise model of the last folder that has one (`tables/noise_model.csv`), else the stated one."""
    for folder in reversed(folders):
        df = folder.table(NOISE_TABLE)
        if df is not None:
            return uncertainty.NoiseModel.from_frame(
                df, source=f"measured ({folder.path / 'tables' / (NOISE_TABLE + '.csv')})")
    return uncertainty.NoiseModel()


# --- one cell ---------------------------------------------------------------------------------------

def _number(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


@dataclass(frozen=True)
class Judge:
    """Labels one cell from its kind, with the noise model and confidence level of this comparison."""

    noise: uncertainty.NoiseModel
    level: float = uncertainty.LEVEL
    speed: hostprobe.Speed | None = None  # B's host against A's: timed columns are judged after dividing by it

    def cell(self, column: Column, a: Any, b: Any, n_a: Any = None, n_b: Any = None) -> dict[str, Any]:
        """The cell's difference, interval and label; `a` and `b` as the folders hold them (CSV text, JSON values)."""
        judged = self._judge(column, a, b, n_a, n_b)
        return judged | {"a": _shown(a), "b": _shown(b)}

    def _judge(self, column: Column, a: Any, b: Any, n_a: Any, n_b: Any) -> dict[str, Any]:
        numeric = (_numbers_or_empty(a, b) if column.kind in ("accuracy", "resource", "count")
                   else column.kind == EXACT and _is_number(a, b))  # text in a number's column is compared as text
        if numeric:
            return self._numeric(column, _number(a), _number(b), n_a, n_b)
        ta, tb = _text(a), _text(b)
        same = ta == tb or (_is_number(a, b) and _number(a) == _number(b))
        label = "identical" if same else "flipped" if column.kind in FLIPS else "moved"
        return {"a": ta, "b": tb, "difference": math.nan, "lo": math.nan, "hi": math.nan, "interval": EXACT,
                "label": label}

    def _numeric(self, column: Column, a: float, b: float, n_a: Any, n_b: Any) -> dict[str, Any]:
        out = {"a": a, "b": b, "difference": b - a, "lo": math.nan, "hi": math.nan, "interval": EXACT}
        if a == b or (math.isnan(a) and math.isnan(b)):
            return out | {"label": "identical"}
        if math.isnan(a) or math.isnan(b):
            return out | {"label": "flipped" if column.kind in FLIPS else "moved"}
        if column.kind == "accuracy" and 0 <= a <= 1 and 0 <= b <= 1:
            na, nb = self._images(n_a), self._images(n_b)
            (a_lo, a_hi), (b_lo, b_hi) = (uncertainty.wilson(round(v * n), n, self.level) for v, n in ((a, na), (b, nb)))
            out["interval"] = f"Wilson {self.level:.0%} (n {na:g}" + (f"/{nb:g})" if nb != na else ")")
        elif column.kind == "resource":
            key = column.noise or column.name
            noise, scaled = self.noise, ""
            if self.speed is not None:
                if column.timed:  # B's time as if measured on A's host, by a slowdown the probes allow
                    factor, extra = self.speed.factor(a, b), self.speed.cv
                    b = b / factor
                    scaled = (f"; B / {factor:.2f} (host-speed probe: a slowdown between 1 and {self.speed.ratio:.2f}, "
                              f"cv {extra:.1%} added)")
                else:  # a host that ran at another speed: how far its speed moved is part of the noise
                    extra = math.hypot(self.speed.cv, self.speed.drift)
                    scaled = f"; hosts {self.speed.drift:.0%} apart in speed (host-speed probe, cv {extra:.1%} added)"
                noise = replace(noise, cv={**noise.cv, key: math.hypot(noise.cv_of(key), extra)})
            (a_lo, a_hi), (b_lo, b_hi) = (noise.interval(key, v, self.level) for v in (a, b))
            out["interval"] = f"noise {self.level:.0%}: {self.noise.label(key)}{scaled}"
        else:
            return out | {"label": "moved"}
        lo, hi = uncertainty.difference_interval(b, b_lo, b_hi, a, a_lo, a_hi)
        out["lo"], out["hi"] = float(lo), float(hi)
        return out | {"label": "within noise" if out["lo"] <= 0 <= out["hi"] else "moved"}

    @staticmethod
    def _images(n: Any) -> float:
        n = _number(n)
        return n if n > 0 else float(uncertainty.test_images())


def _shown(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _is_number(*values: Any) -> bool:
    return all(not math.isnan(_number(v)) for v in values)


def _numbers_or_empty(*values: Any) -> bool:
    """Every value a number or empty (a count or measurement that may be missing; not text)."""
    return all(_text(v).strip() == "" or _text(v).strip().lower() == "nan" or _is_number(v) for v in values)


# --- tables -----------------------------------------------------------------------------------------

def _keyed(df: pd.DataFrame, keys: tuple[str, ...]) -> dict[str, pd.Series]:
    """Rows by their key (key columns' values joined by ' / '; a repeated key gets ' #2', ...; without the key
    columns, the row number)."""
    out: dict[str, pd.Series] = {}
    have = all(k in df.columns for k in keys)
    for i, (_, row) in enumerate(df.iterrows()):
        key = " / ".join(_text(row[k]) for k in keys) if have else f"row {i + 1}"
        name, n = key, 1
        while name in out:
            n += 1
            name = f"{key} #{n}"
        out[name] = row
    return out


def _only(table: str, row: str, column: str, kind: str, value: Any, which: str) -> dict[str, Any]:
    return {"table": table, "row": row, "column": column, "kind": kind, "a": value if which == "A" else "",
            "b": value if which == "B" else "", "difference": math.nan, "lo": math.nan, "hi": math.nan,
            "interval": "", "label": f"only in {which}"}


Images = dict[str, dict[str, Any]]  # column -> row key -> number of images (from another table, `Column.n_table`)


def images(spec: TableSpec, folder: ResultsFolder) -> Images:
    """For the columns of `spec` whose images are counted in another table: row key -> images, from `folder`."""
    found: Images = {}
    for c in spec.columns:
        if c.n_table and c.n and (other := folder.table(c.n_table)) is not None and c.n in other.columns:
            found[c.name] = {k: row[c.n] for k, row in _keyed(other, spec.keys).items()}
    return found


def compare_table(spec: TableSpec, a: pd.DataFrame | None, b: pd.DataFrame | None, judge: Judge,
                  images_a: Images | None = None, images_b: Images | None = None) -> list[dict]:
    """One row per (row, compared column) of `spec` in either frame."""
    if a is None and b is None:
        return []
    ra = _keyed(a, spec.keys) if a is not None else {}
    rb = _keyed(b, spec.keys) if b is not None else {}
    frame_cols = list(dict.fromkeys([*(a.columns if a is not None else ()), *(b.columns if b is not None else ())]))
    cols = [c for c in spec.compared(frame_cols) if c.name in frame_cols]
    rows = []
    for key in dict.fromkeys([*ra, *rb]):
        x, y = ra.get(key), rb.get(key)
        for c in cols:
            in_a, in_b = x is not None and c.name in x.index, y is not None and c.name in y.index
            if not (in_a and in_b):
                which, row = ("A", x) if in_a else ("B", y)
                if in_a or in_b:
                    rows.append(_only(spec.name, key, c.name, c.kind, _text(row[c.name]), which))
                continue
            n_a, n_b = ((found or {}).get(c.name, {}).get(key) if c.n_table else r.get(c.n) if c.n else None
                        for r, found in ((x, images_a), (y, images_b)))
            rows.append({"table": spec.name, "row": key, "column": c.name, "kind": c.kind,
                         **judge.cell(c, x[c.name], y[c.name], n_a, n_b)})
    return rows


def compare_numbers(a: Mapping[str, Any], b: Mapping[str, Any], judge: Judge) -> list[dict]:
    rows = []
    for name in dict.fromkeys([*a, *b]):
        va, vb = a.get(name), b.get(name)
        strings = isinstance(va, str) or isinstance(vb, str)
        kind: Kind = "decision" if name.startswith(DECISION_NUMBERS) else EXACT if strings or \
            isinstance(va, float) or isinstance(vb, float) else "count"
        if name not in a or name not in b:
            rows.append(_only(NUMBERS, name, "value", kind, _text(va if name in a else vb), "A" if name in a else "B"))
            continue
        rows.append({"table": NUMBERS, "row": name, "column": "value", "kind": kind,
                     **judge.cell(Column("value", kind), va, vb)})
    return rows


# --- the comparison -----------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Every compared cell (`rows`, `COLUMNS`) of two results folders, and what judged them."""

    a: ResultsFolder
    b: ResultsFolder
    noise: uncertainty.NoiseModel
    rows: pd.DataFrame
    speed: hostprobe.Speed | None = None

    def totals(self) -> dict[str, int]:
        """Cells per label over every table (every label, in `LABELS` order)."""
        got = self.rows["label"].value_counts()
        return {label: int(got.get(label, 0)) for label in LABELS}

    def counts(self) -> pd.DataFrame:
        """Cells per table and label (one column per label, in `LABELS` order)."""
        order = [t.name for t in TABLES] + [NUMBERS]
        counts = pd.crosstab(self.rows["table"], self.rows["label"]).reindex(columns=list(LABELS), fill_value=0)
        return counts.reindex([t for t in order if t in counts.index]).rename_axis(columns=None).reset_index()

    def summary_lines(self) -> list[str]:
        """One line per table: its cells per label (labels with none left out)."""
        titles = TITLES
        lines = []
        for row in self.counts().itertuples(index=False):
            counts = dict(zip(LABELS, row[1:]))
            parts = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
            lines.append(f"{titles[row.table]} ({row.table}): {sum(counts.values())} cells: {parts}")
        return lines

    def changed(self) -> pd.DataFrame:
        """The cells that are neither identical nor within noise."""
        return self.rows[~self.rows["label"].isin(("identical", "within noise"))].reset_index(drop=True)


def _stability(folder: ResultsFolder) -> dict[tuple[str, str], dict[str, float]]:
    """(tables, priority) -> {member: how often the stability analysis chose it} of `folder` (empty: none)."""
    df = folder.table(STABILITY_TABLE)
    if df is None or not {"tables", "priority", "model", "frequency"} <= set(df.columns):
        return {}
    found: dict[tuple[str, str], dict[str, float]] = {}
    for row in df.itertuples(index=False):
        found.setdefault((str(row.tables), str(row.priority)), {})[str(row.model)] = _number(row.frequency)
    return found


def unstable_choices(rows: list[dict], a: ResultsFolder, b: ResultsFolder, level: float) -> list[dict]:
    """A flipped decision of a (tables, priority) row whose new and old members the stability analysis (of A or B)
    each chose in at least 1 - level of its resamples is `within noise`, its interval saying so."""
    freq = _stability(a)
    for key, members in _stability(b).items():
        for model, f in members.items():
            freq.setdefault(key, {})[model] = max(f, freq.get(key, {}).get(model, 0.0))
    if not freq:
        return rows
    out = []
    for r in rows:
        if r["kind"] == "decision" and r["label"] == "flipped" and " / " in r["row"]:
            seen = freq.get(tuple(r["row"].split(" / ", 1)), {})
            fa, fb = seen.get(_text(r["a"]), 0.0), seen.get(_text(r["b"]), 0.0)
            if min(fa, fb) >= 1 - level:
                r = r | {"label": "within noise", "interval": f"unstable choice: the stability analysis chose "
                         f"{_text(r['a'])} in {fa:.0%} and {_text(r['b'])} in {fb:.0%} of its resamples"}
        out.append(r)
    return out


def compare(a: str | Path, b: str | Path, *, allow_profile_mismatch: bool = False,
            noise: uncertainty.NoiseModel | None = None, level: float = uncertainty.LEVEL) -> Comparison:
    """Compare results folder `a` (the reference) with `b`, cell by cell (see the module's docstring).

    Raises StudyError when either is not a results folder, its manifest or a compared file is damaged, or their
    profiles differ (unless `allow_profile_mismatch`)."""
    fa, fb = ResultsFolder.open(a, "A"), ResultsFolder.open(b, "B")
    if fa.profiles and fb.profiles and fa.profiles != fb.profiles and not allow_profile_mismatch:
        raise StudyError(f"A ({fa.path}) was made with profile {'/'.join(fa.profiles)}, B ({fb.path}) with "
                         f"{'/'.join(fb.profiles)}: their numbers are not comparable run to run; compare two runs "
                         "of the same profile, or pass --allow-profile-mismatch")
    speed = hostprobe.Speed.of(hostprobe.read(fa.path), hostprobe.read(fb.path))
    judge = Judge(noise or noise_model(fa, fb), level, speed)
    rows = [r for spec in TABLES for r in compare_table(spec, fa.table(spec.name), fb.table(spec.name), judge,
                                                        images(spec, fa), images(spec, fb))]
    rows = unstable_choices(rows, fa, fb, level) + compare_numbers(fa.numbers(), fb.numbers(), judge)
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("difference", "lo", "hi"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return Comparison(fa, fb, judge.noise, df, speed)
