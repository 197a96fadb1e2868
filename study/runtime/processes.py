"""Processes we start, and stopping them: by PID, with their whole tree, never by name.

The one home of process lifecycle. Every child a command starts goes through `popen` / `run`, which:
- asks Linux to SIGKILL the child when its parent dies (`prctl(PR_SET_PDEATHSIG)`, also on `kill -9` of the
  driver). Linux sends it when the *thread* that started the child exits, so only children started from the main
  thread get it; one started from another thread (e.g. the sampler, started by the stats server's request thread)
  gets a group guard instead (below), which depends on the process, not the thread;
- with `group=True` gives the child its own session and a *group guard*: a tiny process that SIGKILLs the whole
  process group when the driver goes away (its stdin, a pipe only the driver holds, reaches EOF) - for trees
  whose members we do not start ourselves (Chromium's renderers, Ray's raylet / GCS / workers);
- quiets TensorFlow in the child (`quiet_env`) unless STUDY_VERBOSE=1;
- appends "PID ROLE" to the file named by $STUDY_PID_LOG, when set (the fault-injection tests check these).
Notebook kernels under `reproduce` are started by jupyter_client, not here: ipykernel's parent poller ends a
kernel within ~1 s of its parent's death (JPY_PARENT_PID), and the kernel's own children go with it as above.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def verbose() -> bool:
    return os.environ.get("STUDY_VERBOSE", "") not in ("", "0")


# TensorFlow's C++ logging (the user may still set their own level). oneDNN stays ON: turning it off would change
# numerics; only its start-up line is filtered (`native_stderr_filtered`).
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "2"}

# Lines TensorFlow / absl print to fd 2 while loading, before any log level applies.
NOISE = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on",
         "To enable the following instructions:", "This TensorFlow binary is optimized to use available CPU",
         "Unable to register cuDNN factory", "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
         "computation placer already registered", "could not open file to read NUMA node",
         "TF-TRT Warning: Could not find TensorRT", "Could not find cuda drivers on your machine")


def quiet_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: ours) with TensorFlow's log knobs set, unless STUDY_VERBOSE=1 or the user set them."""
    env = dict(os.environ if env is None else env)
    if not verbose():
        for key, value in QUIET_ENV.items():
            env.setdefault(key, value)
    return env


def child_env() -> dict[str, str]:
    """Environment for our Python subprocesses: `study` importable from this checkout, TensorFlow quiet."""
    path = os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")]))
    return {**quiet_env(), "PYTHONPATH": path}


def quiet_tensorflow() -> None:
    """In this process: TensorFlow's log knobs, and its load-time lines on fd 2 filtered out (`import tensorflow`
    is wrapped once it happens). Call at the start of a command or a worker's main."""
    if verbose():
        return
    os.environ.update(quiet_env())
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport:
    """A meta-path finder that runs the first `import tensorflow` under `native_stderr_filtered`."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def quiet_exec(module):  # noqa: ANN001
            with native_stderr_filtered():
                exec_module(module)

        loader.exec_module = quiet_exec  # type: ignore[method-assign]
        return spec


@contextlib.contextmanager
def native_stderr_filtered(noise: Sequence[str] = NOISE) -> Iterator[None]:
    """Send fd 2 (what C++ libraries write) to a temporary file meanwhile, then replay it without `noise` lines."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(n in ln for n in noise)]
            if kept:
                os.write(2, "".join(kept).encode())


# ------------------------------------------------------------------------- starting children

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with(parent: int):
    """A preexec_fn: SIGKILL this child when `parent` (the thread that forks it) dies; if it already did, exit."""
    def preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)
    return preexec


def log_pid(pid: int, role: str) -> None:
    """Append "PID ROLE" to $STUDY_PID_LOG (when set): every process a command started, for the fault tests."""
    log = os.environ.get("STUDY_PID_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{pid} {role}\n".encode())
        finally:
            os.close(fd)


GUARD_CODE = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if b"done" not in sys.stdin.buffer.read():  # EOF without "done": the driver died
    try:
        os.killpg(int(sys.argv[1]), signal.SIGKILL)
    except OSError:
        pass
"""


def popen(cmd: Sequence[str], *, role: str, group: bool = False, **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen for a child that dies with us (see the module doc); `group=True` for a whole tree.

    A grouped child's guard is released by `release(proc)` (also done by `kill_group` / `stop`)."""
    if kwargs.get("preexec_fn") or kwargs.get("start_new_session"):
        raise ValueError("popen sets preexec_fn / start_new_session itself; use group=True for a new session")
    kwargs["env"] = quiet_env(kwargs.get("env"))
    main = threading.current_thread() is threading.main_thread()
    group = group or not main  # a thread may end before its child: then the guard does what PDEATHSIG would
    proc = subprocess.Popen(list(cmd), preexec_fn=_die_with(os.getpid()) if main else None, start_new_session=group,
                            **kwargs)
    log_pid(proc.pid, role)
    proc.guard = None  # type: ignore[attr-defined]
    if group:
        guard = subprocess.Popen([sys.executable, "-c", GUARD_CODE, str(proc.pid)], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, start_new_session=True)
        log_pid(guard.pid, f"{role}-guard")
        proc.guard = guard  # type: ignore[attr-defined]
    return proc


def run(cmd: Sequence[str], *, role: str, timeout: float | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run for a child that dies with us (and is killed at `timeout`)."""
    kwargs["env"] = quiet_env(kwargs.get("env"))
    return subprocess.run(list(cmd), preexec_fn=_die_with(os.getpid()), timeout=timeout, **kwargs)


def node_report(args: Sequence[str], *, role: str, what: str, timeout: float) -> dict[str, Any]:
    """Run `node ARGS` (Node.js from PATH) as a child that dies with us; the JSON of its last stdout line. One
    StudyError naming `what` when Node.js is missing, the run fails, or it passes `timeout` (its tree stopped)."""
    node = shutil.which("node")
    if node is None:
        raise StudyError("Node.js not found; install it: apt-get install -y nodejs npm")
    proc = popen([node, *args], role=role, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_tree(proc.pid)
        proc.communicate()
        raise StudyError(f"Node.js check of {what} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise StudyError(f"Node.js check of {what} failed: {stderr.strip().splitlines()[-1:] or stderr}")
    return json.loads(stdout.strip().splitlines()[-1])


def release(proc: subprocess.Popen) -> None:
    """Tell a grouped child's guard that we stopped the group ourselves (it exits without killing)."""
    guard = getattr(proc, "guard", None)
    if guard is None:
        return
    try:
        guard.stdin.write(b"done")
        guard.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    guard.wait()
    proc.guard = None  # type: ignore[attr-defined]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and anything it started (its own session: process group id = its PID)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # also when it has exited: what it started may still run
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    release(proc)


def alive(pids: Sequence[int]) -> list[int]:
    """Those of `pids` still running (zombies count as gone: killed, only waiting to be reaped)."""
    import psutil

    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


def read_pid_log(path: str | Path) -> dict[int, str]:
    """PID -> role from a $STUDY_PID_LOG file."""
    out = {}
    for line in Path(path).read_text().splitlines() if Path(path).exists() else []:
        pid, _, role = line.partition(" ")
        if pid.isdigit():
            out[int(pid)] = role
    return out
