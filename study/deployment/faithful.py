"""The one rule for "faithful" (#36 item 4): does a converted model, a deployed format or an asset's new version
compute the same function as its reference on the same inputs? RQ1's matrix (`study.deployment.matrix`), the
per-member fidelity sweep (`study.deployment.fidelity`) and the version diff (`study.releases.version_diff`) all
judge with `judge` here, and no other module types a tolerance (`tests/test_architecture.py`).

**The verdict.** `out` is faithful to `ref` when

    max |out - ref| <= tolerance = K x max(noise floor, FLOAT32_EPS x max |ref|)

and, for class scores, every input keeps the reference's top-1 class. The **noise floor** is the reference's own
largest output difference against itself under perturbations that do not change the model: intra-op threads (1 vs 2),
batch size (1 vs many) and a reload (`study.deployment.localise.floor_tf` / `floor_torch`, through each backend's
`noise_floor`; the version diff measures version A's the same way, `version_diff.output_floor`). The second term
guards a floor of exactly 0 (a fully deterministic reference) with one float32 rounding step at the output's
magnitude. K is chosen from data (`benchmarks/bench_noise_floor.py`, docs/deployment-fidelity.md).

**Beside it, never the verdict:** the paper-comparable fixed gate, `np.allclose(out, ref, rtol=FIXED_RTOL,
atol=FIXED_ATOL)` (the ONNX Model Zoo's gate on reference outputs) with the same top-1 requirement, recorded as a
second field (`status_fixed` / `faithful_fixed` / `changed_fixed`). Only where the reference's floor could not be
measured is the fixed gate the verdict, and the record says so (`tolerance_source`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

K = 10  # tolerance = K x noise floor; see docs/deployment-fidelity.md (chosen from benchmarks/bench_noise_floor.py)
FLOAT32_EPS = float(np.finfo(np.float32).eps)
FIXED_RTOL = FIXED_ATOL = 1e-3  # the paper-comparable gate (ONNX Model Zoo), reported beside the verdict
CALIBRATED = "noise floor"  # `tolerance_source` of a verdict at K x the measured floor


@dataclass(frozen=True)
class NoiseFloor:
    """The reference's own output noise: `value` = max |perturbed - base| over the perturbations (`parts`)."""

    value: float
    scale: float  # max |ref output|
    parts: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def minimum(self) -> float:
        return FLOAT32_EPS * self.scale

    @property
    def tolerance(self) -> float:
        return K * max(self.value, self.minimum)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def noise_floor(base: np.ndarray, perturbed: dict[str, np.ndarray], diffs: dict[str, float] | None = None
                ) -> NoiseFloor:
    """The floor of a reference whose plain run gave `base` and each perturbation (name -> outputs) `perturbed`;
    `diffs`: perturbations measured as a difference already (e.g. two runs that each differ from `base`'s path)."""
    parts = {k: max_abs_diff(v, base) for k, v in perturbed.items()} | dict(diffs or {})
    return NoiseFloor(max(parts.values(), default=0.0), float(np.max(np.abs(base))) if np.size(base) else 0.0, parts)


def layer_tolerance(relative_floor: float) -> float:
    """The tolerance of one intermediate tensor's relative divergence (max |conv - ref| / max |ref|): the same rule
    on a relative floor."""
    return K * max(relative_floor, FLOAT32_EPS)


@dataclass(frozen=True)
class Judgement:
    """One comparison under the rule: the verdict (`faithful`) and the fixed gate's beside it (`faithful_fixed`)."""

    faithful: bool
    faithful_fixed: bool
    max_abs_diff: float
    rel_diff: float  # max |out - ref| / max |ref|
    top1_agreement: float  # NaN where the outputs are not class scores
    tolerance: float  # absolute; NaN when the floor was not measured (then the fixed gate is the verdict)
    noise_floor: float  # NaN when not measured
    source: str  # `CALIBRATED`, or why the fixed gate judges
    scale: float = 1.0  # max |ref|

    @property
    def rel_tolerance(self) -> float:
        """The tolerance relative to the output scale (comparable with `rel_diff`)."""
        return self.tolerance / (self.scale or 1.0)

    def fields(self) -> dict[str, object]:
        """The record's columns: `faithful`, `faithful_fixed`, `noise_floor`, `tolerance`, `tolerance_source`."""
        return {"faithful": self.faithful, "faithful_fixed": self.faithful_fixed, "noise_floor": self.noise_floor,
                "tolerance": self.tolerance, "tolerance_source": self.source}

    def reason(self) -> str:
        """Why the verdict is what it is, in one clause (for a row's error text)."""
        if self.source == CALIBRATED:
            where = (f"{'within' if self.max_abs_diff <= self.tolerance else 'beyond'} the tolerance "
                     f"{self.tolerance:.3g} = {K} x the reference's noise floor")
        else:
            where = (f"{'within' if self.faithful_fixed or self.max_abs_diff <= FIXED_ATOL else 'beyond'} "
                     f"rtol=atol={FIXED_RTOL:g}; {self.source}")
        agree = "" if self.top1_agreement != self.top1_agreement else f", top-1 agreement {self.top1_agreement:.1%}"
        return f"max |diff| {self.max_abs_diff:.3g} ({where}){agree}"


def fixed_gate(reference: np.ndarray, outputs: np.ndarray) -> bool:
    """The paper-comparable gate on the values alone: `np.allclose` at FIXED_RTOL / FIXED_ATOL."""
    return bool(np.allclose(np.asarray(outputs, np.float64), np.asarray(reference, np.float64),
                            rtol=FIXED_RTOL, atol=FIXED_ATOL))


def judge(reference: np.ndarray, outputs: np.ndarray, floor: NoiseFloor | str | None, *,
          classes: bool = True) -> Judgement:
    """Judge `outputs` against the `reference` (same inputs, same shape) at the reference's `floor`; a `floor` that
    is text (why it was not measured) or None falls back to the fixed gate as the verdict. `classes`: the outputs are
    per-class scores, so every input must also keep its top-1 class."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    diff = float(np.max(np.abs(out - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    agree = float(np.mean(ref.argmax(1) == out.argmax(1))) if classes and len(ref) else math.nan
    top1 = not classes or agree == 1.0
    fixed = fixed_gate(ref, out) and top1
    if isinstance(floor, NoiseFloor):
        tol, value, source = floor.tolerance, floor.value, CALIBRATED
        verdict = diff <= tol and top1
    else:
        tol, value = math.nan, math.nan
        source = f"fixed gate: {floor or 'noise floor not measured'}"
        verdict = fixed
    return Judgement(verdict, fixed, diff, diff / (scale or 1.0), agree, tol, value, source, scale)


def within(max_abs: float, top1_agreement: float, tolerance: float) -> bool:
    """The verdict from recorded numbers (a row's `max_abs_diff`, `top1_agreement`, `tolerance`)."""
    return bool(max_abs <= tolerance and (top1_agreement != top1_agreement or top1_agreement == 1.0))


def describe() -> str:
    """The rule in words, numbers generated from the constants above (notebooks and the draft print it)."""
    return (f"faithful when max |out - ref| <= {K} x max(the reference's noise floor, float32 epsilon x max |ref|) "
            f"and every input keeps the reference's top-1 class; the noise floor is the reference's largest output "
            f"difference against itself across intra-op threads, batch size and a reload. Beside it, for comparison "
            f"with published results, the fixed gate np.allclose(out, ref, rtol={FIXED_RTOL:g}, atol={FIXED_ATOL:g})")
