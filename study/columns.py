"""How a column of our CSVs is shown to a reader: its header (with the unit) and its rounding, from one place.

The CSVs keep raw names and full values (machine-readable; a hash stays whole); every table a person reads (the
paper draft's floats, `Report.table`'s LaTeX) goes through `present`, so no raw column name such as `delta_cpu`
or `elapse_s` reaches the page and every column of one kind is rounded alike.

A column is matched by its exact name first (`NAMED`: the paper's resources, the fidelity and deployment metrics),
then by the form of its name (`SUFFIXES`: `_s` seconds, `_ms`, `_mb`, `_sha256` ...), else it is text, or a number
at the precision of its magnitude (`generic_kind`), its underscores made spaces. The draft also shows values that
are keys of the study by their labels (`study.draft.labels`: formats, decision rules).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

HASH_CHARS = 8  # a hash in a table a person reads: enough to tell two apart, short enough to fit


@dataclass(frozen=True)
class Kind:
    """How values of one kind are written: `decimals` for numbers (None: as they are), or a hash shortened."""

    decimals: int | None = None
    hash: bool = False
    percent_of_one: bool = False  # a share in [0, 1] shown as a percentage
    scientific: bool = False  # tiny differences: one decimal of a power of ten (3.0e-07)

    def format(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "--"
        if self.hash:
            text = str(value)
            text = text.split(":", 1)[1] if text.startswith("sha256:") else text
            return text[:HASH_CHARS] if re.fullmatch(r"[0-9a-f]{16,}", text) else text
        if isinstance(value, bool):
            return "yes" if value else "no"
        if self.decimals is not None and isinstance(value, (int, float)):
            v = 100 * value if self.percent_of_one else value
            if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and self.decimals == 0):
                return f"{int(v):,}"
            return f"{v:,.{self.decimals}f}"
        if self.scientific and isinstance(value, (int, float)):
            return "0" if value == 0 else f"{value:.1e}"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)


COUNT, SECONDS, MS, MB, PERCENT, SHARE, RATIO, HASH, TEXT = (
    Kind(0), Kind(1), Kind(1), Kind(1), Kind(1), Kind(1, percent_of_one=True), Kind(3), Kind(hash=True), Kind())
CORRELATION, DIFFERENCE = Kind(2), Kind(scientific=True)


def generic_kind(values) -> Kind:
    """The precision of a numeric column no name describes, from its magnitude (one rule for every such column):
    differences below 0.01 as powers of ten, values from 1,000 whole, from 10 one decimal, else three."""
    finite = [abs(float(v)) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not finite:
        return Kind(3)
    top, nonzero = max(finite), [v for v in finite if v]
    if nonzero and top < 0.01:
        return DIFFERENCE
    return Kind(0) if top >= 1000 else Kind(1) if top >= 10 else Kind(3)

# Exact names: (header, kind).
NAMED: dict[str, tuple[str, Kind]] = {
    "delta_cpu": ("ΔCPU (%)", PERCENT), "delta_mem": ("ΔMEM (%)", PERCENT),
    "delta_cpu_tree": ("ΔCPU, process tree (%)", PERCENT), "delta_mem_tree": ("ΔMEM, process tree (%)", PERCENT),
    "delta_cpu_std": ("ΔCPU s.d. (%)", PERCENT), "delta_mem_std": ("ΔMEM s.d. (%)", PERCENT),
    "cpu": ("CPU (%)", PERCENT), "memory": ("Memory (%)", PERCENT), "gpu": ("GPU (%)", PERCENT),
    "gpu_memory": ("GPU memory (%)", PERCENT), "cpu_tree": ("CPU, process tree (%)", PERCENT),
    "elapse": ("Elapsed (h:mm:ss)", TEXT), "elapse_s": ("Elapsed (s)", SECONDS),
    "accuracy": ("Accuracy", RATIO), "val_accuracy": ("Validation accuracy", RATIO),
    "accuracy_browser": ("Accuracy, browser", RATIO), "accuracy_python": ("Accuracy, Python", RATIO),
    "top1_agreement": ("Top-1 agreement", SHARE), "agreement": ("Top-1 agreement", SHARE),
    "rel_diff": ("Relative difference", DIFFERENCE), "max_abs_diff": ("Max. abs. difference", DIFFERENCE),
    "n_samples": ("Samples", COUNT), "n_images": ("Images", COUNT), "repeats": ("Repeats", COUNT),
    "members": ("Members", COUNT), "families": ("Families", COUNT), "model": ("Model", TEXT),
    "member": ("Member", TEXT), "asset": ("Asset", TEXT), "sha256": ("Content (sha256)", HASH), "assets_lock": ("Asset lock", HASH),
    "ok": ("OK", TEXT), "status": ("Status", TEXT), "verdict": ("Verdict", TEXT), "reason": ("Reason", TEXT),
    "error": ("Error", TEXT), "note": ("Note", TEXT), "notes": ("Notes", TEXT),
    "peak_rss_mb": ("Peak RSS (MB)", MB), "ms_per_image": ("Latency (ms/image)", MS),
    "interval_median_s": ("Sampling interval, median (s)", Kind(2)),
    "interval_max_s": ("Sampling interval, max. (s)", Kind(2)),
    "share_ge2_versions": ("Share with ≥ 2 versions (%)", SHARE),
    "claim_id": ("Claim", TEXT), "paper_value": ("Paper", TEXT), "derived_value": ("Derived", TEXT),
    "reproduced": ("Reproduced", TEXT), "noise_floor": ("Noise floor", DIFFERENCE),
    "tolerance": ("Tolerance", DIFFERENCE), "first_divergence": ("First divergence", TEXT),
    "spearman_rho": ("Spearman's ρ", CORRELATION), "rho": ("ρ", CORRELATION), "kendall_tau": ("Kendall's τ", CORRELATION),
    "pearson_r": ("Pearson's r", CORRELATION), "runs": ("Runs", COUNT),
    "cv": ("CV (%)", SHARE), "cv_lo": ("CV, 95 % low (%)", SHARE), "cv_hi": ("CV, 95 % high (%)", SHARE),
    "paper_ge2_versions": ("Paper: products with ≥ 2 versions", COUNT),
    "our_ge2_versions": ("Ours: products with ≥ 2 versions", COUNT),
    "ge2_versions_2024": ("2024: products with ≥ 2 versions", COUNT),
    "paper_share": ("Paper: share with ≥ 2 versions (%)", SHARE), "our_share": ("Ours: share with ≥ 2 versions (%)", SHARE),
    "noise_model": ("Noise model", TEXT), "input_size": ("Input size (pixels)", COUNT),
    "weights": ("Weights", TEXT), "format": ("Format", TEXT), "format_2026": ("Format (2026)", TEXT),
    "items": ("Priority order", TEXT), "rederived": ("From the paper's tables", TEXT),
    "rederived_verdict": ("Verdict on the paper's tables", TEXT), "measured": ("Measured by this run", TEXT),
    "measured_verdict": ("Verdict on this run", TEXT), "paper_claim": ("The paper's claim", TEXT),
    "claims_reproduced": ("Claims reproduced", TEXT),
}
# The form of a name: (suffix or prefix pattern, unit text, kind). First match wins.
SUFFIXES: list[tuple[str, str, Kind]] = [
    (r"(_sha256|_digest|^sha256)$", "sha256", HASH),
    (r"_ms_per_image$", "ms/image", MS), (r"_ms$", "ms", MS), (r"_s$", "s", SECONDS), (r"_mb$", "MB", MB), (r"_kb$", "kB", MB),
    (r"(_pct|_percent)$", "%", PERCENT), (r"(^|_)share($|_)", "%", SHARE),
    (r"(_accuracy|^accuracy_)", "", RATIO), (r"(^n_|_count$|^products|^assets$|_members$|_families$)", "", COUNT),
]
_UNIT_WORDS = re.compile(r"_(s|ms|ms_per_image|mb|kb|pct|percent|sha256|digest)$")


_ACRONYMS = {"api": "API", "onnx": "ONNX", "cpu": "CPU", "gpu": "GPU", "tf": "TF", "tfjs": "TF.js", "url": "URL",
             "id": "ID", "rss": "RSS", "int8": "int8", "litert": "LiteRT"}


def _words(name: str) -> str:
    """`api_changes` -> "API changes": underscores to spaces, acronyms in capitals, the first letter capitalised."""
    words = [_ACRONYMS.get(w.lower(), w) for w in name.replace("_", " ").split()]
    text = " ".join(words) or name
    return text[:1].upper() + text[1:]


def describe(name: str) -> tuple[str, Kind]:
    """(header, kind) of the column `name`; `ix.` / `x.` name a column of Table IX / X (the decision's view)."""
    if name in NAMED:
        return NAMED[name]
    table, _, rest = name.partition(".")
    if table in ("ix", "x") and rest:
        header, kind = describe(rest)
        return f"{table.upper()} {header}", kind
    for pattern, unit, kind in SUFFIXES:
        if re.search(pattern, name):
            header = _words(_UNIT_WORDS.sub("", name).strip("_ ") or name)
            return (f"{header} ({unit})" if unit else header), kind
    return _words(name), TEXT


# Columns whose values are themselves column names (a ranking per column, a decision per resource): shown as their
# headers too ("ix.delta_cpu" -> "IX ΔCPU (%)").
NAMES_COLUMNS = frozenset({"column", "resource", "metric", "key", "resources", "quantity"})


def header_of(value: str) -> str:
    """A column name (optionally prefixed by its table, `ix.` / `x.`) as a reader's header; other text unchanged."""
    table, _, name = str(value).rpartition(".")
    if table.lower() in ("ix", "x") and name:
        return f"{table.upper()} {header_of(name)}"
    if value in NAMED or re.search(r"_(s|ms|mb|pct|percent)$", str(value)):
        return describe(str(value))[0]
    return str(value)


def present(df: pd.DataFrame) -> pd.DataFrame:
    """`df` as a person reads it: human headers with units, every value a string rounded by its column's kind,
    hashes shortened to HASH_CHARS (the CSV keeps them whole)."""
    out = {}
    for col in df.columns:
        header, kind = describe(str(col))
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        if numeric and (kind is TEXT or kind.decimals is None and not kind.scientific):
            kind = COUNT if pd.api.types.is_integer_dtype(df[col]) else generic_kind(df[col])
        values = [kind.format(v.item() if hasattr(v, "item") else v) for v in df[col]]
        if str(col) in NAMES_COLUMNS:
            values = [", ".join(header_of(x.strip()) for x in v.split(",")) for v in values]

        while header in out:  # two raw names with one header: keep both columns
            header += " "
        out[header] = values
    return pd.DataFrame(out)
