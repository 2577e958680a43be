"""One writer at a time per project: an advisory lock on `<project>/.haj.lock`.

Two `haj train` on one project at once used to delete each other's half-written model files.
Every command that writes a project (retrieve, process, train, crown, config and rename, delete,
install, build, deploy, undeploy) takes this lock through the engine API; a second one waits
and says for what ("waiting for the training started at 10:42 by pid 4242…"), or, told not to
wait, fails at once with the same words.

Why flock: the kernel releases it when the holder's last file descriptor closes, so a killed
holder never blocks the project. The file exists only while the lock is held (a command,
failed or not, leaves nothing on disk); one left by a killed holder is simply taken over. The
runner subprocess inherits the descriptor (runner_client passes it), so the lock lives as long
as the work does, even when the haj that started it is killed first. Within one process (the
app's workers) the lock is per thread and re-entrant, so a verb that calls another does not
wait for itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ProjectBusy

LOCK_FILE = ".haj.lock"
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds a project's lock: what they run, since when, their pid."""

    pid: int
    command: str
    started_at: float

    def describe(self) -> str:
        when = time.strftime("%H:%M", time.localtime(self.started_at))
        return f"the {self.command} started at {when} by pid {self.pid}"


_held: dict[str, tuple[int, int, int]] = {}  # lock path -> (fd, owning thread, depth)
_guard = threading.Lock()


def held_fd(path: Path) -> int | None:
    """The descriptor of the project's lock if this process holds it (a runner inherits it, so
    the lock outlives a killed parent for as long as the work runs)."""
    with _guard:
        held = _held.get(str(Path(path).resolve() / LOCK_FILE))
    return held[0] if held else None


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file, if any (written when the lock was taken)."""
    try:
        data = json.loads((path / LOCK_FILE).read_text(encoding="utf-8") or "{}")
        return Holder(int(data["pid"]), str(data["command"]), float(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def project_lock(
    path: Path,
    command: str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[None]:
    """Hold the project's lock for `command`; wait for it (telling `on_wait` once) or, with
    `wait=False`, raise ProjectBusy naming who holds it."""
    key = str(Path(path).resolve() / LOCK_FILE)
    me = threading.get_ident()
    with _guard:
        held = _held.get(key)
        if held is not None and held[1] == me:  # re-entrant within a thread
            _held[key] = (held[0], me, held[2] + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                fd, owner, depth = _held[key]
                _held[key] = (fd, owner, depth - 1)
        return
    fd = _acquire(Path(path), key, command, wait, on_wait, cancel)
    with _guard:
        _held[key] = (fd, me, 1)
    try:
        yield
    finally:
        with _guard:
            _held.pop(key, None)
        _release(key, fd)


def _release(key: str, fd: int) -> None:
    """Remove the lock file (a command leaves nothing behind, a failed one included), then let
    go. Removed first, while still held: a waiter that opened it retries on the new file."""
    for where in (key, _path_of(fd)):  # _path_of: where it is now, after a rename
        with contextlib.suppress(OSError, TypeError):
            if where and os.stat(where).st_ino == os.fstat(fd).st_ino:
                os.unlink(where)
                break
    os.close(fd)


def _path_of(fd: int) -> str | None:
    """The file's current path (Linux's /proc), or None where that cannot be known."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _same_file(key: str, fd: int) -> bool:
    try:
        return os.stat(key).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _acquire(
    path: Path,
    key: str,
    command: str,
    wait: bool,
    on_wait: Callable[[str], None] | None,
    cancel: threading.Event | None,
) -> int:
    from engine.errors import Cancelled

    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(key, fd):
                    break
                os.close(fd)  # the holder removed that file as it let go: take the new one
                fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
                continue
            except BlockingIOError:
                holder = read_holder(path)
            who = holder.describe() if holder else "another haj command"
            if not wait:
                raise ProjectBusy(f"{path.name} is busy: {who} is still running")
            if not told and on_wait is not None:
                on_wait(f"waiting for {who}…")
                told = True
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"stopped waiting for {who}")
            time.sleep(POLL_SECONDS)
        record = json.dumps({"pid": os.getpid(), "command": command, "started_at": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode("utf-8"), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd
