"""What the Reproducibility section says of this run on its own, reference or not: the environment, the seeds, the
time per notebook, what failed, the noise this run measured from its own repeats, which inputs are synthetic; and the
full provenance record of every float (captions carry a short tag, `tag`).

Everything is read from the results folder (each notebook's run record `results/reproduce/<notebook>.json`, the
sweep's `sweep.json`, the manifest, the tables) and the profile (`study.profiles`): generated prose and tables, never
typed numbers. `section_tex` is what the draft inputs as `generated/first_run.tex`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from study import config
from study.cache import keys
from study.draft import labels
from study.draft.floats import Tabular, escape_with_code, latex_escape, longtable
from study.errors import StudyError
from study.report import notebook_output
from study.runs import history
from study.runs.reproduce import notebooks

LOCK = config.ROOT / "requirements" / "lock.txt"
KEY_PACKAGES = ("tensorflow-cpu", "tensorflow", "tf-keras", "tensorflow-hub", "torch", "numpy", "pandas", "papermill")
FAILED = frozenset({"failed", "error", "timeout", "timed_out", "stalled", "crashed", "stuck", "killed"})
MAX_ERRORS = 3  # distinct failure reasons named per table
MAX_REASON = 110  # characters of a failure reason (cut at a word)


def tag(notebook: str, profile: str, fixture: bool = False) -> str:
    """The short source tag of a caption: the notebook's number and the profile ("NB04 smoke")."""
    return f"NB{notebook[:2]} {profile}" + (" fixture" if fixture else "")


def _tab(df: pd.DataFrame, numeric: Iterable[str] = ()) -> Tabular:
    numeric = set(numeric)
    return Tabular("".join("r" if c in numeric else "l" for c in df.columns),
                   [[latex_escape(c) for c in df.columns]],
                   [[latex_escape(v) for v in row] for row in df.astype(str).itertuples(index=False)])


def records(results: Path) -> list[dict]:
    """Each notebook's run record (the last successful run), in `make reproduce` order; missing ones left out."""
    out = []
    for nb in notebooks():
        path = results / "reproduce" / f"{nb.stem}.json"
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def _sweep_info(results: Path, profile: config.Profile) -> dict:
    for path in sorted((results / "finetune").glob("*/sweep.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("config", {}).get("profile") == profile.name:
            return info
    return {}


def _pins(names: Sequence[str]) -> dict[str, str]:
    pins = {}
    if LOCK.is_file():
        for line in LOCK.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and name.strip().lower() in names:
                pins[name.strip().lower()] = version.split()[0].split(";")[0]
    return pins


def environment_text(results: Path, profile: config.Profile) -> str:
    """The machine (of the latest history snapshot, else the one building the draft, said so), the library versions
    the sweep recorded (else the lock file's pins) and whether the lock file is the one the notebooks ran with."""
    snaps = history.snapshots(results)
    machine = history.read_info(snaps[-1]).get("machine") if snaps else None
    whose = "the machine of this run (its history snapshot)"
    if not machine:
        machine, whose = keys.machine(), "the machine building this draft (no history snapshot records the run's)"
    m = escape_with_code(f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} usable cores, "
                         f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}")
    versions = _sweep_info(results, profile).get("versions") or {}
    source = "as the fine-tuning sweep recorded them"
    if not versions:
        versions, source = _pins(KEY_PACKAGES), "as requirements/lock.txt pins them"
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "python")
    lock_now = keys.environment().get("requirements/lock.txt")
    recs = records(results)
    same = [r for r in recs if r.get("components", {}).get("requirements/lock.txt") == lock_now]
    lock = (f"{len(same)} of {len(recs)} notebooks ran with the lock file of this checkout" if recs else
            "no notebook run record was found")
    return (f"\\textbf{{Environment.}} {latex_escape(whose.capitalize())}: {m}. Libraries "
            f"({latex_escape(source)}): {latex_escape(libs) or 'not recorded'}; {latex_escape(lock)}.")


def _manifest(results: Path) -> dict:
    manifest = results / "manifest.json"
    return json.loads(manifest.read_text())["artifacts"] if manifest.is_file() else {}


def seeds_text(results: Path, profile: config.Profile) -> str:
    """Every seed a notebook recorded with its outputs (the manifest's parameters), the sweep's and the synthetic
    flowers'."""
    seeds: dict[str, list[str]] = {}
    for entry in _manifest(results).values():
        params = entry.get("parameters", {})
        if params.get("profile") != profile.name:
            continue
        for k, v in params.items():
            if "seed" in k and entry["notebook"][:2] not in seeds.setdefault(f"{k} = {v}", []):
                seeds[f"{k} = {v}"].append(entry["notebook"][:2])
    sweep_seed = _sweep_info(results, profile).get("config", {}).get("seed")
    parts = [f"{k} (notebook{'s' if len(nbs) > 1 else ''} {', '.join(sorted(nbs))})" for k, nbs in seeds.items()]
    if sweep_seed is not None:
        parts.append(f"the fine-tuning sweep's seed = {sweep_seed}")
    if profile.synth is not None:
        parts.append(f"the synthetic flowers' seed = {profile.synth.seed}")
    return "\\textbf{Seeds.} " + (latex_escape(_capital("; ".join(parts))) + "." if parts else "None recorded.")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cut(text: str, most: int = MAX_REASON) -> str:
    """A reason shortened at a word, marked with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= most else text[:most].rsplit(" ", 1)[0].rstrip(",;:(") + " ..."


def timing_table(results: Path) -> pd.DataFrame:
    """Seconds per notebook of its last successful run, and when it finished; notebooks with no record marked."""
    recs = {r["notebook"]: r for r in records(results)}
    rows = [{"notebook": nb.stem, "seconds": f"{recs[nb.stem].get('seconds', float('nan')):,.0f}" if nb.stem in recs
             else "--", "finished": str(recs[nb.stem].get("finished", ""))[:16].replace("T", " ") if nb.stem in recs
             else "no successful run recorded"} for nb in notebooks()]
    return pd.DataFrame(rows)


def failures(results: Path, profile: config.Profile) -> list[str]:
    """Per table of this profile: rows whose status is a failure or that carry an error, with the first reasons."""
    arts = _manifest(results)
    out = []
    for key, entry in sorted(arts.items()):
        path = Path(key) if Path(key).is_absolute() else config.ROOT / key
        if path.suffix != ".csv" or entry.get("parameters", {}).get("profile") != profile.name or not path.is_file():
            continue
        df = pd.read_csv(path, keep_default_na=False)
        bad = pd.Series(False, index=df.index)
        if "status" in df.columns:
            bad |= df["status"].astype(str).str.lower().isin(FAILED)
        if "error" in df.columns:
            bad |= df["error"].astype(str).str.strip().ne("")
        if bad.any():
            reasons = list(dict.fromkeys(_cut(e) for e in df.loc[bad, "error"] if str(e).strip())) \
                if "error" in df.columns else []
            why = f" ({'; '.join(reasons[:MAX_ERRORS])}{'; ...' if len(reasons) > MAX_ERRORS else ''})" if reasons else ""
            out.append(f"{entry.get('caption') or path.stem}: {int(bad.sum())} of {len(df)} rows{why}")
    return out


def synthetic_text(profile: config.Profile, weights: pd.Series | None = None) -> str:
    """Which inputs of this profile are generated or stand-ins (`study.profiles`), and the members' weights when
    Table IX records them."""
    parts = []
    if profile.online:
        parts.append("none: the real TF Hub assets and Flower Photos")
    else:
        parts.append("the model zoo's assets are the embedded members, not the TF Hub downloads")
    if profile.synth is not None:
        parts.append(f"the flowers are generated ({profile.synth.per_class} images per class at "
                     f"{profile.synth.size} pixels), not Flower Photos")
    if profile.stand_ins:
        parts.append("a missing fine-tuning sweep is stood in for by tiny classifiers")
    if weights is not None and len(weights):
        counts = weights.astype(str).value_counts()
        parts.append("the fine-tuned members' weights: " + ", ".join(f"{n} {w}" for w, n in counts.items()))
    return "\\textbf{Synthetic inputs.} " + latex_escape(_capital("; ".join(parts))) + "."


def provenance_table(arts: Sequence) -> pd.DataFrame:
    """One row per source tag of the floats shown: its notebook file, profile, commit and date, and how many floats
    carry it (the captions' tags point here)."""
    rows = {}
    for a in arts:
        key = (tag(a.notebook, a.profile, a.fixture), a.notebook, a.profile, a.commit, a.date)
        rows[key] = rows.get(key, 0) + 1
    return pd.DataFrame([{"tag": k[0], "notebook": f"{k[1]}.ipynb", "profile": k[2], "commit": k[3], "date": k[4],
                          "floats": n} for k, n in sorted(rows.items())])


def noise_text(results: Path, profile: config.Profile) -> tuple[str, pd.DataFrame | None]:
    """The noise this run measured from its own repeats (notebook 04's `noise_model`), as a sentence and a table."""
    try:
        out = notebook_output("04:noise_model", profile.name, results / "manifest.json")
    except StudyError:
        return "\\textbf{Measured noise.} This run has no measured noise model (notebook 04 wrote none).", None
    df = pd.read_csv(out.path)
    said = ""
    if {"resource", "label"} <= set(df.columns):
        said = ": " + "; ".join(f"{labels.humanise(str(r.resource)) if str(r.resource) != '*' else 'any other'} "
                                f"{r.label}" for r in df.itertuples())
    return ("\\textbf{Measured noise.} The noise of a single reading (its coefficient of variation), from this run's "
            f"own repeated members (Table~\\ref{{tab:first-run-noise}})" + latex_escape(said) + ".", df)


def section_tex(results: str | Path | None, profile: config.Profile, shown: Sequence = (),
                weights: pd.Series | None = None) -> str:
    """The first-run part of the Reproducibility section (generated/first_run.tex): `shown` are the floats the
    draft shows (their provenance records); `weights`: Table IX's `weights` column when it has one."""
    results = Path(results or config.results_dir())
    head = "% generated by study.draft.first_run (study.draft.document.build): do not edit\n"
    times = timing_table(results)
    failed = failures(results, profile)
    missing = times[times["seconds"] == "--"]["notebook"].tolist()
    text = [head, r"\subsection{This run}",
            environment_text(results, profile), "",
            seeds_text(results, profile), "",
            r"\textbf{Time per notebook} of its last successful run: Table~\ref{tab:first-run-times}"
            + (f"; {len(missing)} notebooks have no successful run ({latex_escape(', '.join(missing))})." if missing
               else "."), "",
            r"\textbf{Failures.} " + (("Rows that failed, per table: " + escape_with_code("; ".join(failed)) + ".")
                                     if failed else "No table of this run records a failed row."), ""]
    noise, noise_df = noise_text(results, profile)
    text += [noise, "", synthetic_text(profile, weights), ""]
    text.append(longtable(_tab(times.rename(columns={"notebook": "Notebook", "seconds": "Seconds",
                                                     "finished": "Finished (UTC)"}), {"Seconds"}),
                          "Time per notebook", "Time per notebook of this run (its run records).",
                          "tab:first-run-times"))
    if noise_df is not None:
        shown_noise = labels.present(noise_df)
        text.append(longtable(_tab(shown_noise, [c for c, raw in zip(shown_noise.columns, noise_df.columns)
                                                 if pd.api.types.is_numeric_dtype(noise_df[raw])]),
                              "Measured noise", "The noise of a single reading measured by this run.",
                              "tab:first-run-noise"))
    if shown:
        prov = provenance_table(shown).rename(columns=lambda c: c.capitalize())
        text.append(longtable(_tab(prov, {"Floats"}), "Provenance",
                              "Where every float comes from: each caption's source tag, its notebook file, "
                              "profile, commit and date (results/manifest.json).", "tab:provenance"))
    return "\n".join(text) + "\n"
