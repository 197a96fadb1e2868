"""The paper draft (study.draft.document): macros from Report.number, floats with their provenance, a real latexmk build."""
from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from study import config, files
from study.config import PROFILES
from study.draft import document, floats
from study.errors import StudyError
from study.report import Report, read_manifest


def test_macro_names_are_letters_only_and_deterministic():
    assert document.macro_name("families_tfhub_2020") == "FamiliesTfhubTwoZeroTwoZero"
    assert document.macro_name("rq1_matrix_ok") == "RqOneMatrixOk"
    assert re.fullmatch(r"[A-Za-z]+", document.macro_name("case_v2_100_160_accuracy"))


def test_number_writes_value_and_manifest_entry(outdirs):
    report = Report("99_test", parameters={"profile": "smoke"})
    path = report.number("families_tfhub_2020", 1018, description="families")
    assert json.loads(path.read_text())["text"] == "1,018"
    report.number("share_x", 0.8632, fmt="{:.1%}")
    report.number("rho", float("nan"))
    entry = read_manifest(outdirs["results"] / "manifest.json")["artifacts"][str(path)]
    assert entry["kind"] == "number" and entry["caption"] == "families" and entry["sha256"] == files.sha256(path)
    texts = {a.name: json.loads(a.path.read_text())["text"]
             for (k, _), a in document.artifacts(outdirs["results"]).items() if k == "number"}
    assert texts == {"families_tfhub_2020": "1,018", "share_x": "86.3%", "rho": "n/a"}
    with pytest.raises(StudyError, match="snake_case"):
        report.number("Families2020", 1)
    with pytest.raises(StudyError, match="int, float or str"):
        report.number("flag", True)


def test_select_names_a_missing_macro_and_warns_about_unused(outdirs, tmp_path):
    report = Report("99_test", parameters={"profile": "smoke"})
    report.number("families_tfhub_2020", 20)
    report.table(pd.DataFrame({"a": [1]}), "t_used", caption="Used")
    report.table(pd.DataFrame({"a": [1]}), "t_unused", caption="Unused")
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "draft.tex").write_text("\\newcommand{\\Mine}{x}\n\\FamiliesTfhubTwoZeroTwoZero \\Mine \\LaTeX\n"
                                     "\\studytable{t_used} % \\Commented\n")
    arts = document.artifacts(outdirs["results"])
    sel = document.select(document.scan_sources(paper), arts, PROFILES["smoke"])
    assert [a.name for a in sel.used] == ["t_used"] and [a.name for a in sel.unused] == ["t_unused"]
    (paper / "draft.tex").write_text("\\NoNotebookWroteThis\n\\studyfigure{nowhere}\n")
    with pytest.raises(StudyError) as err:
        document.select(document.scan_sources(paper), arts, PROFILES["smoke"])
    assert "\\NoNotebookWroteThis" in str(err.value) and "draft.tex:1" in str(err.value)
    assert "figure 'nowhere'" in str(err.value)
    with pytest.raises(StudyError, match="profile smoke, not embedded"):
        (paper / "draft.tex").write_text("\\studytable{t_used}\n")
        document.select(document.scan_sources(paper), arts, PROFILES["embedded"])


def test_a_number_typed_in_the_prose_is_an_error(outdirs, tmp_path):
    (tmp_path / "paper" / "sections").mkdir(parents=True)
    (tmp_path / "paper" / "draft.tex").write_text("\\input{sections/rq1}\n")  # what the document inputs is scanned
    (tmp_path / "paper" / "sections" / "rq1.tex").write_text(
        "Formula~1 on RQ1, see Table~\\ref{tab:t_2020}.\nOf the 38 members, 3.5\\,\\% ran.\n")
    with pytest.raises(StudyError) as err:
        document.select(document.scan_sources(tmp_path / "paper"), {}, PROFILES["smoke"])
    assert "number 38 is typed by hand (" in str(err.value) and "rq1.tex:2)" in str(err.value)
    assert "number 3.5 is typed" in str(err.value) and "number 1 " not in str(err.value)
    assert "2020" not in str(err.value)


def test_a_changed_artefact_is_not_shown_as_the_recorded_one(outdirs, tmp_path):
    csv, tex = Report("99_test", parameters={"profile": "smoke"}).table(pd.DataFrame({"a": [1]}), "t")
    tex.write_text(tex.read_text().replace("1", "2"))
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "draft.tex").write_text("\\studytable{t}\n")
    with pytest.raises(StudyError, match="changed since 99_test recorded it"):
        document.select(document.scan_sources(paper), document.artifacts(outdirs["results"]), PROFILES["smoke"])


def test_report_tables_parse_into_longtables(outdirs):
    df = pd.DataFrame({"model": ["mobilenet_v2_100_160"], "Δcpu": [3.5], "note": ["a & b, 50%"]})
    _, tex = Report("99_test", parameters={"profile": "smoke"}).table(df, "t", caption="C")
    art = document.artifacts(outdirs["results"])[("table", "t")]
    tab = floats.parse_tabular(tex.read_text(), "t")
    assert tab.header == [["model", "Δcpu", "note"]] and len(tab.rows) == 1 and tab.rows[0][2] == r"a \& b, 50\%"
    out = document.table_tex(art, "../../notebooks/99_test.ipynb")  # one row: a float that fits a page
    assert r"\begin{table}" in out and r"$\Delta$cpu" in out and "run:../../notebooks/99_test.ipynb" in out
    long = pd.DataFrame({"model": [f"m{i}" for i in range(80)], "note": "a note"})
    Report("99_test", parameters={"profile": "smoke"}).table(long, "t_long", caption="Long")
    out = document.table_tex(document.artifacts(outdirs["results"])[("table", "t_long")], "x")
    assert r"\begin{longtable}" in out and r"\endhead" in out  # longer than a page: it breaks and repeats its head


def test_citation_cff_is_valid_cff_1_2_and_cites_the_seed_paper():
    import jsonschema
    import yaml

    cff = yaml.safe_load((config.ROOT / "CITATION.cff").read_text())
    schema = json.loads((config.ROOT / "tests" / "fixtures" / "cff" / "schema-1.2.0.json").read_text())
    jsonschema.validate(cff, schema, format_checker=jsonschema.FormatChecker())
    seed = cff["references"][0]
    assert seed["title"] == "An Empirical Study on Release Engineering of Artificial Intelligence Products"
    assert seed["authors"][0]["family-names"] == "Xiu"


def test_fixture_assets_reach_the_manifest_every_caption_and_page_one(outdirs, tmp_path, monkeypatch):
    """Results made from the test-fixture asset folder say so: the manifest entry (lock digest, fixture, origin),
    every caption's provenance and the title page's label; real assets say nothing of the kind."""
    from study.assets import folder as af

    folder = tmp_path / "assets"
    folder.mkdir()
    af.write_lock(folder, af.AssetLock(source="tests: build_fixture_folder", fixture=True))
    monkeypatch.setenv(af.ASSETS_ENV, str(folder))
    Report("04_case_study_finetuning", {"profile": "paper"}).table(pd.DataFrame({"a": [1]}), "t", caption="T")
    entry = next(iter(read_manifest(outdirs["results"] / "manifest.json")["artifacts"].values()))
    assert entry["assets_fixture"] is True and entry["assets_origin"] == "tests: build_fixture_folder"
    assert entry["assets_lock"] == af.read_lock(folder).digest()
    (art,) = [a for a in document.artifacts(outdirs["results"]).values() if a.kind == "table"]
    assert document.provenance(art) == "Source: NB04 paper fixture." and "fixture" in document.provenance_tex(art, "x")
    label = document.profile_macros(PROFILES["paper"], "tests: build_fixture_folder")["StudyProfileLabel"]
    assert "test-fixture asset folder" in label and document.FIXTURE_NOTE in label
    assert "fixture" in document.numbers_tex([], PROFILES["paper"], [art])
    real = document.Artifact("table", "t", art.path, {**art.entry, "assets_fixture": False})
    assert "fixture" not in document.provenance(real) and document.profile_macros(PROFILES["paper"])["StudyProfileLabel"] == ""


# --- the Reproducibility section (study.draft.reproducibility) -----------------------------------------------------------

def test_reproducibility_section_without_a_reference_says_so(tmp_path):
    from study.draft import reproducibility
    from tests import results_folder

    results = results_folder.build(tmp_path / "results")
    assert reproducibility.reference_folder(results) is None  # no results/history/ yet
    tex = reproducibility.section_tex(results)
    assert "No reference run" in tex and "longtable" not in tex


def test_reproducibility_section_counts_labels_and_lists_every_flipped_row(tmp_path):
    from study.runs import compare
    from study.draft import reproducibility
    from tests import results_folder

    reference = results_folder.build(tmp_path / "reference")
    results = tmp_path / "results"
    shutil.copytree(reference, results)
    path = results / "tables" / "audit_paper_claims.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[df["claim_id"] == "VII-00", "reproduced"] = "no"
    files.write_csv(path, df)
    ix_path = results / "tables" / "table_ix_finetuning.csv"
    ix = pd.read_csv(ix_path)
    ix.loc[0, "delta_cpu"] = ix.loc[0, "delta_cpu"] * 10  # far beyond any noise
    files.write_csv(ix_path, ix)
    t = reproducibility.comparison_tables(reference, results)
    assert sorted(t.changed[["table", "row", "column", "label"]].values.tolist()) == \
        [["audit_paper_claims", "VII-00", "reproduced", "flipped"],
         ["table_ix_finetuning", ix.loc[0, "model"], "delta_cpu", "moved"]]
    assert int(t.counts["flipped"].sum()) == 1 and int(t.counts["cells"].sum()) == len(t.comparison.rows)
    tex = reproducibility.section_tex(results, reference)
    assert r"\label{tab:repro-counts}" in tex and r"\label{tab:repro-changed}" in tex
    assert "VII-00" in tex and "flipped" in tex and f"{len(t.comparison.rows)} cells" in tex
    assert "delta" not in tex and r"$\Delta$CPU (\%)" in tex  # a moved cell's column as a reader's header
    # no reference named: the snapshot before the latest in results/history/
    history = results / "history"
    for name in ("20260101T000000Z", "20260102T000000Z"):
        shutil.copytree(reference, history / name)
        (history / name / "snapshot.json").write_text('{"profile": "embedded"}')
    assert reproducibility.reference_folder(results) == history / "20260101T000000Z"
    assert compare.LABELS[0] == "identical"


def test_the_reproducibility_section_is_in_the_draft_before_the_threats():
    text = (document.PAPER / document.DRAFT).read_text()
    assert text.index(r"\input{sections/reproducibility}") < text.index(r"\input{sections/threats}")
    found = document.scan_sources(document.PAPER)
    assert not {n: w for n, w in found.typed.items() if "reproducibility" in w}


# --- what a reader sees (issue 40): every body figure referenced, body floats before the references, no raw key -----

BODY = [p for p in sorted((document.PAPER / "sections").glob("*.tex")) if p.stem != "appendix"]


def test_every_body_figure_is_referenced_with_a_sentence():
    prose = "\n".join(p.read_text() for p in BODY)
    figures = re.findall(r"\\studyfigure\{([^}]+)\}", prose)
    assert figures
    unreferenced = [f for f in figures if not re.search(rf"\\ref\{{fig:{re.escape(f)}\}}", prose)]
    assert not unreferenced, f"body figures never referenced in the text: {unreferenced}"
    for f in figures:  # the reference sits in a sentence of its own that says what to read in the figure
        sentence = re.search(rf"[^.]*\\ref\{{fig:{re.escape(f)}\}}[^.]*\.", prose, re.S).group(0)
        assert len(sentence.split()) >= 8, sentence


def test_the_body_floats_are_flushed_before_the_references():
    text = (document.PAPER / document.DRAFT).read_text()
    assert text.index(r"\clearpage") < text.index(r"\bibliography{")


def test_raw_identifiers_are_found_outside_code_and_names_as_code_pass():
    text = ("The ix.delta_cpu and x.gpu_memory keys, litert_full_int8, noise_model and input_size; "
            "mobilenet_v2_035_96 wrote table_ix.csv; results/history/ and e.g. the litert_\nfull_int8 again.")
    found = document.raw_identifiers(text, {"mobilenet_v2_035_96"})
    assert found == {"ix.delta_cpu": 1, "x.gpu_memory": 1, "litert_full_int8": 1, "full_int8": 1, "noise_model": 1,
                     "input_size": 1}
    assert document.raw_identifiers("v2_035_96 and mobilenet_v2_\n035_96") == {}  # pieces of a member's name
    assert document.raw_identifiers("Table IX ΔCPU, LiteRT full int8, the noise model.") == {}


def test_code_set_reads_texttt_and_macro_values(tmp_path):
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "numbers.tex").write_text("\\newcommand{\\DecisionPick}{mobilenet\\_v2\\_035\\_224}\n")
    (tmp_path / "a.tex").write_text("Chosen: \\texttt{\\DecisionPick}; \\texttt{noise\\_\\allowbreak{}model}.\n")
    assert {"mobilenet_v2_035_224", "noise_model"} <= document.code_set(tmp_path)
