"""The paper's own numbers: Tables I-XI transcribed into `data/paper/` and loaded as tidy tables.

Every later notebook puts "paper" beside "reproduced"; this module is the "paper" side.
See `data/paper/README.md` for the transcription conventions.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from study.config import PAPER_DATA


@dataclass(frozen=True)
class PaperTable:
    key: str  # Roman numeral(s) of the paper's table
    file: str
    title: str
    section: str


TABLES: dict[str, PaperTable] = {
    t.key: t
    for t in (
        PaperTable("I-III", "table_i_iii_families.csv", "Families in AIHub and PyTorch Hub", "V"),
        PaperTable("IV-V", "table_iv_v_deployment.csv", "TensorFlow 1 and PyTorch deployment methods", "IV"),
        PaperTable("VI", "table_vi_versions.csv", "Version statistics of products on AIHub", "VI"),
        PaperTable("VII", "table_vii_checkpoint_files.csv", "Files in pretrained model", "VI-B"),
        PaperTable("VIII", "table_viii_version_notes.csv", "Version notes and modules", "VI-B"),
        PaperTable("IX", "table_ix_finetuning.csv", "Stats result in fine-tuning process", "VII-E"),
        PaperTable("X", "table_x_testing.csv", "Stats result in testing process", "VII-F"),
        PaperTable("XI", "table_xi_split.csv", "The split of Flower Photos", "VII-B"),
    )
}

# Sentences of Section V that state counts the tables can be checked against.
STATED_FAMILY_COUNTS = {"AIHub": 20, "PyTorch Hub": 28}
STATED_ALGORITHM_COUNTS = {"AIHub": 17, "PyTorch Hub": 20}
# The case study's choices: VII-G.1 "the best performing model" and VII-I "The most suitable model" (one home: the
# decision, the audit and the notebooks read them from here).
CHOICE_BEST_PERFORMING = "mobilenet_v2_100_160"
CHOICE_MOST_SUITABLE = "mobilenet_v2_075_192"


def parse_elapse(text: str) -> int:
    """Seconds in an H:MM:SS elapsed time as the paper prints it ('0:02:48' -> 168)."""
    parts = str(text).strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"elapsed time {text!r} is not H:MM:SS (e.g. 0:02:48)")
    h, m, s = (int(p) for p in parts)
    if m >= 60 or s >= 60:
        raise ValueError(f"elapsed time {text!r} has minutes or seconds >= 60 (expected H:MM:SS)")
    return h * 3600 + m * 60 + s


def format_elapse(seconds: float) -> str:
    """H:MM:SS as in Tables IX/X (168 -> '0:02:48'); rounds to whole seconds."""
    total = int(round(float(seconds)))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def table_path(key: str) -> Path:
    """The transcription of paper table `key` under data/paper/ (a notebook's `inputs=` for the paper's side)."""
    if key not in TABLES:
        raise KeyError(f"no paper table {key!r}; valid: {', '.join(TABLES)}")
    return PAPER_DATA / TABLES[key].file


def table_paths() -> list[Path]:
    """Every transcribed paper table."""
    return [table_path(k) for k in TABLES]


@cache
def _read(key: str) -> pd.DataFrame:
    table = TABLES[key]
    df = pd.read_csv(table_path(key), keep_default_na=False, na_values=[""])
    df.attrs["source"] = f"paper Table {table.key} ({table.title}), Section {table.section}"
    return df


def load(key: str) -> pd.DataFrame:
    """A fresh copy of paper table `key` ('I-III', 'IV-V', 'VI', ..., 'XI')."""
    table_path(key)  # KeyError naming the valid keys
    df = _read(key).copy()
    df.attrs = dict(_read(key).attrs)
    return df


def families(zoo: str | None = None) -> pd.DataFrame:
    """Tables I-III: one row per family row of the paper (`families` > 1 where a row stands for several)."""
    df = load("I-III")
    return df if zoo is None else df[df["zoo"] == zoo].reset_index(drop=True)


def deployment_methods(framework: str | None = None) -> pd.DataFrame:
    """Tables IV-V: one row per deployment-scenario group."""
    df = load("IV-V")
    return df if framework is None else df[df["framework"] == framework].reset_index(drop=True)


def version_statistics() -> pd.DataFrame:
    """Table VI with the share of products that have two or more versions."""
    df = load("VI")
    df["share_ge2_versions"] = df["products_ge2_versions"] / df["products"]
    return df


def checkpoint_files() -> pd.DataFrame:
    """Table VII."""
    return load("VII")


def version_notes() -> pd.DataFrame:
    """Table VIII: one row per (version note, family)."""
    return load("VIII")


def finetuning() -> pd.DataFrame:
    """Table IX: one row per fine-tuned asset (Formula 1 deltas, elapsed time, test accuracy)."""
    return load("IX")


def testing() -> pd.DataFrame:
    """Table X: one row per asset tested in the browser "simple product"."""
    return load("X")


def flower_split() -> pd.DataFrame:
    """Table XI: per-class counts of the Flower Photos split."""
    return load("XI")
