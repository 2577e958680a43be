"""Processes and ports: a free port, stopping a process, waiting for a URL, a process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_pid(pid: int, timeout: float = 10) -> None:
    """SIGTERM `pid`, wait until it is gone (or a zombie), SIGKILL it after `timeout` s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if state(pid) == "Z":
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a child we started, wait for it, SIGKILL it after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def state(pid: int) -> str | None:
    """The process's state letter from /proc (R, S, Z, X, ...), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    return state(pid) not in (None, "Z", "X")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its loky workers and their resource tracker), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(b")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait until `url` answers at all (any status), failing early if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{url}: process exited: {log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {log.read_text(errors='replace')}")


def running_pids(db: Path) -> set[int]:
    """The pids haj.db records for runs still 'running' (read directly, without reaping)."""
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT pid FROM runs WHERE status = 'running'").fetchall()
    finally:
        connection.close()
    return {row[0] for row in rows}


def wait_for_log(project: Path, *fragments: str, timeout: float = 120) -> str:
    """Wait until every fragment is in logs/train.log (polling the real file)."""
    log = project / "logs" / "train.log"
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if all(fragment in text for fragment in fragments):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{fragments} not in train.log within {timeout}s:\n{text}")
