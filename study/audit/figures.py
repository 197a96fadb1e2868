"""The paper audit's figures (`study.audit.sections`): one function per figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from study import plots
from study.audit.rows import VERDICTS


def verdicts(summary_table: pd.DataFrame):
    """Stacked bars: claims per section of the paper, by verdict."""
    df = summary_table[summary_table["section"] != "all"].set_index("section")[list(VERDICTS)]
    fig, ax = plots.figure()
    colors = dict(zip(VERDICTS, ("#009e73", "#e69f00", "#d55e00", "#999999")))
    left = pd.Series(0, index=df.index)
    for verdict in VERDICTS:
        ax.barh(df.index, df[verdict], left=left, color=colors[verdict], label=verdict)
        left = left + df[verdict]
    ax.invert_yaxis()
    ax.set_xlabel("numeric claims of the paper")
    ax.set_ylabel("section")
    ax.legend(title="reproduced", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    return fig


def inferred_images(inferred: pd.DataFrame, *, per_panel: int = 20):
    """Images each member's accuracy implies were inferred, against the test split's total: the members sorted by
    that number, `per_panel` bars per panel side by side (one 7 pt label per bar), the panels sharing the x axis."""
    df = inferred.sort_values("inferred", kind="stable").reset_index(drop=True)
    panels = max(1, -(-len(df) // per_panel))
    rows = -(-len(df) // panels)
    fig, axes = plots.figure("full" if panels > 1 else "column", height=plots.rows_height(rows, extra=0.8),
                             ncols=panels, sharex=True, squeeze=False, layout="constrained")
    total = int(df["test_images"].iloc[0])
    for i, ax in enumerate(axes.flat):
        part = df.iloc[i * rows:(i + 1) * rows]
        colors = ["#d55e00" if not ok else plots.SOURCE_COLORS["paper"] for ok in part["all_test_images"]]
        ax.barh(range(len(part)), part["inferred"], color=colors)
        ax.set_yticks(range(len(part)), part["model"].str.removeprefix("mobilenet_"))
        ax.set_ylim(rows - 0.4, -0.6)  # the fewest images on top, every panel the same row height
        ax.axvline(total, color="black", lw=0.8, ls="--")
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    axes.flat[0].set_xlim(min(df["inferred"].min() - 20, total - 80), total + 5)
    fig.supxlabel(f"test images inferred (implied by accuracy; dashed: Table XI's {total})",
                  fontsize=plt.rcParams["axes.labelsize"])
    return fig
