"""RQ3 (asset versions, version notes) and the catalog side of RQ1 (deployment variants), from TF Hub catalogs.

- `derive_version_statistics`: Table VI generalised: per product type / input / task, how many assets (products)
  and how many of them have two or more versions.
- `classify_note`: every changelog note in one of the paper's categories (Section VI-B, Table VIII) or
  `other`; `note_table` generalises Table VIII to all assets.
- `format_transitions`: per asset, its first format and the first version released as a TF2 SavedModel.
- `variant_coverage`: share of assets with TF.js / Lite / Coral deployment variants (RQ1), per task or family.
- `compare_*`: our tables row by row beside the paper's (`data/paper/`), with a verdict and reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from study import paper
from study.report import and_list
from study.zoos.catalog import Catalog, slug, snapshot_dates

# --- Table VI: products per type / input / task -------------------------------------------------

# task slug -> the paper's (type, input, DL task) wording of Table VI; other tasks are named by their slug
PAPER_TASKS = {
    "image-augmentation": ("CV", "Image", "Augmentation"),
    "image-classification": ("CV", "Image", "Classification"),
    "image-feature-vector": ("CV", "Image", "Feature Vector"),
    "image-generator": ("CV", "Image", "Generator"),
    "image-rnn-agent": ("CV", "Image", "Generator"),
    "image-style-transfer": ("CV", "Image", "Generator"),
    "image-object-detection": ("CV", "Image", "Object Detection"),
    "image-others": ("CV", "Image", "Others"),
    "video-classification": ("CV", "Video", "Classification"),
    "video-generation": ("CV", "Video", "Generator"),
    "text-embedding": ("NLP", "Text", "Text Embedding"),
}
INPUT_TYPES = {"image": ("CV", "Image"), "video": ("CV", "Video"), "text": ("NLP", "Text"), "audio": ("Audio", "Audio")}


def task_group(task: str) -> tuple[str, str, str]:
    """(type, input, DL task) of a task slug, in Table VI's wording where the paper has a row."""
    first = task.split(";")[0]
    if first in PAPER_TASKS:
        return PAPER_TASKS[first]
    kind, _, rest = first.partition("-")
    typ, inp = INPUT_TYPES.get(kind, ("Other", kind.title() or "Unknown"))
    return typ, inp, rest.replace("-", " ").title() if rest else (first or "(no task)")


def products(cat: Catalog, kinds: tuple[str, ...] = ("module",)) -> pd.DataFrame:
    """One row per TF Hub asset (handle) with a page of one of `kinds`: task group, versions.

    Placeholder pages (assets hosted elsewhere, e.g. Lite-only models) are left out by default: TF Hub
    serves no model for them, and they did not exist in the paper's AIHub data.
    """
    v = cat["versions"]
    v = v[v["page_kind"].isin(kinds)].sort_values(["handle", "version"])
    g = v.groupby("handle", sort=True)
    df = pd.DataFrame({
        "handle": list(g.groups),
        "task": g["task"].last().fillna("").values,
        "versions": g["version"].nunique().values,
        "latest_version": g["version"].max().values,
    })
    df[["type", "input", "dl_task"]] = pd.DataFrame([task_group(t) for t in df["task"]], index=df.index)
    return df


def derive_version_statistics(cat: Catalog) -> pd.DataFrame:
    """Table VI generalised: products and products with >= 2 versions per type / input / task."""
    p = products(cat)
    t = (p.assign(ge2=p["versions"] >= 2)
         .groupby(["type", "input", "dl_task"], sort=True)
         .agg(products=("handle", "size"), products_ge2_versions=("ge2", "sum"), versions=("versions", "sum"))
         .reset_index())
    t["share_ge2_versions"] = t["products_ge2_versions"] / t["products"]
    return t


def compare_version_statistics(ours: pd.DataFrame, snapshot: str) -> pd.DataFrame:
    """Paper Table VI row by row beside ours (same type / input / task)."""
    rows = []
    for r in paper.version_statistics().itertuples():
        hit = ours[(ours["type"] == r.type) & (ours["input"] == r.input) & (ours["dl_task"] == r.task)]
        n = int(hit["products"].sum()) if len(hit) else 0
        k = int(hit["products_ge2_versions"].sum()) if len(hit) else 0
        if not len(hit):
            verdict, reason = "missing", f"no asset with this task in the {snapshot} snapshot"
        elif n == r.products and k == r.products_ge2_versions:
            verdict, reason = "match", "same counts"
        else:
            verdict = "mismatch"
            parts = []
            if n > r.products:
                parts.append(f"snapshot {snapshot} is later than the paper's data (2019-11/12): {n - r.products:+d} products")
            elif n < r.products:
                parts.append(f"{n - r.products:+d} products: assets removed or re-tagged since the paper's data")
            share, pshare = k / n if n else 0, r.share_ge2_versions
            parts.append(f"share with >= 2 versions {share:.0%} vs {pshare:.0%}")
            reason = "; ".join(parts)
        rows.append({"type": r.type, "input": r.input, "task": r.task, "paper_products": r.products,
                     "our_products": n, "paper_ge2_versions": r.products_ge2_versions, "our_ge2_versions": k,
                     "paper_share": round(r.share_ge2_versions, 4), "our_share": round(k / n, 4) if n else None,
                     "verdict": verdict, "reason": reason})
    return pd.DataFrame(rows)


# --- version notes (Table VIII) ---------------------------------------------------------------------

NOTE_CATEGORIES: list[tuple[str, re.Pattern]] = [
    ("initial_release", re.compile(r"^initial release|^first release", re.I)),
    ("tf2_saved_model", re.compile(r"savedmodel format of tensorflow 2|tf2 savedmodel|saved ?model v2|"
                                   r"switched to .*tensorflow 2|retrained using tf2", re.I)),
    ("variable_input_size", re.compile(r"variable input size|dynamic (batch|input) size", re.I)),
    ("batch_norm_momentum", re.compile(r"batch norm(alization)? momentum", re.I)),
    ("quantization_boundary", re.compile(r"quantization boundar", re.I)),
    ("update_ops", re.compile(r"update[_ ]ops", re.I)),
    ("serving_signature", re.compile(r"serving_default|signaturedef|serving signature", re.I)),
    ("requirement_only", re.compile(r"^requires? (pip package|tensorflow|tf)|tensorflow-hub\s*>=", re.I)),
]
NOTE_LABELS = {
    "initial_release": "initial release", "tf2_saved_model": "switch to TF2 SavedModel",
    "variable_input_size": "variable input size", "batch_norm_momentum": "batch-norm momentum configurable",
    "quantization_boundary": "quantisation-boundary fix", "update_ops": "UPDATE_OPS fix",
    "serving_signature": "serving signature added", "requirement_only": "requirement only", "other": "other",
}


def classify_note(note: str) -> str:
    """The paper's category of a version note, or 'other'."""
    for name, pattern in NOTE_CATEGORIES:
        if pattern.search(note.strip()):
            return name
    return "other"


def classified_notes(cat: Catalog) -> pd.DataFrame:
    """Every changelog note with its category and its asset's task / architecture / dataset."""
    c = cat["changelog"].copy()
    c["category"] = [classify_note(n) for n in c["note"]]
    v = cat["versions"].sort_values("version").groupby("handle").last()[["task", "architecture", "dataset"]]
    return c.join(v, on="handle")


def note_table(notes: pd.DataFrame) -> pd.DataFrame:
    """Table VIII generalised: per category, notes and assets (and the versions they appear in)."""
    t = (notes.groupby("category")
         .agg(notes=("note", "size"), assets=("handle", "nunique"),
              versions=("version", lambda s: ",".join(f"V{v}" for v in sorted(set(s)))))
         .reset_index())
    t["label"] = t["category"].map(NOTE_LABELS)
    order = list(NOTE_LABELS)
    return t.sort_values("category", key=lambda s: s.map(order.index)).reset_index(drop=True)


def compare_version_notes(notes: pd.DataFrame, family_members: pd.DataFrame) -> pd.DataFrame:
    """Paper Table VIII row by row: do the members of that family carry that note at that version?

    `family_members` is `study.zoos.families.Families.members` for the same catalog (paper rules).
    """
    m = family_members
    rows = []
    for r in paper.version_notes().itertuples():
        algo = slug(r.algorithm)
        fam = m[(m["algorithm"] == algo) & m["task"].isin(["image-classification", "image-feature-vector"])
                & m["training_data"].str.startswith("imagenet")]
        if "dim_quantised" in fam:
            fam = fam[(fam["dim_quantised"] == "yes") == bool(r.quantized)]
        handles = set(fam["handle"])
        got = notes[notes["handle"].isin(handles) & (notes["category"] == r.note_category)]
        at_version = got[got["version"] == int(r.version)]
        n = len(handles)
        if not n:
            verdict, reason = "missing", "no such family members under our grouping"
        elif len(at_version["handle"].unique()) == n:
            verdict, reason = "match", f"all {n} members note it at V{r.version}"
        elif len(at_version):
            verdict = "partial"
            others = sorted(set(got["version"]) - {int(r.version)})
            reason = (f"{at_version['handle'].nunique()} of {n} members note it at V{r.version}"
                      + (f"; others at V{','.join(map(str, others))}" if others else "")
                      + "; members added later start at a later version")
        elif len(got):
            verdict = "mismatch"
            reason = f"noted at V{','.join(map(str, sorted(set(got['version']))))} instead"
        else:
            verdict, reason = "mismatch", "no member's changelog has this note"
        rows.append({"note_category": r.note_category, "algorithm": r.algorithm, "quantized": bool(r.quantized),
                     "training_data": r.training_data, "paper_version": f"V{r.version}",
                     "family_members": n, "members_with_note_at_version": int(at_version["handle"].nunique()),
                     "versions_seen": ",".join(f"V{v}" for v in sorted(set(got["version"]))) or "-",
                     "verdict": verdict, "reason": reason})
    return pd.DataFrame(rows)


# --- format transitions ---------------------------------------------------------------------------

def format_transitions(cat: Catalog) -> pd.DataFrame:
    """Per asset: first version's format, the first version released as a TF2 SavedModel (if any)."""
    v = cat["versions"][cat["versions"]["page_kind"] == "module"].sort_values(["handle", "version"])
    rows = []
    for handle, g in v.groupby("handle", sort=True):
        tf2 = g[g["format"].str.contains("saved-model-2", na=False)]
        first_fmt = g["format"].iloc[0]
        rows.append({"handle": handle, "task": g["task"].iloc[-1], "versions": len(g),
                     "first_format": first_fmt, "latest_format": g["format"].iloc[-1],
                     "first_tf2_version": int(tf2["version"].iloc[0]) if len(tf2) else None,
                     "transition": ("born TF2" if first_fmt == "saved-model-2" else
                                    "hub.Module -> TF2" if len(tf2) else
                                    "hub.Module only" if first_fmt == "hub-module" else first_fmt or "unknown")})
    df = pd.DataFrame(rows)
    if len(df):
        df["first_tf2_version"] = df["first_tf2_version"].astype("Int64")
    return df


# --- RQ1 from the catalog: deployment variants -----------------------------------------------------

VARIANTS = ("tfjs", "lite", "coral")


def asset_variants(cat: Catalog) -> pd.DataFrame:
    """One row per asset (handle) with booleans: has a TF.js / Lite / Coral variant (of any version)."""
    p = products(cat)[["handle", "task", "type", "input", "dl_task"]]
    d = cat["variants"]
    for kind in VARIANTS:
        p[kind] = p["handle"].isin(set(d.loc[d["variant"] == kind, "handle"]))
    p["any_variant"] = p[list(VARIANTS)].any(axis=1)
    return p


def variant_coverage(cat: Catalog, by: str | list[str] = "task", assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of assets with each deployment variant, per `by` (a column of `asset_variants` or a family key)."""
    a = asset_variants(cat) if assets is None else assets
    by = [by] if isinstance(by, str) else list(by)
    t = a.groupby(by, sort=True).agg(assets=("handle", "size"), **{k: (k, "mean") for k in (*VARIANTS, "any_variant")})
    return t.reset_index()


def family_variant_coverage(cat: Catalog, family_members: pd.DataFrame) -> pd.DataFrame:
    """Deployment-variant coverage per family (members are handles)."""
    a = asset_variants(cat).set_index("handle")
    m = family_members[["family", "task", "algorithm", "training_data", "handle"]].join(
        a[[*VARIANTS, "any_variant"]], on="handle")
    return (m.groupby(["task", "algorithm", "training_data"], sort=True)
            .agg(members=("handle", "size"), **{k: (k, "mean") for k in (*VARIANTS, "any_variant")})
            .reset_index())


# --- 2020 vs 2024 --------------------------------------------------------------------------------

@dataclass
class Growth:
    summary: pd.DataFrame  # one row per snapshot: assets, versions, variants, notes, TF2 share ...
    per_task: pd.DataFrame  # products per task group and snapshot


def growth(cats: dict[str, Catalog]) -> Growth:
    """The same statistics for several snapshots (label -> catalog), side by side."""
    rows, tasks = [], []
    for label, cat in cats.items():
        p = products(cat)
        ft = format_transitions(cat)
        av = asset_variants(cat)
        rows.append({"snapshot": label, "assets": len(p), "asset_versions": len(cat["versions"]),
                     "share_ge2_versions": (p["versions"] >= 2).mean(),
                     "version_notes": len(cat["changelog"]),
                     "born_tf2": (ft["transition"] == "born TF2").mean() if len(ft) else 0.0,
                     "migrated_to_tf2": (ft["transition"] == "hub.Module -> TF2").mean() if len(ft) else 0.0,
                     "hub_module_only": (ft["transition"] == "hub.Module only").mean() if len(ft) else 0.0,
                     **{f"with_{k}": av[k].mean() for k in (*VARIANTS, "any_variant")}})
        t = derive_version_statistics(cat).assign(snapshot=label)
        tasks.append(t)
    return Growth(pd.DataFrame(rows), pd.concat(tasks, ignore_index=True))


def share_per_task(paper_vs_2020: pd.DataFrame, later: pd.DataFrame,
                   labels: tuple[str, str] | None = None) -> pd.DataFrame:
    """Share of products with >= 2 versions per Table VI task (source, task, percent): the paper's, then ours
    from two `compare_version_statistics` tables (the paper's snapshot and a later one; `labels` default to the
    oldest and latest TF Hub snapshots of `catalog.SNAPSHOTS`)."""
    if labels is None:
        dates = snapshot_dates("tfhub")
        labels = (f"TF Hub {dates[0]}", f"TF Hub {dates[-1]}")
    share = pd.concat([
        paper_vs_2020.assign(source="paper", percent=100 * paper_vs_2020["paper_share"]),
        paper_vs_2020.assign(source=labels[0], percent=100 * paper_vs_2020["our_share"]),
        later.assign(source=labels[1], percent=100 * later["our_share"]),
    ])
    share["task"] = [t if t.startswith(i) else f"{i} {t}" for i, t in zip(share["input"], share["task"])]
    return share[["source", "task", "percent"]]


def transitions_by_snapshot(cats: dict[str, Catalog]) -> pd.DataFrame:
    """`format_transitions` of every snapshot (label -> catalog), with a snapshot column."""
    return pd.concat([format_transitions(c).assign(snapshot=d) for d, c in cats.items()])


def transition_counts(transitions: pd.DataFrame) -> pd.DataFrame:
    """Assets per snapshot and format history (first format -> TF2), one column per history."""
    return transitions.groupby(["snapshot", "transition"]).size().unstack(fill_value=0).reset_index()


def first_tf2_version_counts(transitions: pd.DataFrame) -> pd.DataFrame:
    """Migrated assets per snapshot and the version number at which they became TF2 SavedModels."""
    migrated = transitions.dropna(subset=["first_tf2_version"])
    return migrated.groupby(["snapshot", "first_tf2_version"]).size().unstack(fill_value=0).reset_index()


def variant_coverage_by_snapshot(cats: dict[str, Catalog], by=("type", "input", "dl_task")) -> pd.DataFrame:
    """`variant_coverage` of every snapshot (label -> catalog), with a snapshot column."""
    return pd.concat([variant_coverage(c, by=list(by)).assign(snapshot=d) for d, c in cats.items()])


def variant_shares(summary: pd.DataFrame) -> pd.DataFrame:
    """`Growth.summary` in long form: one row per (snapshot, variant) with the share of assets offering it."""
    long = summary.melt(id_vars="snapshot", value_vars=[f"with_{k}" for k in VARIANTS], var_name="variant",
                        value_name="share")
    return long.assign(variant=long["variant"].str.removeprefix("with_"))


# --- readings: notebook 03's generated sentences and the draft's numbers ------------------------------------

def _task_label(row) -> str:
    return row.task if str(row.task).startswith(row.input) else f"{row.input} {row.task}"


def _change(before: float, after: float) -> str:
    return ("rises" if after > before else "falls" if after < before else "stays") + f" from {before:.0%} to {after:.0%}"


def paper_share_reading(table_vi: pd.DataFrame) -> str:
    """One sentence on the paper's Table VI (`paper.version_statistics`): the share of products with two or more
    versions per task, the tasks with most products first."""
    rows = table_vi.sort_values("products", ascending=False, kind="stable")
    parts = [f"{_task_label(r)} {r.share_ge2_versions:.0%} of {r.products}" for r in rows.itertuples()]
    return "Products with two or more versions in the paper's Table VI, the tasks with most products first: " + \
        and_list(parts) + "."


def reading(table_vi: pd.DataFrame, table_viii: pd.DataFrame, summary: pd.DataFrame) -> str:
    """What the comparison with the paper found (`compare_version_statistics` of the oldest snapshot,
    `compare_version_notes`) and how TF Hub changed from its oldest to its latest snapshot (`Growth.summary`)."""
    n8, k8 = len(table_viii), int((table_viii["verdict"] == "match").sum())
    if k8 == n8:
        text = f"Table VIII reproduces exactly: all {n8} family rows the paper lists carry its note at the paper's version."
    else:
        off = table_viii[table_viii["verdict"] != "match"]
        text = (f"{k8} of the {n8} Table VIII rows carry the paper's note at the paper's version; not "
                + and_list(f"{r.algorithm} ({r.note_category}: {r.reason})" for r in off.itertuples()) + ".")
    match = table_vi[table_vi["verdict"] == "match"]
    grew = table_vi[(table_vi["verdict"] != "match") & (table_vi["our_products"] > table_vi["paper_products"])]
    other = table_vi[(table_vi["verdict"] != "match") & (table_vi["our_products"] <= table_vi["paper_products"])]
    vi = [f"{len(match)} of the {len(table_vi)} Table VI rows match"
          + (f" ({and_list(_task_label(r) for r in match.itertuples())})" if len(match) else "")]
    if len(grew):
        vi.append(f"{len(grew)} grew between the paper's data and the oldest snapshot "
                  f"({and_list(_task_label(r) for r in grew.itertuples())})")
    if len(other):
        vi.append(f"{len(other)} {'differs' if len(other) == 1 else 'differ'} otherwise ({and_list(f'{_task_label(r)}: {r.reason}' for r in other.itertuples())})")
    first, last = summary.iloc[0], summary.iloc[-1]
    added = int(last["assets"]) - int(first["assets"])
    born = round(last["born_tf2"] * last["assets"]) - round(first["born_tf2"] * first["assets"])
    change = (f"From {first['snapshot']} to {last['snapshot']} the share of assets with two or more versions "
              f"{_change(first['share_ge2_versions'], last['share_ge2_versions'])}")
    if added > 0:
        change += f"; of the {added} assets added, {born} ({born / added:.0%}) were born as TF2 SavedModels"
    change += (f"; the share with a TF.js variant {_change(first['with_tfjs'], last['with_tfjs'])}, with a Lite "
               f"variant {_change(first['with_lite'], last['with_lite'])}.")
    return f"{text} {'; '.join(vi)}. {change}"


def draft_numbers(summary: pd.DataFrame, table_viii: pd.DataFrame) -> dict[str, tuple]:
    """The numbers the paper draft quotes from RQ3, `{name: (value, description[, fmt])}` (for `Report.numbers`):
    assets and multi-version share in the oldest and latest snapshot (`Growth.summary`), Table VIII rows."""
    first, last = summary.iloc[0], summary.iloc[-1]
    return {
        "rq3_assets_oldest": (int(first["assets"]), "TF Hub assets, oldest snapshot"),
        "rq3_assets_latest": (int(last["assets"]), "TF Hub assets, latest snapshot"),
        "rq3_multi_version_percent_oldest": (100 * float(first["share_ge2_versions"]),
                                             "% of assets with >= 2 versions, oldest snapshot", "{:.0f}"),
        "rq3_multi_version_percent_latest": (100 * float(last["share_ge2_versions"]),
                                             "% of assets with >= 2 versions, latest snapshot", "{:.0f}"),
        "rq3_viii_rows": (len(table_viii), "Table VIII rows"),
        "rq3_viii_rows_match": (int((table_viii["verdict"] == "match").sum()), "Table VIII rows that match"),
    }


# --- figures ----------------------------------------------------------------------------------------

def _legend_above(fig, ax) -> None:
    """The sources in one row above the axes (inside the text width, unlike a legend right of a full-width axes)."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend():
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)


def plot_versions_per_task(rows: pd.DataFrame):
    """Share of products with >= 2 versions per task, one bar per source (columns: source, task, percent)."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    fig, ax = plots.figure("full", height=2.6, layout="constrained")
    plots.grouped_bars(rows, x="task", y="percent", hue="source", ax=ax, ylabel="products with >= 2 versions (%)")
    _legend_above(fig, ax)
    return fig


def plot_note_categories(rows: pd.DataFrame):
    """Version notes per category and snapshot (columns: source, label, notes)."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    fig, ax = plots.figure("full", height=2.6, layout="constrained")
    plots.grouped_bars(rows, x="label", y="notes", hue="source", ax=ax, ylabel="version notes")
    _legend_above(fig, ax)
    return fig


def plot_growth(per_task: pd.DataFrame, top: int = 12):
    """Products per task group and snapshot (2020 -> 2024), the `top` largest task groups."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    t = per_task.assign(task=per_task["input"] + " " + per_task["dl_task"])
    keep = t.groupby("task")["products"].max().nlargest(top).index
    fig, ax = plots.figure("full", height=2.6, layout="constrained")
    plots.grouped_bars(t[t["task"].isin(keep)], x="task", y="products", hue="snapshot", ax=ax, ylabel="products")
    _legend_above(fig, ax)
    return fig


def plot_variant_coverage(rows: pd.DataFrame):
    """Share of assets with TF.js / Lite / Coral variants per snapshot (columns: snapshot, variant, share)."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    fig, ax = plots.figure()
    plots.grouped_bars(rows, x="variant", y="share", hue="snapshot", ax=ax, ylabel="share of assets", rotate=0)
    return fig
