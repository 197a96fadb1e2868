"""The Sampler's GPU path (NVML through pynvml) against a stand-in NVML library that reports known values.

`tests/fixtures/nvml/fake_nvml.c` is compiled here into `libnvidia-ml.so.1`; a process started with its folder first
on LD_LIBRARY_PATH gets it from pynvml's `CDLL("libnvidia-ml.so.1")`. The real pynvml, the real `GpuProbe` and the
real Sampler process run against it, on every machine (with or without a GPU): what is under test is what they make
of NVML's answers, never NVML. The library is loaded once per process and LD_LIBRARY_PATH is read when a process
starts, so every probe runs in a fresh process (the Sampler's own, as in production, or a one-off `python -c`).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from study import config
from study.casestudy import executors, finetune, formula1
from study.casestudy.sampler import COLUMNS, Sampler
from study.runtime.processes import child_env
from tests.conftest import needs_cc

pytestmark = [needs_cc, pytest.mark.stress]

SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "nvml" / "fake_nvml.c"
GIB = 2**30


def gpus_spec(gpus) -> str:
    """The stand-in's GPU list: (utilisation %, used bytes, total bytes) per device."""
    return ",".join(f"{util}:{used}:{total}" for util, used, total in gpus)


# Known inputs, chosen so that every plausible mistake gives another number: three devices (the mean is neither
# the median nor the first device), memory sizes that differ (the mean of the per-device percentages is not the
# pooled used / total), and the stand-in's memory-controller load (`utilization.memory`) is always 97.
RUN_1 = [(30, 1 * GIB, 16 * GIB), (71, 3 * GIB, 8 * GIB), (20, 9 * GIB, 12 * GIB)]
RUN_2 = [(90, 12 * GIB, 16 * GIB), (15, 2 * GIB, 8 * GIB), (60, 3 * GIB, 12 * GIB)]
IDLE = [(0, GIB // 4, 16 * GIB), (0, GIB // 2, 8 * GIB), (1, GIB, 12 * GIB)]  # the cool-down periods


def expected(gpus) -> tuple[float, float]:
    """What the Sampler must record for one reading of `gpus`, worked out by hand from the stand-in's values:
    utilisation % and used-memory %, each the plain mean over the devices."""
    util = sum(u for u, _, _ in gpus) / len(gpus)
    memory = sum(100 * used / total for _, used, total in gpus) / len(gpus)
    return util, memory


def test_the_expected_values_tell_the_plausible_mistakes_apart():
    # the inputs above are only worth something if a wrong averaging gives another number
    util, memory = expected(RUN_1)
    assert (util, memory) == pytest.approx((121 / 3, (6.25 + 37.5 + 75) / 3))
    # not the first device's, the median, the sum, the memory-controller load, the pooled used / total
    assert util not in (30, 71, 20, 121, 97) and memory not in (6.25, 37.5, 75, 100 * 13 / 36)
    assert expected(RUN_2) != pytest.approx(expected(RUN_1)) and expected(IDLE)[0] < 1


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory) -> Path:
    """The folder holding the compiled stand-in `libnvidia-ml.so.1`."""
    from tests.conftest import CC

    folder = tmp_path_factory.mktemp("nvml")
    subprocess.run([CC, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(folder / "libnvidia-ml.so.1"),
                    str(SOURCE)], check=True, capture_output=True, text=True)
    return folder


@pytest.fixture
def nvml_env(fake_nvml, monkeypatch, tmp_path):
    """Point processes started from now on at the stand-in; returns a function that sets the GPUs it reports
    (written to a file the stand-in reads on every call, replaced atomically)."""
    gpus_file = tmp_path / "gpus"
    monkeypatch.setenv("LD_LIBRARY_PATH", os.pathsep.join(filter(None, [str(fake_nvml),
                                                                         os.environ.get("LD_LIBRARY_PATH")])))
    monkeypatch.setenv("FAKE_NVML_GPUS_FILE", str(gpus_file))
    monkeypatch.delenv("FAKE_NVML_INIT_ERROR", raising=False)

    def set_gpus(gpus) -> None:
        tmp = gpus_file.with_suffix(".tmp")
        tmp.write_text(gpus if isinstance(gpus, str) else gpus_spec(gpus))
        os.replace(tmp, gpus_file)

    return set_gpus


PROBE = textwrap.dedent("""
    import json
    from study.casestudy.sampler import GpuProbe
    probe = GpuProbe.open()
    print(json.dumps({"available": probe.available, "reason": probe.reason, "handles": len(probe.handles),
                      "read": probe.read()}))
""")


def open_probe() -> dict:
    """`GpuProbe.open()` and one `read()` in a fresh process (the environment this one has now)."""
    out = subprocess.run([sys.executable, "-c", PROBE], env=child_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# --- GpuProbe ----------------------------------------------------------------------------------------

def test_the_probe_finds_the_devices_and_reads_their_mean(nvml_env):
    nvml_env(RUN_1)
    got = open_probe()
    assert got["available"] is True
    assert got["reason"] == "3 GPU(s) via NVML" and got["handles"] == 3
    assert got["read"] == pytest.approx(list(expected(RUN_1)))


def test_the_probe_with_two_devices(nvml_env):
    nvml_env([(10, GIB, 4 * GIB), (50, 3 * GIB, 4 * GIB)])
    got = open_probe()
    assert got["available"] is True and got["handles"] == 2
    assert got["read"] == pytest.approx([30.0, 50.0])


@pytest.mark.parametrize("code, says", [(9, "Driver Not Loaded"),  # a name pynvml knows for the code
                                        (4242, "fake NVML error 4242")])  # a code it asks nvmlErrorString about
def test_an_nvml_error_at_init_is_no_gpu_not_a_crash(nvml_env, monkeypatch, code, says):
    nvml_env(RUN_1)  # devices there, but NVML cannot start
    monkeypatch.setenv("FAKE_NVML_INIT_ERROR", str(code))
    got = open_probe()
    assert got == {"available": False, "reason": f"no GPU: NVML unavailable ({says})", "handles": 0,
                   "read": [None, None]}


def test_nvml_without_devices_is_no_gpu(nvml_env):
    nvml_env("")
    got = open_probe()
    assert got == {"available": False, "reason": "no GPU: NVML found no devices", "handles": 0, "read": [None, None]}


# --- The Sampler process ----------------------------------------------------------------------------

def sampled_run(tmp_path, set_gpus, running, name="s", n_running=5, n_cooldown=3):
    """One run as the sweep's executor drives the Sampler (cool-down, running, cool-down), the stand-in reporting
    IDLE while cooling down and `running` while running. A new value is written before the phase whose samples
    must see it is acknowledged, so every sample of that phase reads it."""
    set_gpus(IDLE)
    with Sampler(interval=0.1, out=tmp_path / f"{name}.csv") as sampler:
        sampler.start(phase="cooldown-before")
        assert sampler.gpu_status == "3 GPU(s) via NVML"
        sampler.wait_samples(n_cooldown)
        set_gpus(running)
        sampler.set_phase("running")
        sampler.wait_samples(n_running)
        sampler.set_phase("cooldown-after")  # samples before the next write still read `running`: not in Table IX
        set_gpus(IDLE)
        # the sample after the next one counted began its reading after the write: the run ends reading IDLE
        sampler.wait_samples(max(n_cooldown, sampler.samples_in("cooldown-after") + 2))
        samples = sampler.stop()
    assert samples.attrs["sampler_died"] is False and samples.attrs["gpu_status"] == "3 GPU(s) via NVML"
    return samples


def test_the_sampler_records_the_gpu_columns(nvml_env, tmp_path):
    samples = sampled_run(tmp_path, nvml_env, RUN_1)
    assert list(samples.columns) == list(COLUMNS)
    running = samples[samples["phase"] == "running"]
    before = samples[samples["phase"] == "cooldown-before"]
    assert len(running) >= 5 and len(before) >= 3
    util, memory = expected(RUN_1)
    # every sample, not only their mean: a dropped or stale reading shows
    assert running["gpu"].tolist() == pytest.approx([util] * len(running))
    assert running["gpu_memory"].tolist() == pytest.approx([memory] * len(running))
    assert before["gpu"].tolist() == pytest.approx([expected(IDLE)[0]] * len(before))
    assert before["gpu_memory"].tolist() == pytest.approx([expected(IDLE)[1]] * len(before))
    # the last cool-down sample was taken after IDLE was written back
    assert samples.iloc[-1][["gpu", "gpu_memory"]].tolist() == pytest.approx(list(expected(IDLE)))


def test_table_ix_gpu_columns_from_sampled_runs(nvml_env, tmp_path):
    # two repeats of one member, through the sweep's own path: samples -> formula1.summarize -> the run's record
    # -> finetune.table_ix (the repeats averaged)
    cfg = executors.sweep_config(config.get_profile("smoke"))
    records = []
    for repeat, gpus in enumerate((RUN_1, RUN_2)):
        samples = sampled_run(tmp_path, nvml_env, gpus, name=f"r{repeat}")
        result = executors.RunResult(member="m", repeat=repeat, status="ok", reason="", elapse_s=10.0 + repeat,
                                     summary=formula1.summarize(samples), samples=samples, worker={"accuracy": 0.5})
        records.append(result.record(cfg))
        # one run's GPU columns: the mean while running (the cool-down's IDLE values do not count)
        assert (records[-1]["gpu"], records[-1]["gpu_memory"]) == pytest.approx(expected(gpus))
    row = finetune.table_ix(records, cfg).set_index("model").loc["m"]
    (util_1, memory_1), (util_2, memory_2) = expected(RUN_1), expected(RUN_2)
    assert row["repeats"] == 2 and row["status"] == "ok"
    assert row["gpu"] == pytest.approx((util_1 + util_2) / 2)  # (121/3 + 55) / 2 = 47.67
    assert row["gpu_memory"] == pytest.approx((memory_1 + memory_2) / 2)  # (39.58 + 41.67) / 2 = 40.63
    assert not math.isnan(row["delta_cpu"])  # the CPU columns of the same runs are there as before


def test_a_gpu_lost_mid_run_leaves_empty_cells_and_sampling_goes_on(nvml_env, tmp_path):
    nvml_env(RUN_1)
    with Sampler(interval=0.1, out=tmp_path / "s.csv") as sampler:
        sampler.start(phase="running")
        sampler.wait_samples(3)
        nvml_env("lost")  # every NVML read fails from now on (NVML_ERROR_GPU_IS_LOST)
        sampler.set_phase("lost")
        sampler.wait_samples(3)
        nvml_env(RUN_2)  # the devices answer again
        sampler.set_phase("back")
        sampler.wait_samples(3)
        samples = sampler.stop()
    assert samples.attrs["sampler_died"] is False
    first = samples[samples["phase"] == "running"].head(3)  # taken before the devices were lost
    assert first[["gpu", "gpu_memory"]].values.ravel().tolist() == pytest.approx(list(expected(RUN_1)) * 3)
    lost = samples[samples["phase"] == "lost"]
    assert len(lost) >= 3 and lost["gpu"].isna().all() and lost["gpu_memory"].isna().all()
    assert lost["cpu"].notna().all()  # the rest of the sample is still taken
    back = samples[samples["phase"] == "back"]
    assert len(back) >= 3
    assert back[["gpu", "gpu_memory"]].values.ravel().tolist() == pytest.approx(list(expected(RUN_2)) * len(back))


def test_the_sampler_with_an_nvml_that_fails_to_start(nvml_env, monkeypatch, tmp_path):
    nvml_env(RUN_1)
    monkeypatch.setenv("FAKE_NVML_INIT_ERROR", "9")
    with Sampler(interval=0.1, out=tmp_path / "s.csv") as sampler:
        sampler.start()
        sampler.wait_samples(3)
        samples = sampler.stop()
    assert sampler.gpu_status == "no GPU: NVML unavailable (Driver Not Loaded)"
    assert samples.attrs["sampler_died"] is False and len(samples) >= 3
    assert samples["gpu"].isna().all() and samples["gpu_memory"].isna().all()
    assert samples["cpu"].notna().all()
    assert math.isnan(formula1.summarize(samples)["gpu"])
