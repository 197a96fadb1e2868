"""The figure checks every notebook figure goes through (study.plots.text_problems, recorded by Report.figure)."""
from __future__ import annotations

import pandas as pd

from study import page, plots


def test_two_labels_on_one_point_overlap():
    fig, ax = plots.figure()
    ax.scatter([1, 1.0001, 2], [1, 1.0, 2])
    ax.annotate("tfjs_graph_model_node", (1, 1))
    ax.annotate("tfjs_graph_model_browser", (1.0001, 1.0))
    assert plots.text_problems(fig)["overlaps"] == ["'tfjs_graph_model_node' / 'tfjs_graph_model_browser'"]


def test_rotated_texts_are_compared_as_drawn_not_by_their_upright_boxes():
    tasks = ["Image Augmentation", "Image Classification", "Image Feature Vector", "Image Generator"]
    fig = plots.grouped_bars(pd.DataFrame({"task": tasks, "n": range(4), "source": "paper"}), x="task", y="n",
                             hue="source")
    assert plots.text_problems(fig)["overlaps"] == []  # their axis-aligned boxes intersect, the texts do not
    fig, ax = plots.figure()
    ax.text(0.5, 0.5, "rotated label here", rotation=45, transform=ax.transAxes)
    ax.text(0.55, 0.55, "another one", rotation=45, transform=ax.transAxes)
    assert plots.text_problems(fig)["overlaps"] == ["'rotated label here' / 'another one'"]


def test_fonts_are_judged_at_the_printed_size():
    fig, ax = plots.figure("full", aspect=0.4)
    ax.plot([1, 2], [1, 2])
    ax.set_xlabel("x")
    problems = plots.text_problems(fig)
    assert problems["too_small"] == [] and problems["smallest_printed_pt"] >= page.MIN_PRINTED_PT
    ax.text(0.5, 0.5, "tiny", fontsize=5, transform=ax.transAxes)
    assert plots.text_problems(fig)["too_small"] == ["'tiny' 5.0 pt"]
    fig, ax = plots.figure(page.TEXT_WIDTH_IN * 2, aspect=0.3)  # drawn twice as wide: printed at half size
    ax.set_xlabel("x")
    assert any(t.startswith("'x' ") for t in plots.text_problems(fig)["too_small"])
