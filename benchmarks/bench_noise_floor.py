"""The data behind `localise.K` (tolerance = K x noise floor) and the cost of the noise floor and of localising a row.

Run: .venv/bin/python benchmarks/bench_noise_floor.py [--sweep DIR] [--no-mobilenet]

Models: the smoke profile's tiny stand-in classifiers (32 and 48 px; or the members of --sweep) and RQ1's quick
reference network (MobileNet V2 0.35 at 96 px, batch norm recalibrated on real photos, 14 reference images), each as
a SavedModel. Per model it prints:

- the noise floor of the three perturbations a fidelity row uses (threads 1 vs 2, batch 1 vs 32, a reload) and an
  *extended* floor over more session perturbations (threads 1-4 x batch 1, 2, 8, 32): how much the three underestimate;
- per float conversion that only reorders float32 arithmetic (LiteRT float32 on reference kernels, TF.js wasm in
  Node.js) the largest per-layer divergence in units of the layer's tolerance base max(layer floor, output's
  relative floor, float32 eps);
- seconds: the noise floor, and localising each format (LiteRT float32 / full int8, TF.js).

K is the smallest of 2, 5, 10, 20, 50, 100 that covers both ratios (the figures go into docs/deployment-fidelity.md).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

CANDIDATES = (2, 5, 10, 20, 50, 100)


def _models(tmp: Path, sweep: str | None, mobilenet: bool):
    from study import config
    from study.casestudy import stand_ins
    from study.deployment import fidelity
    from study.casestudy.browser import find_models

    smoke = config.get_profile("smoke")
    root = Path(sweep) if sweep else stand_ins.tiny_classifiers(tmp / "sweep", smoke)
    for m in find_models(root):
        if m.backend == "tf":
            x, _ = fidelity._test_split(m)  # noqa: SLF001
            yield m.name, m.saved_model, x, fidelity.calibration_images(m, smoke)
    if mobilenet:
        from study.deployment import backend_tf

        ref = backend_tf.reference(True, tmp)
        yield ref.model_name, backend_tf._saved_model(ref, tmp), ref.images, ref.calibration  # noqa: SLF001


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", help="a sweep's --out DIR (default: tiny stand-ins in a temporary folder)")
    ap.add_argument("--no-mobilenet", action="store_true", help="skip RQ1's quick MobileNet V2 reference")
    args = ap.parse_args()
    from study.deployment import localise
    from study.deployment import backend_tf, intermediates
    from study.deployment.backend import Export

    needed = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, saved_model, x, calib in _models(tmp, args.sweep, not args.no_mobilenet):
            graph = intermediates.TFGraph(saved_model)
            t0 = time.perf_counter()
            floor = localise.floor_tf(graph, saved_model, x)
            floor_s = time.perf_counter() - t0
            base = graph.run(x, [], threads=1, batch=1)[""]
            extended = max(float(np.max(np.abs(graph.run(x, [], threads=t, batch=b)[""] - base)))
                           for t in (1, 2, 3, 4) for b in (1, 2, 8, 32))
            under = extended / max(floor.value, floor.minimum)
            print(f"\n{name}: {len(x)} images, max|ref| {floor.scale:.3g}; floor {floor.value:.3g} "
                  f"{ {k: f'{v:.3g}' for k, v in floor.parts.items()} }; guard eps*max|ref| {floor.minimum:.3g}; "
                  f"extended floor {extended:.3g} ({under:.2f}x the floor or guard); {floor_s:.1f} s")
            needed.append(under)
            ref = backend_tf.classifier_reference(name, saved_model, x, calib)
            work = tmp / f"work_{name}"
            work.mkdir()
            xs = x[:localise.LOCALISE_IMAGES]
            for fmt in ("litert_float32", "litert_full_int8", "tfjs_graph_model_node"):
                export = backend_tf.export(fmt, ref, work, False)
                export = Export(export.path, export.runner, export.quantised, export.model_file)
                fields, table = localise.localise(fmt, export, {"framework": "tf", "graph": graph}, xs,
                                                  floor.value / floor.scale if floor.scale else 0.0)
                base_tol = np.maximum(table["layer_floor"], localise.FLOAT32_EPS)
                worst = float((table["divergence"] / base_tol).max()) if len(table) else float("nan")
                if not export.quantised:
                    needed.append(worst)
                print(f"  {fmt:24s} {len(table):3d} layers, largest divergence {table['divergence'].max():.3g} "
                      f"= {worst:.3g} x max(layer floor, eps); first divergence at K={localise.K}: "
                      f"{fields['first_divergence'] or '-'} [{fields['failure_class']}]; "
                      f"localised in {fields['localise_s']:.2f} s")
    k = next((c for c in CANDIDATES if c >= max(needed)), CANDIDATES[-1])
    print(f"\nlargest ratio needed {max(needed):.3g} -> K = {k} (code: {localise.K}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
