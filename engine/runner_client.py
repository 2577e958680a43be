"""The parent side of long work: start `engine.runner` with the project's interpreter, relay its
events to a callback, forward cancellation, and turn its failure back into the same HajError."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine import errors, events
from engine.project import Project

_ENGINE_PARENT = str(Path(__file__).resolve().parent.parent)


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
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH", "")) if p)
    child = subprocess.Popen(
        [
            project_python(project),
            "-m",
            "engine.runner",
            command,
            str(project.path),
            json.dumps(options or {}),
        ],
        cwd=project.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    inbox: queue.Queue[events.Event | None] = queue.Queue()

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

    outcome: events.Event | None = None
    cancelled_at: float | None = None
    try:
        stdout_open = True
        while stdout_open or child.poll() is None:
            if cancel is not None and cancel.is_set() and cancelled_at is None:
                cancelled_at = _interrupt(child)
            if cancelled_at is not None and time.monotonic() - cancelled_at > 2.0:
                child.kill()
            try:
                event = inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                cancelled_at = cancelled_at or _interrupt(child)
                continue
            if event is None:
                stdout_open = False
                continue
            if isinstance(event, events.Result | events.Failed):
                outcome = event
            else:
                on_event(event)
    except KeyboardInterrupt:
        _interrupt(child)
        child.wait(timeout=5)
        cancelled_at = time.monotonic()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        readers[1].join(timeout=1)
        while not inbox.empty():
            event = inbox.get_nowait()
            if event is not None and not isinstance(event, events.Result | events.Failed):
                on_event(event)

    if isinstance(outcome, events.Result):
        return outcome.payload
    if isinstance(outcome, events.Failed):
        if outcome.kind == "Cancelled" or cancelled_at is not None:
            _reap(project)
            raise errors.Cancelled(f"{command} cancelled; unfinished work was recorded as such")
        cls = getattr(errors, outcome.kind, errors.HajError)
        raise cls(outcome.message)
    _reap(project)
    if cancelled_at is not None:
        raise errors.Cancelled(f"{command} cancelled")
    raise errors.HajError(f"{command} stopped unexpectedly (exit code {child.returncode})")


def _interrupt(child: subprocess.Popen[bytes]) -> float:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signal.SIGINT)
    return time.monotonic()


def _reap(project: Project) -> None:
    """Runs a killed runner left 'running' are marked failed now, not at the next read."""
    if project.db_path.exists():
        from engine.store import Store

        with Store(project.db_path) as store:
            store.reap_orphans()
