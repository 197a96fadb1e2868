"""The results history: after every `make reproduce`, a compact snapshot of what it produced, for `study compare`.

`record` (called by `study.runs.reproduce.reproduce` when every notebook succeeded) copies, from the results folder,
the generated numbers (`numbers/*.json`), the compared tables (`tables/<name>.csv`, names from the caller:
`study.runs.compare.table_names()`), their manifest entries, the host-speed probe (`study.runs.hostprobe`) and
`snapshot.json` (commit, machine, profile, date, the notebooks run; what made it: each notebook's code version from
its `reproduce` record, the compared tables' versions from the caller, the library versions of the lock) into
`results/history/<UTC timestamp>/`. Kilobytes: no models, figures or executed notebooks. A snapshot is itself a
results folder, so `study compare` reads it as it reads `results/`; `previous_pair` names the latest snapshot and
the one before (`study compare --previous`). A run whose kept files are byte for byte those of the latest snapshot
(everything cached) adds none, unless that snapshot recorded other table versions. The folder is built beside its
place and renamed in (`study.files.atomic_dir`): a killed run leaves a whole snapshot or none. The oldest beyond
`KEEP` are removed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from study import files
from study.cache import keys
from study.config import PROFILES, ROOT, results_dir
from study.errors import StudyError
from study.report import git_commit, read_manifest
from study.runs import hostprobe, lockfile

HISTORY = "history"
INFO = "snapshot.json"
KEEP = 100  # snapshots kept; the oldest beyond are removed
LOCK = ROOT / "requirements" / "lock.txt"  # the library versions a snapshot records
RECORDS = "reproduce"  # <results>/reproduce/<notebook>.json: each notebook's last successful run (its key's parts)


def code_version(components: dict[str, str]) -> str:
    """A notebook's code version: the digest of the parts of its key that are code (its code cells and every
    `study` module it uses), not its parameters, inputs, lock files or machine."""
    return keys.digest({k: v for k, v in components.items() if k == "code cells" or k.startswith("study/")})


def code_versions(results: str | Path | None = None) -> dict[str, str]:
    """{notebook: code version} of the runs recorded in `results`/reproduce/ (the code that made its tables)."""
    found = {}
    for path in sorted((Path(results or results_dir()) / RECORDS).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found[str(record["notebook"])] = code_version(dict(record["components"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def libraries(lock: Path = LOCK) -> dict[str, str]:
    """{package: version} pinned by the lock file (empty when there is none)."""
    return lockfile.read_pins(lock) if lock.is_file() else {}


def history_dir(results: str | Path | None = None) -> Path:
    return Path(results or results_dir()) / HISTORY


def snapshots(results: str | Path | None = None) -> list[Path]:
    """Whole snapshots, oldest first (a snapshot's name is its UTC creation time, so names sort by time)."""
    root = history_dir(results)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / INFO).is_file())


def read_info(folder: str | Path) -> dict[str, Any]:
    """A snapshot's `snapshot.json` ({} for a results folder that is not a snapshot, or an unreadable one)."""
    try:
        info = json.loads((Path(folder) / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def previous_pair(results: str | Path | None = None) -> tuple[Path, Path]:
    """(the snapshot before the latest, the latest): what `study compare --previous` compares."""
    found = snapshots(results)
    if len(found) < 2:
        raise StudyError(f"{history_dir(results)} holds {len(found)} snapshot(s); --previous needs two (each "
                         "`make reproduce` that produces results adds one); or name two folders: study compare A B")
    return found[-2], found[-1]


def _kept(results: Path, tables: Iterable[str]) -> list[Path]:
    """The files of `results` a snapshot keeps, relative to it."""
    kept = [Path("tables") / f"{name}.csv" for name in tables if (results / "tables" / f"{name}.csv").is_file()]
    kept += sorted(p.relative_to(results) for p in (results / "numbers").glob("*.json"))
    return kept + ([Path(hostprobe.PROBE)] if (results / hostprobe.PROBE).is_file() else [])


def _digest(root: Path, kept: Sequence[Path]) -> str:
    listing = "\n".join(f"{rel.as_posix()}\t{files.sha256(root / rel)}" for rel in sorted(kept))
    return hashlib.sha256(listing.encode()).hexdigest()


def _manifest(results: Path, kept: Sequence[Path]) -> dict[str, Any]:
    """The manifest entries of the kept files (entries are keyed by the path as the manifest shows it)."""
    wanted = {rel.as_posix() for rel in kept}
    artifacts = read_manifest(results / "manifest.json").get("artifacts", {})
    return {"artifacts": {path: entry for path, entry in artifacts.items()
                          if "/".join(Path(path).parts[-2:]) in wanted and isinstance(entry, dict)}}


def _name(root: Path, now: dt.datetime) -> str:
    base = now.strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def profile_definition(profile: str) -> str | None:
    """A digest of the profile's definition (`study.profiles`: members, sweep, noise plan, ...): a reference made
    under another definition of the same profile name is a different experiment, and the verdict says so."""
    return keys.digest(repr(PROFILES[profile]))[:12] if profile in PROFILES else None


def describe(results: Path, *, profile: str, versions: dict[str, str], notebooks: Sequence[dict[str, Any]] = (),
             now: dt.datetime | None = None) -> dict[str, Any]:
    """What a snapshot's `snapshot.json` says of the run in `results` (besides its digest and file count)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return {"created": now.isoformat(timespec="seconds"), "commit": git_commit(), "machine": keys.machine(),
            "profile": profile, "profile_definition": profile_definition(profile), "notebooks": list(notebooks),
            "source": str(results), "code": code_versions(results), "table_versions": dict(versions), "libraries": libraries()}


def snapshot(results: str | Path | None = None, *, tables: Iterable[str], profile: str,
             notebooks: Sequence[dict[str, Any]] = (), now: dt.datetime | None = None,
             versions: dict[str, str] | None = None) -> Path | None:
    """Write a snapshot of `results` under its `history/`; None when nothing changed since the latest one.
    `versions`: the compared tables' versions (`study.runs.compare.table_versions()`)."""
    results = Path(results or results_dir())
    kept = _kept(results, tables)
    if not kept:
        return None
    digest = _digest(results, kept)
    previous = snapshots(results)
    latest = read_info(previous[-1]) if previous else {}
    if latest.get("digest") == digest and (latest.get("table_versions") or {}) == (versions or {}):
        return None  # the same files, described with the same table versions
    now = now or dt.datetime.now(dt.timezone.utc)
    root = history_dir(results)
    dest = root / _name(root, now)
    info = describe(results, profile=profile, versions=versions or {}, notebooks=notebooks, now=now) | {
        "digest": digest, "files": len(kept)}
    with files.atomic_dir(dest) as tmp:
        for rel in kept:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(results / rel, tmp / rel)
        (tmp / "manifest.json").write_text(json.dumps(_manifest(results, kept), indent=2, sort_keys=True) + "\n")
        (tmp / INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    for old in snapshots(results)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def record(profile: str, runs: Sequence[Any] = (), *, tables: Iterable[str],
           results: str | Path | None = None, versions: dict[str, str] | None = None) -> Path | None:
    """After a successful `reproduce`: snapshot its results (a line on stderr says where, or why none)."""
    notebooks = [{"notebook": r.notebook, "cached": bool(r.cached), "seconds": round(float(r.seconds), 1)}
                 for r in runs]
    try:
        path = snapshot(results, tables=tables, profile=profile, notebooks=notebooks, versions=versions)
    except OSError as exc:  # the results are written all the same; only their history entry is missing
        print(f"[reproduce] warning: no history snapshot ({exc}); `study compare --previous` will not see this "
              "run", file=sys.stderr)
        return None
    if path is None:
        print("[reproduce] history: results unchanged since the latest snapshot; none added", file=sys.stderr)
    else:
        print(f"[reproduce] history: snapshot {path} (`make compare` compares it with the one before)",
              file=sys.stderr)
    return path
