"""TF Hub (AIHub) metadata pages -> a Catalog: versions, deployment variants, version notes (both page schemas of the
snapshots).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
import pandas as pd

from study.zoos.catalog import ASSET_KINDS, METADATA_KEYS, VARIANT_KINDS, Catalog, ParseWarning, _values, clean_text, first_seen_dates, walk_md


_HEADING = re.compile(r"^#\s+(\w+)\s+(.+?)\s*$")


_META_START = re.compile(r"^<!--\s*([a-z][a-z0-9_-]*)\s*:(.*)$")


_VERSION_HEADING = re.compile(r"^#{2,6}\s*version\s+(\d+)\b", re.I)


_BULLET = re.compile(r"^\s*[*+-]\s+(.*)$")


_SECTION = re.compile(r"^#{1,2}\s+\S")


@dataclass
class TfhubPage:
    path: str
    kind: str  # module | placeholder | collection | publisher | tfjs | lite | coral
    handle: str
    version: int | None
    title: str
    metadata: dict[str, list[str]]
    changelog: list[tuple[int, str]]


def parse_tfhub_page(text: str, path: str) -> TfhubPage | ParseWarning:
    """One TF Hub page, or a warning saying which line is malformed."""
    lines = text.splitlines()
    head_no = next((i for i, line in enumerate(lines) if line.strip()), None)
    if head_no is None:
        return ParseWarning(path, 1, "empty page")
    m = _HEADING.match(lines[head_no])
    if not m:
        return ParseWarning(path, head_no + 1, f"first line is not '# <Kind> <handle>/<version>': {lines[head_no][:60]!r}")
    kind, name = m.group(1).lower(), clean_text(m.group(2)).replace(" ", "")
    if kind == "publisher":
        return TfhubPage(path, kind, name, None, "", {}, [])
    handle, _, version = name.rpartition("/")
    if not handle or not version.isdigit():
        return ParseWarning(path, head_no + 1, f"heading {name!r} does not end in /<version number>")
    if kind not in ASSET_KINDS and kind not in VARIANT_KINDS and kind != "collection":
        return ParseWarning(path, head_no + 1, f"unknown page kind {m.group(1)!r}")
    metadata: dict[str, list[str]] = {}
    title = ""
    changelog: list[tuple[int, str]] = []
    in_changelog, note_version, note = False, None, None
    for i in range(head_no + 1, len(lines)):
        line = lines[i]
        if line.startswith("<!--"):
            mm = _META_START.match(line)
            if mm:
                rest, j = mm.group(2), i
                while "-->" not in rest and j + 1 < min(i + 4, len(lines)) and not lines[j + 1].startswith(("<!--", "#")):
                    j += 1  # a value wrapped onto the next line(s) is still one comment
                    rest += " " + lines[j].strip()
                if "-->" not in rest:
                    return ParseWarning(path, i + 1, f"metadata comment for {mm.group(1)!r} is not closed with '-->'")
                key = METADATA_KEYS.get(mm.group(1), mm.group(1))
                metadata.setdefault(key, []).append(rest.split("-->", 1)[0].strip())
            continue
        if not title and line.strip() and not line.startswith("#"):
            title = clean_text(line)
        if _SECTION.match(line):
            if note is not None:
                changelog.append((note_version, note))
                note = None
            in_changelog = line.lstrip("#").strip().lower() == "changelog"
            note_version = None
            continue
        if not in_changelog:
            continue
        vm = _VERSION_HEADING.match(line)
        if vm or line.startswith("#") or line.lstrip().startswith("```"):
            if note is not None:
                changelog.append((note_version, note))
            # '#### References' or a code block ends a version's notes
            note_version, note = (int(vm.group(1)) if vm else None), None
            continue
        if note_version is None or not line.strip():
            if note is not None and not line.strip():
                changelog.append((note_version, note))
                note = None
            continue
        bm = _BULLET.match(line)
        if bm:
            if note is not None:
                changelog.append((note_version, note))
            note = bm.group(1).strip()
        elif note is not None:
            note += " " + line.strip()
        else:
            note = line.strip()
    if note is not None and note_version is not None:
        changelog.append((note_version, note))
    changelog = [(v, clean_text(_strip_links(n))) for v, n in changelog if v is not None]
    return TfhubPage(path, kind, handle, int(version), title, metadata, changelog)


def _strip_links(text: str) -> str:
    """'[GitHub issue 86](https://...)' -> 'GitHub issue 86'; backticks dropped."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).replace("`", "")


def parse_tfhub(folder: str | Path, first_seen: pd.DataFrame | None = None) -> Catalog:
    """All pages of a TF Hub snapshot folder -> `versions`, `variants`, `changelog` tables."""
    root = Path(folder)
    versions, variants, notes = [], [], {}
    warnings: list[ParseWarning] = []
    parsed = skipped = 0
    for full in walk_md(root):
        rel = os.path.relpath(full, root)
        with open(full, encoding="utf-8", errors="replace") as fh:
            page = parse_tfhub_page(fh.read(), rel)
        if isinstance(page, ParseWarning):
            warnings.append(page)
            skipped += 1
            continue
        parsed += 1
        md = {k: _values(k, v) for k, v in page.metadata.items()}
        if page.kind in VARIANT_KINDS:
            # parent-model '<handle>/<version>'; lite-only assets name a placeholder handle without a version,
            # and a few pages (iree/...) name no parent: then the variant's own handle minus '/lite' is the asset
            parent = clean_text((page.metadata.get("parent-model") or [""])[0])
            p_handle, _, p_version = parent.rpartition("/")
            if not p_version.isdigit():
                p_handle, p_version = parent or re.sub(r"(/default)?/(lite|tfjs|coral)$", "", page.handle), None
            variants.append({"handle": p_handle, "version": int(p_version) if p_version else None,
                             "variant": VARIANT_KINDS[page.kind],
                             "variant_handle": page.handle, "variant_version": page.version, "path": rel})
        elif page.kind in ASSET_KINDS:
            ft = (md.get("fine-tunable") or [None])[0]
            versions.append({
                "publisher": page.handle.split("/", 1)[0],
                "handle": page.handle,
                "version": page.version,
                "page_kind": ASSET_KINDS[page.kind],
                "task": ";".join(md.get("task", [])),
                "architecture": ";".join(md.get("network-architecture", [])),
                "dataset": ";".join(md.get("dataset", [])),
                "language": ";".join(md.get("language", [])),
                "format": ";".join(md.get("format", [])),
                "fine_tunable": {"true": True, "false": False}.get(ft),
                "license": ";".join(md.get("license", [])),
                "title": page.title,
                "path": rel,
            })
            # each version page repeats the whole changelog: the newest page's text wins
            prev = notes.get(page.handle)
            if page.changelog and (prev is None or page.version > prev[0]):
                notes[page.handle] = (page.version, page.changelog)
    v = pd.DataFrame(versions, columns=["publisher", "handle", "version", "page_kind", "task", "architecture",
                                        "dataset", "language", "format", "fine_tunable", "license", "title", "path"])
    v["first_seen_date"] = first_seen_dates(first_seen, list(v["path"]))
    d = pd.DataFrame(variants, columns=["handle", "version", "variant", "variant_handle", "variant_version", "path"])
    d["version"] = d["version"].astype("Int64")
    d["first_seen_date"] = first_seen_dates(first_seen, list(d["path"]))
    rows = [{"handle": h, "version": ver, "note_index": i, "note": n}
            for h, (_, entries) in notes.items() for i, (ver, n) in enumerate(entries)]
    c = pd.DataFrame(rows, columns=["handle", "version", "note_index", "note"])
    # a note belongs to the asset version it describes; keep notes of versions that have a page
    tables = {"versions": v.sort_values(["handle", "version"]).reset_index(drop=True),
              "variants": d.sort_values(["handle", "version", "variant"]).reset_index(drop=True),
              "changelog": c.sort_values(["handle", "version", "note_index"]).reset_index(drop=True)}
    return Catalog("tfhub", str(root), tables, parsed, skipped, warnings)
