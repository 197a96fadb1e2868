"""Is a recorded run of the sweep really complete? Resume redoes a run whose outputs a crash left damaged.

A run counts as done when its record says `ok` under the same config *and* everything it published reads whole:
its samples (as many rows as the record counted), the model folder (meta.json + the classifier) and the
predictions (one row per test image). Anything else is redone, with a `ResumeWarning` naming the file.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from study import files
from study.errors import ResumeWarning


def record_path(out: Path, member: str, repeat: int) -> Path:
    return Path(out) / "runs" / member / f"r{repeat}.json"


def run_damage(out: Path, member: str, repeat: int, rec: dict[str, Any]) -> str | None:
    """What is damaged among an ok run's outputs, or None."""
    out = Path(out)
    run_dir = out / "runs" / member / f"r{repeat}"
    n = rec.get("n_samples")
    if problem := files.damage(run_dir / "samples.csv", int(n) if n is not None else None):
        return problem
    model = out / "models" / member
    if problem := files.damage(model / "meta.json"):
        return problem
    if not ((model / "saved_model" / "saved_model.pb").is_file() or (model / "model.pt").is_file()):
        return f"{model} holds no classifier (saved_model/saved_model.pb or model.pt): half-written"
    test_images = json.loads((model / "meta.json").read_text()).get("test_images")
    rows = len(test_images) if isinstance(test_images, list) else None
    return files.damage(out / "predictions" / f"{member}.csv", rows)


def is_done(out: Path, member: str, repeat: int, key: dict[str, Any]) -> bool:
    """True when run (member, repeat) was recorded ok under config `key` and its outputs read whole."""
    path = record_path(out, member, repeat)
    if not path.exists():
        return False
    if problem := files.damage(path):
        warnings.warn(f"{member}/r{repeat}: redone, its record is damaged: {problem}", ResumeWarning, stacklevel=2)
        return False
    rec = json.loads(path.read_text(encoding="utf-8"))
    if rec.get("status") != "ok" or rec.get("config") != key:
        return False
    if problem := run_damage(out, member, repeat, rec):
        warnings.warn(f"{member}/r{repeat}: redone, {problem}", ResumeWarning, stacklevel=2)
        return False
    return True
