"""Saving what a notebook produces: tables (CSV + LaTeX booktabs), figures (PDF + PNG) and named numbers.

Every saved artefact gets an entry in `results/manifest.json`: the producing notebook, its
parameters, the git commit, the time and checksums of its inputs. A reader of the paper draft can go
from a figure to the notebook and inputs that made it.
"""
from __future__ import annotations

import datetime as dt
import json
import numbers
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from study import failpoints, files
from study.assets.folder import active_provenance
from study.config import DEFAULT_PROFILE, ROOT, figures_dir, results_dir
from study.errors import StudyError
from study.files import checksum  # one home for input checksums (the manifest, study.cache.keys)

# A number's name: snake_case, as the paper draft turns it into a LaTeX macro (study.draft.document.macro_name).
NUMBER_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def and_list(items: Iterable[object]) -> str:
    """Items as prose: 'a', 'a and b', 'a, b and c' (for generated readings, `Report.text`)."""
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def git_commit() -> str:
    """HEAD of the project checkout, with '-dirty' when the tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@dataclass
class Report:
    """The outputs of one notebook run."""

    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    results: Path = field(default_factory=results_dir)
    figures: Path = field(default_factory=figures_dir)

    def __post_init__(self) -> None:
        self.results = Path(self.results)
        self.figures = Path(self.figures)

    @property
    def manifest_path(self) -> Path:
        return self.results / "manifest.json"

    def table(self, df: pd.DataFrame, name: str, *, inputs: Iterable[str | Path] = (),
              caption: str | None = None, float_format: str = "{:.2f}") -> list[Path]:
        """Write `df` as `results/tables/<name>.csv` and `.tex` (booktabs) and record both."""
        failpoints.reached("report.table")
        base = self.results / "tables" / name
        csv_path = files.write_csv(base.with_suffix(".csv"), df)
        latex = df.to_latex(index=False, escape=True, caption=caption, label=f"tab:{name}",
                            float_format=float_format.format, na_rep="--")
        tex_path = files.write_text(base.with_suffix(".tex"), latex)
        self._record([csv_path, tex_path], "table", inputs, caption=caption or df.attrs.get("source"))
        return [csv_path, tex_path]

    def figure(self, fig, name: str, *, inputs: Iterable[str | Path] = (), caption: str | None = None) -> list[Path]:
        """Write `fig` as `figures/<name>.pdf` (for the draft) and `.png`, and record both."""
        from study.plots import saved_box, text_problems  # heavy (matplotlib, seaborn): only when drawing

        # overlapping texts and fonts below 7 pt as printed: recorded (tests/test_notebooks.py fails on them);
        # `size_in` tells the draft the figure's own size. Its draw gives the tight box both formats save.
        layout, box = text_problems(fig), saved_box(fig)
        paths = []
        for suffix in (".pdf", ".png"):
            path = self.figures / f"{name}{suffix}"
            files.atomic_write(path, lambda tmp, s=suffix: fig.savefig(tmp, format=s[1:], bbox_inches=box))
            paths.append(path)
        self._record(paths, "figure", inputs, caption=caption, extra={"layout": layout})
        return paths

    def number(self, name: str, value: int | float | str, *, fmt: str | None = None,
               inputs: Iterable[str | Path] = (), description: str | None = None) -> Path:
        """Write one value the paper draft's prose quotes as `results/numbers/<name>.json` and record it.

        `fmt` formats it for the text (default: integers with thousands separators, floats with 2 decimals,
        strings as they are; NaN as 'n/a'); the draft uses it as the macro `study.draft.document.macro_name(name)`.
        """
        if not NUMBER_NAME.fullmatch(name):
            raise StudyError(f"number name {name!r} (notebook {self.notebook}) must be snake_case: lower-case letters, "
                             "digits and single underscores, starting with a letter, e.g. 'families_tfhub_2020'")
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise StudyError(f"number {name!r} (notebook {self.notebook}) must be an int, float or str, "
                             f"not {type(value).__name__}; convert it (e.g. int(n), float(x), str(s)) first")
        value = value if isinstance(value, str) else (int(value) if isinstance(value, numbers.Integral) else float(value))
        if fmt is None:
            fmt = "{:,}" if isinstance(value, int) else "{:.2f}" if isinstance(value, float) else "{}"
        missing = isinstance(value, float) and value != value  # NaN: e.g. a correlation over < 3 members
        record = {"name": name, "value": None if missing else value, "text": "n/a" if missing else fmt.format(value),
                  "description": description}
        path = files.write_text(self.results / "numbers" / f"{name}.json", json.dumps(record, indent=2) + "\n")
        self._record([path], "number", inputs, caption=description)
        return path

    def numbers(self, values: Mapping[str, tuple], *, inputs: Iterable[str | Path] = ()) -> list[Path]:
        """`number` for each `name: (value, description)` or `name: (value, description, fmt)` of `values` (a
        library function's draft numbers, e.g. `study.zoos.families.draft_numbers`)."""
        inputs = list(inputs)
        return [self.number(name, v[0], description=v[1], fmt=v[2] if len(v) > 2 else None, inputs=inputs)
                for name, v in values.items()]

    def text(self, name: str, markdown: str, *, inputs: Iterable[str | Path] = ()):
        """A notebook's reading of its results, generated from them (never typed: tests/test_notebook_prose.py):
        written as `results/text/<name>.md`, recorded, and returned as Markdown for the notebook to show."""
        from IPython.display import Markdown

        if not NUMBER_NAME.fullmatch(name):
            raise StudyError(f"text name {name!r} (notebook {self.notebook}) must be snake_case, e.g. 'rq1_reading'")
        path = files.write_text(self.results / "text" / f"{name}.md", markdown.strip() + "\n")
        self._record([path], "text", inputs, caption=None)
        return Markdown(markdown)

    def _record(self, paths: list[Path], kind: str, inputs: Iterable[str | Path], caption: str | None,
                extra: dict[str, Any] | None = None) -> None:
        entry = {**(extra or {}),
            "kind": kind,
            "notebook": self.notebook,
            "parameters": self.parameters,
            "git_commit": git_commit(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "inputs": {_display(Path(p)): checksum(p) for p in inputs},
            "caption": caption,
        }

        # the paper profile's offline asset folder: which bytes the results came from, and whether they are the
        # test fixture's stand-ins (never to be read as the paper's protocol)
        entry |= active_provenance()
        with files.locked(self.manifest_path):
            manifest = read_manifest(self.manifest_path)
            for p in paths:
                manifest["artifacts"][_display(p)] = {**entry, "sha256": files.sha256(p)}
            files.write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")


def read_manifest(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else results_dir() / "manifest.json"
    if not path.exists():
        return {"artifacts": {}}
    return json.loads(path.read_text())


# --- One notebook's output as another's input ------------------------------------------------------------------
INPUT_REF = re.compile(r"(?P<notebook>\d\d)[A-Za-z0-9_]*:(?P<name>[A-Za-z0-9_]+)")


@dataclass(frozen=True)
class NotebookOutput:
    """An artefact another notebook wrote (`"04:table_ix_finetuning"`), found in results/manifest.json for one
    profile and checked unchanged since it was recorded."""

    ref: str
    path: Path
    entry: dict[str, Any]

    def recorded_input(self, name: str) -> Path:
        """The input named `name` (a file name) the artefact was made from, checked unchanged since then."""
        for shown, digest in self.entry.get("inputs", {}).items():
            path = Path(shown) if Path(shown).is_absolute() else ROOT / shown
            if path.name == name:
                if not path.is_file() or checksum(path) != digest:
                    raise StudyError(f"{path}, the input of {self.ref}, changed since notebook {self.entry['notebook']} "
                                     f"used it; run that notebook again ({_rerun(self.entry)})")
                return path
        raise StudyError(f"{self.ref} ({self.path}) records no input named {name}; run notebook "
                         f"{self.entry['notebook']} again with this version of the study ({_rerun(self.entry)})")


def _rerun(entry: dict[str, Any]) -> str:
    profile = entry.get("parameters", {}).get("profile", DEFAULT_PROFILE)
    return f"python -m study reproduce --profile {profile} --only {entry['notebook'][:2]} --force"


def notebook_output(ref: str, profile: str, manifest: str | Path | None = None) -> NotebookOutput:
    """The artefact `ref` ("NN:name": notebook NN's table or number `name`) of the same `profile`, from the manifest.
    Missing, made with another profile, or changed on disk since: one StudyError naming the notebook to run."""
    m = INPUT_REF.fullmatch(ref.strip())
    if not m:
        raise StudyError(f"notebook input {ref!r} is not NOTEBOOK:ARTEFACT (e.g. '04:table_ix_finetuning')")
    nb, name = m["notebook"], m["name"]
    run = f"python -m study reproduce --profile {profile} --only {nb}"
    manifest = Path(manifest) if manifest else results_dir() / "manifest.json"
    found = [(Path(p) if Path(p).is_absolute() else ROOT / p, e) for p, e in read_manifest(manifest)["artifacts"].items()
             if e.get("notebook", "").startswith(nb) and Path(p).stem == name and Path(p).suffix in (".csv", ".json")]
    if not found:
        raise StudyError(f"{manifest} has no artefact {name!r} of notebook {nb}: run that notebook first ({run})")
    same = [(p, e) for p, e in found if e.get("parameters", {}).get("profile") == profile]
    if not same:
        other = sorted({e.get("parameters", {}).get("profile") for _, e in found})
        raise StudyError(f"{name!r} of notebook {nb} in {manifest} was made with profile {', '.join(map(str, other))}, "
                         f"not {profile}: run that notebook with this profile ({run})")
    path, entry = same[0]
    if not path.is_file() or files.sha256(path) != entry.get("sha256"):
        raise StudyError(f"{path} ({ref}) is missing or changed since notebook {entry['notebook']} wrote it: "
                         f"run it again ({run} --force)")
    return NotebookOutput(ref, path, entry)
