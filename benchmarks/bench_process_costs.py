"""What a study process pays before its work, and what a figure costs: the start-up costs `make test` repeats in
hundreds of processes (docs/measured/tests.md, "Where the time goes").

Run: .venv/bin/python benchmarks/bench_process_costs.py [--repeat 5]
Each probe runs in a fresh interpreter (`python -c`), alternating with its pair, and prints the median CPU seconds
(user + system of that process) and peak RSS over the runs, and the A/B ratio where a probe has a pair:
- `import jsonschema`, `import ray`, `import papermill`: what nbformat's and every Ray worker's and agent's start-up
  pays (rfc3987-syntax, which `make venv` removes, built its grammar here: requirements/removed.txt);
- `hub.KerasLayer(path)` after `import study` (Keras 3 not imported) against the same with the module `study` marks
  absent put back (TF Hub's lookup then imports Keras 3, and matplotlib, only to fail);
- one figure's checks and both formats as `Report.figure` makes them (one draw for the checks, whose box both formats
  save with) against savefig's own tight crop per format plus the checks' three draws (the path before: seven).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import resource, json, sys, time
{code}
ru = resource.getrusage(resource.RUSAGE_SELF)
print("BENCH " + json.dumps({{"cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024}}))
"""

SAVED_MODEL = """
import tensorflow as tf
class Double(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
        return 2.0 * x
tf.saved_model.save(Double(), sys.argv[1])
"""
LAYER = "import study, numpy as np, tensorflow_hub as hub\n{unblock}" \
        "hub.KerasLayer(sys.argv[1])(np.ones((1, 2), np.float32))\n"
FIGURE = """
import os
os.environ["STUDY_RESULTS_DIR"], os.environ["STUDY_FIGURES_DIR"] = sys.argv[1] + "/results", sys.argv[1] + "/figures"
from study import plots
fig, ax = plots.figure("full", 0.4)
ax.bar([f"member_{{i}}_with_a_long_name" for i in range(12)], range(12))
ax.tick_params(axis="x", rotation=45)
ax.set_title("twelve members"); ax.set_ylabel("ms per image")
fig.canvas.draw()
t0 = time.process_time()
{save}
print("BENCH_FIGURE", time.process_time() - t0)
"""
# now (what Report.figure does, less its manifest entry): the checks' one draw, whose box both formats save with
SAVE_NOW = ('plots.text_problems(fig); box = plots.saved_box(fig)\nfor fmt in ("pdf", "png"):\n'
            '    fig.savefig(f"{sys.argv[1]}/now.{fmt}", format=fmt, bbox_inches=box)')
# before: savefig's own tight crop (a draw to measure, a draw to save) per format, then the checks, which drew the
# figure twice for its saved size and once for its texts
SAVE_BEFORE = ('for fmt in ("pdf", "png"):\n    fig.savefig(f"{sys.argv[1]}/before.{fmt}", format=fmt)\n'
               'fig.canvas.draw(); fig.canvas.draw(); plots.text_problems(fig)')

PROBES: dict[str, tuple[str, str | None]] = {  # name -> (code, the code of its pair or None)
    "import jsonschema": ("import jsonschema", None),
    "import ray": ("import ray", None),
    "import papermill": ("import papermill", None),
    "hub.KerasLayer(path)": (LAYER.format(unblock=""),
                             LAYER.format(unblock="del sys.modules['keras.saving.legacy.saved_model']\n")),
}


def run(code: str, arg: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", MEASURE.format(code=code), arg], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    if out.returncode:
        raise SystemExit(f"probe failed:\n{code}\n{out.stderr[-2000:]}")
    lines = out.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith("BENCH "))[6:])
    figure = [float(line.split()[1]) for line in lines if line.startswith("BENCH_FIGURE")]
    return result | ({"figure_cpu_s": figure[0]} if figure else {})


def summary(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{statistics.median(values):6.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = f"{tmp}/double"
        run(SAVED_MODEL, model)
        probes = dict(PROBES) | {"one figure saved": (FIGURE.format(save=SAVE_NOW), FIGURE.format(save=SAVE_BEFORE))}
        for name, (code, pair) in probes.items():
            arg = model if "KerasLayer" in name else tmp
            key = "figure_cpu_s" if name == "one figure saved" else "cpu_s"
            now, before = [], []
            for _ in range(args.repeat):  # alternating: the host's speed drifts within minutes
                now.append(run(code, arg))
                if pair:
                    before.append(run(pair, arg))
            line = f"{name:22s} CPU s {summary(now, key)}  peak MB {statistics.median(r['peak_mb'] for r in now):6.0f}"
            if pair:
                ratio = statistics.median(r[key] for r in now) / statistics.median(r[key] for r in before)
                line += (f"   before: CPU s {summary(before, key)}  peak MB "
                         f"{statistics.median(r['peak_mb'] for r in before):6.0f}   ratio {ratio:.2f}")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
