"""study.zoos.families: grouping assets into families and what distinguishes the members (RQ2)."""
from __future__ import annotations

import pandas as pd
import pytest

from study.zoos import catalog, families
from tests import raw_sources
from tests.conftest import needs_shared, needs_snapshots
from study import paper
from study.zoos.catalog import CatalogError
from study.config import ROOT

FIX = ROOT / "tests" / "fixtures" / "zoo"


@pytest.mark.parametrize("name,algorithm", [
    ("resnet-v1-50", "resnet-v1"), ("ResNet V2 152", "resnet-v2"), ("efficientnet-b3", "efficientnet"),
    ("NASNet-A (large)", "nasnet-a"), ("bert_uncased_L-12_H-768_A-12", "bert"), ("albert_xxlarge", "albert"),
    ("resnet50x3-v2", "resnet-v2"), ("mobilenet-v2", "mobilenet-v2"), ("amoebanet-a-n-18-f-448", "amoebanet-a"),
    ("universal-sentence-encoder-multilingual-large", "universal-sentence-encoder-multilingual"),
])
def test_configuration_is_not_part_of_the_algorithm(name, algorithm):
    assert families.normalise_algorithm(name) == algorithm


def test_generic_architecture_falls_back_to_the_model_name():
    assert families.tfhub_algorithm("transformer", "google/albert_base") == "albert"
    assert families.tfhub_algorithm("mobilenet-v1", "google/imagenet/mobilenet_v1_025_128/classification") == "mobilenet-v1"


def test_member_differences():
    mob = families.member_differences(
        ["google/imagenet/mobilenet_v1_025_128/classification", "google/imagenet/mobilenet_v1_100_224/classification",
         "google/imagenet/mobilenet_v1_100_224/quantops/classification"], "image-classification", "mobilenet-v1")
    assert mob["google/imagenet/mobilenet_v1_025_128/classification"] == {"width": "025", "input_size": "128",
                                                                          "quantised": "no"}
    assert mob["google/imagenet/mobilenet_v1_100_224/quantops/classification"]["quantised"] == "yes"
    bert = families.member_differences(["google/bert_cased_L-12_H-768_A-12", "google/bert_uncased_L-24_H-1024_A-16"],
                                       "text-embedding", "bert")
    assert bert["google/bert_cased_L-12_H-768_A-12"] == {"cased": "yes", "layers": "12", "hidden_size": "768",
                                                         "attention_heads": "12"}
    gan = families.member_differences(["deepmind/biggan-128", "deepmind/biggan-512"], "image-generator", "biggan")
    assert gan["deepmind/biggan-512"] == {"output_size": "512"}
    assert families.difference_summary(mob) == "configuration: input_size, quantised, width"


def test_fixture_families_both_zoos():
    tf = families.derive_families(catalog.build("tfhub", FIX / "tfhub" / "2020"))
    (row,) = tf.families.itertuples()
    assert (row.task, row.algorithm, row.training_data, row.members) == ("image-classification", "mobilenet-v2",
                                                                         "imagenet-ilsvrc-2012-cls", 2)
    assert row.differences == "configuration: input_size, width" and row.output_formats == "hub.Module"
    ann = families.pytorch_annotations(FIX / "pytorch-hub" / "annotations.csv")
    pt = families.derive_families(catalog.build("pytorch-hub", FIX / "pytorch-hub"), annotations=ann).families
    by = pt.set_index("algorithm")
    assert by.loc["demonet", "members"] == 5 and by.loc["demo-ssd", "differences"] == "configuration: precision"
    assert by.loc["demo-gan", "differences"] == "output size: output_size"
    assert "demo-base-cased" not in ";".join(pt["member_names"])  # not annotated: left out, not guessed


def test_paper_rules_leave_out_assets_born_as_tf2():
    cat = catalog.build("tfhub", FIX / "tfhub" / "2024")
    assert families.derive_families(cat).families["members"].tolist() == [2]
    v = cat["versions"]
    cat.tables["versions"] = v[~((v["handle"] == "google/nnlm-en-dim50") & (v["version"] == 1))]
    assert families.derive_families(cat).families["members"].tolist() == [2]
    assert families.derive_families(cat, paper_rules=True).families.empty


def test_bad_annotation_table_is_one_clear_error(tmp_path):
    bad = tmp_path / "ann.csv"
    bad.write_text("page,member_pattern,task,algorithm,training_data,output_format\np,(unclosed,t,a,d,.pth\n")
    with pytest.raises(CatalogError, match=r"ann.csv:2: member_pattern"):
        families.pytorch_annotations(bad)


@pytest.mark.parametrize("zoo,date,tables", [("tfhub", "2020-08-26", {"I"}), ("pytorch-hub", "2019-12-12", {"II", "III"})])
def test_every_paper_row_beside_ours_from_the_shipped_catalog(zoo, date, tables):
    fams = families.derive_families(catalog.load_shipped(zoo, date), paper_rules=True)
    cmp = families.compare_with_paper(fams.families, zoo, date)
    assert len(cmp) == len(paper.families(catalog.ZOO_NAMES[zoo])) and set(cmp["table"]) == tables
    assert set(cmp["verdict"]) <= {"match", "mismatch", "missing"} and cmp["reason"].str.len().gt(0).all()
    v = cmp.set_index("algorithm")["verdict"]
    if zoo == "tfhub":
        assert v["MobileNet V1"] == "match" and v["MobileNet V2"] == "match" and v["BERT"] == "mismatch"
    else:
        assert (cmp[cmp["table"] == "II"]["verdict"] == "match").all()
        assert v["RoBERTa (by fairseq)"] == "match"


def test_paper_rows_get_their_task_from_the_crosswalk_and_sizes_sit_beside_ours():
    fam = paper.families()
    tasks = families.paper_family_tasks(fam)
    assert tasks.notna().all()  # every paper row is in the crosswalk
    by_algo = dict(zip(fam["algorithm"], tasks))
    assert by_algo["MobileNet V1"] == "image-classification" and by_algo["BERT"] == "text-embedding"
    ours = {("tfhub", "2020-08-26"): families.derive_families(catalog.load_shipped("tfhub", "2020-08-26"),
                                                             paper_rules=True)}
    sizes = families.family_sizes(fam, ours)
    assert list(sizes.columns) == ["source", "task", "members"]
    paper_side = sizes[sizes["source"].str.startswith("paper ")]
    assert len(paper_side) == fam["families"].sum()  # a row standing for n families counts n times
    assert set(sizes["source"]) == {"paper AIHub", "paper PyTorch Hub", "tfhub 2020-08-26"}
    growth = families.family_growth(ours)
    assert list(growth.columns) == ["source", "families", "members", "algorithms"]
    assert growth["families"].iloc[0] == len(ours[("tfhub", "2020-08-26")].families)
    extra = families.families_not_in_paper(ours)
    assert (extra["snapshot"] == "2020-08-26").all()
    cmp = families.compare_with_paper(ours[("tfhub", "2020-08-26")].families, "tfhub", "2020-08-26")
    counts = families.verdict_counts(cmp)
    assert counts["table"].tolist() == ["I"] and counts.drop(columns="table").sum(axis=1).iloc[0] == len(cmp)


def _paper_rows(zoo, members, algorithms=None):
    algorithms = algorithms or [f"A{i}" for i in range(len(members))]
    return pd.DataFrame({"zoo": zoo, "algorithm": algorithms, "members": members})


def test_the_largest_families_are_read_from_the_table_ties_included():
    fam = pd.concat([_paper_rows("Z1", [5, 40, 22, 9]), _paper_rows("Z2", [8, 3, 8, 2])], ignore_index=True)
    assert families.largest_paper_families(fam, "Z1")["algorithm"].tolist() == ["A1", "A2"]
    assert families.largest_paper_families(fam, "Z2")["algorithm"].tolist() == ["A0", "A2"]
    text = families.largest_reading(fam)
    assert "on Z1, A1 (40 members) and A2 (22 members)" in text and "on Z2, A0 and A2 (8 members each)" in text
    fam.loc[fam["algorithm"] == "A3", "members"] = 50  # another table: another sentence
    assert "on Z1, A3 (50 members) and A1 (40 members)" in families.largest_reading(fam)


def _compared(verdicts, reasons, table="I"):
    return pd.DataFrame({"table": table, "algorithm": [f"A{i}" for i in range(len(verdicts))],
                         "verdict": verdicts, "reason": reasons})


def test_the_comparison_reading_counts_matches_and_groups_the_reasons():
    t1 = _compared(["match", "mismatch", "mismatch"],
                   ["same members", "snapshot 2020-08-26 is later than the paper's data: more members; Small X; y",
                    "metadata: tagged otherwise"])
    t2 = _compared(["match", "match"], ["same members"] * 2, table="II")
    text = families.comparison_reading(t1, t2)
    assert "1 of the 3 rows of Table I and all 2 rows of Table II" in text and "The other 2 differ" in text
    assert f"{families.REASON_KINDS['snapshot']} (Table I A1)" in text
    assert f"{families.REASON_KINDS['metadata']} (Table I A2)" in text
    every = families.comparison_reading(t2)
    assert "all 2 rows of Table II." in every and "differ" not in every


def test_draft_numbers_per_zoo_snapshot_and_verdict():
    class F:
        def __init__(self, n):
            self.families = pd.DataFrame({"members": [2] * n})

    ours = {("tfhub", "2024-03-18"): F(5), ("tfhub", "2020-08-26"): F(3), ("pytorch-hub", "2019-12-12"): F(2),
            ("pytorch-hub", "2024-04-15"): F(4)}
    verdicts = pd.DataFrame({"table": ["I", "II"], "match": [3, 1], "mismatch": [1, 0]})
    numbers = families.draft_numbers(ours, verdicts)
    assert numbers["rq2_families_tfhub_oldest"][0] == 3 and numbers["rq2_families_tfhub_latest"][0] == 5
    assert numbers["rq2_families_pytorch_hub_latest"][0] == 4
    assert {k: v[0] for k, v in numbers.items() if k.startswith("rq2_paper")} == {
        "rq2_paper_rows": 5, "rq2_paper_rows_match": 4, "rq2_paper_rows_mismatch": 1, "rq2_paper_rows_missing": 0}


@needs_shared
@needs_snapshots
def test_table_i_imagenet_rows_against_the_raw_pages_and_the_paper_text():
    """Table I's ImageNet IC & IFV families: the members per task counted on the raw 2020 pages (tests/raw_sources.py,
    no parser), the paper's count read from its text; the verdict is `match` exactly when every task has the
    paper's count."""
    pages = raw_sources.tfhub_pages(raw_sources.TFHUB / "2020-08-26")
    printed = {r["Algorithm"]: raw_sources.leading_int(r["# Members"])
               for r in raw_sources.paper_table("Table I: Families in AIHub") if r["Training Data"] == "ImageNet"}
    fams = families.derive_families(catalog.load_shipped("tfhub", "2020-08-26"), paper_rules=True)
    cmp = families.compare_with_paper(fams.families, "tfhub", "2020-08-26").set_index("algorithm")
    checked = 0
    for algorithm in ("MobileNet V1", "MobileNet V2", "NasNet-A", "ResNet V1", "ResNet V2"):
        counts = {t: len(raw_sources.imagenet_family(pages, algorithm, t))
                  for t in ("image-classification", "image-feature-vector")}
        row = cmp.loc[algorithm]
        assert row["paper_members"] == printed[algorithm]
        assert row["our_members"] == "; ".join(f"{t}: {n}" for t, n in counts.items()), algorithm
        assert (row["verdict"] == "match") == (set(counts.values()) == {printed[algorithm]}), algorithm
        checked += row["verdict"] == "match"
    assert checked == 5  # all five match (so the iff above is not met by five mismatches on both sides)
