"""TEST FIXTURE: an offline asset folder built from the embedded members, for proving the paper profile end to end.

`build_fixture_folder(DIR, members)` writes exactly what `python -m study zoo fetch` writes (study.assets.folder:
TF Hub's cache layout with tensorflow_hub's own folder names and descriptor files, a `flower_photos.tgz` with the
original's layout, the same `assets.lock.json` format), but from local stand-ins: the embedded members
(randomly initialised, study.assets.zoo.build_embedded) and synthetic flowers (study.casestudy.dataset). The
lock says `"fixture": true`. Only the download itself is not exercised. Never use its numbers as the paper's.
"""
from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from study import config, files
from study.assets import flowers, folder as af, zoo

SOURCE = ("TEST FIXTURE (study.assets.fixture.build_fixture_folder): embedded, randomly initialised "
          "members and synthetic flowers in the layout of `zoo fetch`; NOT the real TF Hub assets or Flower Photos")
FIXTURE_MEMBERS = config.PROFILES[config.TEST_PROFILE].members  # the smoke zoo: the two smallest of Table IX


def _hub_module(root: Path, member: zoo.Member) -> af.LockedAsset:
    """Copy the embedded SavedModel where tensorflow_hub would cache `member.url`, with hub's descriptor file."""
    from tensorflow_hub import resolver

    src = zoo.build_embedded(member)
    module_dir = af.hub_module_dir(member.url, root / af.HUB_DIR)
    with files.atomic_dir(module_dir) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("study_build.json"))
    resolver._write_module_descriptor_file(member.url, str(module_dir))  # what hub writes after a download
    rel = str(module_dir.relative_to(root))
    return af.LockedAsset(name=member.name, kind="tfhub", url=member.url, resolved_url=f"fixture:{src}", path=rel,
                          files=af.describe(root, rel, extra=[f"{rel}.descriptor.txt"]), fetched=af.now(),
                          handle=member.handle, version=member.version)


def _flowers_archive(root: Path, per_class: int, size: int, seed: int) -> af.LockedAsset:
    """A `flower_photos.tgz` laid out like the original (`flower_photos/<class>/*.jpg`, `LICENSE.txt`)."""
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        folder = flowers.synth_flowers(Path(tmp) / "flower_photos", per_class=per_class, size=size, seed=seed)
        (folder / "synthetic.json").unlink()
        (folder / "LICENSE.txt").write_text("Synthetic flowers drawn by study.casestudy.dataset (test fixture).\n")

        def write(dest: Path) -> None:
            with tarfile.open(dest, "w:gz") as tar:
                tar.add(folder, arcname="flower_photos")

        files.atomic_write(root / af.FLOWERS_ARCHIVE, write)
    return af.LockedAsset(name=af.FLOWERS, kind="dataset", url="fixture:synthetic-flowers", resolved_url=None,
                          path=af.FLOWERS_ARCHIVE, files=af.describe(root, af.FLOWERS_ARCHIVE), fetched=af.now())


def build_fixture_folder(dest: str | Path, members: Sequence[str] = FIXTURE_MEMBERS, *, per_class: int = 20,
                         size: int = 128, seed: int = 0) -> af.AssetLock:
    """Build a fixture asset folder at `dest` (see the module docstring); returns its lock."""
    import tensorflow_hub

    root = files.ensure_writable_dir(dest).resolve()
    lock = af.AssetLock(source=SOURCE, fixture=True, tools={"tensorflow-hub": tensorflow_hub.__version__})
    for name in members:
        lock.assets[name] = _hub_module(root, zoo.get_member(name))
    lock.assets[af.FLOWERS] = _flowers_archive(root, per_class, size, seed)
    af.write_lock(root, lock)
    return lock
