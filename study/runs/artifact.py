"""`make artifact`: one archive for deposit (`study.runs.archive`'s format) of a finished `make reproduce`.

It holds the results folder (its manifest, tables, numbers, the host-speed probe, the verdict, the notebooks' run
records and the run's snapshot.json: `study compare` reads it as a results folder), the executed notebooks, the
figures, the draft PDF (when `make paper` built one), the lock files, CITATION.cff, LICENSE and the Makefile (the
workflow), the RO-Crate metadata (`study.runs.rocrate`), `.zenodo.json` for upload and the evaluation report
(`study.runs.badges`); MANIFEST.json lists every file with its SHA-256.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from study.config import ROOT, Profile, figures_dir, results_dir
from study.errors import StudyError
from study.report import git_commit
from study.runs import archive, badges, compare, history, rocrate, verdict

RESULT_PARTS = ("manifest.json", "tables", "numbers", "host_probe.json", verdict.FOLDER, history.RECORDS)
LOCKS = ("requirements/base.txt", "requirements/nodeps.txt", "requirements/ray.txt", "requirements/lock.txt",
         "web/package-lock.json", "web/package.json", "pyproject.toml", "environment.yml")
TOP = ("CITATION.cff", "LICENSE", "Makefile")
DRAFT = ROOT / "paper" / "build" / "draft.pdf"
JUNIT = "junit.xml"  # results/junit.xml: `make test PYTEST_ARGS=--junitxml=results/junit.xml`


@dataclass(frozen=True)
class Built:
    path: Path
    files: int
    missing: list[str]  # parts the archive lacks (no draft PDF, no test result ...), said on stderr


def _under(folder: Path, prefix: str, patterns: tuple[str, ...] = ("*",)) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {f"{prefix}/{p.relative_to(folder).as_posix()}": p for pattern in patterns for p in folder.rglob(pattern)
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def collect(results: Path, figures: Path, profile: Profile) -> tuple[dict[str, Path | bytes], list[str]]:
    """{path in the archive: source} of a run's outputs and the project's lock and citation files, and what is
    missing."""
    if not (results / "manifest.json").is_file():
        raise StudyError(f"{results} has no manifest.json: no results to archive; run `make reproduce "
                         f"PROFILE={profile.name}` first")
    members: dict[str, Path | bytes] = {}
    for part in RESULT_PARTS:
        path = results / part
        members |= _under(path, f"{archive.RESULTS}/{part}") if path.is_dir() else \
            ({f"{archive.RESULTS}/{part}": path} if path.is_file() else {})
    run = verdict.run_folder(results, profile)
    info = history.read_info(run) or history.describe(results, profile=profile.name,
                                                          versions=compare.table_versions())
    members[f"{archive.RESULTS}/{history.INFO}"] = (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()
    members |= _under(results / "notebooks", "notebooks", ("*.ipynb",))
    members |= _under(figures, "figures", ("*.pdf", "*.png"))
    members |= {name: ROOT / name for name in (*LOCKS, *TOP) if (ROOT / name).is_file()}
    missing = []
    if DRAFT.is_file():
        members["paper/draft.pdf"] = DRAFT
    else:
        missing.append(f"the draft PDF ({DRAFT.relative_to(ROOT)}: run `make paper PROFILE={profile.name}`)")
    if not any(k.startswith("notebooks/") for k in members):
        missing.append("executed notebooks (results/notebooks/)")
    return members, missing


def _entry(source: Path | bytes) -> dict[str, Any]:
    data = source if isinstance(source, bytes) else source.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _citation() -> dict[str, Any]:
    try:
        found = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StudyError(f"CITATION.cff cannot be read ({exc}); it describes the artifact for deposit") from None
    return found if isinstance(found, dict) else {}


def zenodo(citation: dict[str, Any], commit: str, profile: Profile) -> dict[str, Any]:
    """`.zenodo.json`: Zenodo's deposit metadata, from CITATION.cff."""
    creators = [{"name": a.get("name") or ", ".join(p for p in (a.get("family-names"), a.get("given-names")) if p)}
                for a in citation.get("authors", []) if isinstance(a, dict)]
    return {"title": " ".join(str(citation.get("title", "study")).split()), "upload_type": "dataset",
            "description": " ".join(str(citation.get("abstract", "")).split())
            + f" This archive: one `make reproduce` with profile {profile.name} at commit {commit}, its results, "
              "executed notebooks, figures, lock files and evaluation report.",
            "creators": creators, "license": citation.get("license", "Apache-2.0"), "access_right": "open",
            "version": str(citation.get("version", "")), "keywords": list(citation.get("keywords", []))}


def build(profile: Profile, out: str | Path | None = None, *, results: str | Path | None = None,
          figures: str | Path | None = None, junit: str | Path | None = None) -> Built:
    """Write the archive (default `<results>/artifact/study-<profile>-<commit>.zip`) and return where, how many
    files and what it lacks."""
    results, figures = Path(results or results_dir()), Path(figures or figures_dir())
    members, missing = collect(results, figures, profile)
    commit = git_commit()
    out = Path(out or results / "artifact" / f"study-{profile.name}-{commit[:12]}.zip")
    citation = _citation()
    run_info = json.loads(members[f"{archive.RESULTS}/{history.INFO}"])
    tests = badges.read_junit(junit or results / JUNIT)
    if tests is None:
        missing.append(f"the `make test` result ({results / JUNIT})")
    docs = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    notebooks = sum(1 for k in members if k.startswith("notebooks/"))
    found = badges.badges(files=len(members) + 3,  # with EVALUATION.md, .zenodo.json, the RO-Crate metadata
                           license_id=str(citation.get("license", "Apache-2.0")), docs=docs,
                          notebooks=notebooks, tests=tests, run=run_info, verdict=verdict.read(results),
                          archive_name=out.name)
    title = " ".join(str(citation.get("title", "study")).split())
    members["EVALUATION.md"] = badges.report(found, title=title, commit=commit, profile=profile.name).encode()
    members[".zenodo.json"] = (json.dumps(zenodo(citation, commit, profile), indent=2) + "\n").encode()
    listing = {name: _entry(src) for name, src in members.items()}
    ran = [n for n in run_info.get("notebooks", []) if isinstance(n, dict)]
    ended = str(run_info.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    started = _started(ended, sum(float(n.get("seconds", 0)) for n in ran))
    crate = rocrate.metadata(
        listing, name=title, description=f"One `make reproduce` (profile {profile.name}) of the study, with its "
        "results, executed notebooks, figures, lock files and evaluation report.",
        license_id=str(citation.get("license", "Apache-2.0")), profile=profile.name, commit=commit,
        machine=run_info.get("machine") or {}, started=started, ended=ended,
        inputs=[k for k in listing if k.startswith(("requirements/", "web/"))
                or k in ("pyproject.toml", "environment.yml")],
        outputs=[k for k in listing if k.startswith((f"{archive.RESULTS}/", "notebooks/", "figures/", "paper/"))])
    members[rocrate.METADATA] = (json.dumps(crate, indent=2) + "\n").encode()
    archive.write(out, members, {"commit": commit, "profile": profile.name,
                                 "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    return Built(out, len(members), missing)


def _started(ended: str, seconds: float) -> str:
    try:
        return (dt.datetime.fromisoformat(ended) - dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")
    except ValueError:
        return ended
