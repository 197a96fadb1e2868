"""Atomic writes and checksums: a crash or a kill never leaves a half-written result behind."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from study import failpoints
from study.errors import StudyError


def umask() -> int:
    """The process's umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: str | Path, directory: bool = False) -> None:
    """mkstemp / mkdtemp create 0600 / 0700; give `path` the mode a plain open() / mkdir() would (0644 / 0755)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file next to `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        honour_umask(tmp)
        failpoints.reached("files.before-replace")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_csv(path: str | Path, df: pd.DataFrame, **kwargs) -> Path:
    kwargs.setdefault("index", False)
    return atomic_write(path, lambda tmp: df.to_csv(tmp, **kwargs))


def write_table(target: str | Path, df: pd.DataFrame, *, what: str = "rows", command: str = "study") -> None:
    """The CLI's `--csv FILE|-`: CSV on stdout for '-', else an atomic file and a one-line note on stderr."""
    if str(target) == "-":
        df.to_csv(sys.stdout, index=False)
        return
    write_csv(target, df)
    print(f"[{command}] {len(df)} {what} -> {target}", file=sys.stderr)


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Build a folder in a temporary sibling, then swap it in for `dest`: a kill leaves the old one or none."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    honour_umask(tmp, directory=True)
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def damage(path: str | Path, rows: int | None = None) -> str | None:
    """Why a result file that should be complete cannot be trusted (missing, truncated, unparsable; a CSV with
    another number of rows than `rows`), or None when it reads whole. JSON by suffix `.json`, else CSV."""
    import json

    path = Path(path)
    if not path.is_file():
        return f"{path} is missing"
    try:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
            return None
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            return f"{path} ends in the middle of a line (truncated)"
        n = len(pd.read_csv(path, on_bad_lines="error")) if text.strip() else 0
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        return f"{path} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    if rows is not None and n != rows:
        return f"{path} has {n} rows, expected {rows} (truncated)"
    return None


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checksum(path: str | Path) -> str:
    """sha256 of a file, or of the sorted (relative path, sha256) list of a folder's files."""
    path = Path(path)
    if path.is_dir():
        listing = "\n".join(f"{p.relative_to(path)}\t{sha256(p)}" for p in sorted(path.rglob("*")) if p.is_file())
        return hashlib.sha256(listing.encode()).hexdigest()
    return sha256(path)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """An exclusive advisory lock on `path + '.lock'` (read-modify-write of shared files)."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold `path + '.lock'` for the whole block, or refuse at once with a clear error when another process does.

    The lock is an fcntl.flock: the kernel drops it when its holder dies (also on kill -9), so no stale lock."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise StudyError(f"{what} is already running in this checkout ({holder}; lock {lock_path}); "
                             "wait for it to finish, or stop it, then rerun") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"PID {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` and prove a file can be written there, or raise one clear OSError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test."):
            pass
    except OSError as exc:
        raise OSError(f"output directory {path} is not writable ({exc.strerror}); choose another with --out") from exc
    return path
