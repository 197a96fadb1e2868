"""This machine: prerequisites outside Python (Chromium, the npm packages) and free loopback ports."""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

from study.config import WEB
from study.errors import StudyError

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
NPM_PACKAGES = ("@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", "onnxruntime-web")


def chromium() -> Path:
    """Path of a headless-capable Chromium (`$CHROMIUM` overrides), or a StudyError with the fix."""
    explicit = os.environ.get("CHROMIUM")
    found = explicit if explicit and Path(explicit).exists() else None
    for name in () if found else CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            break
    if not found:
        raise StudyError(
            "Chromium is not installed (needed for the browser tests).\n"
            "  Fix: make setup   (as root it runs: apt-get update && apt-get install -y chromium)\n"
            "  or:  sudo apt-get install -y chromium, or set CHROMIUM=/path/to/chrome"
        )
    return Path(found)


def node_modules() -> Path:
    """The project's npm folder with every pinned package installed, or a StudyError with the fix."""
    missing = [p for p in NPM_PACKAGES if not (WEB / "node_modules" / p / "package.json").exists()]
    if missing:
        raise StudyError(
            f"npm packages missing in {WEB / 'node_modules'}: {', '.join(missing)}.\n"
            "  Fix: make setup   (runs: cd web && npm ci)"
        )
    return WEB / "node_modules"


def npm_version(package: str) -> str:
    return json.loads((node_modules() / package / "package.json").read_text())["version"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now (servers we start bind loopback only)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def report() -> list[tuple[str, bool, str]]:
    """(prerequisite, ok, detail) for `python -m study check`."""
    rows = []
    for name, probe in (("chromium", chromium), ("node_modules", node_modules)):
        try:
            rows.append((name, True, str(probe())))
        except StudyError as exc:
            rows.append((name, False, str(exc).splitlines()[0]))
    node = shutil.which("node")
    rows.append(("node", node is not None, node or "Node.js not found: apt-get install -y nodejs npm"))
    return rows
