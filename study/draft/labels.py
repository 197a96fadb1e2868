"""Labels of the study's keys as the draft prints them, beside `study.columns` (the header map and rounding of every
CSV column): deployment formats (`FORMATS`, the `format` of data/deployment_scenarios.csv), Table IX / X column
keys inside text (`ix.delta_cpu` -> "Table IX ΔCPU"), and decision rules as prose (`rule_prose`:
`accuracy>0.62 > min:inference > max:accuracy` -> "accuracy above 0.62, then the least inference resources, then the
highest accuracy"). `present(df)` is `columns.present` with every text value and header put through `humanise`.
"""
from __future__ import annotations

import re

import pandas as pd

from study import columns
from study.deployment import scenarios

# The deployment formats as a reader names them: one home, beside the deployment table (study.deployment.scenarios).
FORMATS: dict[str, str] = scenarios.FORMAT_LABELS
# The decision's resource groups (study.decision.choice.GROUPS) as prose.
GROUP_WORDS = {"training": "training resources", "inference": "inference resources", "resources": "all resources"}


def _bare(header: str) -> str:
    """A header without its unit, for prose ("IX ΔCPU (%)" -> "Table IX ΔCPU")."""
    bare = re.sub(r"\s*\([^)]*\)$", "", header)
    return re.sub(r"^(IX|X) ", r"Table \1 ", bare)


RULE_ITEM = r"(?:(?:min|max):[a-z_.]+|[a-z_.]+(?:>=|<=|>|<)\d[\d.]*)"
RULE = re.compile(rf"{RULE_ITEM}(?: > {RULE_ITEM})+|(?<![\w.]){RULE_ITEM}(?![\w.])")


def _operand(name: str) -> str:
    if name in GROUP_WORDS:
        return GROUP_WORDS[name]
    bare = _bare(columns.describe(name)[0] if "." not in name else columns.header_of(name))
    return bare if bare.startswith(("Table ", "Δ")) or bare[:2].isupper() else bare[:1].lower() + bare[1:]


def rule_prose(rule: str) -> str:
    """A decision rule (`study.decision.choice` priority items joined by ` > `) as prose:
    `accuracy>0.62 > min:inference > max:accuracy` -> "accuracy above 0.62, then the least inference resources,
    then the highest accuracy"."""
    words = {">": "above", ">=": "at least", "<": "below", "<=": "at most"}
    out = []
    for item in str(rule).split(" > "):
        m = re.fullmatch(r"(min|max):([a-z_.]+)", item.strip())
        c = re.fullmatch(r"([a-z_.]+)(>=|<=|>|<)(\d[\d.]*)", item.strip())
        if m:
            out.append(f"the {'least' if m[1] == 'min' else 'highest'} {_operand(m[2])}")
        elif c:
            out.append(f"{_operand(c[1])} {words[c[2]]} {c[3]}")
        else:
            out.append(item.strip())
    return ", then ".join(out)


KEY_IN_TEXT = re.compile(r"(?<![\w.])(ix|x)\.([a-z][a-z_]*)(?![\w])")


LONG_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d{6,}(?![\w.])")  # a full float in text: four decimals, as printed
NOTEBOOK_REF = re.compile(r"(?<![\w:])(\d\d):([a-z][a-z0-9_]*)\b")  # a notebook's output as an input: 04:noise_model


def humanise(text: str) -> str:
    """A text value as a reader reads it: a value that is a format key is its label; inside text, decision rules
    become prose, `ix.` / `x.` column keys their headers and format keys with an underscore their labels."""
    text = str(text)
    if text in FORMATS:
        return FORMATS[text]
    text = RULE.sub(lambda m: rule_prose(m.group(0)) if re.search(r"[<>:]", m.group(0)) else m.group(0), text)
    text = LONG_DECIMAL.sub(lambda m: f"{float(m.group(0)):.4f}", text)
    text = NOTEBOOK_REF.sub(lambda m: f"notebook {m[1]}'s {m[2].replace('_', ' ')}", text)
    text = KEY_IN_TEXT.sub(lambda m: _bare(columns.header_of(m.group(0))), text)
    for key, label in FORMATS.items():
        if "_" in key and key in text:
            text = re.sub(rf"(?<![\w./]){re.escape(key)}(?![\w])", label, text)
    return text


def present(df: pd.DataFrame) -> pd.DataFrame:
    """`columns.present(df)` with format keys, column keys and decision rules in its text values and headers shown
    by their labels (`humanise`)."""
    shown = columns.present(df)
    text = [h for h, raw in zip(shown.columns, df.columns)
            if not (pd.api.types.is_numeric_dtype(df[raw]) and not pd.api.types.is_bool_dtype(df[raw]))]
    for h in text:
        shown[h] = [humanise(v) for v in shown[h]]
    return shown.rename(columns=lambda h: humanise(h) if h.strip() in FORMATS else h)
