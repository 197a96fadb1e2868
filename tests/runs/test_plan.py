"""The planner's arithmetic on a table of known task costs (`study.runs.plan`), its reading of a run's records
(`study.runs.task_costs`) and the command's one error when there is no measured run (`python -m study plan`)."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from study import config
from study.errors import StudyError
from study.runs import plan, task_costs
from study.runs.plan import Factor, NotebookPlan, Part, Plan, TaskKind

ROOT = Path(__file__).resolve().parents[2]


def _kind(units: int, unit_s: float, holds_node: bool, cpus: int = 1, factors: tuple[Factor, ...] = (),
          on_driver: bool = False) -> TaskKind:
    return TaskKind("nb", "task", (Part("p", unit_s, factors),), units, units, holds_node, cpus, on_driver=on_driver)


# (units, unit s, holds a node, cpus, nodes, cores, expected wall s)
KNOWN = [
    (5, 10.0, True, 1, 1, 2, 50.0),  # one per node: 5 waves
    (5, 10.0, True, 1, 2, 2, 30.0),  # ceil(5 / 2) = 3 waves
    (5, 10.0, True, 1, 8, 2, 10.0),  # more nodes than tasks: one wave
    (5, 10.0, False, 1, 1, 2, 30.0),  # packs by cores: 2 at once on one node
    (5, 10.0, False, 1, 2, 2, 20.0),  # 4 at once
    (5, 10.0, False, 2, 2, 4, 20.0),  # 2 cores each: 2 per node of 4 cores
    (5, 10.0, False, 4, 1, 2, 50.0),  # wider than a node: one at a time
    (0, 10.0, True, 1, 1, 2, 0.0),  # none planned
]


@pytest.mark.parametrize("units,unit_s,holds,cpus,nodes,cores,expected", KNOWN)
def test_wall_time_of_a_task_kind(units, unit_s, holds, cpus, nodes, cores, expected):
    assert _kind(units, unit_s, holds, cpus).wall_s(nodes, cores) == pytest.approx(expected)


@pytest.mark.parametrize("nodes", [1, 2, 38])
def test_a_task_on_the_driver_never_spreads(nodes):
    assert _kind(5, 10.0, False, on_driver=True).wall_s(nodes, 2) == pytest.approx(50.0)


def test_parts_scale_by_the_product_of_their_factors():
    kind = TaskKind("nb", "run", (Part("fixed", 4.0), Part("compute", 2.0, (Factor("images", 3.0, "a"),
                                                                            Factor("epochs", 5.0, "b")))),
                    units=2, measured_units=1, holds_node=True)
    assert kind.measured_unit_s == pytest.approx(6.0)
    assert kind.unit_s == pytest.approx(4.0 + 2.0 * 3.0 * 5.0)
    assert kind.wall_s(1, 2) == pytest.approx(2 * 34.0)


def test_a_plan_adds_serial_parts_and_notebooks_in_order():
    measured = NotebookPlan("04", 100.0, plan.serial_part(100.0, 60.0), (_kind(4, 15.0, True), _kind(6, 5.0, False)))
    serial_only = NotebookPlan("02", 7.0, 7.0)
    p = Plan("paper", "smoke", 2, (serial_only, measured))
    assert p.serial_s() == pytest.approx(7.0 + 40.0)
    assert p.wall_s(1) == pytest.approx(7.0 + 40.0 + 4 * 15.0 + 3 * 5.0)
    assert p.wall_s(4) == pytest.approx(7.0 + 40.0 + 15.0 + 1 * 5.0)
    assert p.wall_s(1000) == pytest.approx(p.serial_s() + 15.0 + 5.0)  # Amdahl: a wave of each kind is left
    rows = plan.table_rows(p, [1, 4])
    assert rows[0] == ["notebook", "measured (smoke)", "1 node", "4 nodes"]
    assert rows[-1] == ["total", "0:01:47", "0:02:02", "0:01:07"]


def test_serial_part_is_never_negative():
    assert plan.serial_part(10.0, 25.0) == 0.0


def test_node_counts_must_be_positive():
    with pytest.raises(StudyError, match="--nodes"):
        plan.check_nodes([2, 0])


def _record(results: Path, notebook: str, seconds: float, profile: str) -> None:
    folder = results / "reproduce"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps({
        "notebook": notebook, "seconds": seconds, "parameters": {"profile": profile},
        "finished": "2026-01-02T03:04:05+00:00"}))


def test_a_run_without_task_records_plans_its_notebooks_as_measured(tmp_path):
    _record(tmp_path, "02_rq2_families", 16.0, "smoke")
    _record(tmp_path, "04_case_study_finetuning", 90.0, "smoke")  # no sweep records: the notebook stays serial
    assert task_costs.recorded_profiles(tmp_path) == ["smoke"]
    measured = task_costs.measure(tmp_path, config.get_profile("smoke"))
    p = task_costs.plan_profile(measured, config.get_profile("paper"), cores=2)
    assert [nb.notebook for nb in p.notebooks] == ["02_rq2_families", "04_case_study_finetuning"]
    assert p.wall_s(1) == p.wall_s(38) == pytest.approx(106.0)


def test_measuring_a_profile_that_did_not_run_names_the_command(tmp_path):
    _record(tmp_path, "02_rq2_families", 16.0, "smoke")
    with pytest.raises(StudyError, match=r"python -m study reproduce --profile embedded"):
        task_costs.measure(tmp_path, config.get_profile("embedded"))


def test_the_command_without_measurements_is_one_error_naming_the_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "study", "plan", "--profile", "paper", "--nodes", "2",
                          "--results", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: plan: no measured run")
    assert "python -m study reproduce --profile embedded" in lines[0]
    assert run.stdout == ""


def test_the_deployment_matrix_rows_are_planned_one_per_node_from_their_recorded_seconds(tmp_path):
    """Notebook 01's rows (`measure_s`; a row of an older run estimated from what it timed; a row that did not run
    costs nothing): planned for the paper profile, every format that runs here at the measured rows' mean."""
    _record(tmp_path, "01_rq1_deployment", 100.0, "embedded")
    (tmp_path / "tables").mkdir()
    prof = config.get_profile("embedded")  # the full path: 5 warm-up + 50 timed passes, and each image once
    (tmp_path / "tables" / "rq1_deployment_matrix.csv").write_text(
        "format,latency_ms,export_s,load_ms,images,measure_s\n"
        "saved_model,2.0,1.0,100,8,10.0\n"
        "onnx,4.0,2.0,200,8,20.0\n"
        "tflite_gpu,,,,,\n"  # not runnable here
        "torchscript,10.0,1.5,500,8,\n")  # before measure_s: 1.5 + 0.5 + 0.010 x (5 + 50 + 8)
    m = task_costs.measure(tmp_path, prof)
    assert [r.format for r in m.matrix] == ["saved_model", "onnx", "torchscript"]
    assert m.matrix[2].seconds == pytest.approx(1.5 + 0.5 + 0.010 * (5 + 50 + 8))
    p = task_costs.plan_profile(m, config.get_profile("paper"), cores=2)
    (nb,) = p.notebooks
    (kind,) = nb.tasks
    # planned: every format the scenario table marks as running here (the paper profile's matrix is the full one)
    with open(ROOT / "data" / "deployment_scenarios.csv", encoding="utf-8") as f:
        here = sum(r["runnable_here"].strip().lower() == "yes" for r in csv.DictReader(f))
    assert kind.holds_node and kind.units == here > 3
    mean = (10.0 + 20.0 + m.matrix[2].seconds) / 3
    assert nb.serial_s == pytest.approx(100.0 - 3 * mean)
    assert p.wall_s(1) == pytest.approx(nb.serial_s + here * mean)
    assert p.wall_s(2) == pytest.approx(nb.serial_s + math.ceil(here / 2) * mean)
    assert p.wall_s(here) == pytest.approx(nb.serial_s + mean)


def test_the_versions_are_planned_one_per_node_from_their_sweep_records(tmp_path):
    """Notebook 08's versions: each version's sweep run (and its browser runs) a task; the embedded profile's three
    fine-tuned versions planned for embedded again (nothing scaled) on 1 and 3 nodes."""
    _record(tmp_path, "08_rq3_version_publishing", 200.0, "embedded")
    prof = config.get_profile("embedded")
    cfg = {"cooldown_samples": 3, "interval": 0.5, "epochs": 2, "mode": "frozen"}
    for name, elapse in (("v1_initial", 20.0), ("v4_quantization_boundary", 22.0), ("v5_tf2_saved_model", 24.0)):
        run = tmp_path / "rq3_versions" / prof.version_costs.member / "finetune" / name / "sweep" / "runs" / name
        run.mkdir(parents=True)
        (run / "r0.json").write_text(json.dumps({"member": name, "status": "ok", "elapse_s": elapse, "train_s": 5.0,
                                                 "config": cfg}))
    m = task_costs.measure(tmp_path, prof)
    assert sorted(v.sweep.elapse_s for v in m.versions) == [20.0, 22.0, 24.0]
    p = task_costs.plan_profile(m, prof, cores=2)
    (nb,) = p.notebooks
    (kind,) = nb.tasks
    assert kind.holds_node and kind.units == len(prof.version_costs.versions) == 3
    assert kind.unit_s == pytest.approx(22.0)  # as measured: the same profile, images and member
    assert nb.serial_s == pytest.approx(200.0 - 66.0)
    assert p.wall_s(1) == pytest.approx(200.0) and p.wall_s(3) == pytest.approx(134.0 + 22.0)
