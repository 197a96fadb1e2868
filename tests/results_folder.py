"""A hand-built results folder, written with the project's own `study.report.Report` (no notebook runs): the
paper-comparable tables `study.runs.compare` reads, with the notebooks' table names and columns, and some numbers.

Used by tests/runs/test_compare.py, tests/runs/test_history.py and benchmarks/bench_compare.py (`members` sets its size).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from study.report import Report

FORMATS = [("tf", "SavedModel", "tensorflow"), ("tf", "TFLite", "tflite"), ("tf", "TF.js", "tfjs-node"),
           ("torch", "TorchScript", "torch"), ("torch", "ONNX", "onnxruntime"), ("torch", "ExportedProgram", "torch")]
N_TEST = 400


def build(root: str | Path, *, members: int = 6, claims: int = 12, profile: str = "embedded",
          seed: int = 0) -> Path:
    """Write a results folder at `root` (its figures beside it) and return it."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    models = [f"mobilenet_v2_{w:03d}_{r}" for w, r in zip(np.resize([35, 50, 75, 100, 130, 140], members),
                                                          np.resize([96, 128, 160, 192, 224], members))]
    models = [f"{m}_{i}" if models.count(m) > 1 else m for i, m in enumerate(models)]

    def report(notebook: str) -> Report:
        return Report(notebook, {"profile": profile}, results=root, figures=root.parent / f"{root.name}-figures")

    rq2 = report("02_rq2_families")
    fam = pd.DataFrame({"table": ["I", "I", "I"], "domain": ["Image", "Image", "Text"],
                        "algorithm": ["MobileNet V2", "Inception V3", "BERT"],
                        "training_data": ["ImageNet", "ImageNet", "Wikipedia"], "paper_members": [22, 1, 2],
                        "paper_families": [1, 1, 1], "our_members": ["IC: 22", "IC: 1", "-"],
                        "our_families": [1, 1, 0], "paper_output_format": ["TF2"] * 3,
                        "our_output_formats": ["TF2", "TF1", "-"], "verdict": ["match", "match", "missing"],
                        "reason": ["same members", "same members", "no family"]})
    rq2.table(fam, "rq2_table_i_vs_ours")
    rq2.table(pd.DataFrame({"table": ["I"], "match": [2], "missing": [1]}), "rq2_verdicts")
    rq2.number("rq2_paper_rows", 3)

    rq1 = report("01_rq1_deployment")
    matrix = pd.DataFrame([{"framework": f, "scenario_group": "server", "format": fmt, "runtime": rt, "status": "ok",
                            "ok": True, "size_mb": round(float(rng.uniform(5, 15)), 3),
                            "load_ms": round(float(rng.uniform(50, 500)), 2),
                            "latency_ms": round(float(rng.uniform(2, 20)), 3), "max_abs_diff": 1e-6,
                            "top1_agreement": 1.0, "error": "", "images": 32} for f, fmt, rt in FORMATS])
    rq1.table(matrix, "rq1_deployment_matrix")
    rq1.number("rq1_matrix_ok", len(matrix))

    ix = pd.DataFrame({"model": models, "delta_cpu": rng.uniform(20, 60, members).round(4),
                       "delta_mem": rng.uniform(1, 5, members).round(4), "elapse": "0:30",
                       "accuracy": rng.uniform(0.4, 0.6, members).round(4), "status": "ok",
                       "elapse_s": rng.uniform(20, 60, members).round(2), "repeats": 1,
                       "delta_cpu_tree": rng.uniform(20, 60, members).round(4),
                       "delta_mem_tree": rng.uniform(1, 5, members).round(4),
                       "peak_rss_mb": rng.uniform(300, 900, members).round(1), "n_samples": 40})
    report("04_case_study_finetuning").table(ix, "table_ix_finetuning")
    report("04_case_study_finetuning").number("case_members", members)

    tx = pd.DataFrame({"model": models, "cpu": rng.uniform(5, 30, members).round(3), "elapse": "0:05",
                       "memory": rng.uniform(1, 3, members).round(3), "gpu": np.nan, "gpu_memory": np.nan,
                       "accuracy": ix["accuracy"], "backend": "wasm", "n_images": N_TEST, "status": "ok",
                       "ms_per_image": rng.uniform(5, 50, members).round(2),
                       "elapse_s": rng.uniform(3, 9, members).round(2)})
    report("05_case_study_browser").table(tx, "table_x_browser")

    dec = report("06_decision_analysis")
    dec.table(ix[["model", "accuracy", "delta_cpu"]].assign(n_test=N_TEST), "decision_ours_table_ix_intervals")
    picks = pd.DataFrame({"tables": ["paper", "paper", "ours", "ours"], "priority": ["VII-G.1", "VII-I"] * 2,
                          "items": ["max:accuracy", "min:inference"] * 2,
                          "selected": [models[0], models[1], models[2 % members], models[3 % members]],
                          "accuracy": [0.9, 0.85, 0.5, 0.48], "dominated_by": "", "paper_choice": ""})
    dec.table(picks, "decision_ours_beside_paper")
    freq = pd.DataFrame({"tables": "paper", "priority": "VII-G.1", "items": "max:accuracy", "model": models[:3],
                         "selected": [150, 40, 10], "frequency": [0.75, 0.2, 0.05], "point_choice": [True, False, False],
                         "n_resamples": 200, "seed": 0, "method": "Binomial"})
    dec.table(freq, "decision_stability")
    dec.number("decision_pick_accuracy", models[0])
    dec.number("decision_stability_paper_choice_accuracy", 75.0, fmt="{:.0f}")

    fid = pd.DataFrame([{"member": m, "framework": "tf", "format": fmt, "status": "faithful", "faithful": True,
                         "max_abs_diff": 1e-6, "top1_agreement": 1.0, "accuracy_before": a, "accuracy_after": a,
                         "size_mb": 4.2, "latency_p50_ms": round(float(rng.uniform(2, 9)), 3), "images": 64}
                        for m, a in zip(models, ix["accuracy"]) for fmt in ("TFLite", "TF.js")])
    r09 = report("09_rq1_fidelity_per_member")
    r09.table(fid, "rq1_fidelity_per_member")
    r09.table(pd.DataFrame({"criterion": ["none", "faithful in TFLite"], "deployable": [members, members],
                            "selected": [models[0], models[0]], "changed": [False, False], "note": ""}),
              "rq1_fidelity_decision")

    verdicts = ["yes", "yes", "conditional", "no"]
    claims_df = pd.DataFrame({"claim_id": [f"VII-{i:02d}" for i in range(claims)],
                              "section": ["VII-E"] * claims, "statement": "a claim",
                              "paper_value": [str(i) for i in range(claims)],
                              "derived_value": [str(i) for i in range(claims)],
                              "reproduced": [verdicts[i % 4] for i in range(claims)], "note": "",
                              "noise": ["within noise" if i % 3 else "" for i in range(claims)],
                              "noise_evidence": ""})
    audit = report("07_paper_audit")
    audit.table(claims_df, "audit_paper_claims")
    summary = claims_df.groupby("reproduced").size()
    audit.table(pd.DataFrame([{"section": "VII", **summary.to_dict(), "claims": claims}]), "audit_paper_summary")
    audit.number("audit_claims", claims)
    audit.number("audit_claims_yes", int(summary.get("yes", 0)))
    return root


def scale_table_ix(folder: str | Path, column: str, factor: float, digits: int = 4) -> None:
    """Multiply one column of the folder's Table IX by `factor` (a host `factor` x slower, a noisier run)."""
    from study import files

    path = Path(folder) / "tables" / "table_ix_finetuning.csv"
    ix = pd.read_csv(path)
    ix[column] = (ix[column] * factor).round(digits)
    files.write_csv(path, ix)


def table_ix_labels(result, column: str) -> set[str]:
    """The compare labels of one Table IX column (`study.runs.compare.Comparison`)."""
    rows = result.rows[(result.rows["table"] == "table_ix_finetuning") & (result.rows["column"] == column)]
    return set(rows["label"])
