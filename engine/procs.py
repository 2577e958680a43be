"""Process liveness: is a pid alive, is it a haj server, signal a process group.

A leaf module (it imports nothing from engine, and a test checks it): the store, serving, status
and the workspace listing all ask these questions, and a module that anything may import must not
pull the rest of the engine in behind it (that is how a nine-module import cycle once hid here,
behind lazy imports).
"""

from __future__ import annotations

import contextlib
import os
import signal


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
    if pid <= 0 or not pid_alive(pid):
        return False
    proc = f"/proc/{pid}"
    if not os.path.isdir("/proc/self"):
        return True  # no procfs (macOS): trust the pid
    try:
        with open(f"{proc}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        with open(f"{proc}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except (OSError, IndexError):
        return False
    return b"engine.serving" in cmdline


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group (a runner started in its own session, with its workers);
    nothing if it is already gone or not ours."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_child(pid: int) -> None:
    """Collect a child's exit status (when we started it) so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
