"""The verdict every `make reproduce` ends with: this run against the shipped reference of its profile.

`against(results, profile)` compares the run's snapshot (`study.runs.history`; the results folder itself when it
has none) with `reference/<profile>/` (`study.runs.reference`) cell by cell (`study.runs.compare`), judged by the
noise model that covers a re-run (`study.runs.drift`: within-run repeats widened by the spread of earlier runs of
this machine) and the host-speed probes (`study.runs.hostprobe`). A stale reference is reported, never compared.
The verdict holds the counts per label with the reference's commit and machine, what differs between the two runs
(CPU model, cores, platform, library versions from the lock, profile, the notebooks whose code changed, the
hosts' speed), and every moved or flipped cell with the differences that could explain it (`why`).
`write(verdict, results)` puts it in `results/verdict/` (verdict.json, verdict.txt, cells.csv).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from study import files
from study.config import Profile, results_dir
from study.decision import uncertainty
from study.report import read_manifest
from study.runs import compare, drift, history, hostprobe, reference

FOLDER = "verdict"  # results/verdict/
CHANGED = ["table", "row", "column", "kind", "a", "b", "difference", "interval", "label", "why"]
SHOWN_LIBRARIES = 4  # library changes named in a line (the rest counted)


@dataclass
class Verdict:
    """This run (`run`) against a reference: `status` is `compared`, `stale` (not compared: `reasons`) or
    `no reference` (none shipped for the profile)."""

    status: str
    reference: Path
    run: Path
    reasons: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    reference_info: dict[str, Any] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)
    differences: dict[str, str] = field(default_factory=dict)
    noise: str = ""
    changed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHANGED))
    comparison: compare.Comparison | None = field(default=None, repr=False)

    @property
    def cells(self) -> int:
        return sum(self.counts.values())

    def headline(self) -> str:
        ref = who(self.reference_info)
        if self.status == "no reference":
            return f"no shipped reference at {self.reference} to judge this run by"
        if self.status == "stale":
            return f"the reference {self.reference} ({ref}) is stale and was not compared: {self.reasons[0]}"
        spelled = ", ".join(f"{n} {label}" for label, n in self.counts.items() if n)
        return f"this run against the reference {self.reference} ({ref}): {self.cells} cells, {spelled}"

    def lines(self) -> list[str]:
        """The verdict as `make reproduce` prints it."""
        out = [self.headline()]
        if self.status == "stale":
            out += [f"stale: {r}" for r in self.reasons[1:]]
            name = self.run_info.get("profile", "?")
            out.append(f"regenerate it: python -m study reproduce --profile {name} && make reference PROFILE={name}")
            return out
        if self.status != "compared":
            return out
        out += [f"differs: {k}: {v}" for k, v in self.differences.items()]
        out.append(f"noise: {self.noise}")
        for row in self.changed.head(20).itertuples(index=False):
            out.append(f"{row.label}: {row.table} / {row.row} / {row.column}: {row.a} -> {row.b} ({row.why})")
        if len(self.changed) > 20:
            out.append(f"... and {len(self.changed) - 20} more moved or flipped cells (results/verdict/cells.csv)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reference": str(self.reference), "run": str(self.run), "reasons": self.reasons,
                "counts": self.counts, "cells": self.cells, "reference_commit": self.reference_info.get("commit"),
                "reference_machine": self.reference_info.get("machine"),
                "reference_created": self.reference_info.get("created"), "run_commit": self.run_info.get("commit"),
                "run_machine": self.run_info.get("machine"), "profile": self.run_info.get("profile"),
                "differences": self.differences, "noise": self.noise, "moved_or_flipped": len(self.changed),
                "headline": self.headline()}


def who(info: Mapping[str, Any]) -> str:
    """Which run a snapshot's info describes: commit, machine, date."""
    machine = info.get("machine") or {}
    return (f"commit {str(info.get('commit', 'unknown'))[:12]}, {machine.get('cpu_model', 'unknown CPU')} x "
            f"{machine.get('cores', '?')}, {str(info.get('created', ''))[:10]}")


def differences(a: Mapping[str, Any], b: Mapping[str, Any], code_changed: list[str] = (),
                speed: hostprobe.Speed | None = None) -> dict[str, str]:
    """What differs between the reference's run (`a`, its snapshot.json) and this one (`b`), by what it is."""
    out: dict[str, str] = {}
    ma, mb = a.get("machine") or {}, b.get("machine") or {}
    for key, name in (("cpu_model", "CPU model"), ("cores", "cores"), ("platform", "platform"), ("python", "Python")):
        if ma.get(key) != mb.get(key):
            out[name] = f"{ma.get(key, 'unknown')} -> {mb.get(key, 'unknown')}"
    la, lb = a.get("libraries") or {}, b.get("libraries") or {}
    moved = [f"{p} {la.get(p, 'none')} -> {lb.get(p, 'none')}" for p in sorted(set(la) | set(lb))
             if la.get(p) != lb.get(p)]
    if moved:
        more = f" (+{len(moved) - SHOWN_LIBRARIES} more)" if len(moved) > SHOWN_LIBRARIES else ""
        out["libraries"] = ", ".join(moved[:SHOWN_LIBRARIES]) + more
    elif not la or not lb:
        unrecorded = [who for who, pins in (("the reference", la), ("this run", lb)) if not pins]
        out["libraries"] = "not recorded by " + " and ".join(unrecorded)
    if a.get("profile") != b.get("profile"):
        out["profile"] = f"{a.get('profile')} -> {b.get('profile')}"
    elif a.get("profile_definition") and b.get("profile_definition") and \
            a["profile_definition"] != b["profile_definition"]:  # same name, changed in study/profiles.py
        out["profile"] = f"{b.get('profile')}: its definition changed since the reference (study/profiles.py)"
    if code_changed:
        out["code"] = f"notebooks changed since the reference: {', '.join(code_changed)}"
    if speed is not None:
        out["host speed"] = speed.sentence()
    return out


def why(row: Mapping[str, Any], diffs: Mapping[str, str], notebook: str | None, code_changed: list[str]) -> str:
    """The differences between the two runs that could explain one moved or flipped cell, and what judged it."""
    machine = [k for k in ("CPU model", "cores", "platform", "host speed") if k in diffs]
    parts = [f"{k} differs" if k != "host speed" else diffs[k] for k in machine] if row["kind"] == "resource" else []
    if "libraries" in diffs:
        parts.append(f"libraries: {diffs['libraries']}")
    if notebook and notebook in code_changed:
        parts.append(f"{notebook}'s code changed since the reference")
    if "profile" in diffs:
        parts.append(f"profile {diffs['profile']}")
    judged = str(row.get("interval") or "")
    parts.append(f"judged by {judged}" if judged and judged != compare.EXACT else "compared exactly")
    if len(parts) == 1:
        parts.insert(0, "nothing recorded differs between the runs but the time they ran")
    return "; ".join(parts)


def _notebooks_of(folder: Path) -> dict[str, str]:
    """table name -> the notebook that wrote it, from a folder's manifest."""
    out = {}
    for path, entry in read_manifest(folder / "manifest.json").get("artifacts", {}).items():
        if isinstance(entry, dict) and path.endswith(".csv"):
            out[Path(path).stem] = str(entry.get("notebook", ""))
    return out


def run_folder(results: Path, profile: Profile) -> Path:
    """What stands for this run: its latest `profile` snapshot in results/history/, else the results folder."""
    found = [s for s in history.snapshots(results) if history.read_info(s).get("profile") == profile.name]
    return found[-1] if found else results


def against(results: str | Path | None = None, profile: Profile | None = None, *, ref: str | Path | None = None,
            code: Mapping[str, str] | None = None, level: float = uncertainty.LEVEL) -> Verdict:
    """This run (the results folder `results`, `profile`) against `ref` (default: the shipped reference of the
    profile). `code`: this checkout's notebook code versions, to name the notebooks changed since the reference."""
    results = Path(results or results_dir())
    run = run_folder(results, profile) if profile is not None else results
    ref_path = Path(ref) if ref else reference.folder(profile)
    run_info = history.read_info(run) or history.describe(results, profile=profile.name if profile else "",
                                                          versions=compare.table_versions())
    if not (ref_path.exists()):
        return Verdict("no reference", ref_path, run, run_info=run_info)
    ref_folder = compare.ResultsFolder.open(ref_path, "A").path  # an archive: its results folder
    ref_info = history.read_info(ref_folder)
    fresh = reference.freshness(ref_folder, code)
    if fresh.stale:
        return Verdict("stale", ref_path, run, fresh.stale, reference_info=ref_info, run_info=run_info)
    earlier = [s for s in history.snapshots(results) if s != run]
    earlier = drift.same_machine(earlier, run_info.get("machine") or {}, str(run_info.get("profile", "")))
    got = compare.compare(ref_folder, run, noise=drift.judging(ref_folder, run, earlier), level=level)
    diffs = differences(ref_info, run_info, fresh.code_changed, got.speed)
    notebooks = _notebooks_of(run)
    changed = got.rows[got.rows["label"].isin(("moved", "flipped"))].copy()
    changed["why"] = [why(r, diffs, notebooks.get(r["table"]), fresh.code_changed) for r in changed.to_dict("records")]
    return Verdict("compared", ref_path, run, [], got.totals(), ref_info, run_info, diffs, got.noise.describe(),
                   changed[CHANGED].reset_index(drop=True), got)


def write(verdict: Verdict, results: str | Path | None = None) -> Path:
    """results/verdict/: verdict.json (counts, commits, machines, differences), verdict.txt (the printed lines),
    cells.csv (every moved or flipped cell with its `why`). Returns the folder."""
    out = Path(results or results_dir()) / FOLDER
    files.write_text(out / "verdict.json", json.dumps(verdict.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
    files.write_text(out / "verdict.txt", "\n".join(verdict.lines()) + "\n")
    files.write_csv(out / "cells.csv", verdict.changed)
    return out


def read(results: str | Path | None = None) -> dict[str, Any] | None:
    """The verdict.json a run wrote (None: none)."""
    try:
        return json.loads((Path(results or results_dir()) / FOLDER / "verdict.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
