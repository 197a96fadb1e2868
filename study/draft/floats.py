"""The paper draft's floats: a results table set for people (from its CSV through `study.columns`) as a LaTeX
longtable, and plain text as LaTeX. `study.draft.document` captions them with their provenance."""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

from study.assets import zoo
from study.draft import labels
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



# A run of text holding an underscore (a name, a path, a dotted module, `key=value`), without trailing punctuation.
# a name with an underscore, ending at a space, punctuation, or a call's "(...)" (`treespec.is_leaf()`) and a quote
CODE_NAME = re.compile(r"(?<![\w./=-])([\w.\-/=]*[A-Za-z0-9]_[A-Za-z0-9][\w.\-/=]*?)"
                       r"(?=(?:\([^()]*\))?[.,;:)`'\u2019]?(?:\s|$)|(?:\([^()]*\))?[,;:)`'\u2019])")


@functools.lru_cache(maxsize=1)
def member_names() -> frozenset[str]:
    """The zoo's member names (`study.assets.zoo.MEMBERS`): set in \\texttt wherever the draft prints them."""
    return frozenset(m.name for m in zoo.MEMBERS)


def is_code_name(token: str) -> bool:
    """What the draft sets in \\texttt rather than translating: a zoo member's name, a file name, a path or handle
    (`google/imagenet/.../feature_vector`), a dotted module or function (`ai_edge_litert.interpreter`), a setting
    (`input_size=128`), a version folder (`v2_variable_input`), a converted graph's node (`node_mul`), or an API's or
    program's own name (`RAW_API_NAMES`)."""
    return (token in member_names() or token in RAW_API_NAMES or "/" in token or "=" in token
            or bool(re.search(r"\.(csv|json|tex|pdf|png|ipynb|py|md|txt|lock)$", token))
            or bool(re.fullmatch(r"\w+(\.\w+)+", token)) or bool(re.fullmatch(r"v\d+_[a-z0-9_]+", token))
            or bool(re.fullmatch(r"node_\w+", token)))  # a converted graph's node (the first divergent op)


# Names of other projects' APIs and configurations our tables quote (set as code, never translated).
RAW_API_NAMES = frozenset({"batch_norm_momentum", "output_size", "model_size", "input_size", "serving_default",
                           "load_state_dict", "quantize_dynamic", "import_graph_def", "wrap_function", "weights_only",
                           "tensorflow_hub", "tf_keras", "update_ops", "feature_vector", "variable_input_size",
                           "quantization_boundary", "x86_64", "tensorflow_model_server"})


def escape_with_code(text: str) -> str:
    """`latex_escape(text)`, with member and file names set in \\texttt (as code, not prose)."""
    out, last = [], 0
    text = str(text)
    for m in CODE_NAME.finditer(text):
        if is_code_name(m.group(1)):
            out += [latex_escape(text[last:m.start(1)]), rf"\texttt{{{latex_escape(m.group(1))}}}"]
            last = m.end(1)
    return "".join(out) + latex_escape(text[last:])


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
    """The characters a cell prints: commands without arguments and the wrappers of \\texttt{...} dropped."""
    cell = re.sub(r"\\[A-Za-z]+\{\}", "", cell)
    cell = re.sub(r"\\[A-Za-z]+\{((?:[^{}]|\{[^{}]*\})*)\}", r"\1", cell)
    return re.sub(r"\$?\\([A-Za-z]+)\$?", r"\1", cell).replace("\\", "")


def tabular_for_people(path: Path) -> Tabular:
    """The table as a reader sees it: from its CSV through `study.draft.labels.present` (human headers with units,
    rounding by column kind, hashes shortened), escaped for LaTeX; numbers right-aligned. Without a CSV beside the
    table, the LaTeX `Report.table` wrote."""
    import pandas as pd

    csv = Path(path).with_suffix(".csv")
    if not csv.is_file():
        return parse_tabular(Path(path).read_text(encoding="utf-8"), str(path))
    raw = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    shown = labels.present(raw)
    align = "".join("r" if pd.api.types.is_numeric_dtype(raw[c]) and not pd.api.types.is_bool_dtype(raw[c]) else "l"
                    for c in raw.columns)
    return Tabular(align or "l", [[latex_escape(h) for h in shown.columns]],
                   [[escape_with_code(_category(v)) for v in row] for row in shown.itertuples(index=False)])


def _category(value: str) -> str:
    """A whole cell that is one snake_case word of our own vocabulary (`wrong_output`, `quantisation_range`) as
    words; names set as code (members, files, APIs) stay."""
    value = str(value)
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", value) and not is_code_name(value):
        return value.replace("_", " ")
    return value


# Characters across the line at each size (a character of Times at 0.55 em: 8 pt footnotesize, 7 pt scriptsize and
# 6 pt on the portrait text width, 7 pt scriptsize on the landscape one), with a margin; and the most columns each holds.
PORTRAIT_CHARS, SMALL_CHARS, SMALLEST_CHARS, LANDSCAPE_CHARS = 112, 135, 157, 170
PORTRAIT_COLUMNS, SMALL_COLUMNS, SMALLEST_COLUMNS, LANDSCAPE_COLUMNS = 10, 14, 16, 30
# The settings, smallest first: (LaTeX environment of paper/preamble.tex, characters across, columns at most).
SETTINGS: dict[str, tuple[str, int, int]] = {
    "portrait": ("studynarrow", PORTRAIT_CHARS, PORTRAIT_COLUMNS),
    "portrait, small type": ("studysmall", SMALL_CHARS, SMALL_COLUMNS),
    "portrait, smallest type": ("studysmallest", SMALLEST_CHARS, SMALLEST_COLUMNS),
    "landscape": ("studywide", LANDSCAPE_CHARS, LANDSCAPE_COLUMNS),
}
EMPTY_CELLS = frozenset({"", "--", "nan"})
CONSTANT_MIN_ROWS = 3  # a column with one value in every row of a table this long is said once, in the caption
FLOAT_LINES = 60  # a portrait table of at most this many lines is a float (tabular); a longer one a longtable
LONG_REPEATED = 60  # a column of a few long texts repeated over the rows: each said once, the rows keyed (a), (b)


# After punctuation inside a word, not between two digits (a number stays whole).
PUNCT_BREAK = r"(?<!\d[eE][\-+])(?:(?<=[A-Za-z)\]][.,;:\-])|(?<=\d[,;:])|(?<=\d[.\-](?=[A-Za-z])))(?=[A-Za-z0-9(])"
LONG_CELL = 20  # characters: a cell this long may also break after `.`, `,`, `;`, `:` and `-` (`_cell_breaks`)


def _words(cell: str) -> list[str]:
    """The pieces a cell may break into: at spaces, `_` and `/`; a long cell also after punctuation."""
    return re.split(rf"[\s_/]+|{PUNCT_BREAK}" if len(cell) > LONG_CELL else r"[\s_/]+", cell)


TRACE_MARKS = re.compile(r"(?:\\textasciitilde\{\}|\\textasciicircum\{\}){3,}")  # a traceback's ~~~^^^ underline


def _cell_breaks(cell: str) -> str:
    """A long cell's LaTeX with a break allowed after punctuation inside a word (as `_words` measures it), and a
    traceback's marker underline (`~~~~^^^^`, no break point in it: it overfilled a landscape line) cut to `...`."""
    if len(_visible(cell)) <= LONG_CELL:
        return cell
    return re.sub(PUNCT_BREAK, r"\\allowbreak{}", TRACE_MARKS.sub(r"\\ldots{}", cell))


TYPEWRITER = 1.25  # a \\texttt character is this much wider than an average one of Times
MAX_SHARE_CHARS = 200  # a column's claim on the spare width grows with its text up to this many characters


def _measure(tab: Tabular) -> tuple[list[int], list[int]]:
    """Per column: its width in characters (its cells' 90th-percentile length, capped so text wraps) and its longest word (of a cell
    or the header; `_`, `/` and spaces may break, and punctuation in a long cell), which a wrapped column must still
    hold."""
    widths, words = [], []
    for j in range(len(tab.align)):
        raw = [r[j] for r in tab.rows if j < len(r)] + [h[j] for h in tab.header if j < len(h)]
        cells = [_visible(c) for c in raw[:len(tab.rows)]]
        word = max((math.ceil(len(w) * (TYPEWRITER if r"\texttt" in c else 1)) for c in raw
                    for w in _words(_visible(c))), default=1)
        words.append(max(2, word + 1))  # a character of slack: capitals and bold are wider than average
        lengths = sorted(len(c) for c in cells) or [1]
        typical = lengths[int(0.9 * (len(lengths) - 1))]  # the 90th percentile: long texts get the room they fill
        widths.append(max(3, word + 1, min(MAX_SHARE_CHARS, typical)))
    return widths, words


def _natural(tab: Tabular) -> int:
    """Characters of a line when no column wraps (the longest cell or header of each)."""
    return sum(max((len(_visible(r[j])) for r in tab.rows + tab.header if j < len(r)), default=1) + 2
               for j in range(len(tab.align)))


def fits(tab: Tabular, setting: str) -> bool:
    """Every column holds its longest word across the line of `setting`, and there are not too many columns."""
    _, chars, most = SETTINGS[setting]
    n = len(tab.align)
    return n <= most and sum(_measure(tab)[1]) + 2 * n <= chars


def _column(tab: Tabular, j: int) -> list[str]:
    return [r[j] if j < len(r) else "" for r in tab.rows]


def tidy(tab: Tabular) -> tuple[Tabular, list[str]]:
    """`tab` without what a reader need not read twice: empty columns and duplicates of an earlier column (same
    header and values, or same values under a header that repeats) dropped; a column with one value in every row
    of a long table said once, and a few long texts repeated over the rows said once each with the rows keyed
    (a), (b) (returned as caption notes). The first column (what a row is) always stays; two
    columns with the same values under different headers (the paper's and ours agreeing) both stay."""
    keep, notes, keyed = [], [], {}
    tab = Tabular(tab.align, tab.header, [list(r) for r in tab.rows])
    heads = [" ".join(h[j] for h in tab.header if j < len(h)) for j in range(len(tab.align))]
    for j in range(len(tab.align)):
        values = _column(tab, j)
        if j and tab.rows and all(_visible(v).strip() in EMPTY_CELLS for v in values):
            continue
        if j and any(_column(tab, k) == values and heads[k].strip() == heads[j].strip() for k in keep):
            continue
        if j and len(tab.rows) >= CONSTANT_MIN_ROWS and len(set(values)) == 1 and len(tab.align) > 2:
            notes.append(f"{heads[j].strip()}: {values[0]} (every row)")
            continue
        distinct = list(dict.fromkeys(values))
        if j and 1 < len(distinct) <= 3 and len(tab.rows) >= 2 * len(distinct) \
                and min(len(_visible(v)) for v in distinct) > LONG_REPEATED:
            keys = {v: f"({chr(ord('a') + i)})" for i, v in enumerate(distinct)}
            notes.append(f"{heads[j].strip()}: " + "; ".join(f"{k} {v}" for v, k in keys.items()))
            keyed[j] = [keys[v] for v in values]
        keep.append(j)
    for j, values in keyed.items():
        for r, v in zip(tab.rows, values):
            r[j] = v
    return _select(tab, keep), notes


def _select(tab: Tabular, cols: list[int]) -> Tabular:
    return Tabular("".join(tab.align[j] for j in cols), [[h[j] for j in cols] for h in tab.header],
                   [[r[j] if j < len(r) else "" for j in cols] for r in tab.rows])


def transpose(tab: Tabular) -> Tabular:
    """One row per column of `tab` and one column per row (headed by the row's first cell)."""
    head = [" ".join(h[j] for h in tab.header if j < len(h)).strip() for j in range(len(tab.align))]
    numeric = all(a == "r" for a in tab.align[1:])
    return Tabular("l" + ("r" if numeric else "l") * len(tab.rows), [[head[0], *[r[0] for r in tab.rows]]],
                   [[head[j], *_column(tab, j)] for j in range(1, len(tab.align))])


@dataclass(frozen=True)
class Layout:
    """How a table is set: `setting` (a key of SETTINGS, or RECORDS) and whether it is transposed."""

    setting: str
    transposed: bool


RECORDS = "portrait, one record per row"
HEAVY_TEXT, HEAVY_ROWS = 80, 10  # a column averaging this many characters, in a table of more rows: text-heavy


def text_heavy(tab: Tabular) -> bool:
    """Many rows with a column of long texts: a grid of narrow columns would stack them line by line."""
    return len(tab.rows) > HEAVY_ROWS and any(
        sum(len(_visible(c)) for c in _column(tab, j)) / len(tab.rows) > HEAVY_TEXT for j in range(len(tab.align)))


def _records(tab: Tabular, short: str, caption: str, label: str) -> str:
    """One paragraph per row (its first cell in bold, then `Header: value` for every non-empty cell), in a one-column
    longtable that keeps the caption, the number and the page breaks of a table."""
    heads = [" ".join(h[j] for h in tab.header if j < len(h)).strip() for j in range(len(tab.align))]
    first = rf"\caption[{short}]{{{caption}}}\label{{{label}}}\\" if label else rf"\caption*{{{caption}}}\\"
    rows = []
    for r in tab.rows:
        cells = "; ".join(f"\\emph{{{heads[j]}}}: {_cell_breaks(r[j])}" for j in range(1, len(tab.align))
                          if _visible(r[j]).strip() not in EMPTY_CELLS)
        rows.append(tex_unicode(rf"\textbf{{{r[0]}}}. {cells}") + r" \\[2pt]")
    return "\n".join([f"% layout: {RECORDS}", r"\begin{studysmall}{1}",
                      r"\begin{longtable}{>{\raggedright\arraybackslash}p{\studytw}}", first, r"\toprule",
                      r"\endfirsthead", rf"\tablename\ \thetable{{}} (continued)\\ \toprule", r"\endhead",
                      r"\bottomrule", r"\endlastfoot", *rows, r"\end{longtable}", r"\end{studysmall}"]) + "\n"


def layout(tab: Tabular) -> Layout:
    """The smallest honest setting for `tab` (already tidied): portrait in 8 or 7 pt, the same transposed (a few rows
    of many columns); one record per row (a long table of long texts, `RECORDS`: a grid of narrow columns would stack
    them line by line); portrait in 6 pt, whole or transposed; landscape; landscape transposed; and a table no
    landscape line holds, turned or not, one record per row (never parts of its columns: a reader would have to join
    them again)."""
    turned = transpose(tab) if len(tab.rows) < len(tab.align) - 1 else None

    def first_fit(settings: tuple[str, ...]) -> Layout | None:
        for candidate, transposed in ((tab, False), (turned, True)):
            for setting in settings if candidate is not None else ():
                if fits(candidate, setting):
                    return Layout(setting, transposed)
        return None

    return (first_fit(("portrait", "portrait, small type"))
            or (Layout(RECORDS, False) if text_heavy(tab) else None)
            or first_fit(("portrait, smallest type",)) or first_fit(("landscape",))
            or Layout(RECORDS, False))


def _one(tab: Tabular, short: str, caption: str, label: str, setting: str, placement: str = "tbp") -> str:
    n = len(tab.align)
    box, budget, _ = SETTINGS[setting]
    widths, words = _measure(tab)
    chars = [budget] * n  # characters across each column, for the height estimate
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
        chars = [max(1.0, w / total * (budget - 2 * n)) for w in shares]

    def cell(c: str) -> str:  # long names and addresses may break after `_` and `/`, long cells after punctuation
        c = _cell_breaks(c if r"\allowbreak" in c else c.replace(r"\_", r"\_\allowbreak{}"))
        return tex_unicode(c.replace("/", r"/\allowbreak{}") if "://" in c or len(c) > 30 else c)

    def row(cells: list[str]) -> str:
        return " & ".join(cell(c) for c in cells) + r" \\"

    def head_cell(c: str) -> str:  # a header may break after `/` wherever it is, as `_measure` assumes: (ms/image)
        c = cell(c)
        return c if r"/\allowbreak" in c else c.replace("/", r"/\allowbreak{}")

    head = "\n".join(" & ".join(head_cell(c) for c in h) + r" \\" for h in tab.header)
    lines = sum(max(math.ceil(len(_visible(c)) / w) for c, w in zip(r, chars)) for r in tab.rows + tab.header)
    if setting != "landscape" and lines <= FLOAT_LINES:  # fits a page: a float, placed with the figures
        caption_tex = rf"\caption[{short}]{{{caption}}}\label{{{label}}}" if label else rf"\caption*{{{caption}}}"
        return "\n".join([rf"% layout: {setting}", rf"\begin{{table}}[{placement}]", rf"\begin{{{box}}}{{{n}}}", caption_tex,
                          rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule",
                          "\n".join(row(r) for r in tab.rows), r"\bottomrule", r"\end{tabular}",
                          rf"\end{{{box}}}", r"\end{table}"]) + "\n"
    first = rf"\caption[{short}]{{{caption}}}\label{{{label}}}\\" if label else rf"\caption*{{{caption}}}\\"
    return "\n".join([
        rf"% layout: {setting}",
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


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith((".", "}")) else text + "."


def longtable(tab: Tabular, short: str, caption: str, label: str, provenance: str = "", placement: str = "tbp") -> str:
    """`tab` as a table in the smallest honest setting (`layout`: portrait in 8, 7 or 6 pt, transposed, one record per
    row, landscape), after `tidy` (empty and duplicate columns dropped, a value of every row said once in the
    caption); `provenance` ends the caption. A table that fits a portrait page is a float (at `placement`); a longer
    one a longtable (it breaks across pages and repeats its header)."""
    tab, notes = tidy(tab)
    how = layout(tab)
    said = [_sentence(n) for n in notes]  # already LaTeX (from the cells)
    if how.transposed:
        said.append("Transposed: one column per row of the data.")
    if how.setting == RECORDS:
        said.append("One paragraph per row.")
    caption = " ".join(x for x in (_sentence(caption), *said, provenance) if x)
    if how.setting == RECORDS:
        return _records(tab, short, caption, label)
    return _one(transpose(tab) if how.transposed else tab, short, caption, label, how.setting, placement)
