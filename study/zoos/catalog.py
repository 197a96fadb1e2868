"""Model-zoo catalogs: the zoos' real metadata pages parsed into tidy tables (RQ1-RQ3 inputs).

Two zoos, two page formats (see `../shared/README.md`):

- **TF Hub** (`tensorflow/tfhub.dev`): one markdown page per asset version, `# Module <handle>/<version>`,
  metadata in HTML comments (`<!-- key: value -->`) in one of two schemas (2020: `module-type` and
  human-readable values, 2024: `task` and slugs), a cumulative `## Changelog`, and deployment variants
  (`# Tfjs` / `# Lite` / `# Coral` pages with a `parent-model`). Collections and publisher pages are not
  assets. `parse_tfhub` returns three tables: `versions` (one row per asset version), `variants` (one row per
  deployment variant) and `changelog` (one row per version note).
- **PyTorch Hub** (`pytorch/hub`): one page per asset family with YAML front matter and usage code;
  members are the `torch.hub.load(repo, entrypoint, ...)` calls (commented-out alternatives included).
  `parse_pytorch_hub` returns `pages` and `members`.

Every value is normalised to one vocabulary (`slug`): lower case, words joined by `-`, so the 2020 value
`MobileNet V2` and the 2024 value `mobilenet-v2` are the same. `Catalog.as_of(date)` keeps what the zoo
had on a date (from the first-seen tables). A malformed page is a `ParseWarning` (path, line, why) and is
skipped; `strict=True` turns warnings into a `CatalogError`.
"""
from __future__ import annotations

import importlib
import html
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
import pandas as pd

from study import config, files
from study.errors import CatalogError

ZOOS = ("tfhub", "pytorch-hub")
ZOO_FOLDERS = {"tfhub": "tfhub.dev", "pytorch-hub": "pytorch-hub"}
# The page parser of each zoo, as "module:function" (each parser module imports this one).
PARSERS = {"tfhub": "study.zoos.tfhub:parse_tfhub", "pytorch-hub": "study.zoos.pytorch_hub:parse_pytorch_hub"}
ZOO_NAMES = {"tfhub": "AIHub", "pytorch-hub": "PyTorch Hub"}  # the paper's names


@dataclass(frozen=True)
class Snapshot:
    """Where one snapshot of a zoo's pages comes from (`../shared/README.md`)."""

    zoo: str
    date: str
    repository: str
    folder: str
    commit: str

    @property
    def path(self) -> Path:
        return config.ZOO_SNAPSHOTS / ZOO_FOLDERS[self.zoo] / self.date


SNAPSHOTS: dict[tuple[str, str], Snapshot] = {
    (s.zoo, s.date): s
    for s in (
        Snapshot("tfhub", "2020-08-26", "tensorflow/tfhub.dev", "assets/g3doc/", "e6bdf737"),
        Snapshot("tfhub", "2024-03-18", "tensorflow/tfhub.dev", "assets/docs/", "81fdea8f"),
        Snapshot("pytorch-hub", "2019-12-12", "pytorch/hub", "*.md", "30559d1"),
        Snapshot("pytorch-hub", "2024-04-15", "pytorch/hub", "*.md", "c7895df"),
    )
}


def snapshot_dates(zoo: str) -> tuple[str, ...]:
    """The dates of `zoo`'s snapshots (`SNAPSHOTS`), oldest first."""
    dates = tuple(sorted(d for z, d in SNAPSHOTS if z == zoo))
    if not dates:
        raise CatalogError(f"no snapshots of zoo {zoo!r}; known zoos: {', '.join(ZOOS)}")
    return dates


@dataclass(frozen=True)
class ParseWarning:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Catalog:
    """The tidy tables of one zoo snapshot, with parse counts and warnings."""

    zoo: str
    source: str  # the folder that was parsed
    tables: dict[str, pd.DataFrame]
    parsed: int = 0
    skipped: int = 0
    warnings: list[ParseWarning] = field(default_factory=list)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    def summary(self) -> str:
        sizes = ", ".join(f"{len(df)} {name}" for name, df in self.tables.items())
        return f"{self.zoo}: {self.parsed} pages parsed, {self.skipped} skipped ({sizes})"

    def as_of(self, date: str) -> Catalog:
        """The catalog as the zoo was on `date` (rows first seen after it dropped; unknown dates kept)."""
        date = _check_date(date)
        tables = {}
        for name, df in self.tables.items():
            if "first_seen_date" in df:
                df = df[~(df["first_seen_date"] > date)]  # NaN (unknown) is kept
            tables[name] = df.reset_index(drop=True)
        if self.zoo == "pytorch-hub":
            tables["members"] = tables["members"][tables["members"]["page"].isin(tables["pages"]["page"])]
        elif self.zoo == "tfhub":
            keep = set(zip(tables["versions"]["handle"], tables["versions"]["version"]))
            df = tables["changelog"]
            tables["changelog"] = df[[hv in keep for hv in zip(df["handle"], df["version"])]].reset_index(drop=True)
        return Catalog(self.zoo, self.source, tables, self.parsed, self.skipped, list(self.warnings))


# --- vocabulary --------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def clean_text(text: str) -> str:
    """HTML entities resolved, `&zwnj;` (zero-width non-joiner) removed, whitespace collapsed."""
    text = html.unescape(text.replace("&zwnj;", "")).replace("\u200c", "")
    return " ".join(text.split())


def slug(value: str) -> str:
    """One vocabulary for both TF Hub schemas: 'ImageNet (ILSVRC-2012-CLS)' -> 'imagenet-ilsvrc-2012-cls'."""
    return _NON_ALNUM.sub("-", clean_text(value).strip("\"' ").lower()).strip("-")


# 2020 -> 2024 key names; typos seen in the 2020 pages
METADATA_KEYS = {"module-type": "task", "finetunable": "fine-tunable", "asset_path": "asset-path"}
FORMATS = {"hub": "hub-module", "hub-module": "hub-module", "saved-model-2": "saved-model-2",
           "saved-model": "saved-model"}
FORMAT_LABELS = {"hub-module": "hub.Module", "saved-model-2": "TF2 SavedModel", "saved-model": "SavedModel (TF1)"}
TASK_ALIASES = {"image-classifier": "image-classification"}
VARIANT_KINDS = {"tfjs": "tfjs", "lite": "lite", "coral": "coral"}
ASSET_KINDS = {"module": "module", "placeholder": "placeholder", "model": "module"}


def _values(key: str, raw: list[str]) -> list[str]:
    """Normalised values of one metadata key (2020 lists like 'A, B, C' become several values)."""
    out: list[str] = []
    for value in raw:
        if key == "dataset" and "," in value:
            parts = [p for p in (s.strip().strip('"') for s in value.split(",")) if p]
        else:
            parts = [value]
        for p in parts:
            s = slug(p)
            if key == "format":
                s = FORMATS.get(s, s)
            elif key == "task":
                s = TASK_ALIASES.get(s, s)
            if s and s not in out:
                out.append(s)
    return out


# --- TF Hub ------------------------------------------------------------------------------------


def walk_md(root: Path) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names if n.endswith(".md"))
    return sorted(out)


def first_seen_dates(first_seen: pd.DataFrame | None, paths: list[str]) -> list:
    if first_seen is None:
        return [None] * len(paths)
    lookup = dict(zip(first_seen["path"], first_seen["first_seen_date"]))
    return [lookup.get(p) for p in paths]


# --- PyTorch Hub -------------------------------------------------------------------------------


# --- entry points ------------------------------------------------------------------------------

def _check_date(date: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):
        raise CatalogError(f"date {date!r} is not YYYY-MM-DD (e.g. 2019-12-31)")
    return str(date)


def readfirst_seen_dates(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"first-seen table {path} not found; pass --first-seen FILE or leave it out")
    df = pd.read_csv(path, dtype=str)
    missing = {"path", "first_seen_date"} - set(df.columns)
    if missing:
        raise CatalogError(f"first-seen table {path} lacks column(s) {', '.join(sorted(missing))}")
    return df


def defaultfirst_seen_dates(zoo: str, snapshot: str | Path) -> Path | None:
    """`<zoo folder>/first-seen.csv` next to a snapshot folder, when it is there."""
    candidate = Path(snapshot).parent / "first-seen.csv"
    return candidate if candidate.is_file() else None


def build(zoo: str, snapshot: str | Path, first_seen: str | Path | None = None, as_of: str | None = None,
          strict: bool = False) -> Catalog:
    """Parse one snapshot folder of `zoo`; optionally date rows from a first-seen table and cut at `as_of`."""
    if zoo not in ZOOS:
        raise CatalogError(f"unknown zoo {zoo!r}; valid: {', '.join(ZOOS)}")
    folder = Path(snapshot)
    if not folder.is_dir():
        raise CatalogError(f"snapshot folder {folder} not found; see ../shared/README.md for the zoo snapshots")
    fs = readfirst_seen_dates(first_seen) if first_seen else None
    module, _, parse = PARSERS[zoo].partition(":")
    cat = getattr(importlib.import_module(module), parse)(folder, fs)
    if cat.parsed == 0 and cat.skipped == 0:
        raise CatalogError(f"snapshot folder {folder} holds no .md pages; is it a {zoo} snapshot?")
    if strict and cat.warnings:
        raise CatalogError(f"{len(cat.warnings)} malformed page(s) under --strict, first: {cat.warnings[0]}")
    if as_of:
        if fs is None:
            raise CatalogError("--as-of needs first-seen dates: pass --first-seen FILE")
        cat = cat.as_of(as_of)
    return cat


def snapshot_catalog(zoo: str, date: str) -> Catalog:
    """A shared snapshot (`SNAPSHOTS`) parsed with its zoo's first-seen table."""
    snap = SNAPSHOTS.get((zoo, date))
    if snap is None:
        raise CatalogError(f"no {zoo} snapshot {date!r}; known: {', '.join(d for z, d in SNAPSHOTS if z == zoo)}")
    return build(zoo, snap.path, defaultfirst_seen_dates(zoo, snap.path))


# --- the shipped catalogs (data/zoo/) ----------------------------------------------------------

ZOO_DATA = config.DATA / "zoo"
TABLE_NAMES = {"tfhub": ("versions", "variants", "changelog"), "pytorch-hub": ("pages", "members")}


def shipped_path(zoo: str, date: str, table: str) -> Path:
    return ZOO_DATA / f"{zoo}_{date}_{table}.csv.gz"


def write_catalog(cat: Catalog, out: str | Path) -> list[Path]:
    """Write each table of `cat` to `out` (a .csv / .csv.gz file: '<stem>_<table>.csv[.gz]'; '-': stdout)."""
    if str(out) == "-":
        main = TABLE_NAMES[cat.zoo][0]
        cat[main].to_csv(sys.stdout, index=False)
        return []
    out = Path(out)
    suffix = "".join(s for s in out.suffixes if s in (".csv", ".gz")) or ".csv"
    stem = out.name[: -len(suffix)] if out.name.endswith(suffix) else out.name
    paths = []
    for name in TABLE_NAMES[cat.zoo]:
        path = out.with_name(f"{stem}_{name}{suffix}") if len(TABLE_NAMES[cat.zoo]) > 1 else out
        kw = {"compression": {"method": "gzip", "mtime": 0}} if suffix.endswith(".gz") else {}
        paths.append(files.write_csv(path, cat[name], **kw))
    return paths


def load_shipped(zoo: str, date: str) -> Catalog:
    """A catalog from the derived tables in data/zoo/ (works without ../shared)."""
    tables = {}
    for name in TABLE_NAMES[zoo]:
        path = shipped_path(zoo, date, name)
        if not path.is_file():
            raise CatalogError(f"shipped catalog {path} missing; rebuild it: python -m study catalog ship")
        tables[name] = pd.read_csv(path, keep_default_na=False, na_values=[""],
                                   dtype={"first_seen_date": str, "ref": str, "config": str, "selector": str})
    for df in tables.values():
        for col in ("language", "license", "dataset", "architecture", "task", "format", "title", "tags", "ref",
                    "selector", "config", "note"):
            if col in df:
                df[col] = df[col].fillna("")
    return Catalog(zoo, str(ZOO_DATA), tables)


def catalog(zoo: str, date: str, *, prefer: str = "shipped") -> Catalog:
    """The catalog of a known snapshot: from data/zoo/ (default) or parsed from ../shared ('snapshot')."""
    if prefer == "snapshot" and SNAPSHOTS[(zoo, date)].path.is_dir():
        return snapshot_catalog(zoo, date)
    return load_shipped(zoo, date)


def ship(out_dir: Path = ZOO_DATA) -> list[Path]:
    """Rebuild every shipped catalog in data/zoo/ from ../shared/zoo-snapshots."""
    if not config.ZOO_SNAPSHOTS.is_dir():
        raise CatalogError(f"zoo snapshots not found at {config.ZOO_SNAPSHOTS}; see ../shared/README.md")
    written = []
    for (zoo, date) in SNAPSHOTS:
        cat = snapshot_catalog(zoo, date)
        for name in TABLE_NAMES[zoo]:
            path = Path(out_dir) / shipped_path(zoo, date, name).name
            written.append(files.write_csv(path, cat[name], compression={"method": "gzip", "mtime": 0}))
        print(f"[catalog] {date} {cat.summary()}", file=sys.stderr)
    return written
