"""The artifact's archive format: one zip whose every file is listed, with its SHA-256 and size, in `MANIFEST.json`.

- `write(dest, members)`: the archive from {path in the archive: file on disk or bytes}, the manifest added last;
  written beside `dest` and renamed in (a killed write leaves no archive).
- `verify(archive)`: every listed file is there with its checksum and size, nothing is there unlisted, the manifest
  parses; the first problem is one StudyError naming the file (`python -m study verify ARCHIVE`).
- `results_of(archive)`: the archive's results folder, checked and unpacked once per process into a temporary
  folder, so `study compare ARCHIVE DIR` reads an archive as it reads a results folder.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from study import files
from study.errors import StudyError

MANIFEST = "MANIFEST.json"
FORMAT = "study-artifact/1"
RESULTS = "results"  # the archive's results folder (a results folder: `study compare` reads it)
HOW = "download the archive again, or rebuild it with `make artifact`"


def is_archive(path: str | Path) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(dest: str | Path, members: Mapping[str, Path | bytes], about: Mapping[str, Any] | None = None) -> Path:
    """Write the archive `dest` holding `members` and MANIFEST.json (format, `about`, every file's sha256 and size)."""
    listing: dict[str, dict[str, Any]] = {}
    names = sorted(members)
    for name in names:
        _check_name(name)

    def build(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                member = members[name]
                data = member if isinstance(member, bytes) else Path(member).read_bytes()
                zf.writestr(name, data)
                listing[name] = {"sha256": _digest(data), "bytes": len(data)}
            manifest = {"format": FORMAT, **dict(about or {}), "files": listing}
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    return files.atomic_write(dest, build)


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts or name == MANIFEST:
        raise StudyError(f"archive member {name!r} is not a relative path inside the archive (or is {MANIFEST})")


@dataclass(frozen=True)
class Verified:
    """An archive that passed `verify`: its manifest and the number of files checked."""

    path: Path
    manifest: dict[str, Any]
    files: int


def manifest_of(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise StudyError(f"{path} has no {MANIFEST}: not an archive of `make artifact`; {HOW}") from None
    except (ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise StudyError(f"{path}: {MANIFEST} is damaged ({type(exc).__name__}); {HOW}") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT or not isinstance(manifest.get("files"), dict):
        raise StudyError(f"{path}: {MANIFEST} is not a {FORMAT} manifest (format {found!r}); {HOW}")
    return manifest


def verify(path: str | Path) -> Verified:
    """Check every file of the archive against its manifest entry; raise StudyError naming the first bad file."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"archive {path} {'is not a file' if path.exists() else 'does not exist'}; pass the .zip "
                         "written by `make artifact`")
    if not zipfile.is_zipfile(path):
        raise StudyError(f"{path} is not a zip archive (damaged or another format); {HOW}")
    with zipfile.ZipFile(path) as zf:
        manifest = manifest_of(zf, path)
        listed: dict[str, Any] = manifest["files"]
        present = {i.filename for i in zf.infolist() if not i.is_dir()} - {MANIFEST}
        if missing := sorted(set(listed) - present):
            raise StudyError(f"{path}: {missing[0]} is listed in {MANIFEST} but not in the archive "
                             f"({len(missing)} missing); {HOW}")
        if extra := sorted(present - set(listed)):
            raise StudyError(f"{path}: {extra[0]} is in the archive but not listed in {MANIFEST} "
                             f"({len(extra)} unlisted); {HOW}")
        for name in sorted(listed):
            try:
                data = zf.read(name)
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                raise StudyError(f"{path}: {name} is damaged ({type(exc).__name__}: {exc}); {HOW}") from None
            entry = listed[name]
            if _digest(data) != entry.get("sha256") or len(data) != entry.get("bytes"):
                raise StudyError(f"{path}: {name} does not match its checksum in {MANIFEST} (sha256 "
                                 f"{_digest(data)[:12]}..., recorded {str(entry.get('sha256'))[:12]}...); {HOW}")
    return Verified(path, manifest, len(listed))


_UNPACKED: dict[Path, Path] = {}


def _cleanup() -> None:
    for folder in _UNPACKED.values():
        shutil.rmtree(folder.parent, ignore_errors=True)


atexit.register(_cleanup)


def results_of(path: str | Path) -> Path:
    """The archive's results folder: the archive verified, then unpacked once per process (removed at exit)."""
    path = Path(path).resolve()
    if path in _UNPACKED and _UNPACKED[path].is_dir():
        return _UNPACKED[path]
    verify(path)
    root = Path(tempfile.mkdtemp(prefix="study-artifact-"))
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if PurePosixPath(n).parts[:1] == (RESULTS,)]
        if not names:
            shutil.rmtree(root, ignore_errors=True)
            raise StudyError(f"{path} holds no {RESULTS}/ folder: not an archive of `make artifact`; {HOW}")
        zf.extractall(root, names)
    _UNPACKED[path] = root / RESULTS
    return root / RESULTS
