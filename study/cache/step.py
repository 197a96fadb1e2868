"""The record of one expensive step under its content key (`study.cache.keys`).

`Step` keeps one expensive step's record (`<out>/.step.json`): written atomically when the step starts
(`state: running`) and again when it finished (`state: done`). Same key and done: reuse. Same key and
running: an interrupted run, resume its finished parts. Another key, or no record beside old results: the
caller recomputes from scratch. `STUDY_FORCE=<token>` (set by `reproduce --force`) makes every step made
under another token count as foreign, once per forced run.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study import files
from study.cache.keys import changed, key_of, step_components


@dataclass
class Step:
    """The record of one expensive step whose results live in folder `out` (see the module docstring)."""

    out: Path
    name: str
    components: dict[str, str]

    RECORD = ".step.json"

    def __post_init__(self) -> None:
        self.out = Path(self.out)

    @classmethod
    def of(cls, out: str | Path, name: str, modules: Iterable[str], config: Any = None, **kwargs: Any) -> Step:
        return cls(Path(out), name, step_components(modules, config, **kwargs))

    @property
    def key(self) -> str:
        return key_of(self.components)

    @property
    def path(self) -> Path:
        return self.out / self.RECORD

    def record(self) -> dict[str, Any] | None:
        try:
            rec = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and rec.get("name") == self.name else None

    def _current(self, rec: dict[str, Any] | None) -> bool:
        force = os.environ.get("STUDY_FORCE", "")
        return bool(rec) and rec.get("key") == self.key and (not force or rec.get("force") == force)

    def state(self) -> str:
        """'done' (reuse), 'running' (same key, interrupted: resume) or 'foreign' (recompute from scratch)."""
        rec = self.record()
        if not self._current(rec):
            return "foreign"
        return "done" if rec.get("state") == "done" else "running"

    def reason(self) -> str:
        """Why the step is not reused, for logs."""
        rec = self.record()
        if rec is None:
            return "no record"
        if self._current(rec):
            return "interrupted" if rec.get("state") != "done" else "current"
        if rec.get("key") == self.key:
            return "forced"
        return ", ".join(changed(rec.get("components", {}), self.components)) + " changed"

    def _write(self, state: str, **extra: Any) -> None:
        files.write_text(self.path, json.dumps({
            "name": self.name, "key": self.key, "state": state, "components": self.components,
            "force": os.environ.get("STUDY_FORCE", ""), **extra}, indent=2, sort_keys=True) + "\n")

    def start(self) -> None:
        """Mark the folder's results as being made under this key (before any of them is written)."""
        self._write("running")

    def finish(self, **extra: Any) -> None:
        """Mark the step done; written last, atomically."""
        self._write("done", **extra)
