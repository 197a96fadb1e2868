"""Decision analysis: tie rules, Pareto fronts and priority-ordered selection, on hand-made and the paper's tables."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from study.decision import choice, figures
from study.decision.choice import CaseStudyTables, Criterion, pareto_front, select, uses_less_than
from study.errors import StudyError
from study.report import notebook_output


def table_x(**overrides) -> pd.DataFrame:
    """A small Table X-shaped table; b and c tie on CPU, b and d tie on elapse."""
    df = pd.DataFrame({
        "model": ["a", "b", "c", "d"],
        "cpu": [10.0, 20.0, 20.0, 30.0],
        "elapse": ["0:00:05", "0:00:02", "0:00:09", "0:00:02"],
        "memory": [5.0, 6.0, 7.0, 8.0],
        "gpu": [1.0, 2.0, 3.0, 4.0],
        "gpu_memory": [4.0, 3.0, 2.0, 1.0],
        "accuracy": [0.5, 0.7, 0.6, 0.8],
    })
    for k, v in overrides.items():
        df[k] = v
    return df


def table_ix() -> pd.DataFrame:
    return pd.DataFrame({"model": ["a", "b", "c", "d"], "delta_cpu": [1.0, 2.0, 3.0, 4.0],
                         "delta_mem": [4.0, 3.0, 2.0, 1.0], "elapse": ["0:01:00", "0:02:00", "0:03:00", "1:00:00"],
                         "accuracy": [0.5, 0.7, 0.6, 0.8]})


# --- "uses less X than N (p %)" -----------------------------------------------------------------

def test_tie_rules_on_a_small_table():
    values = pd.Series({"a": 1.0, "b": 2.0, "c": 2.0, "d": 3.0})
    strict = uses_less_than(values, "b", tie_rule="strict")
    or_equal = uses_less_than(values, "b", tie_rule="or_equal")
    assert (strict.n, strict.ties, strict.n_models, strict.percent) == (1, 1, 4, 25.0)  # only d uses more
    assert (or_equal.n, or_equal.percent) == (2, 50.0)  # c's tie counts as "more"
    assert uses_less_than(values, "b", denominator="others").percent == pytest.approx(100 / 3)
    assert uses_less_than(values, "a").n == 3 and uses_less_than(values, "d", tie_rule="or_equal").n == 0


def test_missing_values_are_not_members_of_the_count():
    values = pd.Series({"a": 1.0, "b": float("nan"), "c": 2.0})
    assert uses_less_than(values, "a").n_models == 2
    with pytest.raises(StudyError, match="'b' has no value"):
        uses_less_than(values, "b")


def test_unknown_tie_rule_names_the_valid_ones():
    with pytest.raises(StudyError, match="strict, or_equal"):
        uses_less_than(pd.Series({"a": 1.0}), "a", tie_rule="loose")


def test_compare_parses_elapse_and_words_like_the_paper():
    tables = CaseStudyTables(x=table_x())
    ev = choice.compare(tables, "b").set_index("resource")
    assert ev.loc["x.elapse", "value"] == 2 and ev.loc["x.elapse", "value_text"] == "0:00:02"
    assert ev.loc["x.elapse", "uses_less_than"] == 2 and ev.loc["x.elapse", "ties"] == 1
    assert ev.loc["x.cpu", "statement"] == "uses less CPU usage than 1 (25.00%) models"
    or_equal = choice.compare(tables, "b", tie_rule="or_equal").set_index("resource")
    assert or_equal.loc["x.cpu", "uses_less_than"] == 2 and or_equal.loc["x.elapse", "uses_less_than"] == 3
    assert set(ev["table"]) == {"X"}


def test_the_paper_counts_of_section_vii_g():
    """VII-G.1: mobilenet_v2_100_160 uses less CPU than 14 (36.84%), memory 9 (23.68%), time 10 (26.32%)."""
    ev = choice.compare(CaseStudyTables.paper(), "mobilenet_v2_100_160").set_index("resource")
    assert ev.loc[["ix.delta_cpu", "ix.delta_mem", "ix.elapse"], "uses_less_than"].tolist() == [14, 9, 10]
    assert ev.loc["ix.delta_cpu", "percent"] == pytest.approx(36.842, abs=1e-3)


# --- bad input ------------------------------------------------------------------------------------

def test_missing_column_is_named(tmp_path):
    path = tmp_path / "table_x.csv"
    table_x().drop(columns=["gpu_memory"]).to_csv(path, index=False)
    with pytest.raises(StudyError, match=r"lacks column\(s\) gpu_memory"):
        CaseStudyTables.from_files(x=path)


def test_unparsable_elapse_names_row_model_and_column(tmp_path):
    path = tmp_path / "table_ix.csv"
    df = table_ix()
    df.loc[2, "elapse"] = "3 min"
    df.to_csv(path, index=False)
    with pytest.raises(StudyError, match=r"line 4 \(model c\): column elapse: .*H:MM:SS"):
        CaseStudyTables.from_files(ix=path)


@pytest.mark.parametrize("column,value,match", [
    ("cpu", "lots", r"column cpu value 'lots' is not a number"),
    ("accuracy", 62.0, r"outside \[0, 1\]"),
    ("model", "a", r"model\(s\) a appear more than once"),
])
def test_bad_cells_are_named(column, value, match):
    df = table_x()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    with pytest.raises(StudyError, match=match):
        choice.load_table(df, "X")


def test_missing_file_and_unknown_model():
    with pytest.raises(StudyError, match="does not exist"):
        CaseStudyTables.from_files(ix="/nonexistent/table_ix.csv")
    with pytest.raises(StudyError, match="valid names: a, b, c, d"):
        choice.compare(CaseStudyTables(x=table_x()), "e")
    with pytest.raises(StudyError, match="no table given"):
        CaseStudyTables()


def test_empty_cells_are_missing_measurements_and_unmeasured_columns_are_skipped():
    """A sweep without a GPU leaves gpu/gpu_memory empty; a failed run leaves its elapse empty."""
    df = table_x(gpu=[None] * 4, gpu_memory=[None] * 4)
    df.loc[0, "elapse"] = None
    tables = CaseStudyTables(x=df)
    assert [r.key for r in tables.unmeasured()] == ["x.gpu", "x.gpu_memory"]
    ev = choice.compare(tables, "b").set_index("resource")
    assert "x.gpu" not in ev.index and ev.loc["x.elapse", "n_models"] == 3


# --- Pareto fronts --------------------------------------------------------------------------------

def test_pareto_front_with_dominated_and_non_dominated_rows():
    df = pd.DataFrame({"model": list("abcdef"), "accuracy": [0.9, 0.8, 0.8, 0.7, 0.9, float("nan")],
                       "cost": [10.0, 5.0, 6.0, 5.0, 10.0, 1.0]})
    front = pareto_front(df, maximize=["accuracy"], minimize=["cost"])
    # a and e are equal (neither dominates the other); c is dominated by b, d by b; f lacks accuracy
    assert df.loc[front, "model"].tolist() == ["a", "b", "e"]


def test_pareto_front_needs_known_columns():
    with pytest.raises(StudyError, match="no column"):
        pareto_front(pd.DataFrame({"x": [1]}), maximize=["accuracy"])


def test_accuracy_fronts_of_the_paper():
    tables = CaseStudyTables.paper()
    fronts = choice.accuracy_fronts(tables)
    assert set(fronts["resource"]) == {r.key for r in choice.RESOURCES}
    on = fronts[fronts["on_front"]]
    # the unique most accurate member is on every front; each front is a strict trade-off
    assert (on.groupby("resource")["model"].apply(set).map(lambda s: "mobilenet_v2_100_160" in s)).all()
    for _, part in on.groupby("resource"):
        part = part.sort_values("value")
        assert part["accuracy"].is_monotonic_increasing
    assert not on[(on["model"] == "mobilenet_v2_075_192") & (on["resource"] == "x.cpu")].shape[0]
    assert choice.dominators(tables, "mobilenet_v2_075_192") == ["mobilenet_v2_035_224"]


def test_front_figure_has_one_panel_per_resource():
    fronts = choice.accuracy_fronts(CaseStudyTables(x=table_x()))
    fig = figures.accuracy_fronts(fronts, highlight=["b"], source="reproduced")
    assert sum(ax.get_visible() for ax in fig.axes) == 5


# --- priority-ordered selection ---------------------------------------------------------------------

def test_select_applies_constraints_then_objectives_in_order():
    tables = CaseStudyTables(ix=table_ix(), x=table_x())
    sel = select(tables, ["accuracy>=0.6", "min:x.cpu", "max:accuracy"])
    # a is below 0.6; b and c tie on CPU (20) and b is more accurate
    assert sel.model == "b"
    assert sel.steps["after"].tolist() == [3, 2, 1]
    assert set(sel.evidence["resource"]) == {r.key for r in choice.RESOURCES}
    assert select(tables, ["max:accuracy"]).model == "d"


def test_group_score_and_tie_broken_by_table_order():
    tables = CaseStudyTables(x=table_x())
    score = choice.group_score(tables, "inference")
    assert score.between(0, 1).all()
    sel = select(tables, ["x.memory<=6", "x.memory>=5", "x.gpu>0"])  # a and b remain, no objective
    assert sel.model == "a" and sel.steps.iloc[-1]["criterion"] == "table order (tie)"


def test_selection_reproduces_and_questions_the_paper():
    tables = CaseStudyTables.paper()
    picks = {name: select(tables, p).model for name, p in choice.PAPER_PRIORITIES.items()}
    assert list(picks.values()) == ["mobilenet_v2_100_160", "mobilenet_v2_035_224"]


@pytest.mark.parametrize("item,match", [
    ("accuracy>0.99", "no candidate satisfies"),
    ("max:inference", "write min:inference"),
    ("min:elapse", "in both tables; write ix.elapse or x.elapse"),
    ("min:speed", "no column 'speed'"),
    ("fastest", "not understood"),
])
def test_bad_priorities(item, match):
    with pytest.raises(StudyError, match=match):
        select(CaseStudyTables(ix=table_ix(), x=table_x()), [item])


def test_criterion_parsing():
    assert Criterion.parse("accuracy >= 0.62") == Criterion("accuracy >= 0.62", "constraint", "accuracy", ">=", 0.62)
    assert Criterion.parse("min:inference").kind == "min"


# --- our sweep's tables -----------------------------------------------------------------------------

def test_a_table_x_with_several_backends_needs_one(tmp_path):
    df = pd.concat([table_x(backend="wasm"), table_x(backend="webgl", cpu=[40.0, 30.0, 20.0, 10.0])])
    path = tmp_path / "table_x.csv"
    df.to_csv(path, index=False)
    with pytest.raises(StudyError, match="backends wasm, webgl; choose one"):
        CaseStudyTables.from_files(x=path)
    with pytest.raises(StudyError, match="valid: wasm, webgl"):
        CaseStudyTables.from_files(x=path, backend="cuda")
    tables = CaseStudyTables.from_files(x=path, backend="webgl")
    assert tables.label == "ours (webgl)" and select(tables, ["min:x.cpu"]).model == "d"


def _sweep(folder: Path, ix: pd.DataFrame, x: pd.DataFrame | None = None) -> Path:
    folder.mkdir(parents=True)
    ix.to_csv(folder / "table_ix.csv", index=False)
    if x is not None:
        x.to_csv(folder / "table_x.csv", index=False)
    return folder


def test_sweep_tables_take_the_declared_notebook_outputs_among_several_sweeps(tmp_path, monkeypatch):
    """Three candidate sweeps under results/, the declared one (notebook 04's, same profile) the oldest: it is
    the one used, whatever is newer; another profile, a missing or changed artefact: one error naming 04."""
    from study.report import Report

    monkeypatch.setenv("STUDY_RESULTS_DIR", str(tmp_path / "results"))
    results = tmp_path / "results"
    declared = _sweep(results / "finetune" / "smoke", table_ix(), pd.concat([table_x(backend="wasm")]))
    (declared / "sweep.json").write_text("{}")
    four = Report("04_case_study_finetuning", {"profile": "smoke"}, results=results, figures=tmp_path / "figures")
    four.table(table_ix(), "table_ix_finetuning", inputs=[declared / "sweep.json", declared / "table_ix.csv"])
    five = Report("05_case_study_browser", {"profile": "smoke"}, results=results, figures=tmp_path / "figures")
    five.table(table_x(), "table_x_browser", inputs=[declared / "table_x.csv"])
    for other in ("versions/v1", "shortlist/smoke"):  # newer sweeps (notebooks 08, 10): never "ours"
        reversed_ix = table_ix().assign(accuracy=table_ix()["accuracy"][::-1].to_numpy())
        _sweep(results / other, reversed_ix, table_x(backend="cpu"))
    tables, note = choice.sweep_tables("04:table_ix_finetuning", "05:table_x_browser", profile="smoke")
    assert tables.ix.attrs["source"] == str(declared / "table_ix.csv"), note
    assert tables.x.attrs["source"] == str(declared / "table_x.csv")
    assert {p.name for p in tables.sources} == {"table_ix.csv", "table_x.csv", "table_ix_finetuning.csv",
                                                 "table_x_browser.csv"}
    with pytest.raises(StudyError, match=r"made with profile smoke, not embedded: .*--only 04"):
        choice.sweep_tables("04:table_ix_finetuning", "", profile="embedded")
    with pytest.raises(StudyError, match=r"no artefact 'table_ix_other' of notebook 04: run that notebook first"):
        choice.sweep_tables("04:table_ix_other", "", profile="smoke")
    with pytest.raises(StudyError, match="not NOTEBOOK:ARTEFACT"):
        notebook_output("table_ix", "smoke")
    table_ix().assign(accuracy=0.0).to_csv(declared / "table_ix.csv", index=False)  # the sweep re-ran after 04
    with pytest.raises(StudyError, match="changed since notebook 04_case_study_finetuning used it"):
        choice.sweep_tables("04:table_ix_finetuning", "", profile="smoke")
    assert choice.sweep_tables("", None) == (None, "no sweep tables given")
    with pytest.raises(StudyError, match="delta_mem"):  # an explicit path: bad input raises
        table_ix().drop(columns=["delta_mem"]).to_csv(tmp_path / "bad.csv", index=False)
        choice.sweep_tables(tmp_path / "bad.csv", "")
    tables, note = choice.sweep_tables(None, declared / "table_x.csv")
    assert tables.label == "ours" and tables.ix is None and tables.x is not None


def test_evidence_of_a_member_without_a_measurement():
    df = table_x()
    df.loc[1, "memory"] = None
    ev = choice.compare(CaseStudyTables(x=df), "b").set_index("resource")
    assert ev.loc["x.memory", "statement"] == "no memory usage measured" and pd.isna(ev.loc["x.memory", "uses_less_than"])
    assert ev.loc["x.cpu", "uses_less_than"] == 1


def test_table_ix_backend_column_is_the_training_framework(tmp_path):
    """A sweep of TF and torch assets (tf / torch in Table IX's `backend`) is one table, not narrowed."""
    ix = pd.DataFrame({"model": ["a", "b"], "delta_cpu": [50.0, 60.0], "delta_mem": [1.0, 2.0],
                       "elapse": ["0:00:10", "0:00:20"], "accuracy": [0.5, 0.6], "backend": ["tf", "torch"]})
    ix.to_csv(tmp_path / "table_ix.csv", index=False)
    tables, _ = choice.sweep_tables(tmp_path / "table_ix.csv", None)
    assert list(tables.ix["model"]) == ["a", "b"]


# --- members that see: a random-init member is never chosen --------------------------------------

def _with_weights(weights: list[str]) -> CaseStudyTables:
    ix = table_ix()
    ix["weights"] = weights
    return CaseStudyTables(ix, table_x(), label="ours")


def test_a_random_member_is_never_chosen_for_an_accuracy_criterion():
    # d is the most accurate and b the lightest at inference; both randomly initialised: chance accuracies
    tables = _with_weights(["imagenet", "random", "imagenet", "random"])
    assert tables.blind() == ["b", "d"]
    best = select(tables, ["max:accuracy"])
    assert best.model == "c"  # without the labels it is d (the most accurate of the four)
    assert select(CaseStudyTables(table_ix(), table_x()), ["max:accuracy"]).model == "d"
    assert best.steps.iloc[0]["criterion"] == choice.SEES
    assert (best.steps.iloc[0]["before"], best.steps.iloc[0]["after"]) == (4, 2)
    # a resource-first priority and a constraint keep to the members that see, too
    assert select(tables, ["min:inference", "max:accuracy"]).model in {"a", "c"}
    assert select(tables, ["accuracy>0.55", "min:inference"]).model == "c"
    # no random member dominates a pick nor sits on an accuracy front
    assert set(choice.dominators(tables, "a")) <= {"c"}
    fronts = choice.accuracy_fronts(tables)
    assert not fronts.loc[fronts["model"].isin(["b", "d"]), "on_front"].any()
    assert set(fronts.loc[fronts["model"] == "b", "weights"]) == {"random"}


def test_only_random_members_is_a_clear_error_and_unlabelled_tables_are_unchanged():
    with pytest.raises(StudyError, match=r"every member of the tables .* is randomly initialised .*trained weights"):
        select(_with_weights(["random"] * 4), ["max:accuracy"])
    assert _with_weights(["imagenet"] * 4).blind() == []
    assert list(select(CaseStudyTables.paper(), ["max:accuracy"]).steps["criterion"]) == ["max:accuracy"]


def test_paper_priorities_over_members_that_see():
    # the paper's own threshold once a member that sees is better than 62 %; random ones do not count
    seeing = table_ix()
    seeing["weights"] = ["imagenet", "random", "imagenet", "random"]
    tables = CaseStudyTables(seeing, table_x(accuracy=[0.5, 0.7, 0.63, 0.8]))
    assert choice.paper_like_priorities(tables) == choice.PAPER_PRIORITIES  # c (0.63) sees and passes 62 %
    low = table_ix()
    low["accuracy"] = [0.30, 0.90, 0.25, 0.95]
    low["weights"] = ["imagenet", "random", "imagenet", "random"]
    x = table_x(accuracy=[0.30, 0.90, 0.25, 0.95])
    prio = choice.paper_like_priorities(CaseStudyTables(low, x))
    assert prio != choice.PAPER_PRIORITIES  # the random members' 0.9 do not make the paper's 62 % reachable
    threshold = [c for c in list(prio.values())[1] if c.startswith("accuracy>=")]
    assert threshold == ["accuracy>=0.25"]  # the k-th best of the two that see
