"""The fine-tuning sweep of Section VII-E (Table IX): train every member while a Sampler measures it.

One *run* = one member, one repeat, the paper's three periods:

    cooldown-before (N samples)  ->  running: the training worker, its own process  ->  cooldown-after (N samples)

and Formula 1 (`study.casestudy.formula1`) turns the samples into ΔCPU / ΔMEM. The worker (`python -m study.casestudy.training
SPEC`) loads the zoo member through `study.assets.zoo.feature_extractor` (the same code path for real TF Hub
assets and the embedded ones; PyTorch for EfficientNet-Lite), adds a classification head, trains with batch
size 32, validates, tests, and saves the classifier (TF2 SavedModel, `.pt` for torch) with its predictions.

Layers, so that another executor (e.g. Ray, one run per node) plugs in at one seam:

- `train_member(spec)`      the training itself, in-process (the worker's body; benchmarks call it directly)
- `measure_run(job)`        sampler + worker process + watchdog on *one machine* -> `RunResult`
- `Executor` / `LocalExecutor`  how runs are placed; `LocalExecutor.run = measure_run` on this machine
- `sweep(...)`              the driver: resume, progress, atomic records / tables, publishing models

Output layout under the sweep's `out` DIR (see the contract in README):

    table_ix.csv                      Table IX (model, delta_cpu, delta_mem, elapse, accuracy, status, ...)
    samples/<member>.csv              every sample of every repeat (column `repeat`)
    models/<member>/saved_model/      the fine-tuned classifier (torch members: model.pt)
    models/<member>/meta.json         member, backend, input_size, class_names, test_accuracy, test_images
    predictions/<member>.csv          path, label, prediction
    runs/<member>/r<k>.json           one record per run (status, measurements, versions, threads): resume state
    runs/<member>/r<k>/               the run's work folder (sampler CSV, worker log, staged artefacts)
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from study import config, files, page, paper
from study.assets import folder as asset_folder, refs as asset_refs, zoo
from study.cache.step import Step
from study.casestudy import dataset, formula1, integrity
from study.casestudy.cluster import node_label
from study.casestudy.executors import Executor, RunJob, RunResult, SweepConfig, get_executor, sweep_config
from study.casestudy.sampler import read_samples
from study.casestudy.training import library_versions, prepare_assets
from study.decision.uncertainty import read_records
from study.errors import StudyError
from study.paper import format_elapse

# Table IX as the paper prints it, then what we add (issue 6 fixes this order).
TABLE_IX_COLUMNS = ["model", "delta_cpu", "delta_mem", "elapse", "accuracy", "status", "elapse_s", "repeats",
                    "delta_cpu_tree", "delta_mem_tree", "peak_rss_mb", "gpu", "gpu_memory", "n_samples"]
TABLE_IX_EXTRA = ["weights", "delta_cpu_std", "delta_mem_std", "elapse_s_std", "accuracy_std", "train_s", "val_accuracy",
                  "interval_median_s", "interval_max_s", "missed_slots", "mode", "epochs", "backend", "reason",
                  "node", "assets_lock", "asset", "asset_sha256"]  # asset: its reference (member, handle, folder, module:function)


# --------------------------------------------------------------------------------- configuration


def sweep_members(profile: config.Profile, names: Sequence[str] | None = None, input_size: int | None = None) -> list:
    """The assets of a sweep (`asset_refs.Asset`): `names` are asset references (zoo members, handles, SavedModel
    folders, package.module:function), resolved and checked; default: the profile's zoo members."""
    refs = list(names) if names else [m.name for m in zoo.members(profile)]
    return asset_refs.resolve_all(refs, profile, input_size)


# --------------------------------------------------------------------------------- the driver
_record_path = integrity.record_path


def _is_done(out: Path, member: str, repeat: int, cfg: SweepConfig, asset=None) -> bool:
    """Recorded ok under this config (integrity.is_done), and for the same asset content: a changed SavedModel
    folder or function under the same name is measured again."""
    if not integrity.is_done(out, member, repeat, cfg.key()):
        return False
    rec = json.loads(_record_path(out, member, repeat).read_text(encoding="utf-8"))
    return asset is None or "asset" not in rec or rec["asset"].get("sha256") == asset.sha256


def table_ix(records: Iterable[dict[str, Any]], cfg: SweepConfig, order: Sequence[str] = ()) -> "pd.DataFrame":
    """Table IX from run records of `cfg`: one row per member, repeats averaged (ok runs when there are any)."""
    import pandas as pd

    runs = pd.DataFrame([r for r in records if r.get("config") == cfg.key()])
    if runs.empty:
        return pd.DataFrame(columns=TABLE_IX_COLUMNS + TABLE_IX_EXTRA)
    runs = runs.rename(columns={"member": "model"})
    numeric = ["elapse_s", "accuracy", "val_accuracy", "train_s", *formula1.SUMMARY_COLUMNS]
    runs[numeric] = runs.reindex(columns=numeric).apply(pd.to_numeric, errors="coerce")
    rows = []
    for model, group in runs.groupby("model", sort=False):
        ok = group[group["status"] == "ok"]
        used = ok if not ok.empty else group
        agg = formula1.aggregate(used.assign(model=model)).iloc[0].to_dict()
        bad = group[group["status"] != "ok"].sort_values("repeat")
        backend = next((w.get("backend") for w in group["worker"] if isinstance(w, dict) and w.get("backend")), None)
        asset = next((a for a in group.get("asset", []) if isinstance(a, dict)), {})
        rows.append({**agg, "model": model, "status": "ok" if bad.empty else bad["status"].iloc[0],
                     "train_s": pd.to_numeric(used["train_s"], errors="coerce").mean(),
                     "val_accuracy": pd.to_numeric(used["val_accuracy"], errors="coerce").mean(),
                     "mode": cfg.mode, "epochs": cfg.epochs, "backend": backend,
                     "reason": "; ".join(f"r{r}: {why}" for r, why in zip(bad["repeat"], bad["reason"])),
                     "node": _node_labels(used), "assets_lock": cfg.assets_lock, "asset": asset.get("ref", model),
                     # what an accuracy of this member supports: imagenet | random | own (asset_refs.weights)
                     "weights": asset_refs.weights(asset.get("ref", model), cfg.profile),
                     "asset_sha256": asset.get("sha256")})
    table = pd.DataFrame(rows)
    table["elapse"] = [format_elapse(s) if pd.notna(s) else "" for s in table["elapse_s"]]
    rank = {m: i for i, m in enumerate(order)}
    table = table.sort_values("model", key=lambda s: s.map(lambda m: (rank.get(m, len(rank)), m)))
    return table[TABLE_IX_COLUMNS + TABLE_IX_EXTRA].reset_index(drop=True)


def _node_labels(runs: "pd.DataFrame") -> str:
    """The machines that measured `runs` (study.casestudy.cluster.node_label), for Table IX's `node` column."""
    nodes = runs["node"] if "node" in runs else []
    return "; ".join(sorted({node_label(n) for n in nodes if isinstance(n, dict) and n}))


def _check_output(out: Path, n_members: int, min_free_mb: float) -> None:
    """Fail before any training when `out` cannot take the results (unwritable, or the disk is nearly full)."""
    try:
        files.ensure_writable_dir(out)
    except OSError as exc:
        raise StudyError(str(exc)) from exc
    free_mb = shutil.disk_usage(out).free / 2**20
    need = min_free_mb * max(1, n_members)
    if free_mb < need:
        raise StudyError(f"only {free_mb:.0f} MB free on the disk of {out}; the sweep of {n_members} member(s) "
                         f"needs about {need:.0f} MB (models, samples). Free space or choose another --out")


def _publish(out: Path, result: RunResult) -> None:
    """Move a run's model, meta.json and predictions into the sweep layout, replacing older ones atomically."""
    src = result.artifacts
    dest = out / "models" / result.member
    staged = out / "models" / f".{result.member}.new"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for name in ("saved_model", "model.pt", "meta.json"):
        if (src / name).exists():
            shutil.move(str(src / name), staged / name)
    old = out / "models" / f".{result.member}.old"
    if dest.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
    os.replace(staged, dest)
    shutil.rmtree(old, ignore_errors=True)
    files.atomic_write(out / "predictions" / f"{result.member}.csv",
                       lambda tmp: shutil.copyfile(src / "predictions.csv", tmp))


def _write_samples(out: Path, member: str, cfg: SweepConfig) -> None:
    """samples/<member>.csv: the samples of every recorded repeat of this config, with a `repeat` column."""
    import pandas as pd

    parts = []
    for rec in read_records(out):
        path = out / "runs" / member / f"r{rec['repeat']}" / "samples.csv"
        if rec.get("member") == member and rec.get("config") == cfg.key() and path.exists():
            df = read_samples(path)
            df.insert(0, "repeat", rec["repeat"])
            parts.append(df)
    if parts:
        files.write_csv(out / "samples" / f"{member}.csv", pd.concat(parts, ignore_index=True))


def write_table_ix(out: str | Path, table) -> Path:
    """DIR/table_ix.csv, atomically: a crash mid-write leaves the previous table as it was."""
    return files.write_csv(Path(out) / "table_ix.csv", table)


def sweep(out: str | Path, profile: config.Profile, members: Sequence[str] | None = None, *,
          epochs: int | None = None, repeats: int = 1, mode: str | None = None, force: bool = False,
          interval: float | None = None, cooldown_samples: int | None = None, timeout_s: float | None = None,
          threads: int | None = None, seed: int = 0, executor: Executor | str = "local", progress: bool = True,
          min_free_mb: float = 60.0, log: Callable[[str], None] | None = None, input_size: int | None = None,
          data: str | Path | None = None, split: str | Path | None = None) -> "pd.DataFrame":
    """Fine-tune `members` (default: the profile's) one after another under the Sampler; returns Table IX.

    `members` are asset references (`study.assets.refs`, `REF@SIZE` included); `input_size` states the
    input size of assets whose size is variable (fixed-size ones keep theirs, so a shortlist can mix both).
    `data` (class folders / .tgz, split with Table XI's split rule) or `split` (a split CSV) replace the profile's
    data set.

    Resumable: runs recorded `ok` under the same config are skipped (`force=True` reruns them). A run that
    times out, is killed or fails is recorded with what was measured, and the sweep goes on.
    """
    from tqdm import tqdm

    cfg = sweep_config(profile, epochs=epochs, mode=mode, interval=interval, cooldown_samples=cooldown_samples,
                       timeout_s=timeout_s, threads=threads, seed=seed,
                       assets_lock=asset_folder.active_digest() if profile.online else None,
                       data=str(Path(data).resolve()) if data else None, split=str(Path(split).resolve()) if split else None)
    if repeats < 1:
        raise StudyError(f"--repeats must be at least 1 (got {repeats})")

    chosen = sweep_members(cfg.profile, members, input_size)
    names = [a.name for a in chosen]
    out = Path(out)
    _check_output(out, len(names), min_free_mb)
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr) if progress else None)  # progress: stderr
    # runs are reused only under the same key: code of the sweep's modules, config, packages, machine
    step = Step.of(out, "finetune-sweep", [__name__], cfg.key())
    if step.state() == "foreign":
        if read_records(out):
            say(f"[finetune] earlier runs in {out} not reused ({step.reason()}): measuring again")
        _discard_runs(out)
    chosen = [asset_refs.fingerprint(a, cfg.profile) for a in chosen]  # a zoo asset not built yet has no hash yet
    jobs = [RunJob(a.name, r, cfg, out / "runs" / a.name / f"r{r}", asset=a) for a in chosen for r in range(repeats)]
    todo = [j for j in jobs if force or not _is_done(out, j.member, j.repeat, cfg, j.asset)]
    if not todo and step.state() == "done":
        return table_ix(read_records(out), cfg, names)
    step.start()
    # generate / check the data outside any measured run
    dataset.load_split(cfg.profile, seed=cfg.seed, data=cfg.data, split=cfg.split)
    prepare_assets(cfg.profile, chosen)
    chosen = [asset_refs.fingerprint(a, cfg.profile) for a in chosen]
    by_name = {a.name: a for a in chosen}
    todo = [dataclasses.replace(j, asset=by_name[j.member]) for j in todo]
    files.write_text(out / "sweep.json", json.dumps({"config": cfg.key(), "members": names, "repeats": repeats,
                                                     "assets": [a.identity() for a in chosen],
                                                     "versions": library_versions()}, indent=2) + "\n")
    ex = get_executor(executor) if isinstance(executor, str) else executor
    if len(todo) < len(jobs):
        say(f"[finetune] resuming: {len(jobs) - len(todo)} of {len(jobs)} runs already done (--force reruns them)")
    try:
        bar = tqdm(total=len(todo), desc="fine-tuning", unit="run", disable=not progress)
        run_many = getattr(ex, "run_many", None)  # executors running several jobs at once (Ray)
        for result in run_many(todo) if run_many else map(ex.run, todo):
            run_id = f"{result.member}/r{result.repeat}"
            bar.set_postfix_str(run_id)
            bar.update(1)
            try:
                if result.status == "ok":
                    _publish(out, result)
                record = result.record(cfg) | {"asset": by_name[result.member].identity()}
                files.write_text(_record_path(out, result.member, result.repeat),
                                 json.dumps(_json_safe(record), indent=2, default=str) + "\n")
                _write_samples(out, result.member, cfg)
                write_table_ix(out, table_ix(read_records(out), cfg, names))
            except OSError as exc:  # disk full, folder removed mid-sweep: earlier results stay intact
                raise StudyError(f"cannot write the results of {run_id} under {out}: {exc.strerror or exc}; "
                                 "free space / fix the folder and rerun (completed runs are kept)") from exc
            if result.status != "ok":
                say(f"[finetune] {run_id}: {result.status} ({result.reason})")
    finally:
        ex.close()
    for name in names:  # a crash between a run's record and its samples/<member>.csv: rebuild them all
        _write_samples(out, name, cfg)
    table = table_ix(read_records(out), cfg, names)
    write_table_ix(out, table)
    step.finish()
    return table


def _discard_runs(out: Path) -> None:
    """Remove what a sweep made under another key (records, models, samples, Table IX), nothing else."""
    for name in ("runs", "models", "samples", "predictions"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("table_ix.csv", "sweep.json"):
        (out / name).unlink(missing_ok=True)


def _json_safe(value: Any) -> Any:
    """JSON-safe: NaN -> null, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def default_out(profile: config.Profile) -> Path:
    """Where the notebook (and `make reproduce`) keeps a profile's sweep: results/finetune/<profile>/."""
    return config.results_dir() / "finetune" / profile.name


def load_table(out: str | Path) -> "pd.DataFrame":
    """A sweep's table_ix.csv."""
    import pandas as pd

    path = Path(out) / "table_ix.csv"
    if not path.exists():
        raise StudyError(f"no Table IX at {path}; run: python -m study finetune --out {out}")
    return pd.read_csv(path)


def load_samples(out: str | Path, member: str) -> "pd.DataFrame":
    """A member's samples (every repeat, column `repeat`)."""
    import pandas as pd

    path = Path(out) / "samples" / f"{member}.csv"
    if not path.exists():
        raise StudyError(f"no samples for {member} at {path}")
    return pd.read_csv(path)


# --------------------------------------------------------------------------------- beside the paper
PAPER_IX_COLUMNS = ("delta_cpu", "delta_mem", "elapse_s", "accuracy")


def beside_paper(table: "pd.DataFrame") -> "pd.DataFrame":
    """Our Table IX next to the paper's, one row per member we ran (`<column>_paper` / `<column>_ours`)."""
    import pandas as pd

    cols = list(PAPER_IX_COLUMNS)
    theirs = paper.finetuning()[["model", "elapse", *cols]].rename(columns={"elapse": "elapse_paper"})
    ours = table[["model", "elapse", *cols, "status"]].rename(columns={"elapse": "elapse_ours"})
    both = theirs.merge(ours, on="model", how="right", suffixes=("_paper", "_ours"))  # our members
    order = ["model"] + [f"{c}_{s}" for c in ("delta_cpu", "delta_mem", "elapse", "accuracy") for s in ("paper", "ours")]
    return both[order + ["status"]].sort_values("model", ignore_index=True).pipe(pd.DataFrame)


def ranking_vs_paper(table: "pd.DataFrame") -> "pd.DataFrame":
    """How our ranking of the members both tables have compares with the paper's, per Table IX column:
    Spearman's ρ of the ranks, and which member is highest / lowest in each table."""
    import pandas as pd

    ours = table[table["status"] == "ok"].set_index("model")
    theirs = paper.finetuning().set_index("model")
    common = ours.index.intersection(theirs.index)
    rows = []
    for col in PAPER_IX_COLUMNS:
        a, b = ours.loc[common, col].astype(float), theirs.loc[common, col].astype(float)
        rows.append({"column": col, "common_members": len(common),
                     "spearman_rho": a.rank().corr(b.rank()) if len(common) >= 3 else math.nan,
                     "highest_ours": a.idxmax() if a.notna().any() else None,
                     "highest_paper": b.idxmax() if len(b) else None,
                     "lowest_ours": a.idxmin() if a.notna().any() else None,
                     "lowest_paper": b.idxmin() if len(b) else None})
    return pd.DataFrame(rows)


def representative(lengths: dict[str, float], n: int = 3) -> list[str]:
    """`n` members spread over `lengths` (member -> length of its run): the shortest, evenly spaced ones, the
    longest; all of them when there are no more than `n`. In the order of `lengths`."""
    if n <= 0 or len(lengths) <= n:
        return list(lengths)
    ordered = sorted(lengths, key=lambda m: (lengths[m], m))
    picked = {ordered[round(i * (len(ordered) - 1) / (n - 1))] for i in range(n)} if n > 1 else {ordered[0]}
    return [m for m in lengths if m in picked]


def kinds_reading(table: "pd.DataFrame", n_classes: int) -> str:
    """What the sweep's members can support, by kind (`weights`): the accuracy range of the members that see, and the
    random-init stand-ins with their accuracy beside chance for `n_classes` classes."""
    import pandas as pd

    ok = table[table["status"] == "ok"]
    kinds = ok.get("weights", pd.Series("", index=ok.index))
    out = []
    for kind, what in (("imagenet", "with trained (ImageNet) weights, whose accuracies support findings"),
                       ("own", "given by you, with their own weights"),
                       ("random", "randomly initialised, resource stand-ins whose accuracies are chance "
                                  f"({1 / n_classes:.2f} for {n_classes} classes) and support no finding")):
        part = ok[kinds == kind]
        if len(part):
            out.append(f"{len(part)} member(s) {what}: {', '.join(part['model'])} (test accuracy "
                       f"{part['accuracy'].min():.2f}–{part['accuracy'].max():.2f})")
    return ("; ".join(out) + ".") if out else "No member finished."


def timeline_figure(out: str | Path, members: Sequence[str], columns: Sequence[str] = ("cpu", "tree_cpu", "mem"),
                    *, select: int | None = 3):
    """Per-member CPU / memory over time, cool-down periods shaded (one panel per member, first repeat).
    `select`: draw that many representative members of `members` (shortest run, middle, longest: see
    `representative`), so that the figure reads at the text width; None: every member (for the appendix)."""
    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    samples = {}
    for member in members:
        s = load_samples(out, member)
        samples[member] = s[s["repeat"] == s["repeat"].min()]
    lengths = {m: float(s["t"].max() - s["t"].min()) if len(s) else 0.0 for m, s in samples.items()}
    shown = representative(lengths, select) if select else list(samples)
    ncols = max(1, min(len(shown), 3 if len(shown) <= 6 else 4))
    nrows = max(1, math.ceil(len(shown) / ncols))
    row_in = max(1.0, min(1.5, (page.FIGURE_MAX_HEIGHT_IN - 0.45) / nrows))  # many rows: flatter panels, same fonts
    fig, axes = plots.figure("full", height=0.45 + row_in * nrows, nrows=nrows, ncols=ncols, squeeze=False,
                             sharey=True, layout="constrained")
    labels = {"cpu": "system CPU %", "tree_cpu": "worker tree CPU %", "mem": "system memory %",
              "tree_mem": "worker tree memory %"}
    for ax, member in zip(axes.flat, shown):
        s = samples[member]
        step = float(s["t"].diff().median()) if len(s) > 1 else 0.0  # a sample covers the interval before it
        for phase in ("cooldown-before", "cooldown-after"):
            part = s[s["phase"] == phase]
            if len(part):
                ax.axvspan(part["t"].min() - step, part["t"].max(), color="0.88", zorder=0, lw=0,
                           label="cool-down" if phase == "cooldown-before" else None)
        for col in columns:
            ax.plot(s["t"], s[col], lw=0.8, label=labels.get(col, col))
        ax.set_title(member)
        ax.set_xlabel("time (s)")
        ax.xaxis.set_major_locator(MaxNLocator(5))
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("%")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=len(names), frameon=False)
    return fig


def cost_scatter_figure(table: "pd.DataFrame"):
    """Accuracy against ΔCPU, ΔMEM and elapsed time: the paper's 38 assets and our sweep, side by side; our
    random-init members hollow (their accuracy is chance, their resources are real)."""
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    from study import plots  # heavy (matplotlib, seaborn): only when drawing

    ours = table[table["status"] == "ok"]
    blind = ours.get("weights", pd.Series("", index=ours.index)).eq("random")
    # ours in two kinds: members that see (filled) and random-init stand-ins (hollow: their accuracy is chance)
    both = pd.concat([paper.finetuning().assign(source="paper", filled=True, label="paper"),
                      ours.assign(source="reproduced", filled=~blind,
                                  label=blind.map({True: "reproduced, random init", False: "reproduced"}))],
                     ignore_index=True)
    fig, axes = plots.figure("full", height=2.3, ncols=3, sharey=True, layout="constrained")
    for ax, (col, label) in zip(axes, (("delta_cpu", "ΔCPU (%, Formula 1)"), ("delta_mem", "ΔMEM (%, Formula 1)"),
                                       ("elapse_s", "elapse (s, log)"))):
        for (name, source, filled), part in both.groupby(["label", "source", "filled"], sort=False):
            color = plots.SOURCE_COLORS[source]
            ax.scatter(part[col], part["accuracy"], s=10, label=name, color=color if filled else "none",
                       edgecolors=color)
        ax.set_xlabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(5))
    axes[2].set_xscale("log")
    axes[0].set_ylabel("test accuracy")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=len(names), frameon=False)
    return fig
