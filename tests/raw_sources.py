"""Independent readers of the raw sources, for expected values that do not come from the code under test.

The paper's text (its tab-separated tables, read straight from ../shared/paper/, not through `study.paper` or the
transcriptions under data/paper/) and the zoo snapshot pages under ../shared/zoo-snapshots/ (headings, one-line
`<!-- key: value -->` comments, front matter, files). A few lines of parsing each, sharing no code with `study/`: a
test that compares one of these with what the package derives fails when either of them is wrong. Tests that use
them carry `needs_shared` / `needs_snapshots` (tests/conftest.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from study.config import SHARED, ZOO_SNAPSHOTS

PAPER_TEXT = SHARED / "paper" / "000_1c4d5bde1943f940.txt"
TFHUB = ZOO_SNAPSHOTS / "tfhub.dev"
PYTORCH_HUB = ZOO_SNAPSHOTS / "pytorch-hub"


# --- the paper's text ----------------------------------------------------------------------------------------------

def paper_table(caption: str) -> list[dict[str, str]]:
    """The table under the line `caption` (e.g. "Table IX: Stats Result in Fine-tuning Process"): its header line's
    cells as keys, one dict per following tab-separated line up to the first line without a tab. A cell that spans
    rows is empty on the rows below its first (no fill-down here)."""
    lines = PAPER_TEXT.read_text(encoding="utf-8").splitlines()
    at = [i for i, line in enumerate(lines) if line.strip() == caption]
    assert len(at) == 1, f"{caption!r} occurs {len(at)} times in {PAPER_TEXT.name}"
    body = iter(lines[at[0] + 1:])
    header = next(line for line in body if line.strip()).split("\t")
    rows = []
    for line in body:
        if "\t" not in line:
            break
        cells = line.split("\t")
        assert len(cells) == len(header), (caption, line)
        rows.append(dict(zip(header, cells)))
    return rows


def seconds(hms: str) -> int:
    """'0:02:48' -> 168."""
    h, m, s = (int(x) for x in hms.split(":"))
    return 3600 * h + 60 * m + s


def leading_int(text: str) -> int:
    """The first number of a cell: '32 (Config: ...)' -> 32, '69 (86.25%)' -> 69."""
    return int(re.match(r"\s*(\d+)", text).group(1))


def largest_denominator(value: float, limit: int) -> int | None:
    """The largest n <= limit for which `value` is k/n with k a whole number (by trying every n), or None."""
    hits = [n for n in range(1, limit + 1) if abs(value * n - round(value * n)) < 1e-6]
    return max(hits) if hits else None


# --- TF Hub pages --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TfhubPage:
    path: str  # relative to the snapshot folder
    kind: str  # the heading's first word: Module, Placeholder, Tfjs, Lite, Coral, Collection, Publisher
    handle: str  # the heading's name without its last part ('&zwnj;' dropped)
    version: int | None
    meta: dict[str, list[str]]  # every one-line `<!-- key: value -->`, values in page order
    text: str

    def first(self, key: str, default: str = "") -> str:
        return self.meta.get(key, [default])[0]


_COMMENT = re.compile(r"^<!--\s*([a-z][a-z0-9_-]*)\s*:\s*(.*?)\s*-->", re.M)


def tfhub_pages(root: Path) -> list[TfhubPage]:
    """Every page of a TF Hub snapshot folder (e.g. `TFHUB / "2020-08-26"`), read with a regular expression or two."""
    pages = []
    for path in sorted(root.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        heading = next(line for line in text.splitlines() if line.strip())
        kind, name = heading.removeprefix("# ").split(" ", 1)
        name = name.replace("&zwnj;", "").replace(" ", "")
        handle, _, last = name.rpartition("/")
        meta: dict[str, list[str]] = {}
        for key, value in _COMMENT.findall(text):
            meta.setdefault(key, []).append(value)
        pages.append(TfhubPage(str(path.relative_to(root)), kind, handle if last.isdigit() else name,
                               int(last) if last.isdigit() else None, meta, text))
    return pages


def by_handle(pages: list[TfhubPage], kinds: tuple[str, ...] = ("Module",)) -> dict[str, list[TfhubPage]]:
    """The pages of `kinds` per asset, lowest version first."""
    out: dict[str, list[TfhubPage]] = {}
    for p in sorted((p for p in pages if p.kind in kinds), key=lambda p: p.version):
        out.setdefault(p.handle, []).append(p)
    return out


def imagenet_family(pages: list[TfhubPage], algorithm: str, task: str, quantised: bool | None = None) -> set[str]:
    """The assets of a paper family of ImageNet models: latest module page's architecture is `algorithm` (or
    `algorithm` followed by a depth, e.g. 'ResNet V1 50'; any case), dataset ImageNet, module type `task`, with
    at least one `hub` (TF1 hub.Module) version (the paper's data predates the assets born as TF2); `quantised`:
    only the handles with (True) or without (False) 'quantops'."""
    out = set()
    for handle, versions in by_handle(pages).items():
        latest = versions[-1]
        arch = latest.first("network-architecture").lower()
        if (arch == algorithm.lower() or arch.startswith(algorithm.lower() + " ")) \
                and latest.first("dataset").startswith("ImageNet") and latest.first("module-type") == task \
                and any(p.first("format") == "hub" for p in versions) \
                and (quantised is None or ("quantops" in handle) == quantised):
            out.add(handle)
    return out


def changelog(text: str) -> dict[int, str]:
    """A page's '# Changelog' / '## Changelog' section cut at its '#### Version N' headings: version -> the notes
    below it, on one line, markdown links replaced by their text, bullets and backticks dropped."""
    section = re.split(r"^#{1,2}\s*Changelog\s*$", text, maxsplit=1, flags=re.M)
    if len(section) < 2:
        return {}
    section = re.split(r"^#{1,2} ", section[1], maxsplit=1, flags=re.M)[0]  # up to the next top-level section
    parts = re.split(r"^#+\s*Version\s+(\d+)\s*$", section, flags=re.M | re.I)
    out = {}
    for version, body in zip(parts[1::2], parts[2::2]):
        body = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", body.split("\n#", 1)[0])
        out[int(version)] = " ".join(body.replace("`", "").replace("*", " ").split())
    return out


# --- PyTorch Hub pages ---------------------------------------------------------------------------------------------

def front_matter(path: Path) -> dict[str, str]:
    """The `key: value` lines between a page's first two '---' lines (a quoted value without its quotes)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    end = lines.index("---", 1)
    pairs = (line.split(":", 1) for line in lines[1:end] if ":" in line and not line.startswith(" "))
    return {key.strip(): re.sub(r'^"(.*)"$', r"\1", value.strip()) for key, value in pairs}
