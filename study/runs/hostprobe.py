"""How fast was the host? A fixed CPU workload timed before and after every measured run, and the CPU time the
guest lost to the host (steal time, `/proc/stat`), recorded beside the run's results as `host_probe.json`.

Two runs of the same code on the same machine can differ by half their speed from hour to hour (a shared or
virtual host). The probe lets `study compare` say "B's host was 1.3x slower" and judge elapse-like cells against
it (`Speed`): B's times divided by a slowdown between none and the ratio of the two probes (`Speed.factor`: the
probe bounds what a run felt, it cannot say how much of a co-located load a serial run felt), with the probes' own
spread (before vs after) added to the noise; other resources (CPU and memory shares) with how far apart the two
speeds were added to theirs. The workload hashes a fixed buffer in one thread per usable core (hashlib releases the
GIL): the upper bound, what a run that keeps every core busy feels.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from study import files
from study.cache import keys

PROBE = "host_probe.json"  # in a results folder (and its history snapshots)
BUFFER = bytes(range(256)) * 4096  # 1 MiB, the same every time
ROUNDS = 96  # hashes of BUFFER per thread and timing (about a quarter second on a 2-core machine)
TIMINGS = 3  # timings per reading; the median is the reading
STAT = Path("/proc/stat")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def time_workload(threads: int | None = None, rounds: int = ROUNDS) -> float:
    """Seconds of wall time for `threads` threads (default: one per usable core) each hashing BUFFER `rounds` times."""
    n = threads or _cores()

    def work() -> None:
        for _ in range(rounds):
            hashlib.sha256(BUFFER).digest()

    workers = [threading.Thread(target=work) for _ in range(n)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def reading(timings: int = TIMINGS) -> float:
    """One reading of the host's speed: the median of `timings` timings of the workload (seconds)."""
    return statistics.median(time_workload() for _ in range(timings))


def cpu_times(stat: Path = STAT) -> dict[str, int] | None:
    """The aggregate `cpu` line of /proc/stat (jiffies per state), None where there is none (not Linux)."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:1 + len(names)]]
    return dict(zip(names, values + [0] * (len(names) - len(values))))


def steal_fraction(before: dict[str, int] | None, after: dict[str, int] | None) -> float:
    """The share of all CPU time between two /proc/stat readings that the host took from the guest (NaN unknown)."""
    if not before or not after:
        return math.nan
    total = sum(after.values()) - sum(before.values())
    return (after["steal"] - before["steal"]) / total if total > 0 else math.nan


@dataclass(frozen=True)
class HostProbe:
    """The probe of one measured run: the workload's seconds before and after it, the steal share during it."""

    before_s: float
    after_s: float
    steal: float  # share of CPU time stolen by the host over the run (NaN: unknown)
    started: str = ""
    finished: str = ""
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """The host's speed over the run: the mean of the two readings (lower is faster)."""
        return (self.before_s + self.after_s) / 2

    @property
    def cv(self) -> float:
        """How far the host's speed moved within the run: |after - before| / mean / sqrt(2) (a two-reading sd)."""
        return abs(self.after_s - self.before_s) / self.seconds / math.sqrt(2) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostProbe:
        return cls(float(data["before_s"]), float(data["after_s"]), float(data.get("steal", math.nan)),
                   str(data.get("started", "")), str(data.get("finished", "")), dict(data.get("machine", {})))


@dataclass
class Started:
    """A probe begun: the first reading taken, /proc/stat remembered (`finish` completes it)."""

    before_s: float
    stat: dict[str, int] | None
    started: str

    def finish(self) -> HostProbe:
        after = reading()
        return HostProbe(self.before_s, after, steal_fraction(self.stat, cpu_times()), self.started,
                         dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), keys.machine())


def start() -> Started:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return Started(reading(), cpu_times(), now)


def write(results: str | Path, probe: HostProbe) -> Path:
    return files.write_text(Path(results) / PROBE, json.dumps(probe.to_dict(), indent=2, sort_keys=True) + "\n")


def read(folder: str | Path) -> HostProbe | None:
    """The probe recorded in a results folder or snapshot; None when it has none (or an unreadable one)."""
    try:
        return HostProbe.from_dict(json.loads((Path(folder) / PROBE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Speed:
    """B's host against A's: `ratio` = B's probe seconds / A's (1.3: B's host 1.3x slower), and the relative
    uncertainty of that ratio (`cv`: both probes' own spread)."""

    ratio: float
    cv: float

    @classmethod
    def of(cls, a: HostProbe | None, b: HostProbe | None) -> Speed | None:
        if a is None or b is None or not a.seconds > 0 or not b.seconds > 0:
            return None
        return cls(b.seconds / a.seconds, math.hypot(a.cv, b.cv))

    def factor(self, a: float, b: float) -> float:
        """The slowdown by which to divide B's time `b` (A's: `a`): the value in the band between 1 (the run felt
        nothing of it) and `ratio` (it felt all of it) nearest to b / a.

        The probe bounds a run's slowdown, it does not give it: a host slower as a whole (another CPU, its clock,
        steal) slows every workload alike, by about `ratio`; a load beside the run slows a workload by its own
        parallelism, a mostly serial one far less than the probe's one-thread-per-core workload (measured:
        docs/measured/host_probe.md). So a time between A's and A's x `ratio` is what the probes allow, and only
        what lies beyond the band is left to the noise to judge."""
        if not (a > 0 and b > 0):
            return self.ratio
        low, high = min(1.0, self.ratio), max(1.0, self.ratio)
        return min(max(b / a, low), high)

    @property
    def drift(self) -> float:
        """How far apart the two hosts' speeds were, relative (|ratio - 1|): a between-run noise of every resource."""
        return abs(self.ratio - 1)

    def sentence(self) -> str:
        if abs(self.ratio - 1) < 0.005:
            return "B's host was as fast as A's (host-speed probe)"
        slower = self.ratio > 1
        factor = self.ratio if slower else 1 / self.ratio
        return f"B's host was {factor:.2f}x {'slower' if slower else 'faster'} than A's (host-speed probe)"
