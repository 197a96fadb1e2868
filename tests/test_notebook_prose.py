"""Notebook prose states no finding by hand: a number, rank, comparison or duration in a markdown cell is generated
from the results (`report.number` / `report.text` in a code cell), never typed (issue 26).

The test strips what may carry digits without stating a finding of ours, each with its reason (ALLOWED), and fails
on any digit left in a markdown cell outside headings.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from study.runs.reproduce import notebooks

# (pattern, why it may hold digits)
ALLOWED: list[tuple[str, str]] = [
    (r"`[^`]*`", "code: names of functions, files, parameters and commands"),
    (r"\[[^\]]*\]\([^)]*\)", "a link: its target and text name a file or section"),
    (r"\"[^\"]*\"|“[^”]*”", "a quotation of the paper, verbatim (the audit checks its numbers)"),
    (r"\$[^$]*\$", "a formula"),
    (r"\b(?:RQ|TF|V|Step|Formula|Table|Section|notebook|Python|Keras|TensorFlow|top|Top)[- ]?\d+(?:\.\d+)?(?:/\d+)*\b",
     "a name with a number: RQ1, TF2, TensorFlow 1, MobileNet V1/V2, Formula 1, Step 3, notebook 04, top-1"),
    (r"\b(?:int|float|uint)\d+\b|\b\d+-bit\b", "a data type"),
    (r"\b[IVX]+-[A-Z](?:\.\d+)?\b", "a section of the paper (VII-G.1)"),
    (r"\b(?:19|20)\d\d(?:-\d\d(?:-\d\d|/\d\d)?|/\d\d(?:/\d\d)?)?\b",
     "a date: the paper's (its data are from 2019-11/12: a month range); snapshot dates come from SNAPSHOTS"),
    (r"\bCIFAR-10\b|\bES\d+\b|\bResNet-?\d+\b|\bWord2Vec\b|\bEfficientNet-Lite\d\b|\bmobilenet_\w+", "a model or data set name"),
    (r"\b\d+(?:\.\d+)? ?(?:px|pixels)\b", "an input size, a property of the asset, not a finding"),
]
STRIP = re.compile("|".join(f"(?:{p})" for p, _ in ALLOWED))


def stray_digits(notebook: str | Path) -> list[tuple[int, str, str]]:
    """(cell index, line, what is left) for every markdown line with a digit outside the allowed forms."""
    found = []
    for i, cell in enumerate(json.loads(Path(notebook).read_text())["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith("#"):
                continue
            rest = STRIP.sub(" ", line)
            if re.search(r"\d", rest):
                found.append((i, line, rest))
    return found


@pytest.mark.parametrize("nb", notebooks(), ids=[nb.stem for nb in notebooks()])
def test_no_number_is_typed_into_notebook_prose(nb):
    stray = stray_digits(nb)
    assert not stray, (f"{nb.name}: numbers typed into markdown (generate them with report.number / report.text in a "
                       "code cell, or add an allowed form with its reason):\n" +
                       "\n".join(f"  cell {i}: {line.strip()[:160]}" for i, line, _ in stray))


def test_the_allow_list_lets_nothing_else_through():
    assert not re.search(r"\d", STRIP.sub(" ", 'RQ1, TF2, MobileNet V1/V2, Formula 1, `sweep(n=3)`, "62 %", VII-G.1'))
    assert not re.search(r"\d", STRIP.sub(" ", "data from 2019-11/12, TensorFlow 1, in 2019"))
    for finding in ("MobileNet V1 (32 members)", "86 %", "the sweep's 4 best members", "about ±0.05", "2–39 s",
                    "about 10 minutes", "six of 364", "n = 364", "TensorFlow has 5 groups", "2019-11 to 12 %",
                    "batch size 32", "0.5 s", "1e-4", "59–85 % of 8 CPUs"):
        assert re.search(r"\d", STRIP.sub(" ", finding)) or "six" in finding, finding
