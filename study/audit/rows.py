"""The row format of the audit and the helpers every section uses: one claim row (`_row`) with its verdict
(`VERDICTS`), the verdict helpers (`_yes_no`, `around`), the printed-number helpers (`_pct`, `_decimals`), and the
sentences of the paper (`TEXT`) that more than one section checks a claim against."""
from __future__ import annotations

import re
from dataclasses import dataclass

VERDICTS = ("yes", "conditional", "no", "not derivable")


@dataclass(frozen=True)
class TextFact:
    """A number stated in one sentence of the paper, used to check a claim made in another."""

    value: float
    quote: str


TEXT: dict[str, TextFact] = {
    "process_periods": TextFact(3, "The whole fine-tuning process has 3 periods"),
    "cool_down_samples": TextFact(6, "In cool down period, stats function will be run 6 times"),
    "gpu_vram_gb": TextFact(4, "Nvidia GeForce GTX 745 4GB VRAM"),
    "resnet_epoch_minutes": TextFact(25, "one training epoch on around 2600 images took 25 minutes"),
    "checkpoint_files": TextFact(4, "A typical checkpoint model contains 4 files"),
    "optional_checkpoint_files": TextFact(1, "checkpoint file is not necessary for loading a checkpoint"),
}


def _row(claim_id: str, section: str, statement: str, paper_value, derived_value, reproduced: str,
         note: str = "") -> dict:
    if reproduced not in VERDICTS:
        raise ValueError(f"verdict {reproduced!r} not in {VERDICTS}")
    return {"claim_id": claim_id, "section": section, "statement": statement, "paper_value": str(paper_value),
            "derived_value": "" if derived_value is None else str(derived_value), "reproduced": reproduced,
            "note": note}


def _yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def around(value: float, stated: float, precision: float) -> tuple[str, str]:
    """A claim "around `stated`", stated to the nearest `precision` (e.g. 2600 images: hundreds; half an hour:
    30 minutes): yes when `value` equals it, conditional when `value` rounds to it at that precision, else no;
    with the computed reason."""
    rounded = round(value / precision) * precision
    if value == stated:
        return "yes", f"{value:g} exactly"
    if rounded == stated:
        return "conditional", f"holds as 'around': {value:g} rounds to {rounded:g} at a precision of {precision:g}"
    return "no", f"{value:g} rounds to {rounded:g} at a precision of {precision:g}, not {stated:g}"


def _pct(x: float, decimals: int = 2) -> str:
    return f"{x:.{decimals}f}%"


def _decimals(text: str) -> int:
    m = re.search(r"\.(\d+)", text)
    return len(m.group(1)) if m else 0
