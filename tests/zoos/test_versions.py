"""study.zoos.versions: Table VI generalised, version-note categories, format transitions, deployment variants."""
from __future__ import annotations

import pandas as pd
import pytest

from study.zoos import catalog, families, versions
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
