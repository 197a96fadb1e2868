"""Every notebook, executed through papermill with its smallest parameters (profile="smoke")."""
from __future__ import annotations

import json

import pytest

from study.reproduce import notebooks
from study.report import read_manifest

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
