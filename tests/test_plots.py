"""The figure checks every notebook figure goes through (study.plots.text_problems, recorded by Report.figure)."""
from __future__ import annotations

import pandas as pd
import pytest

from study import page, plots


def test_two_labels_on_one_point_overlap():
    fig, ax = plots.figure()
    ax.scatter([1, 1.0001, 2], [1, 1.0, 2])
    ax.annotate("tfjs_graph_model_node", (1, 1))
    ax.annotate("tfjs_graph_model_browser", (1.0001, 1.0))
    assert plots.text_problems(fig)["overlaps"] == ["'tfjs_graph_model_node' / 'tfjs_graph_model_browser'"]


def test_rotated_texts_are_compared_as_drawn_not_by_their_upright_boxes():
    tasks = ["Image Augmentation", "Image Classification", "Image Feature Vector", "Image Generator"]
    fig = plots.grouped_bars(pd.DataFrame({"task": tasks, "n": range(4), "source": "paper"}), x="task", y="n",
                             hue="source")
    assert plots.text_problems(fig)["overlaps"] == []  # their axis-aligned boxes intersect, the texts do not
    fig, ax = plots.figure()
    ax.text(0.5, 0.5, "rotated label here", rotation=45, transform=ax.transAxes)
    ax.text(0.55, 0.55, "another one", rotation=45, transform=ax.transAxes)
    assert plots.text_problems(fig)["overlaps"] == ["'rotated label here' / 'another one'"]


def test_fonts_are_judged_at_the_printed_size():
    fig, ax = plots.figure("full", aspect=0.4)
    ax.plot([1, 2], [1, 2])
    ax.set_xlabel("x")
    problems = plots.text_problems(fig)
    assert problems["too_small"] == [] and problems["smallest_printed_pt"] >= page.MIN_PRINTED_PT
    ax.text(0.5, 0.5, "tiny", fontsize=5, transform=ax.transAxes)
    assert plots.text_problems(fig)["too_small"] == ["'tiny' 5.0 pt"]
    fig, ax = plots.figure(page.TEXT_WIDTH_IN * 2, aspect=0.3)  # drawn twice as wide: printed at half size
    ax.set_xlabel("x")
    assert any(t.startswith("'x' ") for t in plots.text_problems(fig)["too_small"])


# --- Every figure function of the notebooks 01-08, drawn on small data: no overlapping text, nothing under 7 pt ---

TASKS = ["Image Classification", "Image Feature Vector", "Image Object Detection", "Image Generator",
         "Text Embedding", "Text Language Model", "Audio Embedding", "Video Classification"]
MEMBERS = [f"mobilenet_v{v}_{w}_{r}" for v in (1, 2) for w in ("025", "050", "075", "100") for r in (128, 224)]


def _samples(folder, members):
    import numpy as np

    (folder / "samples").mkdir(parents=True, exist_ok=True)
    for i, member in enumerate(members):
        n = 40 + 10 * i
        t = np.arange(n) * 0.5
        phase = ["cooldown-before"] * 4 + ["running"] * (n - 8) + ["cooldown-after"] * 4
        pd.DataFrame({"t": t, "phase": phase, "repeat": 0, "cpu": 100.0, "tree_cpu": 20 + 10 * np.sin(t),
                      "mem": 12.0 + t / n}).to_csv(folder / "samples" / f"{member}.csv", index=False)
    return folder


def _rq1_measured():
    formats = {"TensorFlow": ["saved_model", "litert_float32", "litert_dynamic_int8", "tfjs_graph_model_node",
                              "tfjs_graph_model_browser"],
               "PyTorch": ["state_dict", "dynamic_int8", "torchscript", "onnx", "executorch"]}
    rows = [{"framework": fw, "format": f, "ok": True, "quantised": "int8" in f,
             "size_mb": (2.4 if fw == "TensorFlow" else 13.0) * (0.25 if "int8" in f else 1) + 0.001 * i,
             "latency_ms": (9.0 if "tfjs" in f else 3.0 if fw == "TensorFlow" else 30.0) + 0.3 * i,
             "rel_diff": 1e-2 if "int8" in f else 1e-6, "top1_agreement": 0.9 if "int8" in f else 1.0}
            for fw, fs in formats.items() for i, f in enumerate(fs)]
    return pd.DataFrame(rows)


def _figures(tmp_path):
    """(name, a function drawing the figure) per figure function the notebooks 01-08 call."""
    from study import paper
    from study.audit import figures, section_vii, sections
    from study.casestudy import finetune
    from study.decision import choice, figures as case_figures, uncertainty
    from study.deployment import fidelity_analysis
    from study.deployment import figures as rq1
    from study.releases import publish
    from study.zoos import families, versions

    tables = choice.CaseStudyTables.paper()
    fronts = choice.accuracy_fronts(tables)
    ix = paper.finetuning().assign(architecture=lambda d: d["model"].str.extract(r"^(mobilenet_v\d)")[0])
    sources = ["paper AIHub", "paper PyTorch Hub", "pytorch-hub 2019-12-12", "pytorch-hub 2024-04-15",
               "tfhub 2020-08-26", "tfhub 2024-03-18"]
    tasks = ["image-classification", "image-generator", "image-rnn-agent", "text-embedding",
             "image-object-detection", "image-feature-vector"]
    sizes = pd.DataFrame([{"source": s, "task": t, "members": 2 + (i * j) % 9}
                          for i, s in enumerate(sources) for j, t in enumerate(tasks) for _ in range(1 + j % 3)])
    snapshots = ["TF Hub 2020-08-26", "TF Hub 2024-03-18"]
    notes = ["initial release", "switch to TF2 SavedModel", "variable input size", "UPDATE_OPS fix",
             "batch-norm momentum configurable", "quantisation-boundary fix", "requirement only",
             "serving signature added"]
    costs = pd.DataFrame({"version": [1, 2, 3, 4, 5], "accuracy": [0.4, 0.41, 0.4, 0.39, 0.4],
                          "delta_cpu": [40.0, 42, 45, 41, 43], "delta_mem": [1.0, 1.1, 0.9, 1.2, 1.0],
                          "elapse_s": [9.8, 10.1, 10.5, 9.9, 10.0],
                          "browser_webgl_ms_per_image": [3.1, 3.0, 3.2, 2.9, 3.3],
                          "browser_wasm_ms_per_image": [8.1, 8.0, 8.2, 7.9, 8.3]})
    freq = uncertainty.stability(tables, choice.PAPER_PRIORITIES, n_resamples=20, seed=0)
    ours = freq.groupby("priority").head(3).assign(tables="ours (webgl)")
    sweep = _samples(tmp_path / "sweep", MEMBERS[:10])
    table_ix = pd.DataFrame({"model": MEMBERS[:4], "status": "ok", "delta_cpu": [0.0, 1.0, 2.0, 3.0],
                             "delta_mem": [1.5, 2.0, 1.0, 2.5], "elapse_s": [19.0, 29.0, 40.0, 55.0],
                             "accuracy": [0.1, 0.4, 0.3, 0.5]})
    fidelity = pd.DataFrame([{"member": m, "format": f, "top1_agreement": 1.0 - 0.01 * i * ("int8" in f)}
                             for i, m in enumerate(MEMBERS[:10]) for f in ("saved_model", "tfjs_graph_model_node",
                                                                          "litert_float32", "litert_full_int8")])
    worst = pd.DataFrame({"member": MEMBERS[:4], "format": "litert_full_int8"})
    curves = pd.DataFrame([{"member": m, "format": "litert_full_int8", "divergence": 1e-7 * (k + 1) ** (i + 2),
                            "tolerance": 1e-5, "above": 1e-7 * (k + 1) ** (i + 2) > 1e-5}
                           for i, m in enumerate(MEMBERS[:4]) for k in range(30)])
    return {
        "plots.family_sizes": lambda: plots.family_sizes(paper.families()),
        "plots.scatter (labels)": lambda: plots.scatter(
            ix, x="delta_cpu", y="accuracy", hue="architecture", label="model",
            highlight=["mobilenet_v2_100_160", "mobilenet_v2_075_192"], xlabel="ΔCPU (%)", ylabel="accuracy"),
        "plots.grouped_bars": lambda: plots.grouped_bars(
            pd.DataFrame({"task": TASKS * 2, "percent": range(16), "source": ["paper"] * 8 + ["reproduced"] * 8}),
            x="task", y="percent", hue="source"),
        "rq1 size_vs_latency": lambda: rq1.size_vs_latency(_rq1_measured()),
        "rq1 fidelity_per_format": lambda: rq1.fidelity_per_format(_rq1_measured()),
        "rq2 plot_family_sizes": lambda: families.plot_family_sizes(sizes),
        "rq3 plot_versions_per_task": lambda: versions.plot_versions_per_task(
            pd.DataFrame([{"source": s, "task": t, "percent": 10.0 + i + j} for i, s in enumerate(["paper"] + snapshots)
                          for j, t in enumerate(TASKS[:5])])),
        "rq3 plot_note_categories": lambda: versions.plot_note_categories(
            pd.DataFrame([{"source": s, "label": n, "notes": 5 + 20 * j} for s in snapshots
                          for j, n in enumerate(notes)])),
        "rq3 plot_growth": lambda: versions.plot_growth(
            pd.DataFrame([{"input": t.split()[0], "dl_task": " ".join(t.split()[1:]), "products": 10 * (j + 1) + i,
                           "snapshot": s} for i, s in enumerate(snapshots)
                          for j, t in enumerate(TASKS + [t.replace("Image", "Text") for t in TASKS[:4]])])),
        "rq3v plot_version_costs": lambda: publish.plot_version_costs(costs, "mobilenet_v2_035_96", "smoke"),
        "case accuracy_fronts": lambda: case_figures.accuracy_fronts(
            fronts, highlight=["mobilenet_v2_100_160", "mobilenet_v2_075_192", "mobilenet_v2_035_224"]),
        "case plot_stability": lambda: uncertainty.plot_stability(
            pd.concat([freq, ours], ignore_index=True), highlight=list(choice.PAPER_CHOICES.values())),
        "case timeline_figure (3 of 10)": lambda: finetune.timeline_figure(sweep, MEMBERS[:10]),
        "case timeline_figure (all 10)": lambda: finetune.timeline_figure(sweep, MEMBERS[:10], select=None),
        "case cost_scatter_figure": lambda: finetune.cost_scatter_figure(table_ix),
        "audit inferred_images": lambda: figures.inferred_images(section_vii.inferred_images()),
        "audit verdicts": lambda: figures.verdicts(sections.summary(sections.audit(n_resamples=5))),
        "fidelity heatmap": lambda: fidelity_analysis.heatmap(fidelity, "top1_agreement", title="Top-1 agreement",
                                                              fmt=".3f"),
        "fidelity divergence_figure": lambda: fidelity_analysis.divergence_figure(curves, worst, title="Worst rows"),
    }


FIGURES = ["plots.family_sizes", "plots.scatter (labels)", "plots.grouped_bars", "rq1 size_vs_latency",
           "rq1 fidelity_per_format", "rq2 plot_family_sizes", "rq3 plot_versions_per_task",
           "rq3 plot_note_categories", "rq3 plot_growth", "rq3v plot_version_costs", "case accuracy_fronts",
           "case plot_stability", "case timeline_figure (3 of 10)", "case timeline_figure (all 10)",
           "case cost_scatter_figure", "audit inferred_images", "audit verdicts", "fidelity heatmap",
           "fidelity divergence_figure"]


@pytest.fixture(scope="module")
def drawers(tmp_path_factory):
    return _figures(tmp_path_factory.mktemp("figures"))


@pytest.mark.parametrize("name", FIGURES)
def test_figure_has_no_overlapping_text_and_prints_at_7_pt_or_more(name, drawers):
    import matplotlib.pyplot as plt

    fig = drawers[name]()
    try:
        problems = plots.text_problems(fig)
        assert problems["overlaps"] == [], problems["overlaps"]
        assert problems["too_small"] == [], problems["too_small"]
        w, h = problems["size_in"]
        assert w <= page.TEXT_WIDTH_IN + 0.01 and h <= page.FIGURE_MAX_HEIGHT_IN + 0.01  # placed at 100 %
    finally:
        plt.close(fig)


def test_the_figure_list_covers_every_drawn_figure(drawers):
    assert sorted(drawers) == sorted(FIGURES)


def test_texts_outside_the_view_are_not_compared():
    fig, (a, b) = plots.figure("full", aspect=0.3, ncols=2)
    a.set_xscale("log")
    a.set_xlim(1e-9, 0.1)  # the 10^1 tick label exists but is not drawn: it would sit on b's "0"
    b.set_xlim(0, 100)
    assert plots.text_problems(fig)["overlaps"] == []


def test_representative_members_are_the_shortest_a_middle_and_the_longest_run():
    from study.casestudy import finetune

    lengths = {"a": 5.0, "b": 1.0, "c": 3.0, "d": 9.0, "e": 4.0}
    assert finetune.representative(lengths, 3) == ["b", "d", "e"]  # 1, 4 (the middle of five), 9; in input order
    assert finetune.representative(lengths, 10) == list(lengths)


def test_point_labels_are_placed_apart_with_leader_lines():
    fig, ax = plots.figure()
    ax.scatter([1, 1.0001, 2], [1, 1.0, 2])
    texts = plots.label_points(ax, [1, 1.0001, 2], [1, 1.0, 2],
                               ["tfjs_graph_model_node", "tfjs_graph_model_browser", "saved_model"])
    assert len(texts) == 3 and plots.text_problems(fig)["overlaps"] == []
    assert all(t.get_fontsize() >= page.MIN_PRINTED_PT for t in texts)
