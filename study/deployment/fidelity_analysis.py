"""Reading the per-member fidelity table (notebook 09): members x formats heatmaps, what predicts a fidelity loss,
and whether requiring a faithful deployment changes the member the decision picks.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from study import columns, config
from study.assets import zoo
from study.casestudy.browser import models_root
from study.decision import choice
from study.deployment import deploy_criterion, fidelity, scenarios
from study.errors import StudyError

def formats_for_profile(profile: config.Profile, formats: Sequence[str] | None = None) -> list[str] | None:
    """`formats` when given, else the profile's (`profile.fidelity_formats`: smoke's few); none: every format
    (None)."""
    if formats:
        return list(formats)
    chosen = profile.fidelity_formats
    return list(chosen) if chosen else None


def member_properties(names: Sequence[str]) -> pd.DataFrame:
    """Architecture (MobileNet V1 / V2, EfficientNet-Lite), width multiplier and input resolution per member,
    from the zoo (`study.assets.zoo`); a name outside the zoo keeps only a trailing resolution (`..._48`)."""

    rows = []
    for name in dict.fromkeys(names):
        try:
            m = zoo.get_member(name)
            rows.append({"member": name, "architecture": m.architecture, "width": m.width, "resolution": m.input_size})
        except Exception:  # noqa: BLE001 - a stand-in (tiny_classifiers) is not a zoo member
            size = re.search(r"_(\d+)$", name)
            rows.append({"member": name, "architecture": "not in the zoo", "width": np.nan,
                         "resolution": int(size.group(1)) if size else np.nan})
    return pd.DataFrame(rows, columns=["member", "architecture", "width", "resolution"])


def with_gains(df: pd.DataFrame) -> pd.DataFrame:
    """The fidelity rows with size gain (original size / size) and speed-up (the member's baseline p50 latency /
    this p50) and the member's properties."""
    base = df[df["format"].isin(fidelity.BASELINE.values())].set_index("member")["latency_p50_ms"]
    out = df.assign(size_gain=df["original_size_mb"] / df["size_mb"],
                    speedup=df["member"].map(base) / df["latency_p50_ms"])
    return out.merge(member_properties(df["member"]), on="member", how="left")


def matrix(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """Members x formats of one column (formats in measuring order)."""
    order = list(dict.fromkeys(df["format"]))
    return df.pivot_table(index="member", columns="format", values=value, aggfunc="last", sort=False)[order]


def heatmap(df: pd.DataFrame, value: str, *, title: str, fmt: str = ".2f", cmap: str = "viridis", center=None):
    """A members x formats heatmap of `value` (annotated cells; a missing cell is a format that did not run)."""
    import seaborn as sns

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    m = matrix(df, value).astype(float)
    m.columns = [scenarios.format_label(c) for c in m.columns]  # formats as a reader names them
    # a row per member at the 7 pt pitch, the rotated format names below (a tall heatmap would print smaller)
    fig, ax = plots.figure("full", height=plots.rows_height(len(m), extra=1.6))
    sns.heatmap(m, annot=True, fmt=fmt, cmap=cmap, center=center, cbar_kws={"label": columns.describe(value)[0]},
                ax=ax, annot_kws={"fontsize": plots.plt.rcParams["font.size"] - 1})
    ax.set_title(title)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def loss_by_property(df: pd.DataFrame) -> pd.DataFrame:
    """Which member properties go with a fidelity loss: per property value, the share of faithful rows, the mean
    top-1 agreement and the median relative output difference (quantised formats are where losses show)."""
    rows = with_gains(df)
    parts = []
    for prop in ("architecture", "width", "resolution"):
        g = rows.dropna(subset=[prop]).groupby(["format", prop], sort=True)
        part = g.agg(members=("member", "nunique"), faithful_share=("faithful", "mean"),
                     mean_agreement=("top1_agreement", "mean"), median_rel_diff=("rel_diff", "median")).reset_index()
        parts.append(part.rename(columns={prop: "value"}).assign(property=prop, value=lambda d: d["value"].astype(str)))
    out = pd.concat(parts, ignore_index=True)
    return out[["property", "value", "format", "members", "faithful_share", "mean_agreement", "median_rel_diff"]]


def rank_correlations(df: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of the relative output difference with width and resolution, per format (members
    with the property; NaN when fewer than 3 members or no spread)."""
    rows = with_gains(df)
    out = []
    for fmt, g in rows.groupby("format", sort=False):
        for prop in ("width", "resolution"):
            sub = g.dropna(subset=[prop, "rel_diff"])
            enough = len(sub) >= 3 and sub[prop].nunique() > 1 and sub["rel_diff"].nunique() > 1
            rho = sub[prop].rank().corr(sub["rel_diff"].rank()) if enough else np.nan
            out.append({"format": fmt, "property": prop, "members": len(sub), "spearman_rho": rho})
    return pd.DataFrame(out)


def sweep_tables(sweep: str | Path):
    """The decision's tables for a sweep: its table_ix.csv (+ table_x.csv when beside it), else an accuracy-only
    Table IX from each member's meta.json (no resource measured: the decision then ranks by accuracy only)."""
    sweep = Path(sweep)
    ix, x = sweep / "table_ix.csv", sweep / "table_x.csv"
    if ix.is_file():
        return choice.CaseStudyTables.from_files(ix, x if x.is_file() else None)
    metas = [json.loads(p.read_text()) for p in sorted(models_root(sweep).glob("*/meta.json"))]
    table = pd.DataFrame({"model": [m["member"] for m in metas], "delta_cpu": np.nan, "delta_mem": np.nan,
                          "elapse": np.nan, "accuracy": [m.get("test_accuracy") for m in metas]})
    table.attrs["source"] = f"{sweep}/models/*/meta.json (test accuracy only)"
    return choice.CaseStudyTables(choice.load_table(table, "IX"), label="ours (meta.json)")


def decision_changes(tables, fidelity_df: pd.DataFrame, formats: Sequence[str], *,
                     priority: Sequence[str] = ("max:accuracy",), min_agreement: float = 1.0,
                     fixed: bool = False) -> pd.DataFrame:
    """The member `priority` picks without and with the criterion "faithful in FORMAT", per format (`fixed`:
    faithful at the paper-comparable fixed gate instead of the one rule, `study.deployment.faithful`)."""
    plain = choice.select(tables, priority).model
    rows = [{"criterion": "none", "deployable": len(tables.models), "selected": plain, "changed": False, "note": ""}]
    for fmt in formats:
        criterion = deploy_criterion.DeployCriterion(fmt, min_agreement, fixed)
        try:
            narrowed, info = deploy_criterion.restrict(tables, fidelity_df, criterion)
            chosen = choice.select(narrowed, priority).model
            row = info.set_index("model").loc[chosen]
            rows.append({"criterion": criterion.text, "deployable": len(narrowed.models), "selected": chosen,
                         "changed": chosen != plain,
                         "note": f"{row['deploy_size_mb']:.3g} MB, p50 {row['deploy_latency_ms']:.3g} ms in {fmt}"})
        except StudyError as exc:  # no member is deployable in this format: that is the finding
            rows.append({"criterion": criterion.text, "deployable": 0, "selected": "", "changed": True,
                         "note": str(exc)[:200]})
    return pd.DataFrame(rows)


# --- where conversions break (study.deployment.localise) -----------------------------------------------------------

def verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """Per format: rows faithful under the one rule and at the paper-comparable fixed gate, the median noise floor
    and tolerance, and how many rows were localised."""
    g = df.assign(is_faithful=df["status"].eq("faithful"), is_faithful_fixed=df["status_fixed"].eq("faithful"),
                  localised=pd.to_numeric(df["localise_s"], errors="coerce").notna()).groupby("format", sort=False)
    return g.agg(members=("member", "nunique"), faithful=("is_faithful", "sum"),
                 faithful_fixed=("is_faithful_fixed", "sum"), median_noise_floor=("noise_floor", "median"),
                 median_tolerance=("tolerance", "median"), localised=("localised", "sum")).reset_index()


def first_divergence_ops(df: pd.DataFrame) -> pd.DataFrame:
    """Which op types conversions first diverge at: per format and across members (format "all"), with the rows,
    members and failure classes of each."""
    hit = df[df["first_divergence"].fillna("").astype(str).ne("")]
    hit = hit.assign(op_type=hit["first_divergence"].astype(str).str.split(" ", n=1).str[0])
    columns = ["format", "op_type", "rows", "members", "failure_classes"]
    if hit.empty:
        return pd.DataFrame(columns=columns)

    def agg(g: pd.DataFrame) -> pd.Series:
        return pd.Series({"rows": len(g), "members": g["member"].nunique(),
                          "failure_classes": ", ".join(sorted(set(g["failure_class"].astype(str))))})

    per = hit.groupby(["format", "op_type"], sort=True).apply(agg, include_groups=False).reset_index()
    across = hit.groupby("op_type", sort=True).apply(agg, include_groups=False).reset_index().assign(format="all")
    return pd.concat([per, across], ignore_index=True)[columns]


def worst_localised(df: pd.DataFrame, n: int = 4) -> pd.DataFrame:
    """The `n` localised rows with the largest relative output difference."""
    done = df[pd.to_numeric(df["localise_s"], errors="coerce").notna()]
    return done.sort_values("rel_diff", ascending=False).head(n)


def divergence_figure(curves: pd.DataFrame, rows: pd.DataFrame, *, title: str):
    """Per-layer divergence (max |conv - ref| / max |ref| per matched op, log scale) of `rows` (localised rows),
    with each layer's tolerance dashed and the first divergent layer marked."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    fig, ax = plots.figure("full", aspect=0.5)
    import seaborn as sns

    for (_, row), colour in zip(rows.iterrows(), sns.color_palette(plots.PALETTE, max(len(rows), 1))):
        c = curves[(curves["member"] == row["member"]) & (curves["format"] == row["format"])]
        if c.empty:
            continue
        pos = np.arange(len(c))
        line, = ax.plot(pos, c["divergence"].clip(lower=1e-12), marker=".", color=colour,
                        label=f"{row['member']} / {scenarios.format_label(row['format'])}")
        ax.plot(pos, c["tolerance"], ls="--", lw=0.7, color=line.get_color())
        above = np.flatnonzero(c["above"].to_numpy(bool))
        if len(above):
            ax.plot(pos[above[0]], c["divergence"].iloc[above[0]], marker="o", ms=7, mfc="none",
                    color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("matched layer (converted model's op order)")
    ax.set_ylabel("max |conv - ref| / max |ref|")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    return fig
