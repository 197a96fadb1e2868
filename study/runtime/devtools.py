"""Headless Chromium driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`): no port, no
websocket library. For tests that act like a person on a page: navigate, set files on a file input
(`DOM.setFileInputFiles`), read the page back (`Runtime.evaluate`), take a screenshot.

Chromium reads protocol messages (JSON, each ended by a NUL byte) from its fd 3 and writes answers and events to
its fd 4. The browser is started like every child of the study (`processes.popen`, its own session with a group
guard) and stopped by PID with its whole tree (`processes.stop_tree`).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from study.errors import StudyError
from study.runtime import environment
from study.runtime.chromium import CHROMIUM_FLAGS, log_tail
from study.runtime.processes import popen, release, stop_tree

# Puts the two pipe ends at fds 3 and 4 of the child, then execs Chromium (subprocess cannot renumber fds itself).
_EXEC_WITH_PIPE = """
import fcntl, os, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
a, b = fcntl.fcntl(r, fcntl.F_DUPFD, 10), fcntl.fcntl(w, fcntl.F_DUPFD, 10)
os.dup2(a, 3); os.dup2(b, 4)
for fd in {a, b, r, w} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class DevToolsError(StudyError):
    """The browser answered a DevTools command with an error, or not in time."""


class DevToolsBrowser:
    """Headless Chromium with one page target, driven over the DevTools pipe; `close()` stops its tree by PID."""

    def __init__(self, log: Path, *, width: int = 1100, height: int = 860, extra_flags: tuple[str, ...] = (),
                 timeout: float = 60):
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="study-devtools-"))
        self.log = Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log, "wb")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        cmd = [sys.executable, "-S", "-c", _EXEC_WITH_PIPE, str(to_chrome_r), str(from_chrome_w),
               str(environment.chromium()), *CHROMIUM_FLAGS, *extra_flags, "--remote-debugging-pipe",
               f"--window-size={width},{height}", f"--user-data-dir={self.profile}", "about:blank"]
        try:
            self.proc = popen(cmd, role="chromium", group=True, stdin=subprocess.DEVNULL, stdout=self._log_fh,
                              stderr=subprocess.STDOUT, pass_fds=(to_chrome_r, from_chrome_w))
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="devtools-reader", daemon=True)
        self._reader.start()
        self.session = None
        try:
            target = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            self.session = self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    # --- the pipe ------------------------------------------------------------------------------------------
    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._answers[message["id"]] = message
                        self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def call(self, method: str, *, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """Send one DevTools command (to the page's session once attached) and wait for its answer."""
        with self._cond:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        try:
            os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        except OSError as exc:
            raise DevToolsError(f"Chromium's DevTools pipe is closed ({exc}): {log_tail(self.log)}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    why = "Chromium closed the pipe" if self._closed else f"no answer within {timeout or self.timeout:.0f} s"
                    raise DevToolsError(f"DevTools {method}: {why} ({log_tail(self.log)})")
                self._cond.wait(min(left, 0.5))
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise DevToolsError(f"DevTools {method} failed: {answer['error'].get('message')}")
        return answer.get("result", {})

    # --- what a test does on a page --------------------------------------------------------------------------
    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression on the page (promises awaited, returned by value)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise DevToolsError(f"page threw on {expression[:80]!r}: "
                                f"{details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, poll: float = 0.1) -> Any:
        """Poll `expression` until it is truthy; its value. A DevToolsError with the console's tail otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except DevToolsError as exc:  # e.g. the page is still loading (no document.body yet)
                value, last = None, exc
            else:
                last = None
            if value:
                return value
            if self.proc.poll() is not None:
                raise DevToolsError(f"Chromium exited ({self.proc.returncode}) waiting for {expression!r}: "
                                    f"{log_tail(self.log)}")
            if time.monotonic() > deadline:
                raise DevToolsError(f"{expression!r} stayed false for {timeout:.0f} s ({last or 'no error'}; "
                                    f"{log_tail(self.log, match='CONSOLE') or 'no console output'})")
            time.sleep(poll)

    def set_files(self, selector: str, paths: list[str | Path]) -> None:
        """Give the file input `selector` these files, as a person choosing them would (fires input/change)."""
        root = self.call("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise DevToolsError(f"no element {selector!r} on the page")
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(Path(p).resolve()) for p in paths])

    def screenshot(self, path: str | Path) -> Path:
        """The page's viewport as a PNG file."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop the browser's whole tree by PID; close the pipe; remove the profile."""
        stop_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - stop_tree already SIGKILLed it
            self.proc.kill()
            self.proc.wait()
        release(self.proc)
        self._reader.join(timeout=5)  # Chromium's end of the pipe is gone: the reader sees EOF
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log_fh.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> DevToolsBrowser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
