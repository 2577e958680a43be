"""The parent side of long work: start `engine.runner` with the project's interpreter, relay its
events to a callback, forward cancellation, and turn its failure back into the same HajError."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from engine import errors, events, warm_runner
from engine.procs import kill_group
from engine.project import Project
from engine.warm_runner import WarmChild

Runner = subprocess.Popen[bytes] | WarmChild


def project_python(project: Project) -> str:
    """The project's own interpreter when it has a virtualenv (dependencies added), else haj's."""
    candidate = project.venv_dir / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def run(
    project: Project,
    command: str,
    options: dict[str, Any] | None = None,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run one runner command to the end; returns its Result payload or raises its HajError.

    Ctrl-C (KeyboardInterrupt) or `cancel.set()` sends SIGINT to the runner, which records its
    unfinished work as cancelled; if it has not stopped within 2 s it is killed.
    """
    child = _start_runner(project, command, options)
    inbox: queue.Queue[events.Event | None] = queue.Queue()
    readers = _start_readers(child, inbox)
    outcome: events.Event | None = None
    cancelled_at: float | None = None
    try:
        outcome, cancelled_at = _relay(child, inbox, on_event, cancel)
    finally:
        # Always, even after a clean exit: training workers the runner leaves behind (a runner
        # killed from outside cannot stop its joblib workers) would otherwise live on for
        # minutes, holding cores and memory.
        _kill_group(child)
        child.wait()
        readers[1].join(timeout=1)
        while not inbox.empty():
            event = inbox.get_nowait()
            if event is not None and not isinstance(event, events.Result | events.Failed):
                on_event(event)
    return _result_of(project, command, child, outcome, cancelled_at)


def _start_runner(
    project: Project, command: str, options: dict[str, Any] | None
) -> subprocess.Popen[bytes] | WarmChild:
    """`python -m engine.runner COMMAND PROJECT OPTIONS` with the project's interpreter, in its
    own session (so cancelling can signal it and its workers as one group): a fork of the warm
    runner when this process keeps one and the project uses haj's interpreter, else a fresh
    process."""
    env = warm_runner.runner_environment()
    from engine.lock import held_fd

    lock_fd = held_fd(project.path)
    keep = () if lock_fd is None else (lock_fd,)
    argv = [command, str(project.path), json.dumps(options or {})]
    python = project_python(project)
    if python == sys.executable:
        warm = warm_runner.start(argv, project.path, env, keep)
        if warm is not None:
            return warm
    return subprocess.Popen(
        [python, "-m", "engine.runner", *argv],
        cwd=project.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        pass_fds=keep,
    )


def _start_readers(
    child: Runner, inbox: queue.Queue[events.Event | None]
) -> list[threading.Thread]:
    """Threads that turn the runner's stdout (JSON-lines events; anything else as Output) and
    stderr (Output) into events on `inbox`; None marks the end of stdout. Threads, so the main
    loop stays free to notice a cancel."""

    def read_events() -> None:
        assert child.stdout
        for raw in child.stdout:
            try:
                inbox.put(events.from_json(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                inbox.put(
                    events.Output(line=raw.decode(errors="replace").rstrip(), stream="stdout")
                )
        inbox.put(None)

    def read_output() -> None:
        assert child.stderr
        for raw in child.stderr:
            inbox.put(events.Output(line=raw.decode(errors="replace").rstrip()))

    readers = [threading.Thread(target=f, daemon=True) for f in (read_events, read_output)]
    for reader in readers:
        reader.start()
    return readers


def _relay(
    child: Runner,
    inbox: queue.Queue[events.Event | None],
    on_event: events.Callback,
    cancel: threading.Event | None,
) -> tuple[events.Event | None, float | None]:
    """Pass the runner's events to `on_event` until it ends; returns (its Result or Failed event,
    when a cancel was asked). A cancel (or Ctrl-C, wherever it lands) interrupts the runner;
    after 2 s its whole group is killed, after 5 s nothing more is waited for."""
    outcome: events.Event | None = None
    cancelled_at: float | None = None
    stdout_open = True
    while stdout_open or child.poll() is None:
        try:
            if cancel is not None and cancel.is_set() and cancelled_at is None:
                cancelled_at = _interrupt(child)
            if cancelled_at is not None:
                waited = time.monotonic() - cancelled_at
                if waited > 2.0:
                    _kill_group(child)  # the runner and its training workers
                if waited > 5.0:
                    break  # whatever still holds a pipe open is not waited for
            try:
                event = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if event is None:
                stdout_open = False
            elif isinstance(event, events.Result | events.Failed):
                outcome = event
            else:
                on_event(event)
        except KeyboardInterrupt:  # Ctrl-C, wherever it lands: ask the runner to stop
            if cancelled_at is None:
                cancelled_at = _interrupt(child)
    return outcome, cancelled_at


def _result_of(
    project: Project,
    command: str,
    child: Runner,
    outcome: events.Event | None,
    cancelled_at: float | None,
) -> dict[str, Any]:
    """The Result's payload, or the runner's failure raised as the same HajError type in this
    process (Cancelled when the user cancelled; a generic HajError when it died unexpectedly,
    after closing the runs it left "running")."""
    if isinstance(outcome, events.Result):  # finished before the cancel took effect
        return outcome.payload
    if cancelled_at is not None or (
        isinstance(outcome, events.Failed) and outcome.kind == "Cancelled"
    ):
        _reap(project, cancelled_pid=child.pid)
        raise errors.Cancelled(f"{command} cancelled; unfinished work was recorded as cancelled")
    if isinstance(outcome, events.Failed):
        cls = getattr(errors, outcome.kind, errors.HajError)
        raise cls(outcome.message)
    _reap(project)
    raise errors.HajError(f"{command} stopped unexpectedly (exit code {child.returncode})")


def _interrupt(child: Runner) -> float:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGINT)
    return time.monotonic()


def _kill_group(child: Runner) -> None:
    """SIGKILL the runner's whole session (it was started in its own), workers included."""
    kill_group(child.pid)
    with contextlib.suppress(ProcessLookupError):
        child.kill()


def _reap(project: Project, cancelled_pid: int | None = None) -> None:
    """Runs a dead runner left 'running' are closed now, not at the next read: cancelled when
    the user asked for it (even if the runner had to be killed, which train.log then says),
    else failed."""
    if project.db_path.exists():
        from engine.store import Store

        with Store(project.db_path) as store:
            if cancelled_pid is not None:
                count = store.close_runs_of(cancelled_pid, "cancelled", "cancelled by the user")
                if count:
                    _log_killed(project, count)
            store.reap_orphans()


def _log_killed(project: Project, count: int) -> None:
    """The runner was stopped before it could write its own last word to train.log."""
    from engine.sessions import log_line

    line = log_line(
        project.name,
        "session",
        None,
        f"cancelled: {count} unfinished run(s) recorded as cancelled (the runner did not stop "
        "within 2 s and was killed)",
    )
    with contextlib.suppress(OSError), open(project.logs_dir / "train.log", "a") as log:
        log.write(line + "\n")
