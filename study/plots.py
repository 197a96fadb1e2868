"""One figure style for the whole paper draft: readable at column width, vector PDF plus PNG."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: papermill, CI
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from study import page  # noqa: E402

COLUMN_WIDTH_IN = 3.5  # one column of a two-column IEEE paper
FULL_WIDTH_IN = page.TEXT_WIDTH_IN  # the paper draft's text width: printed at 100 %
PALETTE = "colorblind"
# The paper's value and ours, always in these colours.
SOURCE_COLORS = {"paper": "#7f7f7f", "reproduced": "#0072b2"}


def use_style() -> None:
    """Apply the study's style (idempotent); every figure helper calls it."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE)
    plt.rcParams.update(
        {
            "figure.figsize": (COLUMN_WIDTH_IN, COLUMN_WIDTH_IN * 0.75),
            "figure.dpi": 150,
            "savefig.dpi": 300,
            "savefig.bbox": "tight",
            "font.size": 8,
            "axes.titlesize": 8,
            "axes.labelsize": 8,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "legend.fontsize": 7,
            "legend.title_fontsize": 7,
            "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF
            "ps.fonttype": 42,
        }
    )


def figure(width: str | float = "column", aspect: float = 0.75, **kwargs):
    """A new (fig, ax) in the study style; width 'column', 'full' or inches."""
    use_style()
    w = {"column": COLUMN_WIDTH_IN, "full": FULL_WIDTH_IN}.get(width, width)
    return plt.subplots(figsize=(float(w), float(w) * aspect), **kwargs)


# --- Figures of the paper's own tables (the "paper" side every notebook starts from) -------------

def family_sizes(families, *, ax=None):
    """Members per family (Tables I-III), one bar per family row, coloured by zoo."""
    df = families.copy()
    data = df["training_data"].where(df["training_data"].str.len() <= 28, df["training_data"].str.slice(0, 27) + "…")
    df["label"] = df["algorithm"] + " / " + data
    df = df.sort_values(["zoo", "members"], ascending=[False, True]).reset_index(drop=True)
    if ax is None:
        _, ax = figure("full", aspect=0.9)
    colors = dict(zip(sorted(df["zoo"].unique()), sns.color_palette(PALETTE)))
    ax.barh(range(len(df)), df["members"], color=[colors[z] for z in df["zoo"]])
    ax.set_yticks(range(len(df)), df["label"])  # positions, not categories: labels may repeat
    ax.set_xlabel("members per family (paper)")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=5)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, list(colors), loc="lower right")
    return ax.figure


def grouped_bars(df, x: str, y: str, hue: str, *, xlabel: str | None = None, ylabel: str | None = None,
                 ax=None, rotate: int = 30):
    """Bars of `y` per `x`, side by side per `hue` (e.g. paper vs reproduced)."""
    if ax is None:
        _, ax = figure()
    df = df.reset_index(drop=True)  # seaborn refuses duplicate index labels (e.g. paper rows + ours)
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax,
                palette=SOURCE_COLORS if set(df[hue]) <= set(SOURCE_COLORS) else PALETTE)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or y)
    ax.tick_params(axis="x", rotation=rotate)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return ax.figure


def scatter(df, x: str, y: str, *, hue: str | None = None, label: str | None = None,
            highlight: list[str] | None = None, xlabel: str | None = None, ylabel: str | None = None, ax=None):
    """A scatter of `y` against `x`; rows whose `label` is in `highlight` are annotated."""
    if ax is None:
        _, ax = figure()
    df = df.reset_index(drop=True)
    sns.scatterplot(data=df, x=x, y=y, hue=hue, ax=ax, s=18)
    for _, row in df[df[label].isin(highlight or [])].iterrows() if label else []:
        ax.annotate(row[label], (row[x], row[y]), xytext=(3, 3), textcoords="offset points", fontsize=6)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    return ax.figure


# --- Checks of a finished figure (Report.figure records them; tests/test_notebooks.py fails on them) -------------
# The paper draft places every figure at its own size, shrunk to fit the text width and a height cap
# (study.draft.figure_tex, study.page).


def saved_size(fig) -> tuple[float, float]:
    """(width, height) in inches of `fig` as saved (`savefig.bbox = tight`)."""
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    return float(box.width), float(box.height)


def printed_scale(fig) -> float:
    """How much the draft scales `fig` to place it (never up)."""
    w, h = saved_size(fig)
    return min(1.0, page.TEXT_WIDTH_IN / w, page.FIGURE_MAX_HEIGHT_IN / h)


def _texts(fig) -> list:
    """Every visible, non-empty text of `fig` that is drawn (tick labels, labels, titles, annotations, legends)."""
    found = []
    for t in fig.findobj(matplotlib.text.Text):
        if t.get_visible() and t.get_text().strip() and t.figure is fig and (t.axes is None or t.get_in_layout()):
            found.append(t)
    return found


def _corners(text, renderer):
    """The four corners (display units) of `text` as drawn, rotation included: matplotlib rotates a text about the
    centre of its box, then aligns the rotated box, so the centre is that of the axis-aligned extent."""
    import numpy as np

    box = text.get_window_extent(renderer)
    angle = text.get_rotation() % 180
    if angle in (0, 90):
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    w, h, t = flat.width / 2, flat.height / 2, np.radians(rotation)
    centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
    axes = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    return centre + np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) @ axes


def _overlap(a, b, hair: float) -> bool:
    """Do two convex quadrilaterals intersect by more than `hair` along every separating axis? (SAT)"""
    import numpy as np

    for poly in (a, b):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]]) / (np.hypot(*edge) or 1.0)
            pa, pb = a @ normal, b @ normal
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= hair:
                return False
    return True


def text_problems(fig) -> dict:
    """Overlapping texts and the smallest font at the printed size: {"overlaps": ["'a' / 'b'", ...],
    "smallest_printed_pt": x, "too_small": ["'label' 5.2 pt", ...], "size_in": [w, h]}. Two texts overlap when
    their drawn (rotated) boxes intersect by more than a hair (0.5 pt)."""
    scale = printed_scale(fig)
    renderer = fig.canvas.get_renderer()
    texts = _texts(fig)
    boxes = []
    for t in texts:
        try:
            boxes.append((t, _corners(t, renderer)))
        except (RuntimeError, ValueError):
            continue
    hair = 0.5 * fig.dpi / 72
    overlaps = [f"{a.get_text()!r} / {b.get_text()!r}"
                for i, (a, ca) in enumerate(boxes) for b, cb in boxes[i + 1:] if _overlap(ca, cb, hair)]
    sizes = [(t.get_fontsize() * scale, t.get_text()) for t in texts]
    too_small = [f"{text!r} {pt:.1f} pt" for pt, text in sizes if pt < page.MIN_PRINTED_PT - 0.05]
    return {"overlaps": overlaps, "smallest_printed_pt": round(float(min((pt for pt, _ in sizes), default=0.0)), 2),
            "too_small": too_small, "size_in": [round(v, 3) for v in saved_size(fig)]}
