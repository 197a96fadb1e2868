"""RQ1's figures of the measured deployment matrix (`study.deployment.matrix`): one function per figure."""
from __future__ import annotations

import pandas as pd

from study import plots
from study.deployment.scenarios import format_label

QUANTISED_COLOR = "#d55e00"


def size_vs_latency(measured: pd.DataFrame):
    """Size on disk against median latency of every format that ran (log-log), one colour per framework."""
    ran = measured[measured["ok"].astype(bool)]
    fig, ax = plots.figure("full", aspect=0.5, layout="constrained")
    plots.scatter(ran, x="size_mb", y="latency_ms", hue="framework",
                  xlabel="size on disk (MB)", ylabel="median latency, batch 1, 1 thread (ms)", ax=ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(0.15)  # room for the labels inside the axes
    plots.label_points(ax, ran["size_mb"], ran["latency_ms"], ran["format"].map(format_label))  # placed as drawn
    return fig


def fidelity_per_format(measured: pd.DataFrame):
    """Per format that ran: relative difference to the reference (log; the dashed lines are the tolerances of the
    one rule, K x each framework's noise floor relative to its output scale) and top-1 agreement; quantised formats
    in orange."""
    ran = measured[measured["ok"].astype(bool)]
    fid = ran.assign(rel_diff=ran["rel_diff"].clip(lower=1e-9)).sort_values(["framework", "rel_diff"])
    fig, (ax1, ax2) = plots.figure("full", height=plots.rows_height(len(fid), extra=0.9, pitch=0.22), ncols=2,
                                   sharey=True, layout="constrained")
    colors = fid["quantised"].astype(bool).map({True: QUANTISED_COLOR, False: plots.SOURCE_COLORS["reproduced"]})
    names = fid["format"].map(format_label)  # as a reader names them
    ax1.barh(names, fid["rel_diff"], color=colors)
    ax1.set_xscale("log")
    if "rel_tolerance" in fid:
        for tol in sorted(pd.to_numeric(fid["rel_tolerance"], errors="coerce").dropna().unique()):
            ax1.axvline(tol, color="black", lw=0.8, ls="--")
    ax1.set_xlabel("max |diff| / max |reference|")
    ax2.barh(names, fid["top1_agreement"] * 100, color=colors)
    ax2.set_xlabel("top-1 agreement (%)")
    return fig
