"""PyTorch Hub pages -> a Catalog: one row per page and per member named by its torch.hub.load calls (also commented-
out calls, list variables and member-selecting keyword arguments).
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path
import pandas as pd

from study.zoos.catalog import Catalog, ParseWarning, clean_text, first_seen_dates, slug



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
    p["first_seen_date"] = first_seen_dates(first_seen, list(p["path"]))
    m = pd.DataFrame(members, columns=["page", "repo", "ref", "entrypoint", "member", "selector", "config",
                                       "commented", "source", "line", "utility"])
    return Catalog("pytorch-hub", str(root), {"pages": p, "members": m}, parsed, skipped, warnings)
