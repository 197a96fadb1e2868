"""The paper draft's floats: a results table set for people (from its CSV through `study.columns`) as a LaTeX
longtable, and plain text as LaTeX. `study.draft.document` captions them with their provenance."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from study import columns
from study.errors import StudyError

UNICODE_TEX = {"Δ": r"$\Delta$", "Σ": r"$\Sigma$", "ρ": r"$\rho$", "→": r"$\rightarrow$", "−": "--", "–": "--",
               "—": "---", "…": r"\dots{}", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$",
               "µ": r"$\mu$", "≈": r"$\approx$", "·": r"$\cdot$", "’": "'", "‘": "`", "“": "``", "”": "''"}


def tex_unicode(text: str) -> str:
    """Non-ASCII characters pdfLaTeX's default fonts lack, as LaTeX; others transliterated (NFKD) or '?'."""
    import unicodedata

    def one(ch: str) -> str:
        if ch.isascii():
            return ch
        return UNICODE_TEX.get(ch) or unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"

    return "".join(one(ch) for ch in text)


def latex_escape(text: str) -> str:
    """Plain text (captions, values, notebook names) as LaTeX; underscores may break a line."""
    repl = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_\allowbreak{}",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return tex_unicode("".join(repl.get(ch, ch) for ch in str(text)))



@dataclass
class Tabular:
    """The booktabs tabular `Report.table` wrote (pandas `to_latex`): column alignments, header rows, body rows."""

    align: str
    header: list[list[str]]
    rows: list[list[str]]


def parse_tabular(tex: str, where: str) -> Tabular:
    m = re.search(r"\\begin\{tabular\}\{([lrcp{}.0-9a-z|]*)\}\s*\\toprule(.*?)\\midrule(.*?)\\bottomrule", tex, re.S)
    if not m:
        raise StudyError(f"{where} is not a booktabs tabular as Report.table writes it; re-run its notebook")
    align = re.sub(r"[^lrc]", "", m.group(1))

    def rows(block: str) -> list[list[str]]:
        return [[c.strip() for c in row.split(" & ")] for row in re.split(r"\\\\\s*\n?", block) if row.strip()]

    return Tabular(align, rows(m.group(2)), rows(m.group(3)))


def _visible(cell: str) -> str:
    return re.sub(r"\\[a-z]+\{\}|\\", "", cell)


def tabular_for_people(path: Path) -> Tabular:
    """The table as a reader sees it: from its CSV through `study.columns.present` (human headers with units,
    rounding by column kind, hashes shortened), escaped for LaTeX; numbers right-aligned. Without a CSV beside the
    table, the LaTeX `Report.table` wrote."""
    import pandas as pd

    csv = Path(path).with_suffix(".csv")
    if not csv.is_file():
        return parse_tabular(Path(path).read_text(encoding="utf-8"), str(path))
    raw = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    shown = columns.present(raw)
    align = "".join("r" if pd.api.types.is_numeric_dtype(raw[c]) and not pd.api.types.is_bool_dtype(raw[c]) else "l"
                    for c in raw.columns)
    return Tabular(align or "l", [[latex_escape(h) for h in shown.columns]],
                   [[latex_escape(v) for v in row] for row in shown.itertuples(index=False)])


# Characters across the line at each size (a character of Times at 0.55 em, 8 pt footnotesize on the portrait
# text width, 7 pt scriptsize on the landscape one), with a margin.
PORTRAIT_CHARS, LANDSCAPE_CHARS = 105, 150
MAX_COLUMNS = 10  # more columns than this are split into parts that repeat the first (the row's name)


def _measure(tab: Tabular) -> tuple[list[int], list[int]]:
    """Per column: its width in characters (the longest cell, capped so text wraps) and its longest word (of a cell
    or the header; `_`, `/` and spaces may break), which a wrapped column must still hold."""
    widths, words = [], []
    for j in range(len(tab.align)):
        cells = [_visible(r[j]) for r in tab.rows if j < len(r)]
        heads = [_visible(h[j]) for h in tab.header if j < len(h)]
        word = max((len(w) for c in cells + heads for w in re.split(r"[\s_/]+", c)), default=1)
        words.append(max(2, word))
        widths.append(max(3, word, min(40, max((len(c) for c in cells), default=1))))
    return widths, words


def _natural(tab: Tabular) -> int:
    """Characters of a line when no column wraps (the longest cell or header of each)."""
    return sum(max((len(_visible(r[j])) for r in tab.rows + tab.header if j < len(r)), default=1) + 2
               for j in range(len(tab.align)))


def column_parts(tab: Tabular) -> list[list[int]]:
    """The rule for wide tables: the columns in parts that each fit a landscape line at their longest words, every
    part after the first repeating column 0 (what the row is)."""
    widths, words = _measure(tab)
    n = len(words)
    if n <= MAX_COLUMNS and sum(words) + 2 * n <= LANDSCAPE_CHARS:
        return [list(range(n))]
    parts, current = [], [0]
    for j in range(1, n):
        if len(current) >= MAX_COLUMNS or sum(words[k] + 2 for k in current) + words[j] + 2 > LANDSCAPE_CHARS:
            parts.append(current)
            current = [0]
        current.append(j)
    return parts + [current]


def _one(tab: Tabular, short: str, caption: str, label: str) -> str:
    n = len(tab.align)
    widths, words = _measure(tab)
    wide = n > 7 or sum(words) + 2 * n > PORTRAIT_CHARS  # landscape: many columns, or their words do not fit across
    budget = LANDSCAPE_CHARS if wide else PORTRAIT_CHARS
    if _natural(tab) <= budget:
        spec = tab.align
    else:  # every column gets its longest word, the rest of the line goes to the long ones
        spare = max(sum(widths) - sum(words), 1)
        room = max(budget - 2 * n - sum(words), 0)
        shares = [wd + (w - wd) * room / spare for w, wd in zip(widths, words)]
        total = sum(shares)
        ragged = {"r": r"\raggedleft", "l": r"\raggedright", "c": r"\centering"}
        spec = "".join(f">{{{ragged[a]}\\arraybackslash}}p{{{w / total:.4f}\\studytw}}"
                       for a, w in zip(tab.align, shares))

    def cell(c: str) -> str:  # long names and addresses may break after `_` and `/`
        c = c if r"\allowbreak" in c else c.replace(r"\_", r"\_\allowbreak{}")
        return tex_unicode(c.replace("/", r"/\allowbreak{}") if "://" in c or len(c) > 30 else c)

    def row(cells: list[str]) -> str:
        return " & ".join(cell(c) for c in cells) + r" \\"

    head = "\n".join(row(h) for h in tab.header)
    box = "studywide" if wide else "studynarrow"  # landscape + scriptsize, or footnotesize (paper/draft.tex)
    first = rf"\caption[{short}]{{{caption}}}\label{{{label}}}\\" if label else rf"\caption*{{{caption}}}\\"
    return "\n".join([
        rf"\begin{{{box}}}{{{n}}}",
        rf"\begin{{longtable}}{{{spec}}}",
        first,
        r"\toprule", head, r"\midrule", r"\endfirsthead",
        rf"\multicolumn{{{n}}}{{l}}{{\tablename\ \thetable{{}} (continued)}}\\", r"\toprule", head, r"\midrule",
        r"\endhead", r"\bottomrule", r"\endlastfoot",
        "\n".join(row(r) for r in tab.rows),
        r"\end{longtable}",
        rf"\end{{{box}}}",
    ]) + "\n"


def longtable(tab: Tabular, short: str, caption: str, label: str) -> str:
    """`tab` as longtables (they break across pages and repeat their header): footnotesize in portrait or scriptsize
    in landscape, columns wrapped so that each holds its longest word, and a table too wide for a landscape line
    split into parts of its columns (`column_parts`), each a table of its own under one number and caption."""
    parts = column_parts(tab)
    out = []
    for i, cols in enumerate(parts):
        sub = Tabular("".join(tab.align[j] for j in cols), [[h[j] for j in cols] for h in tab.header],
                      [[r[j] for j in cols] for r in tab.rows])
        if len(parts) == 1:
            out.append(_one(sub, short, caption, label))
        elif i == 0:
            out.append(_one(sub, short, f"{caption} Part 1 of {len(parts)} of its columns.", label))
        else:
            out.append(r"\addtocounter{table}{-1}" + "\n"
                       + _one(sub, short, f"{short} (part {i + 1} of {len(parts)} of its columns).", ""))
    return "".join(out)
