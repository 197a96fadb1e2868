"""The resource Sampler (its own process, psutil + NVML) and Formula 1."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from study.casestudy import formula1
from study.casestudy.sampler import COLUMNS, GpuProbe, Sampler, SamplerError, Schedule, TreeMeter, read_samples

pytestmark = pytest.mark.stress  # `make test-stress` runs it under load

# A parent that starts a child which holds ~200 MB and burns one core until the file `stop` exists (the test creates
# it once the sampler has the samples it needs: the workload is sized by samples, not by this machine's speed). The
# child prints the CPU time of its busy loop, the parent the CPU time of the whole tree (itself + the child, from
# the kernel's rusage): the ground truth the sampler's integrated tree CPU must lie between.
BURNER = textwrap.dedent("""
    import resource, subprocess, sys
    child = '''
    import os, time
    block = b"\\\\x01" * (200 * 2**20)
    start = time.process_time()
    while not os.path.exists({stop!r}):
        for _ in range(10000):
            pass
    print(time.process_time() - start)
    '''
    busy = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True, text=True).stdout.strip()
    tree = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    print(busy, tree)
""")


def _burner(stop) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BURNER.format(stop=str(stop))], stdout=subprocess.PIPE, text=True)


# --- Formula 1 ---------------------------------------------------------------------------------------

def _samples(before, running, after, column="cpu"):
    phases = ["cooldown-before"] * len(before) + ["running"] * len(running) + ["cooldown-after"] * len(after)
    return pd.DataFrame({"phase": phases, column: before + running + after})


def test_formula1_subtracts_the_mean_of_both_cooldown_periods():
    s = _samples([10, 20, 30], [80, 90], [40, 50, 60])
    # running mean 85, cool-down mean over m = 6 samples (both periods) 35
    assert formula1.delta(s, "cpu") == pytest.approx(50.0)


def test_formula1_is_nan_without_running_or_cooldown_samples():
    assert math.isnan(formula1.delta(_samples([10, 20], [], [30]), "cpu"))
    assert math.isnan(formula1.delta(_samples([], [50], []), "cpu"))


def test_validity_names_the_phase_with_too_few_full_interval_samples():
    s = pd.DataFrame({"phase": ["cooldown-before", "running", "running", "running", "cooldown-after"],
                      "t": [1.0, 2.0, 2.01, 2.02, 3.0], "cpu": [1, 2, 3, 4, 5]})
    # the two running samples 10 ms after another cover noise, not an interval: one valid running sample
    why = formula1.validity(s, interval=1.0)
    assert "1 valid sample(s) in running (need 2)" in why
    assert formula1.validity(s.assign(t=[1.0, 2.0, 3.0, 4.0, 5.0]), interval=1.0) == ""
    assert "cooldown-after" in formula1.validity(s.assign(t=[1.0, 2.0, 3.0, 4.0, 5.0]), 1.0, min_cooldown=2)


def test_summarize_and_aggregate_repeats():
    s = pd.DataFrame({"phase": ["cooldown-before", "running", "running", "cooldown-after"],
                      "cpu": [10, 50, 70, 30], "mem": [20, 30, 30, 20], "tree_cpu": [0, 40, 60, 0],
                      "tree_mem": [0, 2, 4, 0], "tree_rss_mb": [0, 100, 300, 0], "gpu": [None] * 4,
                      "gpu_memory": [None] * 4})
    row = formula1.summarize(s)
    assert row["delta_cpu"] == pytest.approx(40) and row["delta_mem"] == pytest.approx(10)
    assert row["delta_cpu_tree"] == pytest.approx(50) and row["peak_rss_mb"] == 300
    assert math.isnan(row["gpu"]) and row["n_samples"] == 4
    assert row["missed_slots"] == 0 and math.isnan(row["interval_median_s"])  # no `t` column: unknown
    runs = pd.DataFrame([{**row, "model": "m", "elapse_s": e, "accuracy": a} for e, a in ((10, .5), (14, .7))])
    agg = formula1.aggregate(runs).iloc[0]
    assert agg["repeats"] == 2 and agg["elapse_s"] == 12 and agg["elapse_s_std"] == pytest.approx(2 ** 0.5 * 2)
    assert agg["accuracy"] == pytest.approx(0.6) and agg["n_samples"] == 8


# --- The sampler process ---------------------------------------------------------------------------

def test_sampler_sees_a_cpu_burning_child_and_its_memory(tmp_path):
    need = 12  # running samples, whatever this machine's speed or load
    with Sampler(interval=0.1, out=tmp_path / "s.csv") as sampler:
        sampler.start(phase="cooldown-before")
        sampler.wait_samples(3)
        burner = _burner(stop=tmp_path / "stop")  # started now: none of its CPU time falls before the watch
        sampler.watch(burner.pid)
        sampler.set_phase("running")
        sampler.wait_samples(need, timeout=300)  # a generous net: the samples arrive by construction
        (tmp_path / "stop").touch()
        busy_cpu_s, tree_cpu_s = map(float, burner.communicate(timeout=300)[0].split())
        sampler.set_phase("cooldown-after")
        sampler.wait_samples(3, timeout=300)
        df = sampler.stop()
    assert list(df.columns) == list(COLUMNS)
    assert df.attrs["sampler_died"] is False
    running = df[df["phase"] == "running"]
    assert len(running) >= need
    assert running["tree_procs"].max() >= 2  # the parent and its child
    assert running["tree_rss_mb"].max() > 190
    assert (df.loc[df["phase"] != "running", "tree_rss_mb"] == 0).all()
    # every grid slot while running was either sampled or counted as missed (however busy the machine is): the
    # grid slots between the first and the last running sample = the gaps sampled + the slots missed in them
    on_grid = running["t"] - running["late_s"].fillna(0)
    slots = round((on_grid.iloc[-1] - on_grid.iloc[0]) / 0.1)
    assert len(running) - 1 + running["missed"].iloc[1:].sum() == slots, (len(running), slots)
    # tree CPU (all-cores scale) integrated over the sampling intervals = the CPU seconds the tree used, however
    # busy the machine is: never more than the kernel's count for the whole tree; what can go uncounted is the
    # interval in which the child was primed and the one in which it exited (each as long as the sampler's longest
    # interval, longer after a stall)
    dt = df["t"].diff().fillna(0)
    seconds = (df["tree_cpu"] / 100 * os.cpu_count() * dt).sum()
    tick = 0.02  # the kernel counts CPU time in clock ticks (10 ms), per process
    assert busy_cpu_s - 2 * dt.max() - tick <= seconds <= tree_cpu_s + tick, (seconds, busy_cpu_s, tree_cpu_s, dt.max())
    assert formula1.delta(df, "tree_cpu") > 0
    # the schedule's property, not the machine's speed: no sample within half an interval of the previous one
    assert (dt.iloc[1:] >= 0.05 - 1e-3).all()


# --- The schedule ----------------------------------------------------------------------------------------

def test_schedule_on_time_keeps_the_grid():
    s = Schedule(start=100.0, interval=1.0)
    for k in range(1, 6):
        assert s.next_slot() == 100.0 + k
        assert s.taken(100.0 + k + 0.01) == (pytest.approx(0.01), 0)


@pytest.mark.parametrize("late", [0.2, 0.49, 0.51, 0.99, 1.0, 3.4, 7.9])
def test_schedule_after_a_stall_skips_missed_slots_never_bunches(late):
    s = Schedule(start=0.0, interval=1.0)
    s.taken(1.0)
    now = 2.0 + late  # slot 2 is `late` seconds late
    got_late, missed = s.taken(now)
    assert got_late == pytest.approx(late)
    following = s.next_slot()
    assert following - now >= 0.5  # the next sample covers at least half an interval
    assert following - now < 1.5  # and nothing more than needed is skipped
    assert following == int(following)  # still on the grid
    assert missed == following - 3  # every slot between 2 and the next one is accounted for


def test_a_stalled_sample_is_recorded_and_no_catch_up_follows(tmp_path):
    # fault injection: the 4th sample's probe is delayed by 4.5 intervals
    with Sampler(interval=0.1, out=tmp_path / "s.csv", stall=(4, 0.45)) as sampler:
        sampler.start(phase="running")
        sampler.wait_samples(10)
        df = sampler.stop()
    dt = df["t"].diff().dropna()
    assert (dt >= 0.05 - 1e-3).all(), dt.tolist()  # never two samples within half an interval
    assert df["missed"].sum() >= 3  # the slots the stall swallowed are counted ...
    assert df["late_s"].max() >= 0.4  # ... and the late sample says how late it was
    reg = formula1.regularity(df)
    assert reg["missed_slots"] == df["missed"].sum() and reg["interval_max_s"] >= 0.45


def test_a_new_process_is_primed_before_its_cpu_counts():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        meter = TreeMeter([burner.pid])
        cpu, rss, procs = meter.measure()
        assert cpu == 0.0 and rss > 0 and procs == 1  # primed: memory counts, CPU not yet
        deadline = time.monotonic() + 60  # a generous net: a busy loop's CPU shows up within one scheduler tick
        while (cpu := meter.measure()[0]) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu > 0
    finally:
        burner.kill()
        burner.wait()


def test_no_gpu_is_reported_not_crashed_on(tmp_path):
    probe = GpuProbe.open()
    if probe.available:
        # the one skip that stays a skip everywhere (a real GPU device); the GPU path itself is tested on every
        # machine against the NVML stand-in (test_sampler_gpu.py)
        pytest.skip(f"this machine has a GPU ({probe.reason}); the no-GPU path is not exercised here")
    assert probe.reason.startswith("no GPU")
    assert probe.read() == (None, None)
    with Sampler(interval=0.1, out=tmp_path / "s.csv") as sampler:
        sampler.start()
        sampler.wait_samples(2)
        df = sampler.stop()
    assert sampler.gpu_status.startswith("no GPU")
    assert df["gpu"].isna().all() and df["gpu_memory"].isna().all()
    assert math.isnan(formula1.summarize(df)["gpu"])


def test_sampler_death_is_detected(tmp_path):
    sampler = Sampler(interval=0.1, out=tmp_path / "s.csv").start(phase="running")
    sampler.wait_samples(2)
    os.kill(sampler.pid, signal.SIGKILL)
    sampler.proc.wait(timeout=10)
    assert sampler.died
    with pytest.raises(SamplerError, match="died"):
        sampler.wait_samples(100)
    df = sampler.stop()
    assert df.attrs["sampler_died"] is True
    assert len(df) >= 2  # what was measured before the death is kept


def test_interval_below_the_minimum_is_a_clear_error():
    with pytest.raises(SamplerError, match="0.1"):
        Sampler(interval=0.01)


def test_a_half_written_last_line_is_dropped(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(",".join(COLUMNS) + "\n1,0.1,running,10,20,5,1,10,1,,\n2,0.2,runn")
    df = read_samples(path)
    assert len(df) == 1 and df.loc[0, "cpu"] == 10
