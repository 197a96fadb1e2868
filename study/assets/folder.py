"""The paper profile's offline asset folder (`STUDY_ASSETS=DIR` or `--assets DIR`): bytes a run can prove it used.

`python -m study zoo fetch --to DIR` fills it on a connected machine (study.assets.fetch); compute nodes
without internet then read only this folder. Layout:

    DIR/assets.lock.json                          what is here (format below); written after every asset
    DIR/tfhub_modules/<sha1 of the URL>/          one TF Hub asset, exactly as tensorflow_hub caches it
    DIR/tfhub_modules/<sha1 of the URL>.descriptor.txt   tensorflow_hub's note on the download (handle, time, host)
    DIR/flower_photos.tgz                         the Flower Photos archive (Section VII-B)

`DIR/tfhub_modules` is handed to tensorflow_hub as `TFHUB_CACHE_DIR` (with `TFHUB_MODEL_LOAD_FORMAT=COMPRESSED`, so
it never asks tfhub.dev where an uncompressed copy lives): `hub.KerasLayer("https://tfhub.dev/<handle>/<version>")`
finds the folder and never touches the network. Every file's sha256 is checked against the lock before use; one
that differs is a StudyError naming it. `AssetLock.digest` (sha256 over every locked file's path and sha256) is
recorded in Table IX / X rows and manifest entries, so a reader knows which bytes a result came from.

This module is deliberately free of TensorFlow and of `study.config` (config asks it for the Flower Photos path).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from study import files
from study.errors import StudyError
from study.runtime.envvars import scoped_environ

ASSETS_ENV = "STUDY_ASSETS"
LOCK_NAME = "assets.lock.json"
HUB_DIR = "tfhub_modules"  # TFHUB_CACHE_DIR inside the folder
FLOWERS = "flower_photos"  # the data set's name in the lock
FLOWERS_ARCHIVE = "flower_photos.tgz"
LOCK_FORMAT = 1
# What tensorflow_hub reads when it resolves a handle; set from the folder, passed to subprocesses and Ray nodes.
HUB_ENV = {"TFHUB_MODEL_LOAD_FORMAT": "COMPRESSED"}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LockedFile:
    path: str  # relative to the asset folder
    sha256: str
    bytes: int


@dataclass
class LockedAsset:
    """One asset of the folder: a TF Hub module (`kind="tfhub"`) or the data set archive (`kind="dataset"`)."""

    name: str  # zoo member name, or "flower_photos"
    kind: str
    url: str  # what the code asks for: the TF Hub handle URL / the archive's URL
    resolved_url: str | None  # where the bytes came from after redirects (Kaggle Models for tfhub.dev)
    path: str  # the module folder / the archive, relative to the asset folder
    files: list[LockedFile]
    fetched: str  # ISO date of the download (or the fixture build)
    handle: str | None = None
    version: int | None = None

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @classmethod
    def from_json(cls, d: dict) -> LockedAsset:
        d = {k: v for k, v in d.items() if k != "bytes"}
        return cls(**{**d, "files": [LockedFile(**f) for f in d["files"]]})

    def to_json(self) -> dict:
        return {**asdict(self), "bytes": self.bytes}


@dataclass
class AssetLock:
    """`assets.lock.json`: every asset of the folder with the sha256 and size of each of its files."""

    source: str  # "python -m study zoo fetch", or the test fixture that built the folder
    created: str = field(default_factory=now)
    fixture: bool = False  # True: embedded stand-ins built for the tests, not the real TF Hub assets
    tools: dict[str, str] = field(default_factory=dict)  # e.g. tensorflow-hub's version
    assets: dict[str, LockedAsset] = field(default_factory=dict)

    def digest(self) -> str:
        """sha256 over every locked file (asset, path, sha256): identifies the bytes, not when they were fetched."""
        lines = sorted(f"{a.name}\t{f.path}\t{f.sha256}" for a in self.assets.values() for f in a.files)
        return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def to_json(self) -> dict:
        return {"format": LOCK_FORMAT, "source": self.source, "created": self.created, "updated": now(),
                "fixture": self.fixture, "tools": self.tools, "digest": self.digest(),
                "total_bytes": sum(a.bytes for a in self.assets.values()),
                "assets": [a.to_json() for a in self.assets.values()]}


# ------------------------------------------------------------------------------------------ read / write
def read_lock(root: str | Path) -> AssetLock:
    """The folder's lock, or one StudyError saying what is wrong with it and how to make a new one."""
    path = Path(root) / LOCK_NAME
    fix = f"fetch the folder again: python -m study zoo fetch --profile paper --to {root}"
    if not Path(root).is_dir():
        raise StudyError(f"asset folder {root} (${ASSETS_ENV} / --assets) does not exist; {fix}")
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"asset folder {root} has no {LOCK_NAME}, so its bytes cannot be checked; {fix}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StudyError(f"cannot read {path}: {exc}; {fix}") from exc
    if d.get("format") != LOCK_FORMAT:
        raise StudyError(f"{path} has lock format {d.get('format')!r}, this code reads {LOCK_FORMAT}; {fix}")
    try:
        assets = {a["name"]: LockedAsset.from_json(a) for a in d["assets"]}
        return AssetLock(source=d["source"], created=d["created"], fixture=bool(d.get("fixture")),
                         tools=d.get("tools", {}), assets=assets)
    except (KeyError, TypeError) as exc:
        raise StudyError(f"{path} lacks {exc}; {fix}") from exc


def write_lock(root: str | Path, lock: AssetLock) -> Path:
    return files.write_text(Path(root) / LOCK_NAME, json.dumps(lock.to_json(), indent=2) + "\n")


def describe(root: str | Path, rel: str, *, extra: Iterable[str] = ()) -> list[LockedFile]:
    """The LockedFile of `root/rel` (a file), or of every file under it (a folder), plus the `extra` files."""
    root = Path(root)
    target = root / rel
    paths = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
    paths += [root / e for e in extra]
    return [LockedFile(str(p.relative_to(root)), files.sha256(p), p.stat().st_size) for p in paths]


# ------------------------------------------------------------------------------------------ checking
_VERIFIED: set[tuple[str, str, str]] = set()  # (folder, asset, digest) already checked by this process


def verify(root: str | Path, names: Iterable[str] | None = None) -> AssetLock:
    """Check the files of `names` (default: every asset) against the lock: present, same size, same sha256,
    nothing unlocked inside a module folder. The first difference is a StudyError naming the file."""
    root = Path(root).resolve()
    lock = read_lock(root)
    names = list(lock.assets) if names is None else list(names)
    digest = lock.digest()
    for name in names:
        asset = lock.assets.get(name)
        if asset is None:
            raise StudyError(f"{name} is not in the asset folder {root} (its {LOCK_NAME} lists "
                             f"{', '.join(lock.assets) or 'nothing'}); fetch it on a connected machine: "
                             f"python -m study zoo fetch --profile paper --members {name} --to {root}")
        if (str(root), name, digest) in _VERIFIED:
            continue
        refetch = (f"the folder was changed or is incomplete; fetch it again: python -m study zoo fetch "
                   f"--profile paper --members {name} --to {root} --force" if asset.kind == "tfhub" else
                   f"the folder was changed or is incomplete; fetch it again: python -m study zoo fetch "
                   f"--to {root} --force")
        for f in asset.files:
            path = root / f.path
            if not path.is_file():
                raise StudyError(f"{path} ({name}) is listed in {LOCK_NAME} but missing; {refetch}")
            if path.stat().st_size != f.bytes or files.sha256(path) != f.sha256:
                raise StudyError(f"{path} ({name}) differs from {LOCK_NAME} (expected sha256 {f.sha256[:16]}…, "
                                 f"{f.bytes} bytes); {refetch}")
        if (root / asset.path).is_dir():
            locked = {f.path for f in asset.files}
            extra = [p for p in (root / asset.path).rglob("*") if p.is_file() and str(p.relative_to(root)) not in locked]
            if extra:
                raise StudyError(f"{extra[0]} ({name}) is not listed in {LOCK_NAME}: the asset was changed; {refetch}")
        _VERIFIED.add((str(root), name, digest))
    return lock


# ------------------------------------------------------------------------------------------ the active folder
def active_root() -> Path | None:
    """The asset folder this process uses (`$STUDY_ASSETS`), or None."""
    value = os.environ.get(ASSETS_ENV)
    return Path(value).resolve() if value else None


def activate(root: str | Path | None = None) -> AssetLock | None:
    """Use `root` (default `$STUDY_ASSETS`) and nothing else: set `STUDY_ASSETS`, `TFHUB_CACHE_DIR`,
    `TFHUB_MODEL_LOAD_FORMAT` and `FLOWER_PHOTOS` for this process and every process it starts.
    Reads the lock (cheap); files are checked when used (`verify`). None when no folder is set."""
    root = Path(root).resolve() if root else active_root()
    if root is None:
        return None
    lock = read_lock(root)
    os.environ[ASSETS_ENV] = str(root)
    os.environ["TFHUB_CACHE_DIR"] = str(root / HUB_DIR)
    os.environ.update(HUB_ENV)
    if FLOWERS in lock.assets:
        os.environ["FLOWER_PHOTOS"] = str(root / lock.assets[FLOWERS].path)
    return lock


def active_digest() -> str | None:
    """The lock digest of the active asset folder (recorded with every result), or None without one."""
    root = active_root()
    return read_lock(root).digest() if root else None


def active_provenance() -> dict[str, object]:
    """Where the active asset folder's bytes come from, for every result made with it (the manifest, the draft):
    its lock digest, whether it is the test fixture (embedded stand-ins, not the paper's assets) and its origin.
    Empty without an active folder."""
    root = active_root()
    if root is None:
        return {}
    lock = read_lock(root)
    return {"assets_lock": lock.digest(), "assets_fixture": lock.fixture, "assets_origin": lock.source}


def flowers_archive() -> Path:
    """Flower Photos from the active folder, checked against the lock."""
    root = active_root()
    lock = activate(root)
    verify(root, [FLOWERS])
    return root / lock.assets[FLOWERS].path


def hub_module_dir(url: str, cache_dir: str | Path | None = None) -> Path:
    """THE folder tensorflow_hub reads for `url` (its own function: sha1 of the URL under TFHUB_CACHE_DIR, or
    under `cache_dir` when given). Imports tensorflow_hub (and TensorFlow)."""
    from tensorflow_hub import compressed_module_resolver

    with scoped_environ(**({"TFHUB_CACHE_DIR": str(cache_dir)} if cache_dir else {})):
        return Path(compressed_module_resolver._module_dir(url))


def hub_asset(name: str, url: str) -> str:
    """What `hub.KerasLayer` loads for member `name` under the active folder: its URL, which tensorflow_hub
    resolves from the folder's TF Hub cache. Checks the files first; never reaches the network."""
    root = active_root()
    activate(root)
    lock = verify(root, [name])
    expected = hub_module_dir(url)
    if expected != root / lock.assets[name].path:
        raise StudyError(f"{root / LOCK_NAME} puts {name} at {lock.assets[name].path}, but tensorflow_hub looks for "
                         f"{url} in {expected}; fetch the folder again with this code's `zoo fetch`")
    return url
