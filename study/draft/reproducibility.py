"""The paper draft's Reproducibility section: this run against a reference run (`study.runs.compare`), as generated
prose and tables, never typed numbers.

- `reference_folder(results, reference)`: the reference named (a results folder, snapshot or archive), else the
  latest earlier snapshot of this machine in results/history/ (the latest is this run's own, recorded by `make
  reproduce`), else the shipped reference `make reproduce` judged this run by (its verdict, `study.runs.verdict`),
  else the snapshot before the latest, else None. A stale shipped reference is said, not compared.
- `comparison_tables(reference, results)`: counts per table and label, and every moved or flipped cell (cells in
  one run only are counted, not listed: a table one run lacks would list all its cells).
- `section_tex(results, reference)`: the LaTeX the draft inputs as generated/reproducibility.tex; without a
  reference it says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from study import columns, config
from study.draft.floats import Tabular, latex_escape, longtable
from study.runs import compare, history, verdict

CHANGED_COLUMNS = ["table", "row", "column", "a", "b", "difference", "interval", "label"]
MAX_CELL = 60  # characters of a compared value shown in the draft (a long text value is cut, marked with ...)


def _machine(snapshot: Path) -> tuple:
    got = history.read_info(snapshot).get("machine") or {}
    return got.get("cpu_model"), got.get("cores")


def shipped(results: str | Path | None = None) -> tuple[Path, dict] | None:
    """The shipped reference this run's `make reproduce` judged it by, and its verdict (None: no verdict)."""
    got = verdict.read(results or config.results_dir())
    if not got or got.get("status") not in ("compared", "stale") or not Path(str(got.get("reference"))).exists():
        return None
    return Path(str(got["reference"])), got


def verdict_sentence(results: str | Path | None = None) -> str:
    """Page 1's sentence on whether this run reproduced the shipped reference (its `make reproduce` verdict, LaTeX
    escaped): the reference's commit and machine and the cells per label; "" when the run has no verdict."""
    got = verdict.read(results or config.results_dir())
    if not got or got.get("status") != "compared":
        return ("The shipped reference run is stale for this code and was not compared (Reproducibility section). "
                if got and got.get("status") == "stale" else "")
    source = verdict.who({"commit": got.get("reference_commit"), "machine": got.get("reference_machine"),
                          "created": got.get("reference_created")})
    counts = ", ".join(f"{n} {label}" for label, n in (got.get("counts") or {}).items() if n)
    return latex_escape(f"Against the shipped reference run ({source}), this run's {got.get('cells', 0)} compared "
                        f"cells are {counts} (Reproducibility section). ")


def reference_folder(results: str | Path | None = None, reference: str | Path | None = None) -> Path | None:
    """The folder this run is compared with: `reference` when given, else the latest earlier snapshot of this
    machine, else the shipped reference of the run's verdict, else the snapshot before the latest, else None."""
    if reference:
        return Path(reference)
    found = history.snapshots(results or config.results_dir())
    same = [s for s in found[:-1] if _machine(s) == _machine(found[-1])] if found else []
    if same:
        return same[-1]
    if ship := shipped(results):
        return ship[0]
    return found[-2] if len(found) >= 2 else None


@dataclass
class ReproTables:
    reference: Path
    results: Path
    counts: pd.DataFrame  # table, one column per label, cells
    changed: pd.DataFrame  # CHANGED_COLUMNS: every cell moved or flipped (one-sided cells are counted in `counts`)
    comparison: compare.Comparison


def comparison_tables(reference: str | Path, results: str | Path | None = None) -> ReproTables:
    """Compare `results` (default: this study's results folder) with `reference` (the A of `study compare`)."""
    results = Path(results or config.results_dir())
    got = compare.compare(reference, results)
    counts = got.counts()
    counts["cells"] = counts[list(compare.LABELS)].sum(axis=1)
    changed = got.rows[got.rows["label"].isin(("moved", "flipped"))][CHANGED_COLUMNS].reset_index(drop=True)
    return ReproTables(Path(reference), results, counts, changed, got)


def _judged(ref: Path, results: str | Path | None) -> ReproTables:
    """This run against the shipped reference as its verdict judges it (`study.runs.verdict.against`: the run's
    snapshot, the noise that covers a re-run, the host-speed probes)."""
    results = Path(results or config.results_dir())
    profiles = compare.ResultsFolder.open(results, "B").profiles
    profile = config.PROFILES.get(profiles[0]) if len(profiles) == 1 else None  # the name the run recorded
    got = verdict.against(results, profile, ref=ref).comparison
    if got is None:
        return comparison_tables(ref, results)
    counts = got.counts()
    counts["cells"] = counts[list(compare.LABELS)].sum(axis=1)
    changed = got.rows[got.rows["label"].isin(("moved", "flipped"))][CHANGED_COLUMNS].reset_index(drop=True)
    return ReproTables(Path(ref), results, counts, changed, got)


def _cut(value) -> str:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 3] + "..."


def _tab(df: pd.DataFrame, numeric: set[str] = frozenset()) -> Tabular:
    align = "".join("r" if c in numeric else "l" for c in df.columns)
    header = [[latex_escape(str(c).replace("_", " ")) for c in df.columns]]
    rows = [[latex_escape(_cut(v)) for v in row] for row in df.itertuples(index=False)]
    return Tabular(align, header, rows)


def _describe(folder: Path, opened: compare.ResultsFolder) -> str:
    info = history.read_info(folder)
    profile = info.get("profile") or "/".join(opened.profiles)
    commit = str(info.get("commit") or "/".join(c[:8] for c in opened.commits))
    parts = [f"profile {profile}" if profile else "", f"commit {commit[:8]}" if commit else "",
             str(info.get("created", ""))[:19].replace("T", " ")]
    shown = ", ".join(p for p in parts if p)
    return rf"\texttt{{{latex_escape(folder.name)}}}" + (f" ({latex_escape(shown)})" if shown else "")


def section_tex(results: str | Path | None = None, reference: str | Path | None = None) -> str:
    """The generated body of the Reproducibility section (paper/sections/reproducibility.tex inputs it)."""
    head = "% generated by study.draft.reproducibility (study.draft.document.build): do not edit\n"
    ref = reference_folder(results, reference)
    if ref is None:
        return head + ("No reference run: \\texttt{results/history/} holds fewer than two runs of this study and no "
                       "reference folder was named, so this run is compared with none. Run \\texttt{make reproduce} "
                       "again (another date, machine or commit), or name a results folder as the draft's reference.\n")
    ship = shipped(results)
    if ship and ship[0] == ref:
        if ship[1].get("status") == "stale":
            return head + (f"The shipped reference {_describe(ref, compare.ResultsFolder.open(ref, 'A'))} is stale "
                           f"and was not compared: {latex_escape(str((ship[1].get('reasons') or [''])[0]))}. "
                           "Regenerate it with \\texttt{make reproduce} and \\texttt{make reference}.\n")
        t = _judged(ref, results)
    else:
        t = comparison_tables(ref, results)
    total = t.counts[list(compare.LABELS)].sum()
    spelled = ", ".join(f"{int(n)} {label}" for label, n in total.items() if n)
    one_sided = total.get("only in A", 0) + total.get("only in B", 0)
    noise = t.comparison.noise
    measured = [k for k in noise.evidence]
    noise_text = ("; ".join(f"{columns.header_of(k)} {noise.label(k)}" for k in measured) + "; others "
                  if measured else "") \
        + noise.label("*")
    text = [head,  # \sloppy: code-set folder names and commits leave TeX few places to break the lines
            r"{\sloppy " f"This run, {_describe(t.results, t.comparison.b)}, against the reference "
            f"{_describe(ref, t.comparison.a)}, cell by cell with "
            rf"\texttt{{study compare}}: {int(total.sum())} cells, {latex_escape(spelled)}. "
            f"Resources are judged by the noise model {latex_escape(noise_text)}; accuracies by Wilson intervals; "
            "counts, verdicts and decisions exactly. "
            + (f"Table~\\ref{{tab:repro-changed}} lists every cell that moved beyond its noise or flipped "
               f"({len(t.changed)})." if len(t.changed) else "No cell moved beyond its noise or flipped.")
            + (f" {int(one_sided)} cells are in one run only (counted per table below)." if one_sided else "")
            + r"\par}",
            ""]
    counts = t.counts[["table", *[c for c in compare.LABELS if t.counts[c].any()], "cells"]]
    counts = counts.assign(table=counts["table"].map(lambda n: compare.TITLES.get(n, n)))  # a reader's names
    text.append(longtable(_tab(counts, set(counts.columns) - {"table"}), "Cells per label",
                          "This run against the reference: compared cells per table and label (study compare).",
                          "tab:repro-counts"))
    if len(t.changed):
        changed = t.changed.assign(table=t.changed["table"].map(lambda n: compare.TITLES.get(n, n)),
                                   difference=t.changed["difference"].map(lambda v: "" if v != v else f"{v:.4g}"),
                                   column=t.changed["column"].map(lambda c: columns.describe(str(c))[0]))  # as read
        text.append(longtable(_tab(changed, {"difference"}), "Moved or flipped cells",
                              "Every cell that moved beyond its noise or flipped (a: the reference, b: this run).",
                              "tab:repro-changed"))
    return "\n".join(text) + "\n"
