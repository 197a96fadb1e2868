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

from study import formula1
from study.sampler import COLUMNS, GpuProbe, Sampler, SamplerError, TreeMeter, read_samples

# A parent that starts a child which holds ~200 MB and burns one core for `seconds`; the child prints the
# CPU time its busy loop used: the ground truth the sampler's tree CPU must add up to.
BURNER = textwrap.dedent("""
    import subprocess, sys
    child = '''
    import time
    block = b"\\\\x01" * (200 * 2**20)
    start, end = time.process_time(), time.time() + {seconds}
    while time.time() < end:
        pass
    print(time.process_time() - start)
    '''
    subprocess.run([sys.executable, "-c", child], check=True)
""")


def _burner(seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BURNER.format(seconds=seconds)], stdout=subprocess.PIPE, text=True)


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


def test_summarize_and_aggregate_repeats():
    s = pd.DataFrame({"phase": ["cooldown-before", "running", "running", "cooldown-after"],
                      "cpu": [10, 50, 70, 30], "mem": [20, 30, 30, 20], "tree_cpu": [0, 40, 60, 0],
                      "tree_mem": [0, 2, 4, 0], "tree_rss_mb": [0, 100, 300, 0], "gpu": [None] * 4,
                      "gpu_memory": [None] * 4})
    row = formula1.summarize(s)
    assert row["delta_cpu"] == pytest.approx(40) and row["delta_mem"] == pytest.approx(10)
    assert row["delta_cpu_tree"] == pytest.approx(50) and row["peak_rss_mb"] == 300
    assert math.isnan(row["gpu"]) and row["n_samples"] == 4
    runs = pd.DataFrame([{**row, "model": "m", "elapse_s": e, "accuracy": a} for e, a in ((10, .5), (14, .7))])
    agg = formula1.aggregate(runs).iloc[0]
    assert agg["repeats"] == 2 and agg["elapse_s"] == 12 and agg["elapse_s_std"] == pytest.approx(2 ** 0.5 * 2)
    assert agg["accuracy"] == pytest.approx(0.6) and agg["n_samples"] == 8


# --- The sampler process ---------------------------------------------------------------------------

def test_sampler_sees_a_cpu_burning_child_and_its_memory(tmp_path):
    burner = _burner(seconds=2.5)
    with Sampler(interval=0.1, out=tmp_path / "s.csv") as sampler:
        sampler.start(phase="cooldown-before")
        sampler.wait_samples(3)
        sampler.watch(burner.pid)
        sampler.set_phase("running")
        busy_cpu_s = float(burner.communicate(timeout=60)[0])
        sampler.set_phase("cooldown-after")
        sampler.wait_samples(3)
        df = sampler.stop()
    assert list(df.columns) == list(COLUMNS)
    assert df.attrs["sampler_died"] is False
    running = df[df["phase"] == "running"]
    assert len(running) >= 10
    assert running["tree_procs"].max() >= 2  # the parent and its child
    assert running["tree_rss_mb"].max() > 190
    assert (df.loc[df["phase"] != "running", "tree_rss_mb"] == 0).all()
    # tree CPU (all-cores scale) integrated over the sampling intervals = the CPU seconds the tree used, however
    # busy the machine is; at most one interval of the new child goes to priming it
    seconds = (df["tree_cpu"] / 100 * os.cpu_count() * df["t"].diff().fillna(0)).sum()
    assert 0.7 * busy_cpu_s - 0.1 <= seconds <= busy_cpu_s + 0.5, (seconds, busy_cpu_s)
    assert formula1.delta(df, "tree_cpu") > 0
    # a fixed schedule: sampling times stay on the 0.1 s grid
    assert (df["t"].diff().dropna() > 0.05).all()


def test_a_new_process_is_primed_before_its_cpu_counts():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        meter = TreeMeter([burner.pid])
        cpu, rss, procs = meter.measure()
        assert cpu == 0.0 and rss > 0 and procs == 1  # primed: memory counts, CPU not yet
        time.sleep(0.5)
        cpu, _, _ = meter.measure()
        assert cpu > 0
    finally:
        burner.kill()
        burner.wait()


def test_no_gpu_is_reported_not_crashed_on(tmp_path):
    probe = GpuProbe.open()
    if probe.available:
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
