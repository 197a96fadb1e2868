"""The paper audit's figures (`study.audit`): one function per figure."""
from __future__ import annotations

import pandas as pd

from study import plots
from study.audit import VERDICTS


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


def inferred_images(inferred: pd.DataFrame):
    """Images each member's accuracy implies were inferred, against the test split's total."""
    df = inferred.sort_values("inferred")
    fig, ax = plots.figure(aspect=1.1)
    colors = ["#d55e00" if not ok else plots.SOURCE_COLORS["paper"] for ok in df["all_test_images"]]
    ax.barh(df["model"].str.removeprefix("mobilenet_"), df["inferred"], color=colors)
    total = int(df["test_images"].iloc[0])
    ax.axvline(total, color="black", lw=0.8, ls="--")
    ax.set_xlim(min(df["inferred"].min() - 20, total - 80), total + 5)
    ax.set_xlabel(f"test images inferred (implied by accuracy; Table XI: {total})")
    ax.tick_params(axis="y", labelsize=4)
    return fig
