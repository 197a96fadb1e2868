"""One figure style for the whole paper draft: readable at column width, vector PDF plus PNG."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: papermill, CI
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

COLUMN_WIDTH_IN = 3.5  # one column of a two-column IEEE paper
FULL_WIDTH_IN = 7.16
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
