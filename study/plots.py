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


def figure(width: str | float = "column", aspect: float = 0.75, *, height: float | None = None, **kwargs):
    """A new (fig, ax) in the study style; width 'column', 'full' or inches; `height` (inches) overrides `aspect`.
    Further keywords go to `plt.subplots` (nrows, ncols, sharey, layout="constrained", ...)."""
    use_style()
    w = float({"column": COLUMN_WIDTH_IN, "full": FULL_WIDTH_IN}.get(width, width))
    return plt.subplots(figsize=(w, float(height) if height is not None else w * aspect), **kwargs)


ROW_PITCH_IN = 0.14  # one 7 pt tick label per row with a gap: bar charts grow by this much per bar


def rows_height(rows: int, *, extra: float = 0.75, pitch: float = ROW_PITCH_IN) -> float:
    """The height (inches) of a panel with `rows` labelled rows (bars) plus `extra` for its title and x axis, capped
    at the height the draft places a figure at (page.FIGURE_MAX_HEIGHT_IN)."""
    return min(page.FIGURE_MAX_HEIGHT_IN, extra + pitch * max(int(rows), 1))


def label_points(ax, xs, ys, labels, *, avoid=None, attempts: int = 4, **text_kwargs) -> list:
    """Label points without collisions: adjustText moves each label off its point and the other labels (a fixed
    number of iterations: the same figure every run) and draws a leader line back to the point. Labels that start
    on top of each other (points at one spot) start staggered, further apart on each of `attempts` until no two
    labels overlap. `avoid`: (xs, ys) of every point drawn, which the labels keep off too (default: the labelled
    ones). Call after the axes' scales and limits are set. Returns the texts."""
    import numpy as np
    from adjustText import adjust_text

    xs, ys, labels = list(xs), list(ys), [str(v) for v in labels]
    kw = {"fontsize": plt.rcParams["legend.fontsize"]} | text_kwargs
    texts = [ax.text(x, y, label, **kw) for x, y, label in zip(xs, ys, labels)]
    if not texts:
        return texts
    others = (list(avoid[0]), list(avoid[1])) if avoid is not None else (xs, ys)
    fig = ax.figure
    points = ax.transData.transform(np.column_stack([xs, ys]).astype(float))
    step = kw["fontsize"] * fig.dpi / 72  # one line of text, in pixels
    box = ax.get_window_extent()
    right = [(px - box.x0) > 0.6 * box.width for px, _ in points]  # labels of points on the right go left of them
    for text, r in zip(texts, right):
        text.set_horizontalalignment("right" if r else "left")
    for attempt in range(attempts):
        for i, (text, (px, py), r) in enumerate(zip(texts, points, right)):  # stagger: above, below, further above
            dy = (attempt + 1) * step * (0.4, -1.4, 1.6)[i % 3]
            text.set_position(ax.transData.inverted().transform((px + (-0.4 if r else 0.4) * step, py + dy)))
        _, arrows = adjust_text(texts, x=others[0], y=others[1], target_x=xs, target_y=ys, ax=ax, iter_lim=400,
                                expand=(1.2, 1.5), ensure_inside_axes=True,
                                arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.5})
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        corners = [_corners(t, renderer) for t in texts]
        hair = 0.5 * fig.dpi / 72
        if not any(_overlap(a, b, hair) for i, a in enumerate(corners) for b in corners[i + 1:]):
            break
        if attempt < attempts - 1:
            for arrow in arrows:
                arrow.remove()
    return texts


# --- Figures of the paper's own tables (the "paper" side every notebook starts from) -------------

def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def family_sizes(families):
    """Members per family (Tables I-III): one panel per zoo, one bar per family row, the largest on top. The
    figure grows with the longest zoo's rows (7 pt labels need ROW_PITCH_IN each)."""
    import re

    df = families.copy()
    algorithm = df["algorithm"].map(lambda a: re.sub(r"\s*\(by [^)]*\)", "", a))  # "(by HuggingFace)": the zoo's
    df["label"] = [_shorten(f"{_shorten(a, 20)} / {d}", 34) for a, d in zip(algorithm, df["training_data"])]
    zoos = sorted(df["zoo"].unique())
    rows = int(df.groupby("zoo").size().max())
    fig, axes = figure("full", height=rows_height(rows, extra=0.6, pitch=0.128), ncols=len(zoos), squeeze=False,
                       layout="constrained")
    colors = dict(zip(zoos, sns.color_palette(PALETTE)))
    for ax, zoo in zip(axes.flat, zoos):
        part = df[df["zoo"] == zoo].sort_values("members", kind="stable").reset_index(drop=True)
        ax.barh(range(len(part)), part["members"], color=colors[zoo])
        ax.set_yticks(range(len(part)), part["label"])  # positions, not categories: labels may repeat
        ax.set_ylim(-0.6, len(part) - 0.4)
        ax.margins(y=0)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4, integer=True))
        ax.set_title(f"{zoo} ({len(part)} rows)", loc="right")  # right: over the bars, inside the figure
    fig.supxlabel("members per family (paper Tables I-III)", fontsize=plt.rcParams["axes.labelsize"])
    return fig


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
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if label:  # after the scales are set: adjustText places the labels in display space
        marked = df[df[label].isin(highlight or [])]
        label_points(ax, marked[x], marked[y], marked[label], avoid=(df[x], df[y]))
    return ax.figure


# --- Checks of a finished figure (Report.figure records them; tests/test_notebooks.py fails on them) -------------
# The paper draft places every figure at its own size, shrunk to fit the text width and a height cap
# (study.draft.document.figure_tex, study.page).


def saved_box(fig):
    """savefig's padded tight box (inches) from `fig`'s last draw: as `bbox_inches`, a format saves with one draw."""
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])


def printed_scale(width_in: float, height_in: float) -> float:
    """How much the draft scales a figure saved at this size to place it (never up)."""
    return min(1.0, page.TEXT_WIDTH_IN / width_in, page.FIGURE_MAX_HEIGHT_IN / height_in)


def _texts(fig) -> list:
    """Every visible, non-empty text of `fig` that a draw draws (tick labels, labels, titles, annotations, legends).
    Recorded while drawing: an axis keeps Text objects of ticks outside its view (and of earlier draws) that are
    never drawn, so the figure's Text objects alone would report overlaps nobody sees."""
    drawn: dict[int, matplotlib.text.Text] = {}
    plain = matplotlib.text.Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn[id(self)] = self
        return plain(self, renderer)

    matplotlib.text.Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = plain
    return [t for t in drawn.values() if t.figure is fig or t.get_figure(root=True) is fig]


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

    if (a.max(axis=0) < b.min(axis=0)).any() or (b.max(axis=0) < a.min(axis=0)).any():  # extents apart: a gap
        return False
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
    their drawn (rotated) boxes intersect by more than a hair (0.5 pt). One draw, which `saved_box` reads too."""
    texts = _texts(fig)  # draws
    renderer = fig.canvas.get_renderer()
    size = [float(v) for v in fig.get_tightbbox(renderer).size]
    boxes = []
    for t in texts:
        try:
            boxes.append((t, _corners(t, renderer)))
        except (RuntimeError, ValueError):
            continue
    hair, scale = 0.5 * fig.dpi / 72, printed_scale(*size)
    overlaps = [f"{a.get_text()!r} / {b.get_text()!r}"
                for i, (a, ca) in enumerate(boxes) for b, cb in boxes[i + 1:] if _overlap(ca, cb, hair)]
    sizes = [(t.get_fontsize() * scale, t.get_text()) for t in texts]
    too_small = [f"{text!r} {pt:.1f} pt" for pt, text in sizes if pt < page.MIN_PRINTED_PT - 0.05]
    return {"overlaps": overlaps, "smallest_printed_pt": round(float(min((pt for pt, _ in sizes), default=0.0)), 2),
            "too_small": too_small, "size_in": [round(v, 3) for v in size]}
