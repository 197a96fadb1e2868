"""Arming failpoints (study.failpoints) from a test: the code under test waits at the named event, the test acts."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from study import failpoints


class Armed:
    """Failpoints armed in `folder`: `env(base)` for the processes under test, `wait(name)` for the arrival."""

    def __init__(self, folder: Path, *points: str) -> None:
        for point in points:
            assert point.partition("@")[0] in failpoints.POINTS, point
        self.folder, self.points = Path(folder), points
        self.folder.mkdir(parents=True, exist_ok=True)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, failpoints.ENV: ",".join(self.points), failpoints.DIR_ENV: str(self.folder)}

    def _stem(self, name: str) -> str:
        """`name@N` as given, or `name` with the one hit this test armed for it."""
        point, _, hit = name.partition("@")
        if hit:
            return f"{point}@{int(hit)}"  # as study.failpoints names an arrival's files
        hits = [int(p.partition("@")[2] or 1) for p in self.points if p.partition("@")[0] == point]
        assert len(hits) == 1, f"{point} is armed for hits {hits}: say which ({point}@N)"
        return f"{point}@{hits[0]}"

    def wait(self, name: str, driver: subprocess.Popen | None = None, timeout: float = 600) -> int:
        """The PID of the process waiting at `name` (`point` or `point@N`), once one is (the driver must stay alive
        meanwhile). The timeout only ends a broken run: the event is awaited, never a duration."""
        paused = self.folder / f"{self._stem(name)}.paused"
        deadline = time.monotonic() + timeout
        while not paused.exists():
            if driver is not None and driver.poll() is not None:
                raise AssertionError(f"the driver ended before reaching {name}: {driver.communicate()[0][-3000:]}")
            assert time.monotonic() < deadline, f"{name} not reached in {timeout:.0f} s"
            time.sleep(0.02)
        return json.loads(paused.read_text())["pid"]

    def release(self, name: str) -> None:
        (self.folder / f"{self._stem(name)}.release").touch()

    def timed_out(self, name: str) -> Path:
        """Where a waiting arrival at `name` records that its timeout passed."""
        return self.folder / f"{self._stem(name)}.timed-out"
