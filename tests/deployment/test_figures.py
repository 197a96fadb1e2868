"""study.deployment.figures: RQ1's figures drawn from a measured matrix (only rows that ran)."""
from __future__ import annotations

import pandas as pd

from study.deployment import figures


def _measured() -> pd.DataFrame:
    return pd.DataFrame({
        "framework": ["tensorflow", "tensorflow", "pytorch", "pytorch"],
        "format": ["saved_model", "litert_full_int8", "onnx", "torchscript_script"],
        "ok": [True, True, True, False], "quantised": [False, True, False, False],
        "size_mb": [14.0, 4.0, 18.0, None], "latency_ms": [5.0, 3.0, 4.0, None],
        "rel_diff": [0.0, 0.02, 1e-7, None], "top1_agreement": [1.0, 0.9, 1.0, None],
        "rel_tolerance": [2e-6, 2e-6, 1e-6, None]})


def test_size_vs_latency_is_log_log_over_the_rows_that_ran():
    ax = figures.size_vs_latency(_measured()).axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3  # the failed row has nothing to plot
    assert {t.get_text() for t in ax.texts} == {"SavedModel", "LiteRT full int8", "ONNX"}  # a reader's names


def test_fidelity_marks_the_tolerance_and_the_quantised_formats():
    ax1, ax2 = figures.fidelity_per_format(_measured()).axes
    assert [t.get_text() for t in ax1.get_yticklabels()] == ["ONNX", "SavedModel", "LiteRT full int8"]
    assert [line.get_xdata()[0] for line in ax1.lines] == [1e-6, 2e-6]  # each framework's tolerance
    assert [round(b.get_width()) for b in ax2.patches] == [100, 100, 90]
    colors = {b.get_facecolor()[:3] for b in ax2.patches}
    assert len(colors) == 2  # quantised formats stand out


def test_the_fidelity_heatmap_names_formats_as_a_reader_does():
    from study.deployment import fidelity_analysis

    df = pd.DataFrame({"member": ["a", "a", "b", "b"], "format": ["saved_model", "litert_full_int8"] * 2,
                       "top1_agreement": [1.0, 0.9, 1.0, 0.8]})
    ax = fidelity_analysis.heatmap(df, "top1_agreement", title="t").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["SavedModel", "LiteRT full int8"]
