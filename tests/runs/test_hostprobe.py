"""The host-speed probe (`study.runs.hostprobe`) and how `study compare` judges times against it."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from study import files
from study.casestudy import finetune
from study.config import PROFILES
from study.decision import uncertainty
from study.runs import compare, hostprobe
from tests import results_folder

STAT = "cpu  {user} 0 100 {idle} 0 0 0 {steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"


def test_a_reading_times_the_fixed_workload_and_steal_comes_from_proc_stat(tmp_path):
    assert 0 < hostprobe.reading(timings=1) < 60
    before, after = tmp_path / "before", tmp_path / "after"
    before.write_text(STAT.format(user=1000, idle=800, steal=100))
    after.write_text(STAT.format(user=1300, idle=1400, steal=200))  # 1,000 jiffies later, 100 of them stolen
    share = hostprobe.steal_fraction(hostprobe.cpu_times(before), hostprobe.cpu_times(after))
    assert share == pytest.approx(0.1)
    (tmp_path / "other").write_text("intr 1 2 3\n")
    assert hostprobe.cpu_times(tmp_path / "other") is None and math.isnan(hostprobe.steal_fraction(None, None))


def test_a_probe_round_trips_and_the_speed_ratio_says_which_host_was_slower(tmp_path):
    a = hostprobe.HostProbe(1.0, 1.0, 0.0)
    b = hostprobe.HostProbe(1.2, 1.4, 0.02)
    hostprobe.write(tmp_path, b)
    assert hostprobe.read(tmp_path) == b and hostprobe.read(tmp_path / "none") is None
    speed = hostprobe.Speed.of(a, b)
    assert speed.ratio == pytest.approx(1.3)
    assert speed.sentence() == "B's host was 1.30x slower than A's (host-speed probe)"
    assert hostprobe.Speed.of(b, a).sentence() == "B's host was 1.30x faster than A's (host-speed probe)"
    assert speed.cv == pytest.approx(abs(1.4 - 1.2) / 1.3 / math.sqrt(2))
    assert hostprobe.Speed.of(a, None) is None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return results_folder.build(tmp_path_factory.mktemp("probe") / "results")


def test_times_on_a_slower_host_are_within_noise_when_the_probes_say_so(built, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(built, a)
    shutil.copytree(built, b)
    results_folder.scale_table_ix(b, "elapse_s", 1.5, digits=1)  # every time 50 % longer: a slower host
    assert results_folder.table_ix_labels(compare.compare(a, b), "elapse_s") == {"moved"}  # without probes: 50 % longer is beyond a 10 % noise
    hostprobe.write(a, hostprobe.HostProbe(0.40, 0.42, 0.0))
    hostprobe.write(b, hostprobe.HostProbe(0.60, 0.63, 0.0))
    result = compare.compare(a, b)
    assert result.speed.ratio == pytest.approx(1.5, rel=0.01)
    assert results_folder.table_ix_labels(result, "elapse_s") == {"within noise"}
    cell = result.rows[(result.rows["column"] == "elapse_s")].iloc[0]
    assert "B / 1.50 (host-speed probe" in cell["interval"]
    delta = result.rows[(result.rows["table"] == "table_ix_finetuning") & (result.rows["column"] == "delta_cpu")]
    assert set(delta["label"]) == {"identical"}  # only times are scaled


def test_the_probe_bounds_a_slowdown_between_none_and_its_ratio():
    slower, faster = hostprobe.Speed(1.5, 0.0), hostprobe.Speed(0.8, 0.0)
    # B's time 20 % longer on a host the probe reads 50 % slower: all of it allowed (divided by 1.2, not 1.5)
    assert slower.factor(10.0, 12.0) == pytest.approx(1.2)
    assert slower.factor(10.0, 20.0) == pytest.approx(1.5)  # beyond the band: the probe's whole ratio, the rest judged
    assert slower.factor(10.0, 8.0) == 1.0  # faster on a slower host: no help from the probe
    assert faster.factor(10.0, 9.0) == pytest.approx(0.9) and faster.factor(10.0, 5.0) == pytest.approx(0.8)
    assert faster.factor(10.0, 12.0) == 1.0
    assert slower.factor(0.0, 12.0) == 1.5  # no A time to compare: the ratio


def test_a_time_within_the_band_is_within_noise_one_beyond_it_moved(built, tmp_path):
    """A serial run beside a load (the probe 1.9x, the run 1.13x: docs/measured/host_probe.md) is within noise; a
    run 1.5x slower than the probe allows is a change, with or without a probe."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(built, a)
    hostprobe.write(a, hostprobe.HostProbe(0.060, 0.060, 0.0))
    for scale, label in ((1.13, "within noise"), (1.9 * 1.5, "moved")):
        shutil.rmtree(b, ignore_errors=True)
        shutil.copytree(built, b)
        results_folder.scale_table_ix(b, "elapse_s", scale, digits=3)
        hostprobe.write(b, hostprobe.HostProbe(0.114, 0.114, 0.0))
        result = compare.compare(a, b)
        assert result.speed.ratio == pytest.approx(1.9)
        assert results_folder.table_ix_labels(result, "elapse_s") == {label}, scale
    cell = result.rows[(result.rows["column"] == "elapse_s")].iloc[0]
    assert "B / 1.90 (host-speed probe: a slowdown between 1 and 1.90" in cell["interval"]


def test_other_resources_carry_how_far_apart_the_hosts_speeds_were(built, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(built, a)
    shutil.copytree(built, b)
    results_folder.scale_table_ix(b, "delta_cpu", 1.25)  # CPU shares 25 % higher on a busier host
    measured = uncertainty.NoiseModel({"ix.delta_cpu": 0.015}, source="repeats")  # back-to-back repeats: cv 1.5 %
    files.write_csv(b / "tables" / f"{compare.NOISE_TABLE}.csv", measured.to_frame())
    assert results_folder.table_ix_labels(compare.compare(a, b), "delta_cpu") == {"moved"}
    hostprobe.write(a, hostprobe.HostProbe(0.40, 0.40, 0.0))
    hostprobe.write(b, hostprobe.HostProbe(0.60, 0.60, 0.0))
    result = compare.compare(a, b)
    assert results_folder.table_ix_labels(result, "delta_cpu") == {"within noise"}
    cell = result.rows[result.rows["column"] == "delta_cpu"].iloc[0]
    assert "hosts 50% apart in speed (host-speed probe, cv 50.0% added)" in cell["interval"]


def _sweep(out, burners: int) -> tuple[pd.DataFrame, hostprobe.HostProbe]:
    """A smoke sweep of one member bracketed by the probe, with `burners` busy loops beside it (stopped by PID)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
    try:
        started = hostprobe.start()
        table = finetune.sweep(out, PROFILES["smoke"], ["mobilenet_v2_035_96"], progress=False)
        return table, started.finish()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.load  # two burners of its own: in `make test-stress`, not beside the other worker of `make test`
def test_two_sweeps_one_beside_cpu_burners_stay_within_noise_in_elapse_judged_by_the_probe(tmp_path):
    folders = []
    for name, burners in (("quiet", 0), ("burned", hostprobe._cores())):
        table, probe = _sweep(tmp_path / name / "sweep", burners)
        folder = tmp_path / name / "results"
        files.write_csv(folder / "tables" / "table_ix_finetuning.csv", table)
        files.write_text(folder / "manifest.json", json.dumps({"artifacts": {}}))
        hostprobe.write(folder, probe)
        folders.append(folder)
    result = compare.compare(*folders)
    assert result.speed is not None and result.speed.ratio > 1.2, result.speed  # the burners slowed the host
    elapse = result.rows[result.rows["column"] == "elapse_s"]
    assert len(elapse) == 1 and set(elapse["label"]) <= {"within noise", "identical"}, elapse.to_dict("records")
