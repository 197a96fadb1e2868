"""Headless Chromium on one page under a watchdog, stopped by PID with its whole tree."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from study.runtime import environment
from study.runtime.processes import popen, release, stop_tree


# --disable-gpu leaves WebGL to SwiftShader (software); Chromium wants that opted into explicitly.
WEBGL_FLAGS = ("--enable-unsafe-swiftshader",)


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-breakpad", "--no-default-browser-check", "--enable-logging=stderr", "--v=0")


class Browser:
    """Headless Chromium on one URL with a fresh profile; `close()` stops its whole tree by PID."""

    def __init__(self, url: str, log: Path, binary: Path | None = None, extra_flags: tuple[str, ...] = ()):
        self.binary = binary or environment.chromium()
        self.profile = Path(tempfile.mkdtemp(prefix="study-chromium-"))
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log, "wb")
        cmd = [str(self.binary), *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={self.profile}", url]
        # its own session (our Ctrl-C does not reach it; we stop it) with a guard: the tree dies with us
        self.proc = popen(cmd, role="chromium", group=True, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                          stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def close(self) -> None:
        stop_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - stop_tree already SIGKILLed it
            self.proc.kill()
            self.proc.wait()
        release(self.proc)
        self._log_fh.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@dataclass
class PageRun:
    """How `open_page` ended: `done` (the page signalled), `timeout` or `browser_exited` (with `reason`)."""

    status: str
    seconds: float
    peak_tree_rss_mb: float
    browser_pid: int
    reason: str = ""


def tree_rss_mb(pid: int) -> float:
    """Resident set of process `pid` and its descendants (MiB; shared pages counted once per process)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def open_page(url: str, log: Path, done: threading.Event, timeout: float, *,
              extra_flags: tuple[str, ...] = (), poll: float = 0.1) -> PageRun:
    """Headless Chromium (`Browser`) on `url` until the page sets `done` (e.g. from a POST handler of a
    `LocalServer`), Chromium exits, or `timeout` seconds pass; the whole tree is stopped by PID either way.
    Tracks the tree's peak RSS while it waits."""
    browser = Browser(url, log, extra_flags=extra_flags)
    start, peak = time.monotonic(), 0.0
    try:
        while True:
            peak = max(peak, tree_rss_mb(browser.pid))
            if done.wait(poll):
                return PageRun("done", time.monotonic() - start, peak, browser.pid)
            if browser.exited():
                return PageRun("browser_exited", time.monotonic() - start, peak, browser.pid,
                               f"Chromium exited with code {browser.proc.returncode}: {log_tail(browser.log)}")
            if time.monotonic() - start > timeout:
                return PageRun("timeout", time.monotonic() - start, peak, browser.pid,
                               f"the page did not finish within {timeout:.0f} s "
                               f"({log_tail(browser.log, match='CONSOLE') or 'no console output'})")
    finally:
        browser.close()


def log_tail(path: Path, lines: int = 5, match: str = "") -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if match in ln]
    except OSError:
        return ""
    return " | ".join(text[-lines:])[:500]
