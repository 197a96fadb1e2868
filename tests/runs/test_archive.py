"""`make artifact` (`study.runs.artifact`), its format and `study verify` (`study.runs.archive`), the RO-Crate metadata
(`study.runs.rocrate`) and the evaluation report (`study.runs.badges`)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from study.cli import main
from study.errors import StudyError
from study.runs import archive, artifact, compare, rocrate, verdict
from tests import results_folder
from tests.runs import reference_run

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1"
skipped="2" tests="10" time="12.5"></testsuite></testsuites>"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A results folder judged against its reference, with an executed notebook and a figure, and its archive."""
    root = tmp_path_factory.mktemp("artifact")
    run = reference_run.made(root, results_folder.build(root / "built" / "results"))
    verdict.write(verdict.against(run.results, run.profile, ref=run.reference), run.results)
    (run.results / "notebooks").mkdir()
    (run.results / "notebooks" / "04_case_study_finetuning.ipynb").write_text('{"cells": []}')
    figures = root / "figures"
    figures.mkdir()
    (figures / "table_ix.pdf").write_bytes(b"%PDF-1.4 a figure")
    (run.results / artifact.JUNIT).write_text(JUNIT)
    made = artifact.build(run.profile, root / "study.zip", results=run.results, figures=figures)
    return run.results, made.path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_archive_holds_the_run_and_every_file_is_in_the_manifest(built):
    _, path = built
    got = members(path)
    listed = json.loads(got.pop(archive.MANIFEST))["files"]
    assert set(listed) == set(got)
    for part in ("results/manifest.json", "results/tables/table_ix_finetuning.csv", "results/snapshot.json",
                 "results/verdict/verdict.json", "notebooks/04_case_study_finetuning.ipynb", "figures/table_ix.pdf",
                 "requirements/lock.txt", "web/package-lock.json", "CITATION.cff", "LICENSE", "Makefile",
                 rocrate.METADATA, ".zenodo.json", "EVALUATION.md"):
        assert part in got, part
    assert archive.verify(path).files == len(got)
    assert main(["verify", str(path)]) == 0


def test_one_byte_changed_fails_verify_naming_the_file(built, tmp_path, capsys):
    _, path = built
    got = members(path)
    name = "results/tables/table_ix_finetuning.csv"
    data = bytearray(got[name])
    data[10] ^= 0x01
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w") as zf:
        for member, content in got.items():
            zf.writestr(member, bytes(data) if member == name else content)
    with pytest.raises(StudyError, match=rf"{name} does not match its checksum in MANIFEST.json"):
        archive.verify(changed)
    assert main(["verify", str(changed)]) == 2 and name in capsys.readouterr().err


def test_a_byte_flipped_inside_the_archive_file_fails_naming_the_member(built, tmp_path):
    _, path = built
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("EVALUATION.md")
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 5  # inside its data
    raw[offset] ^= 0xFF
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(StudyError, match="EVALUATION.md"):
        archive.verify(flipped)


def test_an_unlisted_or_missing_file_fails(built, tmp_path):
    _, path = built
    got = members(path)
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(extra, "w") as zf:
        for member, content in got.items():
            zf.writestr(member, content)
        zf.writestr("results/numbers/smuggled.json", b"{}")
    with pytest.raises(StudyError, match="results/numbers/smuggled.json is in the archive but not listed"):
        archive.verify(extra)
    missing = tmp_path / "missing.zip"
    with zipfile.ZipFile(missing, "w") as zf:
        for member, content in got.items():
            if member != "LICENSE":
                zf.writestr(member, content)
    with pytest.raises(StudyError, match="LICENSE is listed in MANIFEST.json but not in the archive"):
        archive.verify(missing)
    with pytest.raises(StudyError, match="is not a zip archive"):
        archive.verify(Path(__file__))


def test_an_archive_compared_with_the_folder_it_came_from_is_identical(built, capsys):
    results, path = built
    got = compare.compare(path, results)
    assert len(got.rows) > 200 and (got.rows["label"] == "identical").all()
    assert main(["compare", str(path), str(results)]) == 0
    assert f"every one of {len(got.rows)} cells is identical or within noise" in capsys.readouterr().out


def test_make_reproduce_judges_a_run_against_an_archive_as_against_a_reference(built):
    results, path = built
    got = verdict.against(results, reference_run.PROFILES["embedded"], ref=path)
    assert got.status == "compared" and got.cells > 200 and got.counts["identical"] == got.cells
    assert str(path) in got.headline()


def test_the_ro_crate_metadata_is_json_ld_with_the_required_root_entities(built):
    _, path = built
    got = members(path)
    crate = json.loads(got[rocrate.METADATA])
    assert rocrate.problems(crate) == []
    by_id = {e["@id"]: e for e in crate["@graph"]}
    assert crate["@context"] == "https://w3id.org/ro/crate/1.1/context"
    assert by_id["ro-crate-metadata.json"]["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.1"}
    root = by_id["./"]
    assert root["@type"] == "Dataset" and root["license"]["@id"] == "https://spdx.org/licenses/Apache-2.0"
    parts = {p["@id"] for p in root["hasPart"]}
    assert parts == set(got) - {rocrate.METADATA, archive.MANIFEST}  # every file but the descriptor and manifest
    table = by_id["results/tables/table_ix_finetuning.csv"]
    listed = json.loads(got[archive.MANIFEST])["files"]
    assert table["sha256"] == listed["results/tables/table_ix_finetuning.csv"]["sha256"]
    (action,) = [e for e in crate["@graph"] if e["@type"] == "CreateAction"]
    assert action["instrument"] == {"@id": "Makefile"} and {"@id": "results/verdict/verdict.json"} in action["result"]
    assert {"@id": "requirements/lock.txt"} in action["object"]
    broken = {**crate, "@graph": [e for e in crate["@graph"] if e["@id"] != "./"]}
    assert "no root Dataset ./" in rocrate.problems(broken)


def test_the_evaluation_report_puts_each_badge_beside_its_evidence(built):
    _, path = built
    got = members(path)
    report = got["EVALUATION.md"].decode()
    rows = {line.split(" | ")[0].strip("| "): line for line in report.splitlines() if line.startswith("| ")}
    assert {"Available", "Functional", "Reusable", "Results Reproduced"} <= set(rows)
    assert "7 passed, 1 failed, 0 errors, 2 skipped" in rows["Functional"]
    verdict_json = json.loads(got["results/verdict/verdict.json"])
    assert f"{verdict_json['cells']} cells, {verdict_json['cells']} identical" in rows["Results Reproduced"]
    assert f"{len(json.loads(got[archive.MANIFEST])['files'])} files" in rows["Available"]
    zenodo = json.loads(got[".zenodo.json"])
    assert zenodo["license"] == "Apache-2.0" and zenodo["creators"] and zenodo["upload_type"] == "dataset"


def test_no_results_is_one_clear_error(tmp_path):
    with pytest.raises(StudyError, match="has no manifest.json: no results to archive"):
        artifact.build(reference_run.PROFILES["embedded"], tmp_path / "a.zip", results=tmp_path / "none")
    assert not (tmp_path / "a.zip").exists()


def test_the_artifact_command_writes_the_archive_and_says_what_it_lacks(built, tmp_path, monkeypatch, capsys):
    results, _ = built
    monkeypatch.setenv("STUDY_RESULTS_DIR", str(results))
    monkeypatch.setenv("STUDY_FIGURES_DIR", str(tmp_path / "no-figures"))
    out = tmp_path / "cli.zip"
    assert main(["artifact", "--profile", "embedded", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out) and f"python -m study verify {out}" in printed.err
    if not artifact.DRAFT.is_file():
        assert "warning: the archive lacks the draft PDF" in printed.err
    assert archive.verify(out).files == len(members(out)) - 1
