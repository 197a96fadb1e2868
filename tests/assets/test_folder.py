"""The paper profile's offline asset folder: lock, checksums, activation, and `zoo fetch` failing fast offline.

The folders here are small hand-made ones (any bytes do for checksums); tests/casestudy/test_paper_protocol.py
runs the real TF Hub loading path on a fixture folder built from the embedded members.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study import config
from study.assets import flowers, folder as af
from study.casestudy import executors
from study.cli import main
from study.config import PROFILES
from study.errors import StudyError
from study.report import Report, read_manifest
from study.runtime.environment import free_port

HUB_KEYS = (af.ASSETS_ENV, "TFHUB_CACHE_DIR", "FLOWER_PHOTOS", *af.HUB_ENV)


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose every proxy variable points at a closed loopback port: no request leaves the machine
    (loopback itself stays direct: the browser test talks to its own local servers)."""
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens there: a connection is refused at once
    env = dict(os.environ if base is None else base)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY"):
        env[key] = env[key.lower()] = proxy
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def make_folder(root: Path) -> af.AssetLock:
    """A two-asset folder in the fetched layout (the bytes are stand-ins; only their checksums matter here)."""
    module = root / af.HUB_DIR / "0123abcd"
    (module / "variables").mkdir(parents=True)
    (module / "saved_model.pb").write_bytes(b"graph")
    (module / "variables" / "variables.index").write_bytes(b"index")
    (root / af.HUB_DIR / "0123abcd.descriptor.txt").write_text("Module: https://tfhub.dev/x/1\n")
    (root / af.FLOWERS_ARCHIVE).write_bytes(b"archive")
    rel = f"{af.HUB_DIR}/0123abcd"
    lock = af.AssetLock(source="test")
    lock.assets["mobilenet_v1_025_128"] = af.LockedAsset(
        name="mobilenet_v1_025_128", kind="tfhub", url="https://tfhub.dev/x/1", resolved_url=None, path=rel,
        files=af.describe(root, rel, extra=[f"{rel}.descriptor.txt"]), fetched=af.now(), handle="x", version=1)
    lock.assets[af.FLOWERS] = af.LockedAsset(name=af.FLOWERS, kind="dataset", url="u", resolved_url=None,
                                             path=af.FLOWERS_ARCHIVE, files=af.describe(root, af.FLOWERS_ARCHIVE),
                                             fetched=af.now())
    af.write_lock(root, lock)
    return lock


@pytest.fixture
def isolated(monkeypatch):
    """activate() sets process environment variables: restore them after each test."""
    for key in HUB_KEYS:  # setenv first: it records an absent variable too, so what activate() sets is undone
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    af._VERIFIED.clear()
    yield monkeypatch
    af._VERIFIED.clear()


def test_lock_round_trip_and_digest_identifies_bytes(tmp_path, isolated):
    lock = make_folder(tmp_path)
    again = af.read_lock(tmp_path)
    assert again.digest() == lock.digest() and set(again.assets) == {"mobilenet_v1_025_128", af.FLOWERS}
    assert [f.path for f in again.assets["mobilenet_v1_025_128"].files] == [
        "tfhub_modules/0123abcd/saved_model.pb", "tfhub_modules/0123abcd/variables/variables.index",
        "tfhub_modules/0123abcd.descriptor.txt"]
    data = json.loads((tmp_path / af.LOCK_NAME).read_text())
    assert data["digest"] == lock.digest() and data["total_bytes"] == len(b"graphindexarchive") + 30
    assert af.verify(tmp_path).digest() == lock.digest()
    # the digest is about the bytes: a refetch at another date with the same files keeps it
    time.sleep(1.1)
    assert af.AssetLock(source="other", assets=again.assets).digest() == lock.digest()


@pytest.mark.parametrize("change, message", [
    (lambda r: (r / "tfhub_modules/0123abcd/saved_model.pb").write_bytes(b"grapH"), r"saved_model.pb \(mobilenet_v1_025_128\) differs"),
    (lambda r: (r / "tfhub_modules/0123abcd/variables/variables.index").unlink(), r"variables.index \(mobilenet_v1_025_128\) is listed .* but missing"),
    (lambda r: (r / "tfhub_modules/0123abcd/extra.pb").write_bytes(b"x"), r"extra.pb \(mobilenet_v1_025_128\) is not listed"),
    (lambda r: (r / af.FLOWERS_ARCHIVE).write_bytes(b"archivE"), r"flower_photos.tgz \(flower_photos\) differs"),
])
def test_a_changed_file_is_one_error_naming_it(tmp_path, isolated, change, message):
    make_folder(tmp_path)
    change(tmp_path)
    with pytest.raises(StudyError, match=message) as info:
        af.verify(tmp_path)
    assert "zoo fetch" in str(info.value) and str(tmp_path) in str(info.value)


def test_missing_lock_or_member_is_a_clear_error(tmp_path, isolated):
    with pytest.raises(StudyError, match="does not exist"):
        af.read_lock(tmp_path / "nope")
    with pytest.raises(StudyError, match=f"no {af.LOCK_NAME}"):
        af.read_lock(tmp_path)
    make_folder(tmp_path)
    with pytest.raises(StudyError, match=r"mobilenet_v2_100_224 is not in the asset folder .*--members mobilenet_v2_100_224"):
        af.verify(tmp_path, ["mobilenet_v2_100_224"])


def test_activation_points_tf_hub_and_flower_photos_at_the_folder_only(tmp_path, isolated):
    lock = make_folder(tmp_path)
    isolated.setenv(af.ASSETS_ENV, str(tmp_path))
    isolated.setenv("FLOWER_PHOTOS", "/somewhere/else")
    assert af.activate().digest() == lock.digest() == af.active_digest()
    assert os.environ["TFHUB_CACHE_DIR"] == str(tmp_path.resolve() / af.HUB_DIR)
    assert os.environ["TFHUB_MODEL_LOAD_FORMAT"] == "COMPRESSED"
    assert flowers.flower_photos_path() == tmp_path.resolve() / af.FLOWERS_ARCHIVE
    (tmp_path / af.FLOWERS_ARCHIVE).write_bytes(b"tampered")
    af._VERIFIED.clear()
    with pytest.raises(StudyError, match="flower_photos.tgz .* differs"):
        flowers.flower_photos_path()


def test_cli_assets_option_checks_the_folder_before_the_paper_profile_runs(tmp_path, isolated, capsys):
    make_folder(tmp_path)
    (tmp_path / "tfhub_modules/0123abcd/saved_model.pb").write_bytes(b"tampered")
    assert main(["--assets", str(tmp_path), "check", "--profile", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "saved_model.pb (mobilenet_v1_025_128) differs" in err
    assert os.environ[af.ASSETS_ENV] == str(tmp_path.resolve())


def test_the_lock_digest_keys_sweep_runs_and_manifest_entries(tmp_path, isolated):
    plain = executors.sweep_config(PROFILES["smoke"])
    assert "assets_lock" not in plain.key()  # runs recorded without a folder keep their key
    locked = executors.sweep_config(PROFILES["smoke"], assets_lock="sha256:ab")
    assert locked.key()["assets_lock"] == "sha256:ab" and locked.key() != plain.key()
    lock = make_folder(tmp_path / "assets")
    isolated.setenv(af.ASSETS_ENV, str(tmp_path / "assets"))
    import pandas as pd

    report = Report("test", results=tmp_path / "results", figures=tmp_path / "figures")
    report.table(pd.DataFrame({"a": [1]}), "t")
    entries = read_manifest(tmp_path / "results" / "manifest.json")["artifacts"].values()
    assert {e["assets_lock"] for e in entries} == {lock.digest()}


def test_zoo_fetch_fails_fast_offline_naming_what_it_could_not_reach(tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "study", "zoo", "fetch", "--members", "mobilenet_v1_025_128",
                           "--to", str(tmp_path / "assets")], env=offline_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "tfhub.dev (TF Hub assets)" in proc.stderr and "storage.googleapis.com (Flower Photos)" in proc.stderr
    assert "Connection refused" in proc.stderr and "STUDY_ASSETS" in proc.stderr
    assert not (tmp_path / "assets" / af.LOCK_NAME).exists()
    print(f"offline zoo fetch failed in {time.monotonic() - t0:.1f} s")


def test_zoo_fetch_skips_assets_already_present_without_network(tmp_path, isolated):
    """Resumable: what the lock lists and the files still match is not fetched again (no request at all)."""
    from study.assets import fetch as asset_fetch
    from study.assets import zoo

    lock = make_folder(tmp_path)
    member = zoo.get_member("mobilenet_v1_025_128")
    isolated.setattr(asset_fetch, "preflight", lambda hosts: pytest.fail(f"reached for {hosts}"))
    assert asset_fetch.fetch(tmp_path, [member], progress=False).digest() == lock.digest()


def test_reproduce_keys_paper_notebooks_on_the_asset_folder(tmp_path, isolated):
    """`make reproduce PROFILE=paper` must not reuse a notebook run on other TF Hub / Flower Photos bytes."""
    from study.runs import reproduce

    nb = config.NOTEBOOKS / "07_paper_audit.ipynb"
    assert "asset folder" not in reproduce.notebook_components(nb, {"profile": "paper"})
    lock = make_folder(tmp_path)
    isolated.setenv(af.ASSETS_ENV, str(tmp_path))
    before = reproduce.notebook_components(nb, {"profile": "paper"})
    assert before["asset folder"] == lock.digest()
    assert "asset folder" not in reproduce.notebook_components(nb, {"profile": "embedded"})
    (tmp_path / af.FLOWERS_ARCHIVE).write_bytes(b"another archive")
    lock.assets[af.FLOWERS] = af.LockedAsset(**{**lock.assets[af.FLOWERS].__dict__,
                                                "files": af.describe(tmp_path, af.FLOWERS_ARCHIVE)})
    af.write_lock(tmp_path, lock)
    assert reproduce.notebook_components(nb, {"profile": "paper"})["asset folder"] != before["asset folder"]
