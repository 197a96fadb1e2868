"""study.zoos.catalog: TF Hub / PyTorch Hub pages -> tidy tables, on fixture pages and (when present) the real snapshots."""
from __future__ import annotations

import gzip
import re

import pandas as pd
import pytest

from tests import raw_sources
from tests.conftest import needs_snapshots
from study.zoos import catalog
from study.zoos.catalog import CatalogError
from study.config import ROOT

FIX = ROOT / "tests" / "fixtures" / "zoo"
TF2020, TF2024, PT = FIX / "tfhub" / "2020", FIX / "tfhub" / "2024", FIX / "pytorch-hub"
FIRST_SEEN = FIX / "tfhub" / "first-seen.csv"


def test_one_vocabulary_for_both_schemas():
    assert catalog.slug("MobileNet V2") == "mobilenet-v2"
    assert catalog.slug("ImageNet (ILSVRC-2012-CLS)") == "imagenet-ilsvrc-2012-cls"
    assert catalog._values("dataset", ["Wikipedia, BooksCorpus, Stories"]) == ["wikipedia", "bookscorpus", "stories"]
    assert catalog._values("format", ["hub"]) == ["hub-module"]
    assert catalog._values("format", ["saved_model_2"]) == ["saved-model-2"]
    assert catalog.clean_text("google/&zwnj;imagenet") == "google/imagenet"


def test_tfhub_2020_schema_versions_changelog_and_variants():
    cat = catalog.build("tfhub", TF2020)
    v = cat["versions"]
    # publisher and collection pages are parsed but are not assets
    assert cat.parsed == 6 and cat.skipped == 0 and len(v) == 3
    row = v[(v["handle"] == "google/imagenet/mobilenet_v2_100_224/classification") & (v["version"] == 3)].iloc[0]
    assert "&zwnj;" not in row["handle"] and row["task"] == "image-classification"
    assert (row["architecture"], row["dataset"], row["format"]) == ("mobilenet-v2", "imagenet-ilsvrc-2012-cls",
                                                                    "hub-module")
    assert row["fine_tunable"] is True or row["fine_tunable"] == True  # noqa: E712
    notes = cat["changelog"]
    mine = notes[notes["handle"] == row["handle"]]
    assert list(mine["version"]) == [1, 2, 3, 3]
    assert mine["note"].iloc[1] == "Fixed broken UPDATE_OPS for fine-tuning, GitHub issue 86."
    assert not notes["note"].str.contains("reference|hub.Module\\(", case=False).any()
    d = cat["variants"].iloc[0]
    assert (d["handle"], d["version"], d["variant"]) == (row["handle"], 3, "tfjs")


def test_tfhub_2024_schema_malformed_page_first_seen_and_as_of():
    cat = catalog.build("tfhub", TF2024, FIRST_SEEN)
    assert cat.skipped == 1 and len(cat.warnings) == 1
    w = cat.warnings[0]
    assert w.path.endswith("broken/1.md") and w.line == 4 and "not closed" in w.message
    v = cat["versions"]
    assert set(v["handle"]) == {"google/nnlm-en-dim50", "google/nnlm-en-dim128-with-normalization"}
    assert v.set_index(["handle", "version"]).loc[("google/nnlm-en-dim50", 2), "format"] == "saved-model-2"
    # a wrapped metadata value is still one comment: the Lite page parses
    assert set(cat["variants"]["variant"]) == {"lite", "coral"}
    old = cat.as_of("2021-01-01")
    assert list(old["versions"]["version"]) == [1, 1] and old["variants"].empty
    assert set(old["changelog"]["version"]) == {1}
    with pytest.raises(CatalogError, match="--strict"):
        catalog.build("tfhub", TF2024, strict=True)
    with pytest.raises(CatalogError, match="YYYY-MM-DD"):
        cat.as_of("01/01/2021")


def test_pytorch_hub_call_forms():
    cat = catalog.build("pytorch-hub", PT)
    w = cat.warnings[0]
    assert cat.parsed == 1 and cat.skipped == 1 and w.path == "broken_frontmatter.md" and w.line >= 3
    page = cat["pages"].iloc[0]
    assert (page["title"], page["tags"], page["repo"], page["ref"]) == ("Demo Nets", "vision;scriptable",
                                                                        "demo/nets", "v1.0")
    m = cat["members"].set_index("member")
    assert m.loc["demonet18", "source"] == "call"
    assert m.loc["demonet50", "commented"] and m.loc["demonet101", "source"] == "commented-call"  # 2-line comment
    assert m.loc["demonet34_bn", "source"] == "variable-list"
    assert {"demo_cpu", "demo_gpu", "demo_mobile"} <= set(m.index)
    assert m.loc["GAN[model_name=faces-512]", "commented"]
    assert m.loc["demo_ssd[model_math=fp16]", "source"] == "prose"  # repo_or_dir= / model= keywords too
    assert m.loc["demo_processing_utils", "utility"]
    assert m.loc["demo-base-cased", "entrypoint"] == "tokenizer"
    assert not any(n.startswith("./") or n == "tokenizer" for n in m.index)  # local paths are not members


def test_shipped_catalogs_are_small_derived_tables():
    total = 0
    for (zoo, date) in catalog.SNAPSHOTS:
        cat = catalog.load_shipped(zoo, date)
        assert all(len(df) for df in cat.tables.values())
        for name in catalog.TABLE_NAMES[zoo]:
            path = catalog.shipped_path(zoo, date, name)
            total += path.stat().st_size
            text = gzip.decompress(path.read_bytes()).decode()
            assert "## Overview" not in text and "```" not in text  # facts, not page copies
    assert total < 3_000_000
    assert (catalog.ZOO_DATA / "README.md").read_text().count("e6bdf737") == 1


@needs_snapshots
@pytest.mark.parametrize("zoo,date", list(catalog.SNAPSHOTS))
def test_real_snapshot_parses_and_matches_the_shipped_catalog(zoo, date, tmp_path):
    """Regenerate and diff: the committed catalog is, row by row and cell by cell, what the parser derives from
    ../shared today (one hand-edited cell, or a parser change not shipped, fails here)."""
    cat = catalog.snapshot_catalog(zoo, date)
    assert cat.skipped == 0 and not cat.warnings
    shipped = catalog.load_shipped(zoo, date)
    fresh = catalog.write_catalog(cat, tmp_path / f"{zoo}_{date}.csv.gz")
    for name, path in zip(catalog.TABLE_NAMES[zoo], fresh):
        a, b = cat[name], shipped[name]
        assert list(a.columns) == list(b.columns)
        derived = gzip.decompress(path.read_bytes()).decode().splitlines()
        committed = gzip.decompress(catalog.shipped_path(zoo, date, name).read_bytes()).decode().splitlines()
        differ = [(i + 1, c, d) for i, (c, d) in enumerate(zip(committed, derived)) if c != d]
        assert len(derived) == len(committed) and not differ, (
            f"data/zoo/{catalog.shipped_path(zoo, date, name).name}: {len(committed)} lines committed, {len(derived)} "
            f"derived; first differing lines (line, committed, derived): {differ[:3]}; rebuild with "
            f"`python -m study catalog ship`")
    if zoo == "tfhub":
        assert cat["versions"]["first_seen_date"].notna().all()
        assert {"tfjs", "lite", "coral"} <= set(cat["variants"]["variant"])


# --- the parser against the raw pages, read without it (tests/raw_sources.py) --------------------------------------
# The test above proves shipped == parser(../shared); these prove parser(../shared) == what the pages say, counted
# with a few regular expressions that share no code with study.zoos.

FORMATS = {"hub": "hub-module", "saved_model_2": "saved-model-2", "saved_model": "saved-model"}  # page -> catalog


def _handle_version(name: str) -> tuple[str, int | None]:
    """'a/b/3' -> ('a/b', 3); a parent named without its version -> (name, None)."""
    handle, _, last = name.replace("&zwnj;", "").rpartition("/")
    return (handle, int(last)) if last.isdigit() else (name, None)


def _tidy(note: str) -> str:
    return " ".join(note.replace("*", " ").replace("`", "").split())


@needs_snapshots
@pytest.mark.parametrize("date", [d for z, d in catalog.SNAPSHOTS if z == "tfhub"])
def test_tfhub_catalog_against_the_raw_pages(date):
    pages = raw_sources.tfhub_pages(raw_sources.TFHUB / date)
    cat = catalog.snapshot_catalog("tfhub", date)  # the parser on ../shared (shipped == this: the test above)
    v = cat["versions"]
    # one row per asset page, '# Module' or '# Placeholder' heading: handle, version, kind
    assets = [p for p in pages if p.kind in ("Module", "Placeholder")]
    assert len(v) == len(assets) > 1000
    assert set(zip(v["handle"], v["version"], v["page_kind"])) == \
        {(p.handle, p.version, p.kind.lower()) for p in assets}
    # the format comment of every module page, in the catalog's vocabulary
    fmt = {(p.handle, p.version): FORMATS[p.first("format")] for p in assets if p.kind == "Module"}
    mods = v[v["page_kind"] == "module"]
    assert dict(zip(zip(mods["handle"], mods["version"]), mods["format"])) == fmt
    # deployment variants: one per '# Tfjs' / '# Lite' / '# Coral' page, attached to its parent-model comment
    variants = [p for p in pages if p.kind in ("Tfjs", "Lite", "Coral")]
    d = cat["variants"]
    parents = sorted((p.kind.lower(), *_handle_version(p.first("parent-model"))) for p in variants)
    ours = [(k, h, None if pd.isna(ver) else int(ver)) for k, h, ver in zip(d["variant"], d["handle"], d["version"])]
    assert len(variants) > 400 and sorted(ours, key=str) == sorted(parents, key=str)
    # changelog: the versions of each asset's latest page's changelog, every note word for word in its version
    logs = {h: raw_sources.changelog(ps[-1].text)
            for h, ps in raw_sources.by_handle(assets, ("Module", "Placeholder")).items()}
    c = cat["changelog"]
    assert set(zip(c["handle"], c["version"])) == {(h, ver) for h, log in logs.items() for ver in log}
    assert [r.note for r in c.itertuples() if _tidy(r.note) not in logs[r.handle][r.version]] == []


_CALL = re.compile(r"""^\s*[^#\s].*torch\.hub\.load\(\s*['"]([^'":]+)(?::([^'"]+))?['"]\s*,\s*['"]([^'"]+)['"]""")


@needs_snapshots
@pytest.mark.parametrize("date", [d for z, d in catalog.SNAPSHOTS if z == "pytorch-hub"])
def test_pytorch_hub_catalog_against_the_raw_pages(date):
    files = sorted((raw_sources.PYTORCH_HUB / date).glob("*.md"))
    cat = catalog.snapshot_catalog("pytorch-hub", date)  # the parser on ../shared (shipped == this: the test above)
    pages = cat["pages"].set_index("page")
    assert sorted(pages.index) == [f.stem for f in files]  # one row per page
    assert {f.stem: raw_sources.front_matter(f)["title"] for f in files} == pages["title"].to_dict()
    lines = {f.stem: f.read_text(encoding="utf-8").splitlines() for f in files}
    # every torch.hub.load('repo[:ref]', 'entrypoint' on a line that is not a comment is a member, not commented out
    calls = {(page, m[1], m[2] or "", m[3])
             for page, text in lines.items() for line in text if (m := _CALL.match(line))}
    assert len(calls) > 30
    m = cat["members"]
    live = m[~m["commented"]]
    assert calls <= set(zip(live["page"], live["repo"], live["ref"].fillna(""), live["entrypoint"]))
    # and a member read from a call points at a line that makes that call
    for r in m[m["source"] == "call"].itertuples():
        here = lines[r.page][r.line - 1:r.line + 3]
        quoted = {f"'{r.entrypoint}'", f'"{r.entrypoint}"'}
        assert "torch.hub.load" in here[0] and any(q in " ".join(here) for q in quoted), r
