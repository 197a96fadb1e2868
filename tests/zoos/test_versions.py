"""study.zoos.versions: Table VI generalised, version-note categories, format transitions, deployment variants."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from study.zoos import catalog, families, versions
from tests import raw_sources
from tests.conftest import needs_shared, needs_snapshots
from study import paper
from study.config import ROOT

FIX = ROOT / "tests" / "fixtures" / "zoo"


@pytest.mark.parametrize("note,category", [
    ("Initial release.", "initial_release"),
    ("Switched to the SavedModel format of TensorFlow 2. The hub.Module class cannot load this.", "tf2_saved_model"),
    ("Support for variable input size.", "variable_input_size"),
    ("Fine-tuning: change default batch norm momentum to 0.99 and make it configurable.", "batch_norm_momentum"),
    ("Avoids crash in some TFLite/toco versions (GitHub issue 109) by overestimating quantization boundaries",
     "quantization_boundary"),
    ("Fixed broken UPDATE_OPS for fine-tuning, GitHub issue 86.", "update_ops"),
    ("Add 'serving_default' SignatureDef", "serving_signature"),
    ("Requires PIP package tensorflow-hub>=0.2.0.", "requirement_only"),
    ("Improved pose prediction accuracy.", "other"),
])
def test_classify_note(note, category):
    assert versions.classify_note(note) == category


def test_every_paper_table_viii_note_is_classified_as_the_paper_does():
    for r in paper.version_notes().itertuples():
        assert versions.classify_note(r.version_note) == r.note_category


def test_fixture_versions_transitions_and_variants():
    cat = catalog.build("tfhub", FIX / "tfhub" / "2024")
    t = versions.format_transitions(cat).set_index("handle")
    assert t.loc["google/nnlm-en-dim50", "transition"] == "hub.Module -> TF2"
    assert t.loc["google/nnlm-en-dim50", "first_tf2_version"] == 2
    assert t.loc["google/nnlm-en-dim128-with-normalization", "transition"] == "hub.Module only"
    vs = versions.derive_version_statistics(cat).iloc[0]
    assert (vs["type"], vs["dl_task"], vs["products"], vs["products_ge2_versions"]) == ("NLP", "Text Embedding", 2, 1)
    cov = versions.variant_coverage(cat).iloc[0]
    assert cov["assets"] == 2 and cov["lite"] == 0.5 and cov["coral"] == 0.5 and cov["tfjs"] == 0
    notes = versions.note_table(versions.classified_notes(cat)).set_index("category")
    assert notes.loc["initial_release", "notes"] == 2 and notes.loc["serving_signature", "versions"] == "V2"


def test_table_vi_and_viii_beside_the_paper_from_the_shipped_catalog():
    cat = catalog.load_shipped("tfhub", "2020-08-26")
    vi = versions.compare_version_statistics(versions.derive_version_statistics(cat), "2020-08-26")
    assert len(vi) == len(paper.version_statistics())
    assert vi.set_index(["input", "task"]).loc[("Image", "Generator"), "verdict"] == "match"
    fam = families.derive_families(cat, paper_rules=True)
    viii = versions.compare_version_notes(versions.classified_notes(cat), fam.members)
    assert len(viii) == len(paper.version_notes()) and (viii["verdict"] == "match").all()


def test_growth_2020_vs_2024():
    g = versions.growth({d: catalog.load_shipped("tfhub", d) for d in ("2020-08-26", "2024-03-18")})
    s = g.summary.set_index("snapshot")
    assert s.loc["2024-03-18", "assets"] > s.loc["2020-08-26", "assets"]
    assert s.loc["2024-03-18", "born_tf2"] > s.loc["2020-08-26", "born_tf2"]
    assert set(g.per_task["snapshot"]) == {"2020-08-26", "2024-03-18"}


def test_side_by_side_tables_over_snapshots():
    cats = {d: catalog.load_shipped("tfhub", d) for d in ("2020-08-26", "2024-03-18")}
    vi = versions.compare_version_statistics(versions.derive_version_statistics(cats["2020-08-26"]), "2020-08-26")
    later = versions.compare_version_statistics(versions.derive_version_statistics(cats["2024-03-18"]), "2024-03-18")
    share = versions.share_per_task(vi, later)
    assert list(share.columns) == ["source", "task", "percent"] and len(share) == 3 * len(vi)
    assert share["percent"].between(0, 100).all()
    tr = versions.transitions_by_snapshot(cats)
    counts = versions.transition_counts(tr)
    assert counts["snapshot"].tolist() == list(cats)
    assert counts.drop(columns="snapshot").sum(axis=1).tolist() == tr.groupby("snapshot").size().tolist()
    first = versions.first_tf2_version_counts(tr)
    assert first.drop(columns="snapshot").to_numpy().sum() == tr["first_tf2_version"].notna().sum()
    cov = versions.variant_coverage_by_snapshot(cats)
    assert set(cov["snapshot"]) == set(cats)
    g = versions.growth(cats)
    shares = versions.variant_shares(g.summary)
    assert list(shares.columns) == ["snapshot", "variant", "share"] and set(shares["variant"]) == set(versions.VARIANTS)


def _vi(verdicts, ours, theirs):
    return pd.DataFrame({"input": "Image", "task": [f"T{i}" for i in range(len(verdicts))], "verdict": verdicts,
                         "our_products": ours, "paper_products": theirs, "reason": "why"})


def _viii(verdicts):
    return pd.DataFrame({"algorithm": [f"A{i}" for i in range(len(verdicts))], "note_category": "n",
                         "verdict": verdicts, "reason": "absent"})


def _summary(assets, born, ge2, tfjs, lite):
    return pd.DataFrame({"snapshot": ["old", "new"], "assets": assets, "born_tf2": born,
                         "share_ge2_versions": ge2, "with_tfjs": tfjs, "with_lite": lite})


def test_the_reading_follows_the_tables():
    # made-up tables whose expected numbers follow from the literals by hand (200 - 100 assets added; 0.5 x 200 -
    # 0.1 x 100 = 90 born TF2); the same sentence over the real snapshots, against counts of the raw pages:
    # test_growth_and_its_reading_against_the_raw_pages
    summary = _summary([100, 200], [0.1, 0.5], [0.4, 0.3], [0.2, 0.1], [0.05, 0.1])
    text = versions.reading(_vi(["match", "mismatch", "mismatch"], [5, 9, 1], [5, 4, 2]), _viii(["match"] * 3), summary)
    assert "Table VIII reproduces exactly: all 3" in text
    assert "1 of the 3 Table VI rows match (Image T0); 1 grew" in text and "1 differs otherwise (Image T2: why)" in text
    assert "falls from 40% to 30%" in text and "of the 100 assets added, 90 (90%) were born as TF2" in text
    assert "TF.js variant falls from 20% to 10%, with a Lite variant rises from 5% to 10%" in text
    other = versions.reading(_vi(["match"], [5], [5]), _viii(["match", "mismatch"]),
                             _summary([100, 100], [0.1, 0.1], [0.3, 0.4], [0.1, 0.1], [0.1, 0.1]))
    assert "1 of the 2 Table VIII rows" in other and "A1 (n: absent)" in other and "rises from 30% to 40%" in other
    assert "assets added" not in other and "stays from 10% to 10%" in other


def test_paper_share_reading_and_draft_numbers():
    text = versions.paper_share_reading(paper.version_statistics())
    biggest = paper.version_statistics().sort_values("products", ascending=False).iloc[0]
    assert text.split(": ", 1)[1].startswith(f"{biggest['task']} {biggest['share_ge2_versions']:.0%} of {biggest['products']}")
    numbers = versions.draft_numbers(_summary([100, 200], [0.1, 0.5], [0.4, 0.3], [0.2, 0.1], [0.05, 0.1]),
                                     _viii(["match", "mismatch"]))
    assert numbers["rq3_assets_latest"][0] == 200 and numbers["rq3_multi_version_percent_oldest"][2] == "{:.0f}"
    assert numbers["rq3_viii_rows"][0] == 2 and numbers["rq3_viii_rows_match"][0] == 1


# --- Tables VI and VIII and the 2020 -> 2024 growth against the raw pages and the paper's text ----------------------
# Expected values counted on ../shared/zoo-snapshots/ with tests/raw_sources.py (headings and metadata comments read
# with a regular expression, no study.zoos code) and read from the paper's text (not study.paper / data/paper/).

TFHUB_TYPE = {"video-generator": "video-generation"}  # the paper's "Video / Generator" row is TF Hub's video-generation


def _page_types(inp: str, label: str) -> set[str]:
    """The TF Hub module types a Table VI row names: its task and each parenthesised one, as slugs with the input in
    front ('Image', 'Generator (Image-rnn-agent)' -> image-generator, image-rnn-agent)."""
    out = set()
    for name in [label.split(" (")[0], *re.findall(r"\(([^)]+)\)", label)]:
        s = name.lower().replace(" ", "-")
        s = s if s.startswith(inp.lower() + "-") else f"{inp.lower()}-{s}"
        out.add(TFHUB_TYPE.get(s, s))
    return out


@needs_shared
@needs_snapshots
def test_table_vi_against_the_raw_pages_and_the_paper_text():
    mods = raw_sources.by_handle(raw_sources.tfhub_pages(raw_sources.TFHUB / "2020-08-26"))
    cat = catalog.load_shipped("tfhub", "2020-08-26")
    ours = versions.compare_version_statistics(versions.derive_version_statistics(cat), "2020-08-26")
    rows, typ, inp = [], "", ""
    for r in raw_sources.paper_table("Table VI: Version Statistics of Products on AIHub"):
        typ, inp = r["Type"] or typ, r["Input"] or inp  # the first two columns span rows
        rows.append((typ, inp, r["DL Task"], r["# Products"], r["# Products >= 2 Versions"]))
    assert len(rows) == len(ours) == 9
    matches = 0
    for (typ, inp, label, printed, printed_ge2), got in zip(rows, ours.itertuples()):
        assert (got.type, got.input, got.task) == (typ, inp, label.split(" (")[0])
        types = _page_types(inp, label)
        products = [ps for ps in mods.values() if ps[-1].first("module-type") in types]
        n, k = len(products), sum(len(ps) >= 2 for ps in products)
        assert (got.our_products, got.our_ge2_versions) == (n, k), (label, types)
        paper_n, paper_k = int(printed), raw_sources.leading_int(printed_ge2)
        assert (got.paper_products, got.paper_ge2_versions) == (paper_n, paper_k)
        assert (got.verdict == "match") == ((n, k) == (paper_n, paper_k)), label
        matches += got.verdict == "match"
    assert matches == 2  # Augmentation and Generator match; so the iff above is met by matches as well


@needs_shared
@needs_snapshots
def test_table_viii_against_the_raw_pages_and_the_paper_text():
    """Each Table VIII row: the family's members (IC and IFV) on the raw 2020 pages, and how many of them carry the
    paper's note word for word under the paper's '#### Version N' of their latest page's changelog."""
    pages = raw_sources.tfhub_pages(raw_sources.TFHUB / "2020-08-26")
    latest = {h: ps[-1] for h, ps in raw_sources.by_handle(pages).items()}
    cat = catalog.load_shipped("tfhub", "2020-08-26")
    fam = families.derive_families(cat, paper_rules=True)
    ours = versions.compare_version_notes(versions.classified_notes(cat), fam.members)
    rows = raw_sources.paper_table("Table VIII: Version Note and Modules")
    assert len(rows) == len(ours) == 10
    note = ""
    for r, got in zip(rows, ours.itertuples()):
        note = r["Version Notes"].strip('"') or note  # the note spans the rows of its families
        algorithm, quantised = r["Algorithm"].removesuffix(" (Quantized)"), r["Algorithm"].endswith("(Quantized)")
        version = int(r["Version Number"].removeprefix("V"))
        assert (got.algorithm, got.quantized, got.paper_version) == (algorithm, quantised, f"V{version}")
        members = set().union(*(raw_sources.imagenet_family(pages, algorithm, t, quantised)
                                for t in ("image-classification", "image-feature-vector")))
        with_note = {h for h in members if note in raw_sources.changelog(latest[h].text).get(version, "")}
        assert (got.family_members, got.members_with_note_at_version) == (len(members), len(with_note)), r
        assert (got.verdict == "match") == (bool(members) and with_note == members), r
    assert (ours["verdict"] == "match").all()  # every row matches (so the iff above is met by matches)


def _raw_growth(date: str) -> dict[str, float]:
    """What `versions.growth` reports for one snapshot, counted on the raw pages."""
    pages = raw_sources.tfhub_pages(raw_sources.TFHUB / date)
    mods = raw_sources.by_handle(pages)
    parents: dict[str, set[str]] = {}
    for p in pages:
        if p.kind in ("Tfjs", "Lite", "Coral"):
            name = p.first("parent-model").replace("&zwnj;", "")
            handle, _, last = name.rpartition("/")
            parents.setdefault(p.kind.lower(), set()).add(handle if last.isdigit() else name)
    n = len(mods)
    return {"assets": n, "asset_versions": sum(p.kind in ("Module", "Placeholder") for p in pages),
            "share_ge2_versions": sum(len(ps) >= 2 for ps in mods.values()) / n,
            "born_tf2": sum(ps[0].first("format") == "saved_model_2" for ps in mods.values()) / n,
            **{f"with_{k}": len(parents.get(k, set()) & set(mods)) / n for k in ("tfjs", "lite", "coral")}}


@needs_snapshots
def test_growth_and_its_reading_against_the_raw_pages():
    dates = ("2020-08-26", "2024-03-18")
    g = versions.growth({d: catalog.load_shipped("tfhub", d) for d in dates})
    s = g.summary.set_index("snapshot")
    raw = {d: _raw_growth(d) for d in dates}
    for d in dates:
        for key, value in raw[d].items():
            assert s.loc[d, key] == pytest.approx(value), (d, key)
    # the sentence quotes those counts: shares as whole percents, the assets added and how many were born TF2
    text = versions.reading(_vi(["match"], [5], [5]), _viii(["match"]), g.summary)
    old, new = raw[dates[0]], raw[dates[1]]
    for key in ("share_ge2_versions", "with_tfjs", "with_lite"):
        assert f"from {old[key]:.0%} to {new[key]:.0%}" in text, key
    added = new["assets"] - old["assets"]
    born = round(new["born_tf2"] * new["assets"]) - round(old["born_tf2"] * old["assets"])
    assert f"of the {added} assets added, {born} ({born / added:.0%}) were born as TF2" in text
