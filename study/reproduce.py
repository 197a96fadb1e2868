"""Run the numbered notebooks in order through papermill; a failure names the notebook and the cell."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.config import NOTEBOOKS, check_profile_inputs, get_profile, results_dir
from study.errors import StudyError


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The study's notebooks in run order (`NN_name.ipynb`), optionally those whose name contains an `only` item."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        picked = [nb for nb in found if any(o in nb.stem for o in only)]
        if not picked:
            raise StudyError(f"no notebook matches {only}; notebooks: {', '.join(nb.stem for nb in found)}")
        return picked
    return found


@dataclass
class NotebookRun:
    notebook: str
    output: Path
    seconds: float


def run_notebook(notebook: Path, parameters: dict[str, Any], out_dir: Path | None = None) -> NotebookRun:
    """Execute one notebook with papermill into `out_dir` (default `results/notebooks/`)."""
    import papermill as pm  # heavy; only when running

    # Kernels inherit this environment: keep TensorFlow's C++ info/warning lines out of the run's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    out_dir = Path(out_dir or results_dir() / "notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                            cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        first_line = (exc.source or "").strip().splitlines()[:1]
        raise StudyError(
            f"notebook {notebook.name} failed in cell {exc.cell_index} (execution count {exc.exec_count}"
            f"{': ' + first_line[0] if first_line else ''}): {exc.ename}: {exc.evalue}\n"
            f"  executed copy with the traceback: {output}"
        ) from exc
    return NotebookRun(notebook.stem, output, time.perf_counter() - start)


def reproduce(profile: str = "embedded", only: list[str] | None = None,
              extra: dict[str, Any] | None = None, allowed: tuple[str, ...] | None = None) -> list[NotebookRun]:
    """Run every notebook (or `only` some) with `profile`; stop at the first failure."""
    prof = get_profile(profile, allowed)
    check_profile_inputs(prof)
    runs = []
    for nb in notebooks(only):
        print(f"[reproduce] {nb.name} (profile={prof.name}) ...", flush=True)
        run = run_notebook(nb, {"profile": prof.name, **(extra or {})})
        print(f"[reproduce] {nb.name} done in {run.seconds:.1f} s -> {run.output}", flush=True)
        runs.append(run)
    return runs
