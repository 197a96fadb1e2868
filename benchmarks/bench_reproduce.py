"""`make reproduce` with the content-keyed cache (issue 15; results in the README).

1. a full run (cold, or whatever is not cached yet), per notebook seconds;
2. the no-change run: wall clock of `python -m study reproduce` when every notebook is cached (target <= 15 s);
3. which notebooks would re-run after a code change to one module, and after a comment-only change to it
   (`--dry-run` with the module really edited, then restored byte for byte);
4. with `--rerun-module M`: the wall clock of a real run after a code change to M (e.g. study/plots.py: every
   notebook re-runs, while the keyed steps inside them are reused), and of the run after M is restored.

By default everything goes to a fresh temporary results / figures / cache folder (cold run); `--keep DIR`
reuses DIR across invocations (then step 1 is only what is not cached).

    .venv/bin/python benchmarks/bench_reproduce.py [--profile smoke|embedded] [--module study/zoos/families.py]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from study.config import ROOT


def reproduce(profile: str, env: dict[str, str], *extra: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "study", "reproduce", "--profile", profile, *extra],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"reproduce failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr  # the per-notebook lines go to stderr (beside the progress bar)


def slow_cells(results: Path, over_s: float = 3.0) -> dict[str, list[tuple[float, str]]]:
    """Per executed notebook, its cells that took more than `over_s` (papermill's per-cell durations)."""
    out = {}
    for nb in sorted((results / "notebooks").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out[nb.stem] = [(round(c["metadata"].get("papermill", {}).get("duration") or 0, 1),
                         "".join(c["source"]).splitlines()[0][:80]) for c in cells if c["cell_type"] == "code"
                        and (c["metadata"].get("papermill", {}).get("duration") or 0) > over_s]
    return out


def reruns(stdout: str) -> list[str]:
    return re.findall(r"\[reproduce\] (\S+): re-run", stdout)


def with_edit(path: Path, addition: str, run):
    """Run `run()` while `path` has `addition` appended; the file is restored exactly afterwards."""
    original = path.read_bytes()
    try:
        path.write_bytes(original + addition.encode())
        return run()
    finally:
        path.write_bytes(original)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke", choices=["smoke", "embedded", "paper"])
    ap.add_argument("--module", default="study/zoos/families.py", help="the module to touch in step 3")
    ap.add_argument("--rerun-module", help="step 4: really re-run after a code change to this module")
    ap.add_argument("--keep", type=Path, help="results/figures/cache under this folder, kept between runs")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-reproduce-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STUDY_RESULTS_DIR": str(base / "results"),
           "STUDY_FIGURES_DIR": str(base / "figures"), "STUDY_CACHE_DIR": str(base / "cache")}
    env.pop("STUDY_FORCE", None)

    first, out = reproduce(args.profile, env)
    per_notebook = dict(re.findall(r"\[reproduce\] (\S+): .*done in ([\d.]+) s", out))
    print(f"first run ({args.profile}, {base}): {first:.1f} s; per notebook: {per_notebook}", flush=True)
    for stem, cells in slow_cells(base / "results").items():
        print(f"  {stem}: " + "; ".join(f"{d} s `{src}`" for d, src in cells))
    runs = [reproduce(args.profile, env)[0] for _ in range(3)]
    print(f"no-change run: median {sorted(runs)[1]:.2f} s (min {min(runs):.2f}, max {max(runs):.2f}) "
          f"over {len(runs)} runs (target <= 15 s)", flush=True)

    module = ROOT / args.module
    code = with_edit(module, "\n_BENCH_CHANGE = 1\n", lambda: reproduce(args.profile, env, "--dry-run")[1])
    comment = with_edit(module, "\n# a comment-only change\n", lambda: reproduce(args.profile, env, "--dry-run")[1])
    print(f"code change to {args.module}: would re-run {reruns(code)}")
    print(f"comment-only change to {args.module}: would re-run {reruns(comment)}")
    timings = {}
    if args.rerun_module:
        edited, out = with_edit(ROOT / args.rerun_module, "\n_BENCH_CHANGE = 1\n", lambda: reproduce(args.profile, env))
        restored, out2 = reproduce(args.profile, env)
        timings = {"rerun_module": args.rerun_module, "after_change_s": round(edited, 1),
                   "after_restore_s": round(restored, 1), "rerun_after_change": reruns(out)}
        print(f"real run after a code change to {args.rerun_module}: {edited:.1f} s, re-ran {reruns(out)}; "
              f"after restoring it: {restored:.1f} s, re-ran {reruns(out2)}", flush=True)
    print(json.dumps({**timings, "profile": args.profile, "first_s": round(first, 1), "per_notebook_s": {k: float(v) for k, v in per_notebook.items()},
                      "no_change_s": [round(r, 2) for r in runs], "module": args.module,
                      "rerun_after_code_change": reruns(code), "rerun_after_comment": reruns(comment)}))


if __name__ == "__main__":
    main()
