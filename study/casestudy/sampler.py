"""The resource Sampler of Section VII-E: a separate process that samples CPU, memory (and GPU) every interval.

The paper runs a "stats function" in Python process 1 while process 2 trains; every 5 s (1 s when testing)
it notes a timestamp, CPU % and memory %, and the phase it is in (cool-down before, running, cool-down
after). Ours does the same with `psutil` in its own process (`python -m study.casestudy.sampler SPEC`) and adds what the
paper's could not tell apart: the CPU and resident memory of the *trainee's process tree* (children
included), and GPU utilisation / memory through NVML when there is a GPU (empty columns otherwise).

    sampler = Sampler(interval=1.0, out="samples.csv").start(pid)   # phase "running" by default
    sampler.set_phase("cooldown-after")
    samples = sampler.stop()                                         # a tidy DataFrame, one row per sample

Columns of a sample (`COLUMNS`):
    timestamp      Unix time of the sample (s)
    t              seconds since the sampler started (monotonic clock)
    phase          cooldown-before | running | cooldown-after (or any name `set_phase` was given)
    cpu, mem       system CPU % (all cores, 0-100) and system memory % (psutil)
    tree_cpu       CPU % of the watched process trees, on the same 0-100 all-cores scale as `cpu`
    tree_mem       resident memory of the watched trees, % of physical memory (same scale as `mem`)
    tree_rss_mb    resident memory of the watched trees in MB
    tree_procs     processes in the watched trees
    gpu, gpu_memory  NVML utilisation % and used-memory % (mean over GPUs); empty without a GPU
    late_s         how late the sample was taken after its slot on the interval grid (s)
    missed         grid slots skipped just before this sample because the sampler was stalled (0 normally)

Samples sit on a fixed grid (start + k * interval, no drift). When a sample is late (a stalled machine),
the slots already past are *skipped*, never taken back to back: every sample's CPU values cover at least
one full interval, and `late_s` / `missed` show how regular the sampling was (`Schedule`).

A sample's CPU values cover the interval that ends at it (psutil's `cpu_percent(None)` semantics); a
process that appears in a tree is "primed" first and its CPU counted from the next sample on (its
memory counts at once). Samples are appended to the CSV as they are taken, so a killed run keeps what
was measured; the sampler's death is visible (`Sampler.died`) so a run can be marked invalid rather than
silently reported.
"""
from __future__ import annotations

import csv
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from study.errors import SamplerError
from study.protocol import PAPER
from study.runtime.processes import child_env, popen, release

PHASES = ("cooldown-before", "running", "cooldown-after")
COLUMNS = ("timestamp", "t", "phase", "cpu", "mem", "tree_cpu", "tree_mem", "tree_rss_mb", "tree_procs",
           "gpu", "gpu_memory", "late_s", "missed")
MIN_INTERVAL = 0.1


# --- GPU through NVML -------------------------------------------------------------------------------

@dataclass
class GpuProbe:
    """NVML when a GPU is present; otherwise `available` is False and `reason` says why (never raises)."""

    available: bool
    reason: str
    handles: tuple = ()

    @classmethod
    def open(cls) -> GpuProbe:
        try:
            import pynvml  # nvidia-ml-py
        except ImportError as exc:  # pragma: no cover - pinned in requirements
            return cls(False, f"no GPU: nvidia-ml-py not installed ({exc})")
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = tuple(pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count))
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return cls(False, f"no GPU: NVML unavailable ({exc})")
        if not handles:
            return cls(False, "no GPU: NVML found no devices")
        return cls(True, f"{len(handles)} GPU(s) via NVML", handles)

    def read(self) -> tuple[float | None, float | None]:
        """(utilisation %, used memory %) averaged over the GPUs, or (None, None) without a GPU."""
        if not self.available:
            return None, None
        import pynvml

        util, mem = [], []
        try:
            for h in self.handles:
                util.append(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
                info = pynvml.nvmlDeviceGetMemoryInfo(h)
                mem.append(100.0 * info.used / info.total)
        except Exception:  # a GPU that vanished mid-run: leave the cells empty, keep sampling
            return None, None
        return sum(util) / len(util), sum(mem) / len(mem)


def gpu_status() -> str:
    """A one-line description of what NVML sees ("no GPU: ..." on machines without one)."""
    return GpuProbe.open().reason


# --- One sample of the machine and the watched process trees ------------------------------------------

class TreeMeter:
    """CPU and RSS of process trees rooted at `roots`, priming `cpu_percent` for processes seen first."""

    def __init__(self, roots: Iterable[int] = ()):
        self.roots: list[int] = []
        self._known: dict[int, psutil.Process] = {}
        self._cores = psutil.cpu_count() or 1
        self.watch(roots)

    def watch(self, roots: Iterable[int]) -> None:
        self.roots = [int(r) for r in roots]

    def _tree(self) -> list[psutil.Process]:
        procs: dict[int, psutil.Process] = {}
        for pid in self.roots:
            try:
                root = self._known.get(pid) or psutil.Process(pid)
                procs[pid] = root
                for child in root.children(recursive=True):
                    procs.setdefault(child.pid, self._known.get(child.pid, child))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return list(procs.values())

    def measure(self) -> tuple[float, float, int]:
        """(tree CPU % on the all-cores scale, tree RSS bytes, processes)."""
        cpu, rss, alive = 0.0, 0, {}
        for proc in self._tree():
            try:
                with proc.oneshot():
                    first_time = proc.pid not in self._known
                    pct = proc.cpu_percent(None)  # first call primes and returns a meaningless 0.0
                    rss += proc.memory_info().rss
                if not first_time:
                    cpu += pct
                alive[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        self._known = alive
        return cpu / self._cores, rss, len(alive)


class Probe:
    """Takes samples: system CPU/memory, the watched trees, the GPU. Used inside the sampler process."""

    def __init__(self, roots: Iterable[int] = (), gpu: bool = True):
        self.tree = TreeMeter(roots)
        self.gpu = GpuProbe.open() if gpu else GpuProbe(False, "no GPU: GPU sampling disabled")
        self._total_mem = psutil.virtual_memory().total
        psutil.cpu_percent(None)  # prime the system counter
        self.tree.measure()  # prime the processes already there

    def sample(self) -> dict[str, float | int | None]:
        tree_cpu, rss, procs = self.tree.measure()
        gpu, gpu_mem = self.gpu.read()
        return {
            "cpu": psutil.cpu_percent(None),
            "mem": psutil.virtual_memory().percent,
            "tree_cpu": round(tree_cpu, 3),
            "tree_mem": round(100.0 * rss / self._total_mem, 4),
            "tree_rss_mb": round(rss / 2**20, 3),
            "tree_procs": procs,
            "gpu": gpu,
            "gpu_memory": gpu_mem,
        }


# --- The schedule -------------------------------------------------------------------------------------

@dataclass
class Schedule:
    """Slots on a fixed grid `start + k * interval`; after a stall the slots already past are skipped.

    `next_slot()` is the deadline of the next sample; `taken(now)` records a sample taken at `now` and returns
    (how late it was after its slot, how many slots were skipped before it). The next slot is the first grid
    point at least half an interval after `now`: a sample is never taken less than half an interval after the
    previous one, and a sample on time leaves the grid unchanged.
    """

    start: float
    interval: float
    slot: int = 1  # the grid index of the next sample
    last: float | None = None  # monotonic time of the previous sample

    def next_slot(self) -> float:
        return self.start + self.slot * self.interval

    def taken(self, now: float) -> tuple[float, int]:
        late = max(0.0, now - self.next_slot())
        following = math.floor((now - self.start) / self.interval + 0.5) + 1
        missed = max(0, following - self.slot - 1)
        self.slot = max(self.slot + 1, following)
        self.last = now
        return late, missed


# --- The sampler process -------------------------------------------------------------------------------
# Protocol on its stdin, one command a line:  "phase NAME", "pids PID ...", "stop".
# On its stdout: "ready <gpu status>", then "sample <n> <phase> <n in phase>" after every sample.

def _commands(fd: int):
    """Lines arriving on `fd`, read without Python's buffering (so `select` sees every one)."""
    pending = b""

    def read() -> list[str] | None:
        nonlocal pending
        chunk = os.read(fd, 4096)
        if not chunk:
            return None  # EOF: the parent is gone
        pending += chunk
        *lines, pending = pending.split(b"\n")
        return [ln.decode().strip() for ln in lines]

    return read


def serve(interval: float, out: Path, phase: str, pids: list[int], gpu: bool,
           stall: tuple[int, float] | None = None) -> int:
    """The sampler's loop. `stall=(n, seconds)` delays the n-th sample's probe (fault injection for tests)."""
    probe = Probe(pids, gpu=gpu)
    fd = sys.stdin.fileno()
    read_commands = _commands(fd)
    print(f"ready {probe.gpu.reason}", flush=True)
    start_mono, start_wall = time.monotonic(), time.time()
    schedule = Schedule(start_mono, interval)
    n = in_phase = 0
    with open(out, "a", newline="", buffering=1) as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        if fh.tell() == 0:
            writer.writeheader()
        while True:
            deadline = schedule.next_slot()  # a fixed grid: no drift from sampling time, no catch-up bursts
            stop = False
            while (wait := deadline - time.monotonic()) > 0 and not stop:
                if not select.select([fd], [], [], wait)[0]:
                    break
                lines = read_commands()
                for line in lines if lines is not None else ["stop"]:
                    if line == "stop":
                        stop = True
                    elif line.startswith("phase "):
                        phase, in_phase = line.split(None, 1)[1].strip(), 0
                    elif line.startswith("pids"):
                        probe.tree.watch(int(p) for p in line.split()[1:])
                        probe.tree.measure()  # prime new processes now, count them from the next sample
                    if line:
                        print(f"ack {line}", flush=True)
            if stop:
                return 0
            if stall and stall[0] == n + 1:
                time.sleep(stall[1])  # injected: the machine stalls just before this sample
            now = time.monotonic()
            late, missed = schedule.taken(now)
            row = {"timestamp": round(start_wall + now - start_mono, 4), "t": round(now - start_mono, 4),
                   "phase": phase, **probe.sample(), "late_s": round(late, 4), "missed": missed}
            writer.writerow(row)
            n += 1
            in_phase += 1
            print(f"sample {n} {phase} {in_phase}", flush=True)


# --- The driver side --------------------------------------------------------------------------------

class Sampler:
    """Drives a sampler process. `start(pids)` → `set_phase(...)` / `watch(pids)` → `stop()` → samples."""

    def __init__(self, interval: float = PAPER.test_interval_s, out: str | Path | None = None, gpu: bool = True,
                 stall: tuple[int, float] | None = None):
        if not interval >= MIN_INTERVAL:
            raise SamplerError(f"sampling interval {interval!r} s is below {MIN_INTERVAL} s; use --interval >= {MIN_INTERVAL}")
        self.interval = float(interval)
        self._tmp = None if out else tempfile.TemporaryDirectory(prefix="study-sampler-")
        self.out = Path(out).resolve() if out else Path(self._tmp.name) / "samples.csv"
        self.gpu = gpu
        self.stall = stall  # fault injection: delay the n-th sample by s seconds (tests only)
        self.gpu_status = ""
        self.proc: subprocess.Popen | None = None
        self.phase: str | None = None
        self._counts: dict[str, int] = {}  # samples taken per phase (phase entered last counts afresh)
        self.n_samples = 0
        self._acks: list[str] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._reader: threading.Thread | None = None

    # lifecycle
    def start(self, pids: int | Iterable[int] | None = None, phase: str = "running", timeout: float = 30.0) -> Sampler:
        """Start sampling the process trees rooted at `pids` (none: system only) in `phase`."""
        if self.proc is not None:
            raise SamplerError("this Sampler was already started; create a new one per run")
        pids = [pids] if isinstance(pids, int) else list(pids or [])
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # the process's whole configuration as one JSON argument (an internal protocol, not a command line)
        spec = {"interval": self.interval, "out": str(self.out), "phase": phase, "pids": pids, "gpu": bool(self.gpu),
                "stall": list(self.stall) if self.stall else None}
        cmd = [sys.executable, "-m", "study.casestudy.sampler", json.dumps(spec)]
        self.phase = phase

        self.proc = popen(cmd, role="sampler", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                          env=child_env())
        self._reader = threading.Thread(target=self._read, name="sampler-reader", daemon=True)
        self._reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.gpu_status or self.proc.poll() is not None, timeout):
                self._kill()
                raise SamplerError(f"sampler process did not start within {timeout:.0f} s")
        if not self.gpu_status:
            raise SamplerError(f"sampler process exited at start with code {self.proc.returncode}")
        return self

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            with self._cond:
                if kind == "ready":
                    self.gpu_status = rest
                elif kind == "sample":
                    n, phase, in_phase = rest.split(" ")
                    self.n_samples = int(n)
                    self._counts[phase] = int(in_phase)
                elif kind == "ack":
                    self._acks.append(rest)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _send(self, command: str, timeout: float = 10.0) -> None:
        if not self.alive:
            raise SamplerError(f"the sampler process died (exit code {self.proc and self.proc.returncode})")
        with self._cond:
            before = len(self._acks)
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            # wait for the acknowledgement: after it, every sample carries the new phase / pids
            if not self._cond.wait_for(lambda: len(self._acks) > before or not self.alive, timeout):
                raise SamplerError(f"the sampler did not acknowledge {command!r} within {timeout:.0f} s")

    def set_phase(self, phase: str) -> None:
        """Label every later sample with `phase` (its per-phase count starts at 0)."""
        if not phase or any(ch.isspace() for ch in phase):
            raise SamplerError(f"phase name {phase!r} must be one word, e.g. {', '.join(PHASES)}")
        self._send(f"phase {phase}")
        with self._cond:
            self.phase = phase
            self._counts[phase] = 0

    def watch(self, pids: int | Iterable[int]) -> None:
        """Sample the process trees rooted at `pids` from now on (replacing the previous ones)."""
        pids = [pids] if isinstance(pids, int) else list(pids)
        self._send("pids " + " ".join(map(str, pids)))

    def wait_samples(self, n: int, phase: str | None = None, timeout: float | None = None) -> None:
        """Block until `n` samples were taken in `phase` (default: the current one)."""
        phase = phase or self.phase
        timeout = timeout if timeout is not None else (n + 2) * self.interval + 10
        with self._cond:
            ok = self._cond.wait_for(lambda: self._counts.get(phase, 0) >= n or not self.alive, timeout)
        if not self.alive:
            raise SamplerError(f"the sampler process died (exit code {self.proc.returncode}) during {phase}")
        if not ok:
            raise SamplerError(f"{n} samples in phase {phase} did not arrive within {timeout:.0f} s")

    def samples_in(self, phase: str) -> int:
        with self._cond:
            return self._counts.get(phase, 0)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def died(self) -> bool:
        """True when the sampler process ended without being told to stop (the run is then invalid)."""
        return self.proc is not None and not self._stopping and self.proc.poll() is not None

    def stop(self, timeout: float = 10.0):
        """Stop sampling and return the samples (a DataFrame with `COLUMNS`)."""
        if self.proc is None:
            raise SamplerError("the sampler was never started")
        died = self.died
        self._stopping = True
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self._kill()
        self._close_pipes()
        samples = self.samples()
        samples.attrs.update({"interval": self.interval, "gpu_status": self.gpu_status, "sampler_died": died,
                              "sampler_exit": self.proc.returncode})
        return samples

    def samples(self):
        """The samples written so far (also readable while sampling)."""
        return read_samples(self.out)

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # by PID (Popen.kill)
            self.proc.wait()

    def _close_pipes(self) -> None:
        release(self.proc)  # its group guard, when it has one (started from a thread other than the main one)
        if self._reader:
            self._reader.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except (OSError, BrokenPipeError):
                pass

    def close(self) -> None:
        """Stop the process if still running and drop a temporary output file."""
        if self.proc is not None and self.proc.poll() is None:
            self._stopping = True
            self._kill()
            self._close_pipes()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def read_samples(path: str | Path):
    """Samples from a sampler CSV (an incomplete last line, from a kill mid-write, is dropped)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype="str" if c == "phase" else "float64") for c in COLUMNS})
    df = pd.read_csv(path, on_bad_lines="skip")
    df = df.dropna(subset=["t", "phase", "cpu"])
    for c in COLUMNS:
        if c != "phase":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df.reset_index(drop=True)


if __name__ == "__main__":  # the Sampler process: python -m study.casestudy.sampler SPEC_JSON (see Sampler.start)
    config = json.loads(sys.argv[1])
    try:
        raise SystemExit(serve(config["interval"], Path(config["out"]), config["phase"], config["pids"],
                               gpu=config["gpu"], stall=tuple(config["stall"]) if config["stall"] else None))
    except (KeyboardInterrupt, BrokenPipeError):
        raise SystemExit(0)  # the driver went away: exit quietly
