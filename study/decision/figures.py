"""The case study's decision figures (`study.decision.choice`): one function per figure."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from study import plots

HIGHLIGHT_MARKERS = ("o", "s", "D", "^", "v", "P")  # one per highlighted member, named in the legend


def accuracy_fronts(fronts: pd.DataFrame, *, highlight: Sequence[str] = (), source: str = "paper",
                    ncols: int | None = None):
    """One panel per resource: every member (grey), the Pareto front (coloured, stepped), each `highlight` member
    ringed with its own marker, named once in the figure's legend (labels at every point would not fit 8 panels).
    Panels share the accuracy axis; the figure grows by one panel height per row."""
    keys = list(dict.fromkeys(fronts["resource"]))
    ncols = min(ncols or (3 if len(keys) <= 6 else 4), len(keys))  # six resources: 3 x 2, eight: 4 x 2
    nrows = -(-len(keys) // ncols)
    fig, axes = plots.figure("full", height=0.7 + 1.75 * nrows, nrows=nrows, ncols=ncols, squeeze=False,
                             sharey=True, layout="constrained")
    color = plots.SOURCE_COLORS["paper" if source == "paper" else "reproduced"]
    marked = [m for m in dict.fromkeys(highlight) if m in set(fronts["model"])][:len(HIGHLIGHT_MARKERS)]
    markers = dict(zip(marked, HIGHLIGHT_MARKERS))
    for ax, key in zip(axes.flat, keys):
        part = fronts[fronts["resource"] == key]
        ax.scatter(part["value"], part["accuracy"], s=8, color="#d0d0d0")
        front = part[part["on_front"]].sort_values("value")
        ax.step(front["value"], front["accuracy"], where="post", color=color, lw=1)
        ax.scatter(front["value"], front["accuracy"], s=12, color=color, zorder=3)
        for _, row in part[part["model"].isin(markers)].iterrows():
            ax.scatter(row["value"], row["accuracy"], s=30, marker=markers[row["model"]], facecolors="none",
                       edgecolors="black", lw=0.8, zorder=4)
        first = part.iloc[0]
        ax.set_title(f"{first['phase']}:\n{first['what']}")
        ax.set_xlabel(first["unit"])
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"accuracy ({source})")
    handles = [Line2D([], [], ls="", marker="o", ms=4, color="#d0d0d0", label="member"),
               Line2D([], [], marker="o", ms=4, lw=1, color=color, label="Pareto front")]
    handles += [Line2D([], [], ls="", marker=markers[m], ms=5, mfc="none", mec="black",
                       label=m.removeprefix("mobilenet_")) for m in marked]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 5), frameon=False)
    return fig
