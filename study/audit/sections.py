"""The paper audit: every numeric claim the paper's own tables (and text) can check, re-derived.

Each claim row quotes the paper (fragments in double quotes are verbatim, checked against the paper's text by
the tests), gives the paper's value, the value derived from `data/paper/` (never typed in: computed by
`study.paper`, `study.decision.choice`), and a verdict:

- `yes` — the derived value equals the paper's at the precision the paper prints;
- `conditional` — it holds only under a particular reading, tie rule or coarser rounding, named in `note`;
- `no` — it does not follow from the tables;
- `not derivable` — the tables cannot check it (`note` says why).

A few claims are checked against other sentences of the paper (`TEXT`, each with its verbatim quote).

Sections III-VI are here; Section VII is `study.audit.section_vii`; the row format and the helpers every section
uses are `study.audit.rows`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pandas as pd

from study import paper
from study.audit import noise_labels
from study.audit.rows import TEXT, VERDICTS, _decimals, _pct, _row, _yes_no, around
from study.audit.section_vii import BEST, COUNT_CLAIMS, FOURTH, inferred_images, section_vii
from study.errors import StudyError

COLUMNS = ["claim_id", "section", "statement", "paper_value", "derived_value", "reproduced", "note", *noise_labels.COLUMNS]


# --- Sections III and IV -------------------------------------------------------------------------

def _scenarios(cell) -> list[str]:
    """Named scenarios of a Table IV/V cell ('Browsers: Chrome, FireFox, etc.; Node.js' -> Chrome, FireFox, Node.js)."""
    if not isinstance(cell, str) or not cell.strip():
        return []
    names = []
    for part in cell.split(";"):
        part = part.split(":", 1)[-1]
        names += [n.strip() for n in part.split(",") if n.strip() and n.strip().rstrip(".") != "etc"]
    return names


def sections_iii_iv() -> Iterator[dict]:
    fam = paper.families()
    resnet_v2 = fam[(fam["zoo"] == "AIHub") & (fam["algorithm"] == "ResNet V2")]["members"].sum()
    yield _row("III-B.resnet_v2", "III-B", '"The 3 models using ResNet V2 algorithm"', 3, int(resnet_v2),
               _yes_no(resnet_v2 == 3), "Table I, ResNet V2 row")
    low = fam["members"].min()
    yield _row("III-B.min_members", "III-B", '"a family must have at least 2 members"', ">= 2",
               f"smallest family: {low}", _yes_no(low >= 2), "Tables I-III, every row")

    dep = paper.deployment_methods()
    groups = dep.groupby("framework", sort=False).size()
    yield _row("IV.groups", "IV", '"Both of the DL frameworks have 5 deployment scenario"', "5 and 5",
               " and ".join(f"{n} ({fw})" for fw, n in groups.items()), _yes_no((groups == 5).all()),
               "rows of Tables IV and V")
    tf_python = dep[(dep["framework"] == "TensorFlow 1") & (dep["scenario_group"] == "Python Env.")]
    formats = tf_python["output_format"].iloc[0].split("; ")
    yield _row("IV.tf1_formats", "IV", '"For TensorFlow 1, there are 4 common save model format"', 4,
               f"{len(formats)} ({', '.join(formats)})", _yes_no(len(formats) == 4), "Table IV, Python Env. row")
    counts = {fw: sum(max(1, len(_scenarios(c))) for c in part["scenarios"])
              for fw, part in dep.groupby("framework", sort=False)}
    tf, pt = counts["TensorFlow 1"], counts["PyTorch"]
    yield _row("IV.more_scenarios", "IV", '"in total TensorFlow supports more deployment scenarios"',
               "TensorFlow > PyTorch", f"{tf} vs {pt} named scenarios", _yes_no(tf > pt),
               "counting the scenarios Tables IV/V name ('etc.' not counted; a group that names none counts once)")
    langs = _scenarios(dep[(dep["framework"] == "PyTorch") & (dep["scenario_group"] == "Other Languages")]["scenarios"].iloc[0])
    yield _row("IV.pytorch_languages", "IV", '"it only support C++ and Java"', "2 (C++, Java)",
               f"{len(langs)} ({', '.join(langs)})", _yes_no(langs == ["C++", "Java"]), "Table V, Other Languages row")


# --- Section V (Tables I-III) --------------------------------------------------------------------

def _provider_free(algorithm: str) -> str:
    return re.sub(r"\s*\(by [^)]*\)", "", algorithm)


def _domains(domain: str) -> list[str]:
    return [d.strip() for d in domain.split("&")]


def section_v() -> Iterator[dict]:
    fam = paper.families()
    zoo = {z: part.reset_index(drop=True) for z, part in fam.groupby("zoo")}
    ai, pt = zoo["AIHub"], zoo["PyTorch Hub"]
    nnlm_multi = ai[ai["families"] > 1]
    yield _row("V.families_aihub", "V-A.3", '"There are 20 and 28 families in AIHub and PyTorch Hub respectively"', 20,
               f"{len(ai)} rows; {ai['families'].sum()} families",
               "conditional" if len(ai) == 20 and ai["families"].sum() != 20 else _yes_no(ai["families"].sum() == 20),
               "holds when each Table I row counts as one family; the row "
               + "; ".join(f"{r.algorithm} '{r.training_data}' stands for {r.families}" for r in nnlm_multi.itertuples())
               + " families, and Section V itself counts NNLM as 7 families (V.nnlm)")
    yield _row("V.families_pytorch", "V-A.3", '"There are 20 and 28 families in AIHub and PyTorch Hub respectively"', 28,
               f"{len(pt)} rows; {pt['families'].sum()} families", _yes_no(pt["families"].sum() == 28), "Tables II and III")
    n_ai = ai["algorithm"].nunique()
    yield _row("V.algorithms_aihub", "V-A.1", '"AIHub families use 17 DL algorithms"', 17, n_ai, _yes_no(n_ai == 17),
               "distinct algorithm names in Table I")
    n_pt, n_pt_free = pt["algorithm"].nunique(), pt["algorithm"].map(_provider_free).nunique()
    merged = sorted({a for a in pt["algorithm"] if _provider_free(a) != a
                     and (pt["algorithm"].map(_provider_free) == _provider_free(a)).sum() > (pt["algorithm"] == a).sum()})
    yield _row("V.algorithms_pytorch", "V-A.1", '"PyTorch Hub families use 20"', 20,
               f"{n_pt} names; {n_pt_free} without the '(by ...)' provider",
               "yes" if n_pt == 20 else "conditional" if n_pt_free == 20 else "no",
               f"holds only when {' and '.join(merged)} count as one algorithm (provider suffix dropped)"
               if n_pt != 20 and n_pt_free == 20 else "distinct algorithm names in Tables II and III")
    top = ai.sort_values("members", ascending=False).reset_index(drop=True)
    yield _row("V.largest_aihub", "V-A.3", '"MobileNet V1 trained on ImageNet is the largest family, having 32 members"',
               "MobileNet V1, 32", f"{top.loc[0, 'algorithm']}, {top.loc[0, 'members']}",
               _yes_no(top.loc[0, "algorithm"] == "MobileNet V1" and top.loc[0, "members"] == 32
                       and top.loc[1, "members"] < 32), "largest member count in Table I")
    yield _row("V.second_aihub", "V-A.3", '"MobileNet V2 is the second large family with 22 members"',
               "MobileNet V2, 22", f"{top.loc[1, 'algorithm']}, {top.loc[1, 'members']}",
               _yes_no(top.loc[1, "algorithm"] == "MobileNet V2" and top.loc[1, "members"] == 22
                       and top.loc[2, "members"] < 22), "second largest in Table I")
    rest = top.loc[2:]
    inside = rest["members"].between(3, 10)
    yield _row("V.other_aihub", "V-A.3", '"Other families generally have 3 to 10 members"', "3-10",
               f"{rest['members'].min()}-{rest['members'].max()}; {inside.sum()} of {len(rest)} rows in 3-10",
               "yes" if inside.all() else "conditional",
               "'generally': outside 3-10: " + ", ".join(f"{r.algorithm} ({r.members})" for r in rest[~inside].itertuples())
               if not inside.all() else "Table I rows other than MobileNet V1/V2")
    pmax = pt["members"].max()
    largest = pt[pt["members"] == pmax]["algorithm"].tolist()
    yield _row("V.largest_pytorch", "V-A.3", '"VGG Nets family and BERT family have the largest number of members (8)"',
               "VGG Nets, BERT; 8", f"{', '.join(largest)}; {pmax}",
               _yes_no(pmax == 8 and sorted(map(_provider_free, largest)) == ["BERT", "VGG Nets"]), "Tables II and III")
    prest = pt[pt["members"] < pmax]["members"]
    yield _row("V.other_pytorch", "V-A.3", '"Other families have 2 to 6 members"', "2-6",
               f"{prest.min()}-{prest.max()}", _yes_no(prest.between(2, 6).all()),
               f"every other row lies within 2-6; the bound 6 is not attained (largest {prest.max()})"
               if prest.max() < 6 else "Tables II and III")
    cg = ai[ai["algorithm"] == "Compare-GAN Model"]
    yield _row("V.compare_gan", "V-A.2", '"Compare-GAN assets trained on CIFAR-10, CelebA HQ and LSUN-Bedroom will be regard as 3 families"',
               3, f"{cg['families'].sum()} ({', '.join(cg['training_data'])})", _yes_no(cg["families"].sum() == 3), "Table I")
    nn = ai[ai["algorithm"] == "NNLM"]
    yield _row("V.nnlm", "V-A.2", '"NNLM assets trained on Google News in 7 languages will be grouped into 7 families"', 7,
               int(nn["families"].sum()), _yes_no(nn["families"].sum() == 7),
               "Table I: NNLM '4(x6 Families)' (6 languages) + NNLM Google News in English")
    dom = {z: {d for cell in part["domain"] for d in _domains(cell)} for z, part in zoo.items()}
    both = [d for d in ("Image Classification", "Image Generation", "Text Embedding", "Object Detection", "Image Feature Vector")
            if all(d in s for s in dom.values())]
    yield _row("V.domains", "V-A", '"family phenomenon in 3 DL task domains: Image Classification, Image Generation, Text Embedding"',
               "3", f"{len(both)} ({', '.join(both)})",
               _yes_no(both == ["Image Classification", "Image Generation", "Text Embedding"]),
               "domains with families in both zoos (Table I's 'Image Classification & Image Feature Vector' split at '&')")

    def rows_in(z: str, d: str) -> int:
        return int(zoo[z]["domain"].map(lambda c: d in _domains(c)).sum())

    ifv, od = (rows_in("AIHub", "Image Feature Vector"), rows_in("PyTorch Hub", "Image Feature Vector")), \
              (rows_in("AIHub", "Object Detection"), rows_in("PyTorch Hub", "Object Detection"))
    yield _row("V.ifv_od", "V-A", '"Image Feature Vector families are only discovered in AIHub, while Object Detection family only exists in PyTorch Hub"',
               "IFV: AIHub only; OD: PyTorch Hub only", f"IFV rows {ifv[0]}/{ifv[1]}, OD rows {od[0]}/{od[1]} (AIHub/PyTorch Hub)",
               _yes_no(ifv[0] > 0 == ifv[1] and od[1] > 0 == od[0]), "Tables I-III")
    members = fam.assign(assets=fam["members"] * fam["families"],
                         first=fam["domain"].map(lambda c: _domains(c)[0])).groupby(["zoo", "first"])["assets"].sum()
    tops = {z: members[z].idxmax() for z in zoo}
    yield _row("V.ic_largest", "V-A.1", '"Image Classification algorithms have the largest number of assets"',
               "Image Classification",
               "; ".join(f"{z}: {tops[z]} {members[z].max()} of {members[z].sum()}" for z in zoo),
               _yes_no(all(t == "Image Classification" for t in tops.values())),
               "members x families per domain; AIHub counts Image Classification and Image Feature Vector together (one Table I block)")
    hub = ai["output_format"].str.contains("hub.Module", regex=False)
    yield _row("V.hub_module", "V-A.4", '"All of the assets on AIHub have hub.Module format"', "all",
               f"{hub.sum()} of {len(ai)} rows", _yes_no(hub.all()), "Table I output format")
    tf2 = ai["output_format"].str.contains("TF2 SavedModel", regex=False)
    yield _row("V.tf2", "V-A.4", '"Some of the assets have TF2 SaveModel format"', "some",
               f"{tf2.sum()} of {len(ai)} rows", _yes_no(0 < tf2.sum() < len(ai)), "Table I output format")
    pth = pt["output_format"] == ".pth"
    yield _row("V.pth", "V-A.4", '"Most of the assets on PyTorch Hub are in .pth files"', "most",
               f"{pth.sum()} of {len(pt)} families ({pt.loc[pth, 'members'].sum()} of {pt['members'].sum()} members)",
               _yes_no(pth.mean() > 0.5 and pt.loc[pth, "members"].sum() > pt["members"].sum() / 2), "Tables II and III")


# --- Section VI (Tables VI-VIII) -----------------------------------------------------------------

def section_vi() -> Iterator[dict]:
    vi = paper.version_statistics()
    for r in vi.itertuples():
        shown = f"{r.products_ge2_versions} ({r.percent_text})"
        dec = _decimals(r.percent_text)
        derived = round(100 * r.products_ge2_versions / r.products, 2)
        ok = math.isclose(round(derived, dec), float(r.percent_text.rstrip("%")), abs_tol=1e-9)
        task = r.task + (f" ({r.task_detail})" if isinstance(r.task_detail, str) else "")
        yield _row(f"VI.table.{r.input.lower()}_{r.task.lower().replace(' ', '_')}", "VI (Table VI)",
                   f'Table VI, {r.type} {r.input} {task}: "{shown}" of {r.products} products have >= 2 versions',
                   r.percent_text, _pct(derived), _yes_no(ok),
                   f"{r.products_ge2_versions}/{r.products}" + (f", printed to {dec} decimals" if dec != 2 else ""))
    k, n = vi["products_ge2_versions"].sum(), vi["products"].sum()
    yield _row("VI.most_versions", "VI", '"Most of the assets have at least 2 versions"', "most (> 50%)",
               f"{k} of {n} ({_pct(100 * k / n)})", _yes_no(k / n > 0.5), "Table VI, all rows")
    img = vi[vi["input"] == "Image"].set_index("task")["products"]
    biggest = vi.loc[vi["products"].idxmax()]
    ic, ic_fv = img["Classification"], img["Classification"] + img["Feature Vector"]
    yield _row("VI.ic_largest", "VI-B", '"the image classification modules account for the largest proportion of the module population on AIHub"',
               "largest", f"Classification {ic} vs {biggest['task']} {biggest['products']}; with Feature Vector {ic_fv} of {n}",
               "yes" if ic >= vi["products"].max() else "conditional" if ic_fv >= vi["products"].max() else "no",
               f"holds only if Image Feature Vector modules (Table VI row of {img['Feature Vector']}) count as image classification"
               if ic < vi["products"].max() <= ic_fv else "Table VI")
    files = TEXT["checkpoint_files"].value - TEXT["optional_checkpoint_files"].value
    mnv1 = paper.checkpoint_files().set_index("algorithm").loc["MobileNet V1", "files"].split("; ")
    core = [f for f in mnv1 if f in (".meta", ".index", ".data-00000-of-00001")]
    yield _row("VI.checkpoint_files", "IV / VI-B", '"a complete checkpoint model at least contains 3 files (see Section VI-B)"',
               3, f"{files:g} ({len(core)} of them listed for MobileNet V1 in Table VII)",
               _yes_no(files == 3 and len(core) == 3),
               f'from VI-B: "{TEXT["checkpoint_files"].quote}" minus "{TEXT["optional_checkpoint_files"].quote}"')
    yield _row("VI.gpu_4gb", "VI-C", '"needs larger than 4GB GPU memory, which is the limit on our computer"', "4 GB",
               f"{TEXT['gpu_vram_gb'].value:g} GB", _yes_no(TEXT["gpu_vram_gb"].value == 4),
               f'against VII-D: "{TEXT["gpu_vram_gb"].quote}"')
    train = int(paper.flower_split()["training"].sum())
    verdict, why = around(train, 2600, precision=100)
    yield _row("VI.epoch_images", "VI-C", '"one training epoch on around 2600 images took 25 minutes"', "around 2600",
               f"{train} (Table XI training split)", verdict, f"{why}; the 25 minutes is in no table")


# --- the audit ----------------------------------------------------------------------------------

def audit(*, n_resamples: int = noise_labels.RESAMPLES, seed: int = noise_labels.SEED, noise=None,
          measurement=None) -> pd.DataFrame:
    """Every claim, in paper order: claim_id, section, statement, paper_value, derived_value, reproduced, note;
    comparative claims also get noise / noise_evidence (`study.audit.noise_labels`; its resamples: n_resamples, seed; the
    noise model of single readings `noise`, default the stated one; the sampling error `measurement`)."""
    rows = [*sections_iii_iv(), *section_v(), *section_vi(), *section_vii()]
    df = pd.DataFrame(rows, columns=COLUMNS[:-len(noise_labels.COLUMNS)])
    dupes = df.loc[df["claim_id"].duplicated(), "claim_id"].tolist()
    if dupes:
        raise StudyError(f"audit claim ids are not unique: {dupes}")
    df.attrs["source"] = "paper audit: claims of the paper re-derived from data/paper/"
    return noise_labels.label(df, COUNT_CLAIMS, best=BEST, fourth=FOURTH, n_resamples=n_resamples, seed=seed,
                             noise=noise, measurement=measurement, n_test=inferred_images().set_index("model")["inferred"].dropna().to_dict())


def summary(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims per section and verdict (plus a total row)."""
    part = claims.assign(group=claims["section"].str.extract(r"^([IVX]+)")[0])
    table = pd.crosstab(part["group"], part["reproduced"]).reindex(columns=list(VERDICTS), fill_value=0)
    order = sorted(table.index, key=lambda s: ["III", "IV", "V", "VI", "VII"].index(s))
    table = table.loc[order]
    table.loc["all"] = table.sum()
    table["claims"] = table.sum(axis=1)
    table.index.name = "section"
    return table.reset_index()


def headline(claims: pd.DataFrame) -> str:
    """One sentence for the README: how many of the paper's numeric claims reproduce."""
    c = claims["reproduced"].value_counts()
    per_model = claims["claim_id"].str.startswith("VII-F.images.")
    core = claims[~per_model]["reproduced"].value_counts()
    return (f"{len(claims)} claims: {c.get('yes', 0)} reproduce, {c.get('conditional', 0)} only under a stated reading, "
            f"tie rule or rounding, {c.get('no', 0)} do not, {c.get('not derivable', 0)} cannot be derived "
            f"(without the {per_model.sum()} per-model accuracy checks: {core.get('yes', 0)} / {core.get('conditional', 0)} / "
            f"{core.get('no', 0)} / {core.get('not derivable', 0)} of {(~per_model).sum()})")


def draft_numbers(claims: pd.DataFrame) -> dict[str, tuple]:
    """The numbers the paper draft quotes from the audit, `{name: (value, description)}` (`Report.numbers`)."""
    counts = claims["reproduced"].value_counts()
    return {"audit_claims": (len(claims), "numeric claims re-derived"),
            **{"audit_claims_" + v.replace(" ", "_"): (int(counts.get(v, 0)), f"claims: {v}") for v in VERDICTS}}
