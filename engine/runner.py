"""The child side of long work: `python -m engine.runner COMMAND PROJECT_DIR OPTIONS_JSON`.

Why a subprocess: user code (retriever.py, processor.py, model.py) runs with the project's own
interpreter and dependencies, a crash in it cannot take the CLI or TUI down, and cancelling is a
signal. Events go to the original stdout as JSON lines; anything the user's code prints is moved
to stderr so it cannot corrupt the event stream.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import events
from engine.errors import HajError
from engine.project import Project

Command = Callable[[Project, dict[str, Any], events.Callback], dict[str, Any]]


def _retrieve(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import data

    return data.retrieve_in_process(project, emit)


def _process(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import data

    return data.process_in_process(project, options.get("version"), emit)


def _train(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import training

    return training.train_in_process(
        project,
        options.get("models") or None,
        emit,
        data=options.get("data"),
        cv=options.get("cv"),
        redo=options.get("redo"),  # haj rerun (engine.rerun)
        cluster=options.get("cluster"),  # a Dask scheduler's address (engine.cluster)
    )


def _finalize(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import finalize

    return finalize.finalize_in_process(project, options["run_id"], emit)


def _tune(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import tuning

    return tuning.tune_in_process(project, options, emit)


def _models(project: Project, options: dict[str, Any], emit: events.Callback) -> dict[str, Any]:
    from engine import catalog

    prediction = project.read_config()["project"]["prediction"]
    extra = catalog.load_project_models(project.code_path("model"), prediction)
    return {"extra": list(extra)}


COMMANDS: dict[str, Command] = {
    "retrieve": _retrieve,
    "process": _process,
    "train": _train,
    "finalize": _finalize,
    "tune": _tune,
    "models": _models,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, project_dir, options = argv[0], Path(argv[1]), json.loads(argv[2])
    events_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def emit(event: events.Event) -> None:
        line = json.dumps(event.to_json(), default=str)
        with lock:
            events_out.write(line + "\n")
            events_out.flush()

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    os.chdir(project_dir)
    project = Project(name=project_dir.name, path=project_dir.resolve())
    try:
        payload = COMMANDS[command](project, options, emit)
    except HajError as exc:
        hint = asdict(exc.hint) if exc.hint else None
        emit(events.Failed(kind=type(exc).__name__, message=exc.message, hint=hint))
        return exc.exit_code
    except KeyboardInterrupt:
        emit(events.Failed(kind="Cancelled", message="cancelled"))
        return 130
    except Exception as exc:
        traceback.print_exc()
        emit(
            events.Failed(kind="HajError", message=f"{command} failed: {type(exc).__name__}: {exc}")
        )
        return 1
    emit(events.Result(payload=payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
