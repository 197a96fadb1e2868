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

import argparse
import ast
import html
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from study import config, files
from study.errors import StudyError

ZOOS = ("tfhub", "pytorch-hub")
ZOO_FOLDERS = {"tfhub": "tfhub.dev", "pytorch-hub": "pytorch-hub"}
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


class CatalogError(StudyError):
    """A snapshot folder that is missing or unusable, an unknown zoo, or warnings under --strict."""


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


def _walk_md(root: Path) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names if n.endswith(".md"))
    return sorted(out)


def _first_seen(first_seen: pd.DataFrame | None, paths: list[str]) -> list:
    if first_seen is None:
        return [None] * len(paths)
    lookup = dict(zip(first_seen["path"], first_seen["first_seen_date"]))
    return [lookup.get(p) for p in paths]


def parse_tfhub(folder: str | Path, first_seen: pd.DataFrame | None = None) -> Catalog:
    """All pages of a TF Hub snapshot folder -> `versions`, `variants`, `changelog` tables."""
    root = Path(folder)
    versions, variants, notes = [], [], {}
    warnings: list[ParseWarning] = []
    parsed = skipped = 0
    for full in _walk_md(root):
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
    v["first_seen_date"] = _first_seen(first_seen, list(v["path"]))
    d = pd.DataFrame(variants, columns=["handle", "version", "variant", "variant_handle", "variant_version", "path"])
    d["version"] = d["version"].astype("Int64")
    d["first_seen_date"] = _first_seen(first_seen, list(d["path"]))
    rows = [{"handle": h, "version": ver, "note_index": i, "note": n}
            for h, (_, entries) in notes.items() for i, (ver, n) in enumerate(entries)]
    c = pd.DataFrame(rows, columns=["handle", "version", "note_index", "note"])
    # a note belongs to the asset version it describes; keep notes of versions that have a page
    tables = {"versions": v.sort_values(["handle", "version"]).reset_index(drop=True),
              "variants": d.sort_values(["handle", "version", "variant"]).reset_index(drop=True),
              "changelog": c.sort_values(["handle", "version", "note_index"]).reset_index(drop=True)}
    return Catalog("tfhub", str(root), tables, parsed, skipped, warnings)


# --- PyTorch Hub -------------------------------------------------------------------------------

_LOAD = re.compile(r"torch\.hub\.load\s*\(")
_ASSIGN = re.compile(r"^\s*#?\s*([A-Za-z_]\w*)\s*=\s*(\[[^\]]*\]|'[^']*'|\"[^\"]*\")")
_PROSE_ASSIGN = re.compile(r"\b([A-Za-z_]\w*)\s*=\s*(['\"])([\w.\-]+)\2")
_QUOTED = re.compile(r"(['\"])([\w.\-]+)\1")
_WORD = re.compile(r"[A-Za-z][\w.\-]*\d[\w.\-]*|[A-Za-z]+_[\w.\-]+")
# keyword arguments of torch.hub.load that pick a member rather than tune a call
MEMBER_KWARGS = ("model_name", "model_type", "model_math", "precision", "language", "speaker", "arch")
REPO_KWARGS = ("repo_or_dir", "github", "repo")
UTILITY = re.compile(r"(utils?|transforms?|tokenizer|config|processing|_get)$", re.I)


def _front_matter(text: str, path: str) -> tuple[dict, int] | ParseWarning:
    import yaml

    if not text.startswith("---"):
        return ParseWarning(path, 1, "no YAML front matter (page must start with '---')")
    end = text.find("\n---", 3)
    if end < 0:
        return ParseWarning(path, 1, "front matter is not closed with '---'")
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 2
        return ParseWarning(path, line, f"malformed front matter: {getattr(exc, 'problem', exc)}")
    if not isinstance(meta, dict):
        return ParseWarning(path, 2, "front matter is not a mapping of keys to values")
    return meta, text.count("\n", 0, end) + 2


def _uncomment(line: str) -> tuple[str, bool]:
    s = line.lstrip()
    if s.startswith("#"):
        return s.lstrip("#").lstrip(), True
    return line, False


def _split_comment(line: str) -> tuple[str, str]:
    """Code and trailing comment of one line (a '#' outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i], line[i + 1:]
    return line, ""


def _call_args(lines: list[str], start: int, col: int) -> tuple[str, list[str], int] | None:
    """The argument text of a call opened at lines[start][col] (maybe over several, maybe commented, lines)."""
    depth, buf, comments = 0, [], []
    for j in range(start, min(start + 12, len(lines))):
        raw, _ = _uncomment(lines[j]) if j > start else (lines[j], False)
        seg = raw[col:] if j == start else raw
        code, comment = _split_comment(seg)
        comments.append(comment)
        for k, ch in enumerate(code):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    buf.append(code[:k + 1])
                    return " ".join(buf), comments, j
        buf.append(code)
    return None


def _literal_bindings(lines: list[str]) -> dict[str, list[tuple[str, str, int]]]:
    """Variable -> literal values bound to it anywhere on the page: (value, source, line)."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for i, line in enumerate(lines):
        m = _ASSIGN.match(line)
        if m:
            commented = line.lstrip().startswith("#")
            try:
                value = ast.literal_eval(m.group(2))
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, list):
                for v in value:
                    if isinstance(v, str):
                        out.setdefault(m.group(1), []).append((v, "variable-list", i + 1))
                continue
            out.setdefault(m.group(1), []).append((value, "commented-variable" if commented else "variable", i + 1))
            # alternatives listed in the comment lines right after the assignment, or in its trailing comment
            _, trailing = _split_comment(line.lstrip().lstrip("#") if commented else line)
            block = [trailing]
            for nxt in lines[i + 1:i + 6]:
                s = nxt.strip()
                if not s.startswith("#") or _ASSIGN.match(nxt) or _LOAD.search(nxt):
                    break
                block.append(s.lstrip("#"))
            for alt in _alternatives(value, " ".join(block)):
                out[m.group(1)].append((alt, "comment-alternative", i + 1))
        else:
            for pm in _PROSE_ASSIGN.finditer(line):  # 'Setting precision='fp16' will load ...'
                if not _LOAD.search(line):
                    out.setdefault(pm.group(1), []).append((pm.group(3), "prose", i + 1))
    return out


def _shape(token: str) -> str:
    return re.sub(r"\d+", "0", re.sub(r"[A-Za-z]+", "a", token))


def _alternatives(value: str, comment: str) -> list[str]:
    """Names in a comment that look like alternatives to `value` (same first word, or same shape and prefix)."""
    if not comment.strip():
        return []
    first = re.split(r"[_\-.]", value)[0].lower()
    quoted = [m.group(2) for m in _QUOTED.finditer(comment)]
    out = []
    for c in quoted or [m.group(0) for m in _WORD.finditer(comment)]:
        c = c.rstrip(".-")
        if c == value or c in out:
            continue
        same_first = len(first) >= 2 and re.split(r"[_\-.]", c)[0].lower() == first
        prefix = len(os.path.commonprefix([c.lower(), value.lower()]))
        same_shape = _shape(c) == _shape(value)
        # quoted names in a comment are an explicit list; bare words must look much more like `value`
        if same_first or (quoted and (prefix >= 4 or same_shape)) or (not quoted and same_shape and prefix >= 2):
            out.append(c)
    return out


def _is_pathlike(value: str) -> bool:
    return value.startswith((".", "/", "~")) or "/" in value


def parse_torch_hub_calls(text: str, path: str = "<page>") -> list[dict]:
    """Every member a page names: torch.hub.load calls (commented-out ones too), variables, keyword options."""
    lines = text.splitlines()
    bindings = _literal_bindings(lines)
    members: list[dict] = []
    for i, line in enumerate(lines):
        m = _LOAD.search(line)
        if not m:
            continue
        commented = line.lstrip().startswith("#")
        got = _call_args(lines, i, m.end() - 1)
        if not got:
            continue
        call, comments, _ = got
        try:
            node = ast.parse("f" + call, mode="eval").body
        except SyntaxError:
            continue
        if not isinstance(node, ast.Call):
            continue
        pos = list(node.args)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        repo_key = next((k for k in REPO_KWARGS if k in kw), None)
        repo = kw[repo_key] if repo_key else (pos.pop(0) if pos else None)
        entry = kw["model"] if "model" in kw else (pos.pop(0) if pos else None)
        if repo is None or entry is None:
            continue

        def values(expr) -> list[tuple[str, str]]:
            if isinstance(expr, ast.Constant) and isinstance(expr.value, (str, int, float, bool)):
                return [(str(expr.value), "commented-call" if commented else "call")]
            if isinstance(expr, ast.Name) and expr.id in bindings:
                return [(v, src) for v, src, _ in bindings[expr.id]]
            return []

        repos = values(repo)
        if not repos:
            continue
        repo_ref = repos[0][0]
        owner_repo, _, ref = repo_ref.partition(":")
        entries = values(entry)
        # a further positional string names the member (e.g. HuggingFace 'bert-base-uncased'); paths are not members
        selector = values(pos[0]) if pos else []
        if selector and all(_is_pathlike(v) for v, _ in selector):
            continue  # loads a local path ('./test/saved_model/'), not a member of the zoo
        selector = [v for v in selector if not _is_pathlike(v[0])]
        trailing = " ".join(comments)
        if pos and isinstance(pos[0], ast.Constant) and selector:
            for alt in _alternatives(selector[0][0], _comment_block(lines, i) + " " + trailing):
                selector.append((alt, "comment-alternative"))
        options: dict[str, list[tuple[str, str]]] = {}
        for k, expr in kw.items():
            if k in MEMBER_KWARGS:
                vals = values(expr)
                if isinstance(expr, ast.Constant) and vals:
                    vals += [(a, "comment-alternative") for a in _alternatives(vals[0][0], trailing)]
                if vals:
                    options[k] = vals
        for e, e_src in entries:
            for sel, sel_src in (selector or [(None, None)]):
                combos = [{}]
                for k, vals in options.items():
                    combos = [dict(c, **{k: v}) for c in combos for v in vals]
                for combo in combos:
                    name = sel or e
                    cfg = ";".join(f"{k}={v[0]}" for k, v in combo.items())
                    srcs = [e_src] + ([sel_src] if sel else []) + [v[1] for v in combo.values()]
                    members.append({"page": path, "repo": owner_repo, "ref": ref, "entrypoint": e,
                                    "member": name + (f"[{cfg}]" if cfg else ""), "selector": sel or "",
                                    "config": cfg, "commented": commented,
                                    "source": _weakest(srcs), "line": i + 1,
                                    "utility": bool(UTILITY.search(e)) and not sel})
    seen, unique = set(), []
    for row in members:
        key = (row["repo"], row["entrypoint"], row["selector"], row["config"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _comment_block(lines: list[str], i: int) -> str:
    """Comment lines right above line i (e.g. '# list of models: ...')."""
    out = []
    for j in range(i - 1, max(-1, i - 4), -1):
        s = lines[j].strip()
        if not s.startswith("#"):
            break
        out.append(s.lstrip("#"))
    return " ".join(out)


_SOURCE_ORDER = ["call", "variable", "variable-list", "commented-call", "commented-variable", "prose",
                 "comment-alternative"]


def _weakest(sources: list[str]) -> str:
    """How a member was found: the least direct of its parts (a call with a commented option is 'commented')."""
    return max(sources, key=_SOURCE_ORDER.index)


def parse_pytorch_hub_page(text: str, path: str) -> tuple[dict, list[dict]] | ParseWarning:
    fm = _front_matter(text, path)
    if isinstance(fm, ParseWarning):
        return fm
    meta, body_line = fm
    page = Path(path).stem
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.strip("[]").split(",") if t.strip()]
    members = parse_torch_hub_calls(text, page)
    link = str(meta.get("github-link") or "")
    gm = re.search(r"github\.com/([^/]+/[^/#?]+)", link)
    repo = members[0]["repo"] if members else (gm.group(1).removesuffix(".git") if gm else "")
    row = {
        "page": page,
        "title": clean_text(str(meta.get("title") or "")),
        "summary": clean_text(str(meta.get("summary") or "")),
        "category": str(meta.get("category") or ""),
        "author": clean_text(str(meta.get("author") or "")),
        "tags": ";".join(slug(str(t)) for t in tags),
        "github_link": link,
        "repo": repo,
        "ref": members[0]["ref"] if members else "",
        "members": len([m for m in members if not m["utility"]]),
        "path": path,
    }
    return row, members


def parse_pytorch_hub(folder: str | Path, first_seen: pd.DataFrame | None = None) -> Catalog:
    """All pages of a PyTorch Hub snapshot folder -> `pages` and `members` tables."""
    root = Path(folder)
    pages, members, warnings = [], [], []
    parsed = skipped = 0
    for full in sorted(root.glob("*.md")):
        rel = full.name
        got = parse_pytorch_hub_page(full.read_text(encoding="utf-8", errors="replace"), rel)
        if isinstance(got, ParseWarning):
            warnings.append(got)
            skipped += 1
            continue
        parsed += 1
        pages.append(got[0])
        members.extend(got[1])
    p = pd.DataFrame(pages, columns=["page", "title", "summary", "category", "author", "tags", "github_link",
                                     "repo", "ref", "members", "path"])
    p["first_seen_date"] = _first_seen(first_seen, list(p["path"]))
    m = pd.DataFrame(members, columns=["page", "repo", "ref", "entrypoint", "member", "selector", "config",
                                       "commented", "source", "line", "utility"])
    return Catalog("pytorch-hub", str(root), {"pages": p, "members": m}, parsed, skipped, warnings)


# --- entry points ------------------------------------------------------------------------------

def _check_date(date: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):
        raise CatalogError(f"date {date!r} is not YYYY-MM-DD (e.g. 2019-12-31)")
    return str(date)


def read_first_seen(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"first-seen table {path} not found; pass --first-seen FILE or leave it out")
    df = pd.read_csv(path, dtype=str)
    missing = {"path", "first_seen_date"} - set(df.columns)
    if missing:
        raise CatalogError(f"first-seen table {path} lacks column(s) {', '.join(sorted(missing))}")
    return df


def default_first_seen(zoo: str, snapshot: str | Path) -> Path | None:
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
    fs = read_first_seen(first_seen) if first_seen else None
    cat = (parse_tfhub if zoo == "tfhub" else parse_pytorch_hub)(folder, fs)
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
    return build(zoo, snap.path, default_first_seen(zoo, snap.path))


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
        print(f"[catalog] {date} {cat.summary()}")
    return written


# --- CLI ---------------------------------------------------------------------------------------

def add_snapshot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zoo", required=True, help=f"one of {', '.join(ZOOS)}")
    p.add_argument("--snapshot", required=True, metavar="DIR", help="a snapshot folder of that zoo's pages")
    p.add_argument("--first-seen", metavar="CSV", help="path,first_seen_date table (default: first-seen.csv "
                                                      "next to the snapshot folder, if any)")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="keep only what the zoo had on that date")
    p.add_argument("--strict", action="store_true", help="malformed pages are an error (exit 2), not a warning")


def build_from_args(args: argparse.Namespace) -> Catalog:
    if args.zoo not in ZOOS:
        raise CatalogError(f"unknown zoo {args.zoo!r}; valid: {', '.join(ZOOS)}")
    first_seen = args.first_seen or default_first_seen(args.zoo, args.snapshot)
    cat = build(args.zoo, args.snapshot, first_seen, args.as_of, args.strict)
    for w in cat.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"[catalog] {cat.summary()}", file=sys.stderr)
    return cat


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("catalog", help="model-zoo catalogs from the zoos' metadata pages")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    b = csub.add_parser("build", help="parse one snapshot folder into tidy CSV tables")
    add_snapshot_args(b)
    b.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.csv[.gz]: tfhub writes FILE_versions/_variants/_changelog, pytorch-hub "
                        "FILE_pages/_members; '-' prints the main table")
    b.set_defaults(func=_build)
    s = csub.add_parser("ship", help="rebuild the shipped catalogs in data/zoo/ from ../shared/zoo-snapshots")
    s.set_defaults(func=lambda args: (ship(), 0)[1])


def _build(args: argparse.Namespace) -> int:
    cat = build_from_args(args)
    for path in write_catalog(cat, args.out):
        print(path)
    return 0
