"""The paper draft: `paper/` (LaTeX) built into `paper/build/draft.pdf` from the study's own outputs.

Nothing in the draft is typed by hand that a notebook computed:
- numbers come from `Report.number(name, ...)` as macros, `macro_name(name)`, e.g. `families_tfhub_2020` ->
  `\\FamiliesTfhubTwoZeroTwoZero` (snake_case words capitalised and joined, every digit spelled out, because a
  LaTeX macro name holds letters only); a macro the draft uses that no notebook wrote is an error naming it;
- tables and figures come from `results/tables/<name>.tex` and `figures/<name>.pdf` via `\\studytable{name}` /
  `\\studyfigure{name}`, each captioned with its provenance from `results/manifest.json` (notebook, profile,
  commit, date) and checked against the manifest's checksum, so a changed or foreign file is never shown as
  the recorded one.
The build runs latexmk in a temporary sibling of `paper/build/` and swaps it in only when it succeeded: a failed
build keeps the previous PDF and leaves its log in `paper/build.failed/`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study import config, files, page
from study.draft import findings as draft_findings
from study.draft import first_run, reproducibility
from study.draft.floats import latex_escape, longtable, member_names, tabular_for_people
from study.errors import StudyError
from study.report import read_manifest
from study.runs.reproduce import notebooks

PAPER = config.ROOT / "paper"
DRAFT = "draft.tex"
BUILD = PAPER / "build"
TEX_PACKAGES = ("latexmk", "texlive-latex-recommended", "texlive-fonts-recommended", "poppler-utils")
INSTALL_HINT = "run: make tex (installs Debian's " + " ".join(TEX_PACKAGES) + " as root)"
LATEXMK_TIMEOUT_S = 300

DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")
# Capitalised control sequences the draft may use that are LaTeX's own, not generated numbers.
LATEX_CAPITALISED = frozenset({"LaTeX", "TeX", "Large", "LARGE", "Huge", "S", "P", "AA", "O", "L", "LTcapwidth",
                               "Delta", "Gamma", "Lambda", "Omega", "Phi", "Pi", "Psi", "Sigma", "Theta", "Upsilon", "Xi"})
FLOAT_USE = re.compile(r"\\study(table|figure)\{([^}]+)\}")
MACRO_USE = re.compile(r"\\([A-Z][A-Za-z]*)")
NEWCOMMAND = re.compile(r"\\(?:re)?newcommand\*?\{?\\([A-Za-z]+)")
# A number typed in the prose (sections/*.tex): digits standing alone, outside \ref{}/\cite{}/\study*{} arguments.
TYPED_NUMBER = re.compile(r"(?<![\w.\\])\d+(?:[.,]\d+)*(?!\w)")
KEY_ARGS = re.compile(r"\\(?:ref|eqref|cite[tp]?|label|studytable|studyfigure|input|href|url)\*?(?:\[[^]]*\])?\{[^}]*\}")
NAMED_NUMBERS = re.compile(r"Formula[~ ]\d")  # the paper's Formula 1 is a name, not a measurement
LATEX_ERROR = re.compile(r"^(?P<file>[^\s:]+\.tex):(?P<line>\d+): (?P<message>.*)$", re.M)


def macro_name(name: str) -> str:
    """`families_tfhub_2020` -> `FamiliesTfhubTwoZeroTwoZero`: words capitalised, each digit spelled out."""
    out = []
    for word in name.split("_"):
        for run in re.findall(r"[a-z]+|[0-9]", word.lower()):
            out.append(DIGITS[int(run)] if run.isdigit() else run.capitalize())
    return "".join(out)


@dataclass(frozen=True)
class Artifact:
    """One manifest entry the draft can use: a table (.tex), a figure (.pdf) or a number (.json)."""

    kind: str
    name: str
    path: Path
    entry: dict[str, Any]

    @property
    def notebook(self) -> str:
        return self.entry["notebook"]

    @property
    def profile(self) -> str:
        return str(self.entry.get("parameters", {}).get("profile", "unknown"))

    @property
    def papers_protocol(self) -> bool:
        """Made under the paper's protocol: the profile the manifest records is an online one."""
        recorded = config.PROFILES.get(self.profile)
        return recorded is not None and recorded.online

    @property
    def commit(self) -> str:
        commit = self.entry.get("git_commit", "unknown")
        return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "") if commit != "unknown" else commit

    @property
    def date(self) -> str:
        return str(self.entry.get("created", ""))[:10]

    @property
    def caption(self) -> str:
        return self.entry.get("caption") or self.name.replace("_", " ")

    @property
    def fixture(self) -> bool:
        """Made from the test-fixture asset folder (embedded stand-ins laid out as TF Hub's), not real assets."""
        return bool(self.entry.get("assets_fixture"))


FIXTURE_NOTE = "fixture assets: not the paper's protocol"


def provenance(art: Artifact) -> str:
    """The short source tag that ends every float's caption (as the PDF's text shows it); the full record (notebook
    file, profile, commit, date) is the provenance table of the Reproducibility section (`first_run.provenance_table`)."""
    return f"Source: {first_run.tag(art.notebook, art.profile, art.fixture)}."


PRIMARY = {".tex": "table", ".pdf": "figure", ".json": "number"}


def artifacts(results: Path | None = None) -> dict[tuple[str, str], Artifact]:
    """Every table, figure and number in `results/manifest.json`, keyed by (kind, name)."""
    manifest_path = Path(results or config.results_dir()) / "manifest.json"
    if not manifest_path.exists():
        raise StudyError(f"no {manifest_path}: the study has no results yet; run: make reproduce")
    found = {}
    for key, entry in read_manifest(manifest_path)["artifacts"].items():
        path = Path(key) if Path(key).is_absolute() else config.ROOT / key
        kind = PRIMARY.get(path.suffix)
        if kind == entry.get("kind"):
            found[(kind, path.stem)] = Artifact(kind, path.stem, path, entry)
    return found


@dataclass
class DraftSources:
    """What the draft's .tex files use: floats and capitalised macros, each with where it is first used."""

    floats: dict[tuple[str, str], str] = field(default_factory=dict)
    macros: dict[str, str] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)
    typed: dict[str, str] = field(default_factory=dict)  # numbers typed in the prose


def _is_build(name: str, paper_dir: Path, out: Path | None = None) -> bool:
    """A build folder (paper/build, build.failed, the temporary .build.*) or generated output, not a source."""
    return name.startswith(("build", ".", "generated")) or (out is not None and paper_dir / name == out)


INPUT = re.compile(r"\\input\{([^}]+)\}")


def source_files(paper_dir: Path, main: str = DRAFT) -> list[Path]:
    """`main` and every source it \\inputs, recursively (not the generated files): what one document uses."""
    seen, todo = [], [Path(paper_dir) / main]
    while todo:
        tex = todo.pop(0)
        if tex in seen or not tex.is_file():
            continue
        seen.append(tex)
        for name in INPUT.findall(re.sub(r"(?<!\\)%.*", "", tex.read_text(encoding="utf-8"))):
            if not name.startswith("generated/"):
                todo.append(Path(paper_dir) / (name if name.endswith(".tex") else f"{name}.tex"))
    return seen


def scan_sources(paper_dir: Path, main: str = DRAFT) -> DraftSources:
    found = DraftSources()
    for tex in source_files(paper_dir, main):
        for lineno, line in enumerate(tex.read_text(encoding="utf-8").splitlines(), 1):
            line = re.sub(r"(?<!\\)%.*", "", line)  # comments
            where = f"{shown_path(tex)}:{lineno}"
            for kind, name in FLOAT_USE.findall(line):
                found.floats.setdefault((kind, name), where)
            found.defined.update(NEWCOMMAND.findall(line))
            for m in MACRO_USE.findall(line):
                found.macros.setdefault(m, where)
            if tex.parent.name == "sections":
                for number in TYPED_NUMBER.findall(NAMED_NUMBERS.sub("", KEY_ARGS.sub("", line))):
                    found.typed.setdefault(number, where)
    return found


def shown_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(config.ROOT))
    except ValueError:
        return str(path)


@dataclass
class Selection:
    """The artefacts the draft uses and those of the profile it does not."""

    used: list[Artifact]
    numbers: list[Artifact]
    unused: list[Artifact]


def select(sources: DraftSources, arts: dict[tuple[str, str], Artifact], prof: config.Profile) -> Selection:
    """Match the draft's uses to the manifest: one error listing every missing, stale or foreign artefact."""
    profile = prof.name  # as the manifest records it
    numbers = {macro_name(a.name): a for (k, _), a in sorted(arts.items()) if k == "number" and a.profile == profile}
    clashes = _clashes([a for (k, _), a in arts.items() if k == "number" and a.profile == profile])
    problems = [f"numbers {' and '.join(c)} give the same macro \\{macro_name(c[0])}; rename one" for c in clashes]
    used = []
    for (kind, name), where in sources.floats.items():
        art = arts.get((kind, name))
        if art is None:
            problems.append(f"{kind} '{name}' ({where}) is produced by no notebook (not in results/manifest.json)")
        elif art.profile != profile:
            problems.append(f"{kind} '{name}' ({where}) comes from profile {art.profile}, not {profile}")
        else:
            used.append(art)
    reserved = sources.defined | LATEX_CAPITALISED | set(profile_macros(prof))
    for macro, where in sources.macros.items():
        if macro in numbers or macro in reserved:
            continue
        other = next((a for (k, _), a in arts.items() if k == "number" and macro_name(a.name) == macro), None)
        why = f"comes from profile {other.profile}, not {profile}" if other else "is produced by no notebook"
        problems.append(f"macro \\{macro} ({where}) {why}; a notebook must write it with "
                        f"report.number(...) (names map by study.draft.document.macro_name)")
    problems += [f"number {n} is typed by hand ({where}); write it with report.number(...) in the notebook that "
                 "computes it and use its macro" for n, where in sources.typed.items()]
    used_numbers = [a for m, a in numbers.items() if m in sources.macros]
    for art in used + used_numbers:
        if not art.path.exists():
            problems.append(f"{shown_path(art.path)} ({art.kind} of {art.notebook}) is missing")
        elif files.sha256(art.path) != art.entry.get("sha256"):
            problems.append(f"{shown_path(art.path)} changed since {art.notebook} recorded it in the manifest")
    if problems:
        raise StudyError("the draft does not match the study's results:\n  " + "\n  ".join(problems)
                         + f"\n  fix the draft (paper/) or re-run the notebooks: make reproduce PROFILE={profile}")
    used_keys = {(a.kind, a.name) for a in used + used_numbers}
    unused = [a for key, a in sorted(arts.items()) if a.profile == profile and key not in used_keys]
    return Selection(used, sorted(numbers.values(), key=lambda a: a.name), unused)


def _clashes(numbers: Iterable[Artifact]) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    out = []
    for a in numbers:
        m = macro_name(a.name)
        if m in seen and seen[m] != a.name:
            out.append((seen[m], a.name))
        seen.setdefault(m, a.name)
    return out


def profile_macros(profile: config.Profile, fixture_origin: str | None = None) -> dict[str, str]:
    """Macros the title page and captions use to state the profile (generated, never typed); `fixture_origin`:
    some results come from the test-fixture asset folder (its lock's origin), which page 1 then says."""
    label = ("" if profile.online else
             f"These are \\textbf{{{profile.name}}} results, not the paper's protocol: "
             "no number here may be read as the paper's measurement.")
    if fixture_origin is not None:
        label = (f"These results come from the \\textbf{{test-fixture asset folder}} ({latex_escape(fixture_origin)}): "
                 f"embedded stand-ins laid out as TF Hub's, \\textbf{{{latex_escape(FIXTURE_NOTE)}}}. " + label).strip()
    return {"StudyProfile": profile.name, "StudyProfileDescription": latex_escape(profile.description),
            "StudyProfileLabel": label}


def numbers_tex(numbers: list[Artifact], profile: config.Profile, used: list[Artifact] = ()) -> str:
    lines = ["% generated by study.draft.document from results/numbers/ (Report.number); do not edit"]
    fixture = next((str(a.entry.get("assets_origin", "")) for a in [*numbers, *used] if a.fixture), None)
    for name, value in profile_macros(profile, fixture).items():
        lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
    for a in numbers:
        text = json.loads(a.path.read_text())["text"]
        lines.append(f"\\newcommand{{\\{macro_name(a.name)}}}{{{latex_escape(text)}}}"
                     f"  % {a.name} ({a.notebook})")
    return "\n".join(lines) + "\n"


# --- floats ------------------------------------------------------------------------------------------------------

# Where a float goes: the body's float where it fits (top, bottom or a page of floats); the appendix's exactly where
# it stands (float.sty's H), in the order of the notebook: its dozens of floats never queue up past LaTeX's limit
# of unprocessed floats (the smoke draft's appendix did, once the wide tables became portrait floats).
BODY_PLACEMENT, APPENDIX_PLACEMENT = "tbp", "H"


def table_tex(art: Artifact, link: str, placement: str = BODY_PLACEMENT) -> str:
    """The table artefact as a longtable in its smallest honest setting, captioned with its source tag."""
    return ("% generated by study.draft.document from " + shown_path(art.path) + "\n"
            + longtable(tabular_for_people(art.path), latex_escape(art.caption), latex_escape(art.caption),
                        f"tab:{art.name}", provenance_tex(art, link), placement))


def _printed_width(art: Artifact) -> str:
    """The figure at its own width (fonts print at the size they were drawn), at most the text width."""
    size = art.entry.get("layout", {}).get("size_in")
    return rf"{min(size[0], page.TEXT_WIDTH_IN):.2f}in" if size else r"\linewidth"


def figure_tex(art: Artifact, link: str, graphic: str, placement: str = BODY_PLACEMENT) -> str:
    return "\n".join([
        "% generated by study.draft.document from " + shown_path(art.path),
        rf"\begin{{figure}}[{placement}]", r"\centering",  # not h: after a longtable it may overfill the page
        rf"\includegraphics[width={_printed_width(art)},height={page.FIGURE_MAX_HEIGHT_FRACTION}\textheight,"
        rf"keepaspectratio]{{{graphic}}}",
        rf"\caption[{latex_escape(art.caption)}]{{{latex_escape(art.caption)}. {provenance_tex(art, link)}}}"
        rf"\label{{fig:{art.name}}}",
        r"\end{figure}",
    ]) + "\n"


def provenance_tex(art: Artifact, link: str) -> str:
    """`provenance(art)` as LaTeX: the tag hyperlinked to the notebook file, the profile in bold unless `paper`."""
    nb, profile = f"NB{art.notebook[:2]}", latex_escape(art.profile)
    profile = profile if art.papers_protocol else rf"\textbf{{{profile}}}"
    fixture = r" \textbf{fixture}" if art.fixture else ""
    return rf"Source: \href{{run:{link}}}{{{nb}}} {profile}{fixture}."


# --- the build ----------------------------------------------------------------------------------------------------

@dataclass
class Build:
    pdf: Path
    log: Path
    seconds: float
    used: list[Artifact]  # in the body
    appendix: list[Artifact]  # the complete material
    unused: list[Artifact]  # of the profile, in neither (notebook 10's shortlist)
    warnings: list[str]
    body_pages: int | None = None


def missing_results(profile: config.Profile, results: Path | None = None) -> list[str]:
    """Notebooks with no artefact of `profile` in the manifest (empty: the draft can be built)."""
    try:
        arts = artifacts(results)
    except StudyError:
        arts = {}
    have = {a.notebook for a in arts.values() if a.profile == profile.name}
    return [nb.stem for nb in notebooks() if nb.stem not in have]


def check_tools() -> None:
    missing = [tool for tool in ("latexmk", "pdflatex", "bibtex") if shutil.which(tool) is None]
    if missing:
        raise StudyError(f"{', '.join(missing)} not found: the paper draft needs TeX Live; {INSTALL_HINT}")


# Notebooks 01-09 are the study: each of their tables, figures and numbers is in the body or the appendix. Notebook
# 10 is a team's own shortlist: its memo is a document of its own.
STUDY_NOTEBOOK = re.compile(r"0[1-9]_")
APPENDIX_LABEL = "studyappendix"  # paper/sections/appendix.tex: where the appendix starts (the body's page count)


def complete_material(sel: Selection, strict: bool = False) -> tuple[list[Artifact], list[Artifact], list[str]]:
    """The study's artefacts the body does not show (tables and figures, for the appendix) and all its numbers, each
    checked unchanged since recorded; and the problems. `strict`: any problem is an error naming the artefact."""
    placed, numbers, problems = [], [], []
    for art in sel.unused + sel.numbers:
        if not STUDY_NOTEBOOK.match(art.notebook) or art in placed or art in numbers:
            continue
        if not art.path.exists() or files.sha256(art.path) != art.entry.get("sha256"):
            problems.append(f"{art.kind} {art.name} of {art.notebook} ({shown_path(art.path)}) is missing or changed "
                            f"since recorded: re-run that notebook")
        elif art.kind == "number":
            numbers.append(art)
        elif art.kind in ("table", "figure"):
            placed.append(art)
    if strict and problems:
        raise StudyError("the draft cannot show every result of notebooks 01-09 (STRICT):\n  " + "\n  ".join(problems))
    return placed, numbers, problems


def appendix_tex(placed: list[Artifact], numbers: list[Artifact]) -> str:
    """The complete material, notebook by notebook (each float referenced from the body or listed here), and every
    generated number with its notebook: paper/sections/appendix.tex inputs it."""
    out = ["% generated by study.draft.document: every table and figure of notebooks 01-09 not in the body; do not edit"]
    for notebook in sorted({a.notebook for a in placed}):
        out.append(rf"\subsection{{Notebook \nb{{{latex_escape(notebook)}}}}}")
        out += [rf"\study{a.kind}{{{a.name}}}" for a in placed if a.notebook == notebook]
    if numbers:
        rows = [rf"\texttt{{{latex_escape(a.name)}}} & {latex_escape(json.loads(a.path.read_text())['text'])} & "
                rf"{latex_escape(a.entry.get('caption') or '')} & \nb{{{latex_escape(a.notebook[:2])}}} \\"
                for a in sorted(numbers, key=lambda a: (a.notebook, a.name))]
        out += [r"\subsection{Every generated number}", r"\begin{studynarrow}{4}",
                r"\begin{longtable}{>{\raggedright\arraybackslash}p{0.3\studytw}>{\raggedleft\arraybackslash}p{0.12\studytw}"
                r">{\raggedright\arraybackslash}p{0.5\studytw}>{\raggedright\arraybackslash}p{0.08\studytw}}",
                r"\caption{Every number the notebooks generated (the prose quotes them as macros)}\\",
                r"\toprule Name & Value & What & NB \\ \midrule \endhead", *rows, r"\bottomrule", r"\end{longtable}",
                r"\end{studynarrow}"]
    return "\n".join(out) + "\n"


def body_pages(build_dir: Path, main: str = DRAFT) -> int | None:
    """Pages before the appendix (from the .aux: the page of APPENDIX_LABEL)."""
    aux = Path(build_dir) / Path(main).with_suffix(".aux").name
    m = re.search(rf"\\newlabel\{{{APPENDIX_LABEL}\}}\{{\{{[^}}]*\}}\{{(\d+)\}}", aux.read_text()) if aux.exists() else None
    return int(m.group(1)) - 1 if m else None


MEMO = "memo.tex"  # a product team's decision memo for notebook 10's shortlist


def build(profile: config.Profile, *, paper_dir: Path = PAPER, out: Path | None = None,
          results: Path | None = None, figures: Path | None = None, strict: bool = False,
          main: str = DRAFT, reference: str | Path | None = None) -> Build:
    """Generate the macros and floats, run latexmk, and swap the result in for `out` (default paper/build/).
    Every artefact of notebooks 01-09 the body does not use goes to the generated appendix; `strict`: one that
    cannot (missing, changed since recorded) is an error naming it. The Reproducibility section compares the
    results with `reference` (a results folder or snapshot; default: the run before this one in results/history/,
    `study.draft.reproducibility`); without one it says so."""
    paper_dir = Path(paper_dir)
    out = Path(out or paper_dir / ("build" if main == DRAFT else f"build-{Path(main).stem}"))
    check_tools()
    if not (paper_dir / main).exists():
        raise StudyError(f"no {paper_dir / main}: the document's sources are missing")
    sel = select(scan_sources(paper_dir, main), artifacts(results), profile)
    appendix, all_numbers, problems = complete_material(sel, strict) if main == DRAFT else ([], [], [])
    start = time.perf_counter()
    with files.atomic_dir(out) as tmp:
        for src in paper_dir.iterdir():  # the draft's own sources, not its build folders
            if not _is_build(src.name, paper_dir, out):
                (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp / src.name)
        gen = tmp / "generated"
        (gen / "floats").mkdir(parents=True)
        (gen / "figures").mkdir()
        files.write_text(gen / "numbers.tex", numbers_tex(sel.numbers, profile, sel.used))
        files.write_text(gen / "appendix.tex", appendix_tex(appendix, all_numbers))
        if main == DRAFT:
            files.write_text(gen / "reproducibility.tex", reproducibility.section_tex(results, reference))
            generated_sections(gen, Path(results or config.results_dir()), profile, sel.used + appendix)
        for art in sel.used + appendix:
            link = os.path.relpath(config.NOTEBOOKS / f"{art.notebook}.ipynb", out)
            placement = APPENDIX_PLACEMENT if art in appendix else BODY_PLACEMENT
            if art.kind == "table":
                text = table_tex(art, link, placement)
            else:
                shutil.copy2(art.path, gen / "figures" / art.path.name)
                text = figure_tex(art, link, f"generated/figures/{art.path.stem}", placement)
            files.write_text(gen / "floats" / f"{art.kind}-{art.name}.tex", text)
        warnings = _latexmk(tmp, paper_dir, out, main) + problems
    seconds = time.perf_counter() - start
    shutil.rmtree(out.parent / f"{out.name}.failed", ignore_errors=True)
    placed = {(a.kind, a.name) for a in appendix + all_numbers}
    stem = Path(main).stem
    return Build(out / f"{stem}.pdf", out / f"{stem}.log", seconds, sel.used, appendix,
                 [a for a in sel.unused if (a.kind, a.name) not in placed], warnings,
                 body_pages(out, main) if main == DRAFT else None)


def generated_sections(gen: Path, results: Path, profile: config.Profile, shown: list[Artifact]) -> None:
    """The draft's generated prose: the findings and the abstract's opening (this run's findings), the case study's
    reading, and the first-run part of the Reproducibility section with the provenance record of `shown`."""
    found = draft_findings.glance(results, profile)
    files.write_text(gen / "findings.tex", draft_findings.findings_tex(found))
    files.write_text(gen / "abstract_findings.tex", draft_findings.abstract_tex(found, profile)
                     + reproducibility.verdict_sentence(results) + "\n")
    files.write_text(gen / "case_reading.tex", draft_findings.case_reading_tex(results, profile))
    ix = next((a for a in shown if a.kind == "table" and a.name == "table_ix_finetuning"), None)
    csv = ix.path.with_suffix(".csv") if ix else None
    weights = None
    if csv is not None and csv.is_file():
        import pandas as pd

        table = pd.read_csv(csv)
        weights = table["weights"] if "weights" in table.columns else None
    files.write_text(gen / "first_run.tex", first_run.section_tex(results, profile, shown, weights))


def _latexmk(tmp: Path, paper_dir: Path, out: Path, main: str = DRAFT) -> list[str]:
    """Run latexmk in `tmp`; on failure keep `tmp` as `<out>.failed/` and raise one error naming file, line, log."""
    env = {**os.environ, "max_print_line": "10000", "error_line": "254", "half_error_line": "238"}
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-bibtex", main]
    stem = Path(main).stem
    try:
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=LATEXMK_TIMEOUT_S)
        failed = proc.returncode != 0
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        failed, output = True, f"latexmk did not finish within {LATEXMK_TIMEOUT_S} s"
    log_text = (tmp / f"{stem}.log").read_text(errors="replace") if (tmp / f"{stem}.log").exists() else ""
    problems = log_problems(log_text)
    if not failed and not problems:
        return [line for line in log_text.splitlines() if "Overfull" in line or "Warning" in line]
    failed_dir = out.parent / f"{out.name}.failed"
    shutil.rmtree(failed_dir, ignore_errors=True)
    os.replace(tmp, failed_dir)
    log = failed_dir / f"{stem}.log"
    m = LATEX_ERROR.search(log_text)
    if m:
        where = _source_of(m.group("file"), paper_dir, failed_dir)
        what = f"LaTeX error in {where} line {m.group('line')}: {m.group('message').strip()}"
    elif problems:
        what = "LaTeX finished with " + "; ".join(problems[:5])
    else:
        what = "latexmk failed: " + (output.strip().splitlines() or ["no output"])[-1]
    kept = f"the previous {shown_path(out / f'{stem}.pdf')} is kept" if (out / f"{stem}.pdf").exists() else "no PDF yet"
    raise StudyError(f"{what}\n  log: {shown_path(log)} ({kept})")


def _source_of(tex: str, paper_dir: Path, failed_dir: Path) -> str:
    """A .tex path from the log, as the file the user edits (paper/...) or the generated copy."""
    rel = Path(tex.removeprefix("./"))
    return shown_path(paper_dir / rel) if (paper_dir / rel).exists() else shown_path(failed_dir / rel)


def log_problems(log_text: str) -> list[str]:
    """Undefined references / citations / control sequences and missing files in a LaTeX log."""
    pats = [r"Reference `[^']+' on page \d+ undefined", r"Citation `[^']+' on page \d+ undefined",
            r"Undefined control sequence", r"File `[^']+' not found", r"There were undefined references"]
    return sorted({m.group(0) for p in pats for m in re.finditer(p, log_text)})


def pdf_pages(pdf: Path) -> int | None:
    if shutil.which("pdfinfo") is None:
        return None
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    m = re.search(r"^Pages:\s+(\d+)", info, re.M)
    return int(m.group(1)) if m else None


# --- what a reader sees: no raw identifier outside code ----------------------------------------------------------
# A key of the study's data as the PDF's text would print it: a Table IX / X column key (`ix.delta_cpu`), or a
# snake_case token (`litert_full_int8`, `noise_model`, `input_size`); file names (with an extension) are not keys.
RAW_KEY = re.compile(r"(?<![\w./\\-])((?:ix|x)\.[a-z][a-z_]*|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w/]|\.[a-z]{2,5}\b)")
TEXTTT = re.compile(r"\\(?:texttt|nb)\{((?:[^{}]|\{[^{}]*\})*)\}")


def code_set(build_dir: Path) -> set[str]:
    """Every name the draft sets as code: the \\texttt / \\nb arguments of its sources and generated files (with the
    generated macros' values put in), unescaped."""
    build_dir = Path(build_dir)
    macros = dict(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{([^\n]*)\}", (build_dir / "generated" / "numbers.tex").read_text())) \
        if (build_dir / "generated" / "numbers.tex").exists() else {}
    found = set()
    for tex in build_dir.rglob("*.tex"):
        for arg in TEXTTT.findall(tex.read_text(encoding="utf-8", errors="replace")):
            arg = re.sub(r"\\([A-Za-z]+)", lambda m: macros.get(m.group(1), m.group(0)), arg)
            arg = re.sub(r"\\[A-Za-z]+(\{\})?", "", arg.replace(r"\_", "_"))
            found |= set(RAW_KEY.findall(arg)) | {arg.strip()}  # the whole name too: its segments are code
    return found


def raw_identifiers(text: str, code: set[str] = frozenset()) -> dict[str, int]:
    """Raw keys (`RAW_KEY`) in a PDF's text that the draft did not set as code, with how often each is printed. A
    code name broken across lines (or shortened by a figure, `v2_035_224`) leaves pieces: a piece that begins or ends
    a code name (or a segment of a path or dotted name set as code) at an underscore is that name, and so is any
    piece of a member name (a figure's rotated tick labels come out of the PDF broken at any letter: `t_v`)."""
    names = {seg for name in code | set(member_names()) for seg in re.split(r"[/.=;,]+", name) if "_" in seg}
    pieces = {"_".join(parts[i:j]) for name in names
              for parts in [name.split("_")] for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)
              if i == 0 or j == len(parts)}
    counts: dict[str, int] = {}
    members = set(member_names())
    for token in RAW_KEY.findall(text):
        if token not in code and token not in pieces and not any(token in name for name in members):
            counts[token] = counts.get(token, 0) + 1
    return counts


def landscape_pages(pdf: Path) -> int | None:
    """Pages set in landscape (wider than tall, or rotated by pdflscape), from `pdfinfo`."""
    if shutil.which("pdfinfo") is None:
        return None
    pages = pdf_pages(pdf) or 0
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", str(pages), str(pdf)], capture_output=True, text=True).stdout
    n = 0
    for m in re.finditer(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+).*\n^Page\s+\d+ rot:\s+(\d+)", info, re.M):
        w, h, rot = float(m.group(1)), float(m.group(2)), int(m.group(3))
        n += (w > h) != (rot % 180 == 90)
    return n
