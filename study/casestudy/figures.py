"""The case study's decision figures (`study.casestudy.decision`): one function per figure."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from study import plots


def accuracy_fronts(fronts: pd.DataFrame, *, highlight: Sequence[str] = (), source: str = "paper"):
    """One panel per resource: every member (grey), the Pareto front (coloured, stepped), `highlight` annotated."""
    keys = list(dict.fromkeys(fronts["resource"]))
    ncols = min(4, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plots.figure("full", aspect=0.24 * nrows + 0.06, nrows=nrows, ncols=ncols, squeeze=False)
    color = plots.SOURCE_COLORS["paper" if source == "paper" else "reproduced"]
    for ax, key in zip(axes.flat, keys):
        part = fronts[fronts["resource"] == key]
        ax.scatter(part["value"], part["accuracy"], s=8, color="#d0d0d0", label="member")
        front = part[part["on_front"]].sort_values("value")
        ax.step(front["value"], front["accuracy"], where="post", color=color, lw=1)
        ax.scatter(front["value"], front["accuracy"], s=12, color=color, label="Pareto front", zorder=3)
        for _, row in part[part["model"].isin(highlight)].iterrows():
            ax.scatter(row["value"], row["accuracy"], s=22, facecolors="none", edgecolors="black", lw=0.8, zorder=4)
            below = list(highlight).index(row["model"]) % 2  # alternate above/below: neighbours stay legible
            ax.annotate(row["model"].removeprefix("mobilenet_"), (row["value"], row["accuracy"]),
                        xytext=(2, -7 if below else 2), textcoords="offset points", fontsize=5)
        first = part.iloc[0]
        ax.set_title(f"{first['phase']}: {first['what']}", fontsize=7)
        ax.set_xlabel(first["unit"], fontsize=6)
        ax.tick_params(labelsize=5)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"accuracy ({source})", fontsize=6)
    axes.flat[0].legend(fontsize=5, loc="lower right")
    fig.tight_layout()
    return fig
