"""The error of coarse sampling intervals (`study.casestudy.sampling_error`): synthetic traces with known integrals,
and a real duty-cycled CPU load measured by the real Sampler against the kernel's CPU time."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import psutil
import pytest

from study.casestudy import formula1, sampling_error
from study.casestudy.sampler import Sampler
from study.errors import StudyError

DT = 0.1  # the synthetic traces' fine interval (s)
BEFORE, RUN, AFTER = 200, 600, 200  # fine samples per phase: 20 s cool-down, 60 s running, 20 s cool-down
ON = 4  # of every 10 fine samples (1 s), the load burns a full core for 4 while running: 40 % CPU


def trace(before: int = BEFORE, run: int = RUN, after: int = AFTER) -> pd.DataFrame:
    """Sample k covers ((k)·DT, (k+1)·DT]; CPU 100 % in the first ON tenths of each second while running, else 0;
    memory a known ramp (a point reading)."""
    k = np.arange(before + run + after)
    phase = np.where(k < before, "cooldown-before", np.where(k < before + run, "running", "cooldown-after"))
    cpu = np.where((phase == "running") & (k % 10 < ON), 100.0, 0.0)
    return pd.DataFrame({"t": (k + 1) * DT, "phase": phase, "cpu": cpu, "mem": 20.0 + 0.01 * k})


def cpu_integral(start: float, end: float) -> float:
    """∫ cpu dt (%·s) of `trace()`'s generating function over (start, end], from its definition."""
    seconds = np.arange(np.floor(start), np.ceil(end) + 1)
    on = [(s, s + ON * DT) for s in seconds if BEFORE * DT <= s < (BEFORE + RUN) * DT]
    return 100.0 * sum(max(0.0, min(end, b) - max(start, a)) for a, b in on)


def test_coarse_samples_integrate_exactly_and_memory_is_read_at_a_point():
    fine = trace()
    for interval in sampling_error.INTERVALS_S:
        step = round(interval / DT)
        for offset in (0, step // 3, step - 1):
            coarse = sampling_error.subsample(fine, step, offset)
            ends = np.arange(offset + step - 1, len(fine), step)
            assert coarse["t"].tolist() == pytest.approx(fine["t"].to_numpy()[ends].tolist())
            assert coarse["mem"].tolist() == pytest.approx(fine["mem"].to_numpy()[ends].tolist())
            for t, cpu in zip(coarse["t"], coarse["cpu"]):
                assert cpu * interval == pytest.approx(cpu_integral(t - interval, t), abs=1e-6)


def test_formula1_at_the_fine_interval_and_at_aligned_offsets_is_the_known_value():
    errors = sampling_error.sampling_errors(trace(), quantities=sampling_error.QUANTITIES[:1])
    fine = errors.drop_duplicates("quantity").set_index("quantity")["fine"]
    assert fine["delta_cpu"] == pytest.approx(100.0 * ON / 10) and fine["elapse_s"] == pytest.approx(RUN * DT)
    assert set(errors["interval_s"]) == set(sampling_error.INTERVALS_S)
    for interval, part in errors.groupby("interval_s"):
        step = round(interval / DT)
        assert part["offset"].nunique() == step  # every phase offset
        aligned = part[part["offset"] == BEFORE % step]  # coarse windows start where running starts
        assert aligned["error"].abs().max() == pytest.approx(0.0, abs=1e-9)
        elapse = part[part["quantity"] == "elapse_s"]["error"]
        assert elapse.abs().max() < interval  # a coarse sampler's elapse is off by less than one interval
    assert errors.loc[errors["quantity"] == "delta_cpu", "error"].abs().max() > 0  # straddling windows do err
    at_fine = sampling_error.sampling_errors(trace(), (DT,))  # "subsampling" at the trace's own interval
    assert len(at_fine) == 3 and at_fine["error"].abs().max() == pytest.approx(0.0, abs=1e-9)


def test_a_hand_computed_two_sample_interval():
    """Fine 1 s: cool-down 4 × 0 %, running 3 × 100 %, cool-down 4 × 0 %. At 2 s, offset 0 sees running
    [100] and cool-down [0, 0, 50, 0]: ΔCPU 87.5, elapse 2 s; offset 1 sees running [50, 100], cool-down [0, 0, 0]:
    ΔCPU 75, elapse 4 s. The fine trace says 100 and 3 s."""
    fine = pd.DataFrame({"t": np.arange(1.0, 12.0), "cpu": [0, 0, 0, 0, 100, 100, 100, 0, 0, 0, 0],
                         "phase": ["cooldown-before"] * 4 + ["running"] * 3 + ["cooldown-after"] * 4})
    errors = sampling_error.sampling_errors(fine, (2.0,)).set_index(["offset", "quantity"])
    assert errors.loc[(0, "delta_cpu"), ["coarse", "error"]].tolist() == [87.5, -12.5]
    assert errors.loc[(1, "delta_cpu"), ["coarse", "error"]].tolist() == [75.0, -25.0]
    assert errors.loc[(0, "elapse_s"), "error"] == -1.0 and errors.loc[(1, "elapse_s"), "error"] == 1.0
    summary = sampling_error.error_summary(errors.reset_index()).set_index("quantity")
    assert summary.loc["delta_cpu", ["offsets", "invalid", "mean", "max_abs"]].tolist() == [2, 0, -18.75, 25.0]
    assert summary.loc["delta_cpu", "max_abs_rel"] == 0.25 and summary.loc["elapse_s", "run_s_max"] == 3.0


def test_a_cool_down_shorter_than_the_interval_is_invalid_not_a_number():
    errors = sampling_error.sampling_errors(trace(before=20, after=0), (5.0,), quantities=sampling_error.QUANTITIES[:1])
    summary = sampling_error.error_summary(errors).set_index("quantity")
    assert summary.loc["delta_cpu", "invalid"] == 50 and summary.loc["delta_cpu", "offsets"] == 50


def test_bad_traces_are_clear_errors():
    with pytest.raises(StudyError, match="missing: phase"):
        sampling_error.sampling_errors(pd.DataFrame({"t": [1.0, 2.0], "cpu": [1.0, 2.0]}))
    with pytest.raises(StudyError, match="needs >= 2 samples"):
        sampling_error.sampling_errors(trace().head(1))


LOAD = r"""
import select, sys, time
on, off = float(sys.argv[1]), float(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
bursts = 0
while True:
    end = time.process_time() + on  # `on` CPU-seconds per burst, however busy the machine is
    while time.process_time() < end:
        pass
    bursts += 1
    if select.select([sys.stdin], [], [], off)[0]:
        break
print(f"stopped {bursts}", flush=True)
sys.stdin.readline()
"""


def kernel_cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_the_samplers_fine_trace_integrates_to_the_kernels_cpu_time_of_a_duty_cycled_load(tmp_path):
    """A load that burns 0.15 CPU-seconds, then idles 0.15 s, while running, sampled every 0.1 s; the phases last
    as many samples as the test needs (10 cool-down, 20 running, 10 cool-down), whatever the wall clock does."""
    load = subprocess.Popen([sys.executable, "-c", LOAD, "0.15", "0.15"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert load.stdout.readline().strip() == "ready"  # its start-up CPU is spent before we count
        before = kernel_cpu_seconds(load.pid)
        with Sampler(interval=DT, out=tmp_path / "samples.csv", gpu=False) as sampler:
            sampler.start(load.pid, phase="cooldown-before")
            sampler.wait_samples(10)
            sampler.set_phase("running")
            load.stdin.write("go\n")
            load.stdin.flush()
            sampler.wait_samples(20)
            load.stdin.write("stop\n")
            load.stdin.flush()
            stopped = load.stdout.readline().split()
            assert stopped[0] == "stopped"
            sampler.set_phase("cooldown-after")
            sampler.wait_samples(10)
            kernel = kernel_cpu_seconds(load.pid) - before
            samples = sampler.stop()
    finally:
        load.kill()  # by PID (Popen.kill)
        load.wait()
    measured = sampling_error.integrated_cpu_seconds(samples, "tree_cpu")
    assert kernel >= 0.15 * int(stopped[1]) - 0.011  # every burst was burnt (kernel ticks are 10 ms)
    dt = formula1.intervals(samples).to_numpy(float)
    # 0.1 % here unloaded; a loaded machine delays samples, and the CPU-seconds an irregular interval can move are at
    # most its deviation from the regular one (one core at most): the trace's own irregularity is the slack
    slack = float(np.nansum(np.abs(dt - np.nanmedian(dt))))
    assert measured == pytest.approx(kernel, rel=0.03, abs=0.02 + slack), (measured, kernel, slack)

    step = 5  # what 0.5 s sampling would have reported, at every phase offset of this real (jittered) trace
    for offset in range(step):
        coarse = sampling_error.subsample(samples, step, offset)
        ends = np.arange(offset + step - 1, len(samples), step)
        covered = np.concatenate([np.arange(e - step + 1, e + 1) for e in ends])
        widths = np.array([dt[e - step + 1:e + 1].sum() for e in ends])
        assert (coarse["tree_cpu"] * widths).sum() == pytest.approx((samples["tree_cpu"].to_numpy()[covered]
                                                                     * dt[covered]).sum())
    errors = sampling_error.sampling_errors(samples, (0.3, 0.5))
    fine = errors.set_index("quantity")["fine"]
    assert fine["delta_cpu_tree"].iloc[0] > 0 and errors["offset"].max() == step - 1
    assert errors.loc[errors["quantity"] == "elapse_s", "error"].abs().max() < 0.5 + 0.05


# --- several runs: the table, the audit's error model, the figure, a sweep folder's runs ------------------------

def test_error_table_counts_runs_shorter_than_an_interval_and_invalid_offsets():
    runs = {"long": trace(), "short": trace(before=200, run=80, after=200)}  # 60 s and 8 s running
    errors = pd.concat([sampling_error.sampling_errors(t).assign(run=name) for name, t in runs.items()],
                       ignore_index=True)
    table = sampling_error.error_table(errors).set_index(["interval_s", "quantity"])
    assert (table["runs"] == 2).all()
    assert table.loc[(10.0, "delta_cpu"), "runs_shorter"] == 1 and table.loc[(5.0, "delta_cpu"), "runs_shorter"] == 0
    assert table.loc[(1.0, "delta_cpu"), "invalid"] == 0
    # the model's constant is the 95th percentile of |error| × run length, over both runs and every offset
    part = errors[(errors["interval_s"] == 5.0) & (errors["quantity"] == "delta_cpu")]
    assert table.loc[(5.0, "delta_cpu"), "p95_abs_x_run_s"] == pytest.approx((part["error"].abs() * part["run_s"]).quantile(0.95))
    model = sampling_error.ErrorModel.from_table(table.reset_index(), 5.0)
    assert model.runs == 2 and model.interval_s == 5.0
    assert model.bound("delta_cpu", 100.0) == pytest.approx(table.loc[(5.0, "delta_cpu"), "p95_abs_x_run_s"] / 100)
    assert model.bound("elapse_s", 1000.0) == pytest.approx(table.loc[(5.0, "elapse_s"), "p95_abs"])
    assert model.bound("elapse_s", 1000.0) < 5.0
    assert np.isnan(model.bound("gpu", 100.0))
    assert sampling_error.ErrorModel.from_table(table.reset_index(), 2.0) is None  # not measured at 2 s
    with pytest.raises(StudyError, match="lacks column"):
        sampling_error.ErrorModel.from_table(pd.DataFrame({"interval_s": [5.0]}))


def test_error_figure_reads_at_7_pt_without_overlaps():
    from study import plots

    errors = pd.concat([sampling_error.sampling_errors(trace()).assign(run="a"),
                        sampling_error.sampling_errors(trace(before=50, after=50)).assign(run="b")], ignore_index=True)
    fig = sampling_error.error_figure(errors)
    problems = plots.text_problems(fig)
    assert not problems["overlaps"] and not problems["too_small"], problems
