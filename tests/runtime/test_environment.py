"""The pins stay consistent: base ⊆ lock, nodeps ⊆ lock, environment.yml mirrors base, npm lock matches package.json."""
from __future__ import annotations

import json
import re

import yaml

from study.config import ROOT, WEB
from study.runs.lockfile import normalise, read_pins

REQ = ROOT / "requirements"


def test_every_pin_is_exact_and_in_the_lock():
    lock = read_pins(REQ / "lock.txt")
    for name in ("base.txt", "nodeps.txt", "ray.txt"):
        for line in (REQ / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            assert re.match(r"^[A-Za-z0-9_.\-]+==[^=]+$", line) or line == "setuptools<81", f"{name}: not exact: {line}"
        for pkg, version in read_pins(REQ / name).items():
            assert lock.get(pkg) == version, f"{name}: {pkg}=={version} but lock has {lock.get(pkg)}"


def test_the_removed_packages_are_pinned_absent_from_the_lock_and_not_installed():
    """requirements/removed.txt: exact pins (what pip installs before `make venv` removes them), never in the lock
    (the environment after removal), and gone from this environment: jsonschema (nbformat's, Ray's) imports no
    rfc3987-syntax grammar. Fails on an environment `make setup` did not make."""
    import importlib.util

    removed = read_pins(REQ / "removed.txt")
    assert removed and all(re.fullmatch(r"\d+(\.\d+)*", v) for v in removed.values()), removed
    assert not set(removed) & set(read_pins(REQ / "lock.txt"))
    assert importlib.util.find_spec("rfc3987_syntax") is None, "rfc3987-syntax is installed: run make setup"


def test_torch_is_the_pinned_cpu_release():
    assert read_pins(REQ / "base.txt")["torch"] == "2.13.0"
    assert read_pins(REQ / "lock.txt")["torch"] == "2.13.0"


def test_environment_yml_mirrors_base():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    yml_pins = {normalise(p.split("==")[0]): p.split("==")[1] for p in pip_section if "==" in p}
    assert yml_pins == read_pins(REQ / "base.txt")
    lock = read_pins(REQ / "lock.txt")
    assert all(lock[name] == version for name, version in yml_pins.items())


def test_npm_pins_are_exact_and_locked():
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version} is not exact"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert package["dependencies"]["@tensorflow/tfjs"] == "4.22.0"
    assert package["dependencies"]["@tensorflow/tfjs-backend-wasm"] == "4.22.0"


def test_missing_npm_packages_name_the_fix(monkeypatch, tmp_path):
    import pytest

    from study.runtime import environment
    from study.errors import StudyError

    monkeypatch.setattr(environment, "WEB", tmp_path)
    with pytest.raises(StudyError, match="(?s)@tensorflow/tfjs.*make setup.*npm ci"):
        environment.node_modules()


def test_missing_chromium_names_the_fix(monkeypatch):
    import pytest

    from study.runtime import environment
    from study.errors import StudyError

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CHROMIUM", raising=False)
    with pytest.raises(StudyError, match="apt-get install -y chromium"):
        environment.chromium()
