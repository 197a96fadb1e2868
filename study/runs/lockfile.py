"""`python -m study.runs.lockfile`: print requirements/lock.txt from the current environment (`make lock`)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HEADER = """\
# Every package of the environment, exact (pip freeze of a fresh `make venv`), used as -c constraints.
# Regenerate: make lock.  torch is the CPU wheel; tf-keras, tensorflow-hub, tensorflowjs come --no-deps.
"""
SKIP = {"pip", "study"}


def read_pins(path: str | Path) -> dict[str, str]:
    """{normalised name: version} of the `name==version` lines of a requirements file."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[normalise(m.group(1))] = m.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    lines = []
    for line in frozen:
        if line.startswith(("#", "-e")) or "==" not in line or normalise(line.split("==")[0]) in SKIP:
            continue
        name, version = line.split("==", 1)
        lines.append(f"{name}=={version.split('+')[0]}")  # torch 2.13.0+cpu -> torch==2.13.0
    sys.stdout.write(HEADER + "\n".join(sorted(lines, key=str.lower)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
