"""Every notebook, executed through papermill with its smallest parameters (profile="smoke")."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from study.files import sha256
from study.reproduce import code_cells, notebooks
from study.report import ROOT, read_manifest

NOTEBOOKS = notebooks()


def test_there_is_a_notebook_per_study_part():
    stems = [nb.stem for nb in NOTEBOOKS]
    for part in ("rq1", "rq2", "rq3", "finetuning", "browser", "decision", "audit"):
        assert any(part in s for s in stems), f"no notebook for {part}: {stems}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_committed_clean_with_a_parameters_cell(nb):
    doc = json.loads(nb.read_text())
    code = [c for c in doc["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "commit notebooks without outputs"


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_and_saves_tables_and_figures(nb, smoke_notebooks):
    outcome = smoke_notebooks.outcomes[nb.stem]
    if isinstance(outcome, BaseException):
        pytest.fail(f"{nb.stem} failed: {type(outcome).__name__}: {outcome}")
    assert outcome.output.exists() and not outcome.cached
    kinds = {}
    for path, entry in read_manifest(smoke_notebooks.root / "results" / "manifest.json")["artifacts"].items():
        if entry["notebook"] == nb.stem:
            assert entry["parameters"]["profile"] == "smoke"
            kinds.setdefault(entry["kind"], []).append(path)
    assert kinds.get("figure"), f"{nb.stem} saved no figure"
    assert any(p.endswith(".pdf") for p in kinds["figure"]) and any(p.endswith(".png") for p in kinds["figure"])


# `report.table(df, "name"`, `report.figure(fig, f"name_{x}"`, `report.number("name", ...`: a literal (or f-string)
# name is what the notebook declares it writes
DECLARED = re.compile(r'report\.(?:(table|figure)\(\s*[^,()]+(?:\([^()]*\))?[^,()]*|(number)\()\s*,?\s*(f?)"([^"]+)"\s*[,)]')


def declared_artefacts(nb) -> list[tuple[str, re.Pattern]]:
    """(kind, pattern of the artefact's file stem) for every output a notebook's code names literally."""
    found = []
    for src in code_cells(nb):
        for table_or_figure, number, is_f, name in DECLARED.findall(src):
            kind = table_or_figure or number
            parts = re.split(r"\{[^{}]*\}", name) if is_f else [name]
            found.append((kind, re.compile(".+".join(map(re.escape, parts)))))
    return found


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_wrote_every_artefact_it_declares_and_skipped_no_part(nb, smoke_notebooks):
    """Each output the notebook's code names is in the manifest, its file is on disk with the recorded checksum,
    and no part of the notebook printed SKIPPED (a notebook whose own results went missing is not a pass)."""
    outcome = smoke_notebooks.outcomes[nb.stem]
    if isinstance(outcome, BaseException):
        pytest.fail(f"{nb.stem} failed: {type(outcome).__name__}: {outcome}")
    entries = {path: entry for path, entry in
               read_manifest(smoke_notebooks.root / "results" / "manifest.json")["artifacts"].items()
               if entry["notebook"] == nb.stem}
    for path, entry in entries.items():
        on_disk = Path(path) if Path(path).is_absolute() else ROOT / path
        assert on_disk.is_file() and sha256(on_disk) == entry["sha256"], f"{path}: missing or changed since recorded"
    stems = {(entry["kind"], Path(path).stem) for path, entry in entries.items()}
    missing = [pattern.pattern for kind, pattern in declared_artefacts(nb)
               if not any(k == kind and pattern.fullmatch(stem) for k, stem in stems)]
    assert not missing, f"{nb.stem} declares outputs it did not write: {missing}"
    executed = json.loads(outcome.output.read_text())
    printed = "\n".join(str(o.get("text", "")) + json.dumps(o.get("data", {}))
                        for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "SKIPPED" not in printed, f"{nb.stem}: a part was skipped: " + \
        next(line for line in printed.splitlines() if "SKIPPED" in line)


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_figures_have_no_overlapping_text_and_print_at_7_pt_or_more(nb, smoke_notebooks):
    """Every figure as the notebook drew it (study.plots.text_problems, recorded by Report.figure): no two texts'
    boxes intersect, and no text prints below study.page.MIN_PRINTED_PT at the size the draft places it."""
    if isinstance(smoke_notebooks.outcomes[nb.stem], BaseException):
        pytest.fail(f"{nb.stem} failed")
    problems = {}
    for path, entry in read_manifest(smoke_notebooks.root / "results" / "manifest.json")["artifacts"].items():
        if entry["notebook"] == nb.stem and entry["kind"] == "figure" and path.endswith(".pdf"):
            layout = entry.get("layout", {})
            if layout.get("overlaps") or layout.get("too_small"):
                problems[Path(path).stem] = {k: layout[k][:4] for k in ("overlaps", "too_small") if layout.get(k)}
    assert not problems, f"{nb.stem}: figures with overlapping or too small text: {problems}"
