"""Processes we start, and stopping them: by PID, with their whole tree, never by name."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from study import config
from study.errors import StudyError


def stop_tree(pid: int, grace: float = 0.0) -> list[int]:
    """Stop process `pid`, its descendants and whatever else runs in its session, each by its PID.

    With `grace` > 0 they get SIGTERM first; SIGKILL for the rest (a headless browser has nothing to save:
    Chromium's orderly shutdown alone takes ~2 s). Returns the PIDs that were signalled.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        procs = {p.pid: p for p in (root, *root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return []
    if os.getsid(0) != pid:  # started with start_new_session: its session id is its PID
        for p in psutil.process_iter():
            try:
                if p.pid not in procs and os.getsid(p.pid) == pid:
                    procs[p.pid] = p  # e.g. a helper re-parented after its parent died
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
    todo = list(procs.values())
    if grace > 0:
        for p in todo:
            try:
                p.send_signal(signal.SIGTERM)  # psutil checks the PID still names the same process
            except psutil.NoSuchProcess:
                pass
        _, todo = psutil.wait_procs(todo, timeout=grace)
    for p in todo:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    deadline = time.monotonic() + 5
    while (alive := [p for p in todo if not _dead(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive:
        raise StudyError(f"could not stop processes {[p.pid for p in alive]} (started as part of PID {pid})")
    return list(procs)


def _dead(proc) -> bool:
    """Gone, or a zombie (killed; only its parent or init still has to reap it)."""
    import psutil

    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    try:
        proc.wait(0)  # reap it when it is our child
    except (psutil.TimeoutExpired, psutil.NoSuchProcess, ChildProcessError):
        pass
    return True


def child_env() -> dict[str, str]:
    """Environment for our Python subprocesses: `study` importable from this checkout, TensorFlow quiet."""
    path = os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and anything it started (its own session: process group id = its PID)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
