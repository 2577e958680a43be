"""Process liveness: is a pid alive, is it a haj server, signal a process group.

A leaf module (it imports nothing from engine, and a test checks it): the store, serving, status
and the workspace listing all ask these questions, and a module that anything may import must not
pull the rest of the engine in behind it (that is how a nine-module import cycle once hid here,
behind lazy imports).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where used: `haj list` imports this module
    import subprocess

T = TypeVar("T")


def pid_alive(pid: int) -> bool:
    """True if a process `pid` exists (a zombie counts: see server_process_alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to another user
        return True
    return True


def server_process_alive(pid: int) -> bool:
    """True if `pid` runs and is a haj server: a zombie, or a pid the system gave to another
    program after the server died, counts as dead (so `haj stop` never signals a stranger)."""
    return process_alive(pid, b"engine.serving")


def process_alive(pid: int, marker: bytes) -> bool:
    """True if `pid` runs (not a zombie) and its command line holds `marker` (arguments are
    joined by NUL bytes there): a pid reused by another program counts as dead."""
    if not running(pid):
        return False
    if not os.path.isdir("/proc/self"):
        return True  # no procfs (macOS): trust the pid
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except OSError:
        return False
    return marker in cmdline


def running(pid: int) -> bool:
    """True if `pid` exists and is not a zombie (a dead process its parent has not collected:
    one whose parent is gone waits for init, which may take its time)."""
    if pid <= 0 or not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")  # gone, unless there is no procfs (macOS)
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group (a runner started in its own session, with its workers);
    nothing if it is already gone or not ours."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_child(pid: int) -> None:
    """Collect a child's exit status (when we started it) so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM `pid`, wait up to `timeout` s for it to go (reaping it when it is our child),
    then SIGKILL it. Nothing if it is already gone; PermissionError if it is another user's."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap_child(pid)
        if not running(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        reap_child(pid)
        if not running(pid):
            return
        time.sleep(0.02)


def log_tail(path: Path, offset: int = 0) -> str:
    """What a background process wrote to its log after `offset` that best says why it stopped:
    its last line mentioning an error, else its last line (300 characters at most)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            lines = [ln.strip() for ln in handle.read().decode(errors="replace").splitlines()]
    except OSError:
        return "no output"
    lines = [ln for ln in lines if ln and not ln.startswith("----")]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["no output"])[-1][:300]


def start_in_background(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    ready: Callable[[subprocess.Popen[bytes]], T | None],
    what: str,
    timeout: float,
    error: Callable[[str], Exception],
    header: str | None = None,
    poll: float = 0.05,
) -> T:
    """Start `argv` in its own session (a Ctrl-C at this terminal is not its), its output
    appended to `log_path`, and poll `ready(child)` until it answers something: that answer.
    A child that exits first, or is not ready within `timeout` s (then it is stopped), raises
    `error(message)` naming `what` and the log's telling line."""
    import subprocess

    with open(log_path, "ab") as log:
        offset = log.tell()
        if header is not None:
            log.write(f"{header}\n".encode())
            log.flush()
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        code = child.poll()
        if code is not None:
            raise error(
                f"{what} exited while starting (code {code}): "
                f"{log_tail(log_path, offset)} (see {log_path})"
            )
        answer = ready(child)
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            with contextlib.suppress(PermissionError):
                terminate(child.pid, 5.0)
            kill_group(child.pid)
            raise error(f"{what} did not start within {timeout:.0f} s (see {log_path})")
        time.sleep(poll)


# ---- the record a background process keeps of itself (the scheduler, the local cluster) ----------
def read_record(path: Path) -> dict[str, Any] | None:
    """The JSON record at `path`, or None when it is missing or unreadable."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def live_record(path: Path, marker: bytes) -> dict[str, Any] | None:
    """The record at `path` while its process runs (its command line holds `marker`), else
    None: a pure read, the record of a dead process is left for its owner to prune."""
    record = read_record(path)
    if record is None or not process_alive(int(record.get("pid") or 0), marker):
        return None
    return record


def forget_record(path: Path, pid: int) -> None:
    """Remove the record at `path` if it is still the one of `pid`."""
    record = read_record(path)
    if record is not None and int(record.get("pid") or 0) == pid:
        path.unlink(missing_ok=True)
