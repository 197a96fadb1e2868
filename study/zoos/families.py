"""RQ2: families of similar assets, grouped by code instead of by hand (paper Sections III-B and V).

A **family** is a set of at least two assets (its **members**) with the same task type, algorithm and
training data. The algorithm is normalised so that configuration is not part of it (depth, width, model
size, input size, quantisation are member configuration: `resnet-v1-50` -> `resnet-v1`), and training data
includes the language where the zoo records it separately (NNLM on Google News in English vs German).

- TF Hub: task, architecture, dataset and language come from the page metadata; where the architecture
  is a building block rather than a model (`transformer`, `other`, `dan`, ...), the model's name in the
  handle stands for the algorithm (`google/albert_base` -> `albert`), as the paper does ("the symbolic
  name of the asset").
- PyTorch Hub pages carry no task or dataset field: `data/pytorch_hub_annotations.csv` (versioned,
  documented) says, per page and member-name pattern, which task, algorithm and training data a member has.

For every member, `member_differences` says how it differs from its siblings: configuration (width,
depth, input size, quantised, model size, precision, ...), output size and preprocessing (cased,
normalisation, whole-word masking, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import pandas as pd

from study import config, paper
from study.report import and_list
from study.zoos import catalog as cat_mod
from study.zoos.catalog import Catalog, CatalogError, slug

ANNOTATIONS = config.DATA / "pytorch_hub_annotations.csv"
ANNOTATIONS_VERSION = "1"

# architectures that name a building block, not a model: the handle's model name is the algorithm then
GENERIC_ARCHITECTURES = {"", "transformer", "transformer-xl", "other", "cnn", "rnn", "dan", "multiple",
                         "vgg-style", "convnet"}
# model names whose trailing number is a depth (resnet50 -> resnet, depth 50)
DEPTH_NAMED = ("resnet", "resnext", "revnet", "vgg", "densenet", "wrn", "wideresnet")
SIZE_WORDS = {"tiny", "mini", "small", "base", "medium", "large", "xlarge", "xxlarge", "xl", "huge", "lite",
              "mobile", "deep", "half", "quarter", "three"}
QUANT_WORDS = {"quantops", "quantized", "quant", "int8", "uint8", "quantised"}
INPUT_SIZES = {"96", "128", "160", "192", "224", "240", "256", "260", "299", "300", "320", "331", "380", "384",
               "448", "456", "480", "512", "528", "600"}
WIDTHS = {"025", "035", "050", "075", "100", "130", "140", "0.25", "0.35", "0.50", "0.5", "0.75", "1.0", "1.3",
          "1.4"}
# tokens of a handle that name a container or a task, not the model
CONTAINER_WORDS = {"imagenet", "classification", "feature-vector", "feature_vector", "vision", "classifier",
                   "embedder", "models", "tf2-preview", "logits"}


# --- normalising algorithms -------------------------------------------------------------------

def _tokens(text: str) -> list[str]:
    return [t for t in slug(text).split("-") if t]


def normalise_algorithm(name: str) -> str:
    """An algorithm without its configuration: 'resnet-v1-50' -> 'resnet-v1', 'efficientnet-b3' -> 'efficientnet',
    'nasnet-a-large' -> 'nasnet-a', 'bert-cased-l-12-h-768-a-12' -> 'bert', 'nnlm-en-dim128' -> 'nnlm'."""
    toks = _tokens(name)
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if len(t) == 1 and t in "lhafnbew" and nxt.isdigit() and i > 0:  # L-12, H-768, A-12, N-18, F-448
            i += 2
            continue
        m = re.fullmatch(r"([a-z]+?)(\d+)(x\d+)?", t)
        if m and m.group(1) in DEPTH_NAMED:
            t = m.group(1)
        if (t.isdigit() or t in SIZE_WORDS or t in QUANT_WORDS or t in {"cased", "uncased", "with", "normalization",
                                                                          "random", "wwm", "fp16", "fp32"}
                or re.fullmatch(r"(b\d|lite\d|dim\d+|w\d+|x\d+|\d+x\d+|\d+d|\d+x|v\d+x\d+|\d+k|\d+m)", t)):
            i += 1
            continue
        out.append(t)
        i += 1
    return "-".join(out) or slug(name)


def model_name(handle: str) -> str:
    """The handle's model name: the first path segment after the publisher that is not a container word."""
    parts = handle.split("/")[1:]
    for p in parts:
        if p.lower() not in CONTAINER_WORDS:
            return p
    return parts[0] if parts else handle


def tfhub_algorithm(architecture: str, handle: str) -> str:
    arch = architecture.split(";")[0]
    if arch in GENERIC_ARCHITECTURES:
        return normalise_algorithm(model_name(handle))
    return normalise_algorithm(arch)


# --- member differences ----------------------------------------------------------------------

DIMENSION_KIND = {
    "width": "configuration", "depth": "configuration", "input_size": "configuration",
    "quantised": "configuration", "model_size": "configuration", "precision": "configuration",
    "batch_norm": "configuration", "group_width": "configuration", "layers": "configuration",
    "hidden_size": "configuration", "attention_heads": "configuration", "random_init": "configuration",
    "normalisation": "configuration", "structure": "configuration",
    "output_size": "output size",
    "cased": "preprocessing", "whole_word_masking": "preprocessing",
}


def _classify(tokens: list[str], task: str) -> dict[str, str]:
    """Dimension -> value for the distinguishing tokens of one member."""
    out: dict[str, str] = {}
    generator = "generator" in task or "generation" in task
    text = task.startswith("text")
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if m := re.fullmatch(r"([lha])=(\d+)", t):
            out[{"l": "layers", "h": "hidden_size", "a": "attention_heads"}[m.group(1)]] = m.group(2)
        elif t in QUANT_WORDS:
            out["quantised"] = "yes"
        elif t in ("cased", "uncased"):
            out["cased"] = "yes" if t == "cased" else "no"
        elif t in ("wwm", "whole", "masking"):
            out["whole_word_masking"] = "yes"
        elif t == "with":  # 'with-normalization'
            pass
        elif t == "normalization" or t == "normalisation":
            out["normalisation"] = "yes"
        elif t == "random":
            out["random_init"] = "yes"
        elif t in ("fp16", "fp32", "half", "single") and not generator:
            out["precision"] = t
        elif t == "bn":
            out["batch_norm"] = "yes"
        elif m := re.fullmatch(r"dim(\d+)", t):
            out["output_size"] = m.group(1)
        elif m := re.fullmatch(r"(\d+)x(\d+)d?", t):
            if t.endswith("d"):
                out["group_width"] = t
            else:
                out["output_size" if generator else "input_size"] = m.group(1)
        elif t in SIZE_WORDS or re.fullmatch(r"b\d|lite\d", t):
            out["model_size"] = t
        elif m := re.fullmatch(r"([a-z]+?)(\d+)", t):
            if m.group(1) in DEPTH_NAMED:
                out["depth"] = m.group(2)
            elif generator and m.group(1) in ("celebahq", "celeba"):
                out["output_size"] = m.group(2)
            else:
                out["structure"] = out.get("structure", "") + ("," if "structure" in out else "") + t
        elif t.isdigit() or re.fullmatch(r"\d+\.\d+", t):
            if generator or text:
                out["output_size"] = t
            elif t in WIDTHS and "width" not in out and "input_size" not in out:
                out["width"] = t
            elif t in INPUT_SIZES and "input_size" not in out:
                out["input_size"] = t
            elif "depth" not in out:
                out["depth"] = t
            else:
                out["structure"] = out.get("structure", "") + ("," if "structure" in out else "") + t
        else:
            out["structure"] = out.get("structure", "") + ("," if "structure" in out else "") + t
        i += 1
    return out


def _pair_tokens(toks: list[str]) -> list[str]:
    """['l', '12', 'h', '768'] -> ['l=12', 'h=768'] (BERT's L-12_H-768_A-12 naming)."""
    out, i = [], 0
    while i < len(toks):
        if toks[i] in ("l", "h", "a") and i + 1 < len(toks) and toks[i + 1].isdigit():
            out.append(f"{toks[i]}={toks[i + 1]}")
            i += 2
        else:
            out.append(toks[i])
            i += 1
    return out


def member_differences(members: list[str], task: str, algorithm: str = "") -> dict[str, dict[str, str]]:
    """For each member name, the dimensions (width, depth, ...) on which it differs from its siblings."""
    toks = {m: _pair_tokens([t for t in _tokens(m) if t not in CONTAINER_WORDS]) for m in members}
    common = set.intersection(*(set(t) for t in toks.values())) if toks else set()
    algo = set(_tokens(algorithm))
    out = {}
    for m, ts in toks.items():
        rest = [t for t in ts if t not in common and t not in algo]
        dims = _classify(rest, task)
        if not rest:
            dims = {}
        out[m] = dims
    # a dimension that only some members state (e.g. 'quantised') is 'no' for the others
    for dim in {d for dims in out.values() for d in dims if d in ("quantised", "normalisation", "random_init",
                                                                    "batch_norm", "whole_word_masking")}:
        for dims in out.values():
            dims.setdefault(dim, "no")
    return out


def _format_dims(dims: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(dims.items()))


def difference_summary(dims_per_member: dict[str, dict[str, str]]) -> str:
    """'configuration: input_size, width; output size; preprocessing: cased' for a family."""
    varying = sorted({d for dims in dims_per_member.values() for d in dims
                      if len({m.get(d) for m in dims_per_member.values()}) > 1})
    groups: dict[str, list[str]] = {}
    for d in varying:
        groups.setdefault(DIMENSION_KIND.get(d, "configuration"), []).append(d)
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(groups.items()))


# --- assets with their family keys -----------------------------------------------------------

def tfhub_assets(cat: Catalog, *, paper_rules: bool = False) -> pd.DataFrame:
    """One row per TF Hub asset (handle): task, algorithm, training data and formats over its versions."""
    v = cat["versions"]
    v = v[v["page_kind"] == "module"].sort_values(["handle", "version"])
    if v.empty:
        return pd.DataFrame(columns=["handle", "task", "architecture", "algorithm", "dataset", "language",
                                     "training_data", "formats", "first_format", "versions"])
    g = v.groupby("handle", sort=True)
    last = g.last()
    first = g.first()
    formats = g["format"].agg(lambda s: ";".join(dict.fromkeys(f for f in s if f)))
    df = pd.DataFrame({
        "handle": last.index,
        "task": last["task"].fillna("").values,
        "architecture": last["architecture"].fillna("").values,
        "dataset": last["dataset"].fillna("").values,
        "language": last["language"].fillna("").values,
        "formats": formats.values,
        "first_format": first["format"].fillna("").values,
        "versions": g.size().values,
    })
    df["algorithm"] = [tfhub_algorithm(a, h) for a, h in zip(df["architecture"], df["handle"])]
    df["training_data"] = [d + (f" [{lang}]" if lang else "") for d, lang in zip(df["dataset"], df["language"])]
    if paper_rules:  # Section VIII: assets first released as TF2 SavedModels are left out of the family analysis
        df = df[df["first_format"] != "saved-model-2"]
    return df.reset_index(drop=True)


@cache
def _annotations_cached(path: str, mtime: float) -> pd.DataFrame:
    df = pd.read_csv(path, comment="#", keep_default_na=False, dtype=str)
    need = {"page", "member_pattern", "task", "algorithm", "training_data", "output_format"}
    if need - set(df.columns):
        raise CatalogError(f"{path} lacks column(s) {', '.join(sorted(need - set(df.columns)))}")
    for i, pattern in enumerate(df["member_pattern"]):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise CatalogError(f"{path}:{i + 2}: member_pattern {pattern!r} is not a regular expression ({exc})")
    return df


def pytorch_annotations(path=ANNOTATIONS) -> pd.DataFrame:
    """`data/pytorch_hub_annotations.csv`: task / algorithm / training data per page and member-name pattern."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise CatalogError(f"annotation table {p} not found (it is versioned in data/)")
    return _annotations_cached(str(p), p.stat().st_mtime).copy()


def pytorch_assets(cat: Catalog, annotations: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per PyTorch Hub member with the annotated task, algorithm and training data."""
    ann = pytorch_annotations() if annotations is None else annotations
    m = cat["members"]
    m = m[~m["utility"].astype(bool)]
    rows = []
    for page, member, selector, entry in zip(m["page"], m["member"], m["selector"], m["entrypoint"]):
        hit = None
        for a in ann[ann["page"] == page].itertuples():
            if re.fullmatch(a.member_pattern, member):
                hit = a
                break
        rows.append({"handle": f"{page}:{member}", "page": page, "member": member,
                     "task": hit.task if hit else "", "algorithm": hit.algorithm if hit else "",
                     "training_data": hit.training_data if hit else "",
                     "formats": hit.output_format if hit else "", "annotated": hit is not None})
    df = pd.DataFrame(rows, columns=["handle", "page", "member", "task", "algorithm", "training_data",
                                     "formats", "annotated"])
    # one asset may be named on several pages (Tacotron 2 and WaveGlow pages load each other) or by several
    # entrypoints ('tokenizer', 'model', ... of one HuggingFace checkpoint): count it once
    return df.drop_duplicates(["algorithm", "training_data", "member"]).reset_index(drop=True)


# --- grouping --------------------------------------------------------------------------------

FAMILY_COLUMNS = ["zoo", "task", "algorithm", "training_data", "members", "differences", "output_formats",
                  "member_names"]


@dataclass
class Families:
    families: pd.DataFrame  # one row per family
    members: pd.DataFrame  # one row per member, with its differences
    assets: pd.DataFrame  # every asset considered, with its key


def _format_labels(formats: list[str]) -> str:
    seen = dict.fromkeys(f for fs in formats for f in str(fs).split(";") if f)
    return "; ".join(cat_mod.FORMAT_LABELS.get(f, f) for f in seen)


def group(assets: pd.DataFrame, zoo: str) -> Families:
    """Families (>= 2 members with the same task, algorithm and training data) and their members."""
    usable = assets[(assets["task"] != "") & (assets["algorithm"] != "")]
    fam_rows, mem_rows = [], []
    for (task, algo, data), grp in usable.groupby(["task", "algorithm", "training_data"], sort=True):
        if len(grp) < 2:
            continue
        names = list(grp["member"] if "member" in grp else grp["handle"])
        diffs = member_differences(names, task, algo)
        fam_id = f"{zoo}:{task}:{algo}:{data}"
        fam_rows.append({"zoo": zoo, "task": task, "algorithm": algo, "training_data": data,
                         "members": len(grp), "differences": difference_summary(diffs),
                         "output_formats": _format_labels(list(grp["formats"])),
                         "member_names": ";".join(names)})
        for name, handle, fmt in zip(names, grp["handle"], grp["formats"]):
            mem_rows.append({"family": fam_id, "zoo": zoo, "task": task, "algorithm": algo, "training_data": data,
                             "member": name, "handle": handle, "formats": fmt,
                             "differences": _format_dims(diffs[name]), **{f"dim_{k}": v for k, v in diffs[name].items()}})
    fams = pd.DataFrame(fam_rows, columns=FAMILY_COLUMNS)
    mems = pd.DataFrame(mem_rows)
    return Families(fams.sort_values(["task", "members"], ascending=[True, False]).reset_index(drop=True), mems,
                    assets)


def derive_families(cat: Catalog, *, paper_rules: bool = False, annotations: pd.DataFrame | None = None) -> Families:
    """The families of one zoo catalog."""
    if cat.zoo == "tfhub":
        return group(tfhub_assets(cat, paper_rules=paper_rules), "tfhub")
    return group(pytorch_assets(cat, annotations), "pytorch-hub")


# --- beside the paper (Tables I-III) ---------------------------------------------------------

CROSSWALK = config.DATA / "paper_family_crosswalk.csv"
PAPER_DATE = "2019-12"  # the paper's AIHub / PyTorch Hub data are from 2019-11/12


def crosswalk() -> pd.DataFrame:
    if not CROSSWALK.is_file():
        raise CatalogError(f"crosswalk {CROSSWALK} not found (it is versioned in data/)")
    return pd.read_csv(CROSSWALK, comment="#", dtype=str, keep_default_na=False)


def compare_with_paper(fams: pd.DataFrame, zoo: str, snapshot: str) -> pd.DataFrame:
    """Each family row of the paper's Tables I-III (for `zoo`) beside the families we find, with a verdict.

    A row matches when we find as many families as the paper's row stands for, each with the paper's
    member count (for rows spanning Image Classification and Feature Vector: in either task, or in sum).
    """
    paper_zoo = cat_mod.ZOO_NAMES[zoo]
    cw = crosswalk()
    rows = []
    for r in paper.families(paper_zoo).itertuples():
        x = cw[(cw["table"] == r.table) & (cw["paper_algorithm"] == r.algorithm)
               & (cw["paper_training_data"] == r.training_data)]
        if x.empty:
            raise CatalogError(f"{CROSSWALK}: no row for paper Table {r.table} {r.algorithm} / {r.training_data}")
        x = x.iloc[0]
        tasks = x["tasks"].split(";")
        hits = fams[fams["task"].isin(tasks) & (fams["algorithm"] == x["algorithm"])
                    & fams["training_data"].str.fullmatch(x["training_data"])]
        per_task = hits.groupby("task")["members"].apply(list).to_dict()
        counts = [n for ns in per_task.values() for n in ns]
        n_fam = max((len(v) for v in per_task.values()), default=0)
        ours = "; ".join(f"{t}: {'+'.join(map(str, ns))}" for t, ns in per_task.items()) or "-"
        want = int(r.members)
        if not counts:
            verdict = "missing"
        elif int(r.families) > 1:
            ok = any(len(ns) == int(r.families) and all(n == want for n in ns) for ns in per_task.values())
            verdict = "match" if ok else "mismatch"
        else:
            ok = want in counts or (len(tasks) > 1 and len(per_task) > 1
                                    and want == sum(max(ns) for ns in per_task.values()))
            verdict = "match" if ok else "mismatch"
        if verdict == "match":
            reason = "same members" + (" (the paper's row spans IC and IFV; per task)" if len(per_task) > 1 else "")
        else:
            reasons = []
            if counts and max(counts) > want:
                reasons.append(f"snapshot {snapshot} is later than the paper's data ({PAPER_DATE}): more members")
            if x["note"]:
                reasons.append(x["note"])
            if not reasons:
                reasons.append("fewer members named on the zoo's pages than the paper lists" if counts
                               else "no family with this task, algorithm and training data in the snapshot")
            reason = "; ".join(reasons)
        fmt = "; ".join(dict.fromkeys(f for fs in hits["output_formats"] for f in fs.split("; ") if f))
        rows.append({"table": r.table, "domain": r.domain, "algorithm": r.algorithm,
                     "training_data": r.training_data, "paper_members": want, "paper_families": int(r.families),
                     "our_members": ours, "our_families": n_fam, "paper_output_format": r.output_format,
                     "our_output_formats": fmt or "-", "verdict": verdict, "reason": reason})
    return pd.DataFrame(rows)


def unmatched_families(fams: pd.DataFrame) -> pd.DataFrame:
    """Our families that no paper row maps to (new since the paper, or grouped differently)."""
    cw = crosswalk()
    hit = pd.Series(False, index=fams.index)
    for x in cw.itertuples():
        hit |= (fams["task"].isin(x.tasks.split(";")) & (fams["algorithm"] == x.algorithm)
                & fams["training_data"].str.fullmatch(x.training_data))
    return fams[~hit].reset_index(drop=True)


def paper_family_tasks(paper_families: pd.DataFrame) -> pd.Series:
    """The task of each of the paper's family rows (Tables I-III), from the crosswalk (its first task)."""
    cw = crosswalk().set_index(["table", "paper_algorithm", "paper_training_data"])["tasks"].str.split(";").str[0]
    keys = pd.MultiIndex.from_frame(paper_families[["table", "algorithm", "training_data"]].astype(str))
    return pd.Series(cw.reindex(keys).to_numpy(), index=paper_families.index, name="task")


def family_sizes(paper_families: pd.DataFrame, ours: dict[tuple[str, str], Families]) -> pd.DataFrame:
    """One row per family (source, task, members): the paper's (a row standing for n families counts n times)
    beside ours per (zoo, snapshot), on the tasks the paper's families cover (the crosswalk's)."""
    p = paper_families.assign(task=paper_family_tasks(paper_families), source="paper " + paper_families["zoo"])
    p = p.loc[p.index.repeat(p["families"]), ["source", "task", "members"]]
    mine = [f.families.assign(source=f"{z} {d}")[["source", "task", "members"]] for (z, d), f in ours.items()]
    sizes = pd.concat([p, *mine], ignore_index=True)
    covered = set(crosswalk()["tasks"].str.split(";").explode())
    return sizes[sizes["task"].isin(covered)].reset_index(drop=True)


def family_growth(ours: dict[tuple[str, str], Families]) -> pd.DataFrame:
    """Families, members and algorithms per (zoo, snapshot): 2019/2020 against 2024."""
    rows = pd.concat([f.families.assign(source=f"{z} {d}") for (z, d), f in ours.items()])
    return rows.groupby("source").agg(families=("members", "size"), members=("members", "sum"),
                                      algorithms=("algorithm", "nunique")).reset_index()


def families_not_in_paper(ours: dict[tuple[str, str], Families]) -> pd.DataFrame:
    """`unmatched_families` of each (zoo, snapshot) in `ours`, with a snapshot column."""
    return pd.concat([unmatched_families(f.families).assign(snapshot=d) for (_, d), f in ours.items()],
                     ignore_index=True)


def verdict_counts(*comparisons: pd.DataFrame) -> pd.DataFrame:
    """Paper family rows per table and verdict (`compare_with_paper` outputs), one column per verdict."""
    counts = pd.concat(comparisons).groupby(["table", "verdict"]).size().unstack(fill_value=0)
    return counts.reset_index().rename_axis(columns=None)


# --- readings: notebook 02's generated sentences and the draft's numbers ----------------------------------

def largest_paper_families(paper_families: pd.DataFrame, zoo: str, at_least: int = 2) -> pd.DataFrame:
    """The paper's family rows of `zoo` (its name in the paper) with the most members: the first `at_least` and
    every row tied with the last of them."""
    rows = paper_families[paper_families["zoo"] == zoo].sort_values("members", ascending=False, kind="stable")
    if rows.empty:
        return rows
    return rows[rows["members"] >= rows["members"].iloc[min(at_least, len(rows)) - 1]]


def largest_reading(paper_families: pd.DataFrame) -> str:
    """One sentence: the largest families of the paper's Tables I-III per zoo, with their member counts."""
    parts = []
    for zoo in paper_families["zoo"].unique():
        top = largest_paper_families(paper_families, zoo)
        sizes = top.groupby("members", sort=False)["algorithm"].agg(list)
        parts.append(f"on {zoo}, " + and_list(f"{and_list(a)} ({n} members{' each' if len(a) > 1 else ''})"
                                              for n, a in sizes.items()))
    return (f"The largest families of the paper's tables are, {'; '.join(parts)}. Section V's statements about them "
            "are re-derived in notebook 07 (claims `V.largest_aihub`, `V.second_aihub`, `V.largest_pytorch`).")


# the kinds of reason `compare_with_paper` gives (its own, or the crosswalk note's prefix), as a reading says them
REASON_KINDS = {"snapshot": "the snapshot is later than the paper's data",
                "metadata": "a metadata quirk of the zoo's pages",
                "source": "the paper took members from outside the zoo's page"}
REASON_KIND = re.compile(r"(?:^|; )(snapshot(?= )|metadata(?=:)|source(?=:))")


def comparison_reading(*comparisons: pd.DataFrame) -> str:
    """How many paper rows match ours member for member, per table, and why the others differ (grouped by the
    kind of reason `compare_with_paper` states per row)."""
    rows = pd.concat(comparisons, ignore_index=True)
    per_table = []
    for table, t in rows.groupby("table", sort=False):
        n, k = len(t), int((t["verdict"] == "match").sum())
        per_table.append(f"all {n} rows of Table {table}" if k == n else f"{k} of the {n} rows of Table {table}")
    text = f"Paper rows whose family we find member for member: {and_list(per_table)}."
    differ = rows[rows["verdict"] != "match"]
    if differ.empty:
        return text
    by_kind: dict[str, list[str]] = {}
    for r in differ.itertuples():
        for kind in dict.fromkeys(REASON_KIND.findall(r.reason)) or [r.reason]:
            by_kind.setdefault(REASON_KINDS.get(kind, kind), []).append(f"Table {r.table} {r.algorithm}")
    reasons = []
    for kind, labels in by_kind.items():
        counted = pd.Series(labels).value_counts(sort=False)
        reasons.append(f"{kind} ({', '.join(lab + (f' ×{c}' if c > 1 else '') for lab, c in counted.items())})")
    return text + f" The other {len(differ)} differ because " + "; ".join(reasons) + ". Each row's reason is in the tables above."


def draft_numbers(ours: dict[tuple[str, str], Families], verdicts: pd.DataFrame) -> dict[str, tuple]:
    """The numbers the paper draft quotes from RQ2, `{name: (value, description)}` (for `Report.numbers`):
    families per zoo in its oldest and latest snapshot of `ours`, and the paper rows per verdict (`verdicts`)."""
    out: dict[str, tuple] = {}
    for zoo in dict.fromkeys(z for z, _ in ours):
        dates = sorted(d for z, d in ours if z == zoo)
        key = zoo.replace("-", "_")
        out[f"rq2_families_{key}_oldest"] = (len(ours[(zoo, dates[0])].families), f"{zoo} families, oldest snapshot")
        out[f"rq2_families_{key}_latest"] = (len(ours[(zoo, dates[-1])].families), f"{zoo} families, latest snapshot")
    rows = verdicts.set_index("table").sum()
    out["rq2_paper_rows"] = (int(rows.sum()), "paper family rows (Tables I-III)")
    for verdict in ("match", "mismatch", "missing"):
        out[f"rq2_paper_rows_{verdict}"] = (int(rows.get(verdict, 0)), f"paper rows: {verdict}")
    return out


# --- figures ----------------------------------------------------------------------------------

def plot_family_sizes(rows: pd.DataFrame):
    """Families and members per task, one bar group per source (columns: source, task, members)."""
    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    t = rows.groupby(["source", "task"]).agg(families=("members", "size"), members=("members", "sum")).reset_index()
    fig, axes = plots.figure("full", height=3.0, ncols=2, layout="constrained")
    for ax, col in zip(axes, ("families", "members")):
        plots.grouped_bars(t, x="task", y=col, hue="source", ax=ax, ylabel=col, rotate=35)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        if ax.get_legend():
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    return fig


def plot_member_grid(members: pd.DataFrame, algorithm: str = "mobilenet-v1", task: str = "image-classification"):
    """The member grid of one family: width x input size, marked by quantised (MobileNet, Section V)."""
    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    m = members[(members["algorithm"] == algorithm) & (members["task"] == task)].copy()
    fig, ax = plots.figure()
    if m.empty or "dim_width" not in m or "dim_input_size" not in m:
        ax.text(0.5, 0.5, f"no {algorithm} family", ha="center", transform=ax.transAxes)
        return fig
    m["width"] = m["dim_width"].astype(float).where(m["dim_width"].astype(float) < 10,
                                                     m["dim_width"].astype(float) / 100)
    m["input_size"] = m["dim_input_size"].astype(int)
    q = m.get("dim_quantised", pd.Series("no", index=m.index)).fillna("no")
    for flag, marker, off in (("no", "o", -3), ("yes", "s", 3)):
        s = m[q == flag]
        ax.scatter(s["width"], s["input_size"] + off, marker=marker, s=22, label=f"quantised: {flag}")
    ax.set_xlabel("width multiplier")
    ax.set_ylabel("input size (px)")
    ax.set_xticks(sorted(m["width"].unique()))
    ax.set_yticks(sorted(m["input_size"].unique()))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
    ax.set_title(f"{algorithm} ({task}): {len(m)} members")
    return fig
