"""Training's fits as tasks of a Dask cluster (engine.cluster), for engine.training._run_session.

- The data (the split) and what every run shares (spec, intake, profile...) are scattered once
  to every worker; a task carries only its run's own part (the estimator, ids, paths).
- One task per model: training's own `fit_and_save`, into a temporary folder on the worker. The
  task returns the result and the bytes of the files it wrote; haj's process writes them into
  the project's models/ (atomically, sha256 checked) and records the run. Workers need no access
  to the project folder.
- With --cv K: K fold tasks per model (engine.validation.fold), then the model's own task, which
  receives their scores and hands them to cross_validate as done. So a run's metrics, notes and
  its bundle are exactly those of a local fit; only the folds run side by side.
- Models expected to take longest go first (their recent durations, engine.sessions), so the
  slowest fit does not start last.

Imports nothing of engine.training (which imports this module): training hands in its functions
(pickled by reference: the workers import engine.training themselves).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import events
from engine.cluster import (
    Cluster,
    TaskDone,
    TaskFailed,
    TaskStarted,
    WorkerInfo,
    WorkersChanged,
    connect,
    project_packages,
    workers_text,
)
from engine.fsutil import sha256_bytes

# ("started", run, where) | ("finished", result, "") | ("workers", log line, TrainBackend event)
Happening = tuple[str, Any, Any]


@dataclass(frozen=True)
class Functions:
    """Training's own functions, run by the workers."""

    fit_and_save: Callable[..., dict[str, Any]]
    fit: Callable[..., Any]
    score: Callable[..., Any]


class ClusterTraining:
    """One training session's tasks on a cluster."""

    def __init__(self, cluster: Cluster, workers: list[WorkerInfo], functions: Functions) -> None:
        self.cluster = cluster
        self.workers = workers
        self.functions = functions

    @classmethod
    def connect(cls, address: str, project: Any, functions: Functions) -> ClusterTraining:
        """Connect and check the workers' packages against the project's environment: a
        one-line ClusterError, before anything is sent, when they differ."""
        names, paths = project_packages(project)
        cluster = connect(address)
        try:
            workers = cluster.require(names, paths)
        except BaseException:
            cluster.close()
            raise
        return cls(cluster, workers, functions)

    @property
    def address(self) -> str:
        return self.cluster.address

    def describe(self) -> str:
        return f"the Dask cluster {self.address} ({workers_text(self.workers)})"

    def workers_line(self) -> str:
        return "workers: " + ", ".join(
            f"{w.address} (pid {w.pid}, {w.threads} thread{'s' if w.threads != 1 else ''})"
            for w in self.workers
        )

    def backend_event(self) -> events.TrainBackend:
        return events.TrainBackend(
            backend="dask",
            workers=len(self.workers),
            threads=sum(w.threads for w in self.workers),
            address=self.address,
        )

    def fits(
        self,
        session: str,
        runs: list[Any],
        tasks: dict[str, dict[str, Any]],
        common: dict[str, Any],
        split: tuple[Any, Any, Any, Any],
        expected: dict[str, float] | None = None,
    ) -> Iterator[Happening]:
        """Submit every run's tasks, then say what happens as it happens: a run's start (its
        first task taken by a worker, and where), its result (files written into the project
        already), the workers changing. Ends when every run has its result."""
        cluster = self.cluster
        functions = self.functions
        data = cluster.scatter(tuple(split))
        shared = cluster.scatter(common)
        folds = int((common.get("cv") or {}).get("folds") or 0)
        expected = expected or {}
        owner: dict[str, Any] = {}  # task key -> its run
        keys: dict[str, list[str]] = {}  # run id -> its task keys
        fit_key: dict[str, str] = {}  # run id -> the key of its model's task
        ordered = sorted(runs, key=lambda run: -expected.get(run.model, 0.0))
        for run in ordered:
            own = {k: v for k, v in tasks[run.id].items() if k not in common}
            priority = int(expected.get(run.model, 0.0) * 1000)
            prefix = f"haj-{session}-{run.id}"
            fold_handles = []
            for index in range(folds):
                key = f"{prefix}-fold{index}"
                fold_handles.append(
                    cluster.submit(
                        key, fold_remote, functions.fit, functions.score, own, shared, data, index,
                        priority=priority,
                    )
                )  # fmt: skip
                owner[key] = run
                keys.setdefault(run.id, []).append(key)
            key = f"{prefix}-fit"
            cluster.submit(
                key, fit_remote, functions.fit_and_save, own, shared, data,
                fold_handles if folds else None,
                priority=priority,
            )  # fmt: skip
            owner[key] = run
            keys.setdefault(run.id, []).append(key)
            fit_key[run.id] = key
        open_runs = {run.id for run in runs}
        first: dict[str, tuple[float, float]] = {}  # run id -> (monotonic, worker's time)
        for event in cluster.events():
            if isinstance(event, WorkersChanged):
                yield ("workers", *self._workers_changed(event))
                continue
            run = owner.get(event.key)
            if run is None or run.id not in open_runs:
                continue
            if isinstance(event, TaskStarted):
                if run.id not in first:
                    first[run.id] = (time.monotonic(), event.at or time.time())
                    pid = f" (pid {event.pid})" if event.pid else ""
                    yield ("started", run, f"fitting on {event.worker}{pid}")
            elif isinstance(event, TaskDone) and event.key == fit_key[run.id]:
                open_runs.discard(run.id)
                result = self._land(event.result, Path(tasks[run.id]["model_path"]))
                if folds and run.id in first:  # the folds ran first: the run began with them
                    began, at = first[run.id]
                    result["duration_seconds"] = max(
                        result.get("duration_seconds") or 0.0, time.monotonic() - began
                    )
                    result["started_at"] = _iso(at)
                yield ("finished", result, None)
            elif isinstance(event, TaskFailed):
                open_runs.discard(run.id)
                cluster.cancel([k for k in keys[run.id] if k != event.key])
                began, at = first.get(run.id, (time.monotonic(), time.time()))
                yield (
                    "finished",
                    {
                        "run_id": run.id,
                        "model": run.model,
                        "status": "failed",
                        "error": f"on the Dask cluster: {event.error}",
                        "duration_seconds": time.monotonic() - began,
                        "started_at": _iso(at),
                    },
                    None,
                )

    def _workers_changed(self, event: WorkersChanged) -> tuple[str, events.TrainBackend]:
        self.workers = event.workers
        if event.lost:
            line = f"the Dask worker {event.lost} left the cluster"
        else:
            line = "a Dask worker " + (f"joined: {event.added}" if event.added else "left")
        line += f"; now {workers_text(self.workers)}"
        return line, self.backend_event()

    def _land(self, answer: dict[str, Any], model_path: Path) -> dict[str, Any]:
        """Write a task's files into the project's models/ (each atomically), check the bundle
        against its sha256, and point the result's paths there."""
        result = dict(answer["result"])
        if result.get("status") != "finished":
            return result
        folder = model_path.parent
        bundle_name = model_path.name
        for name, content in answer["files"].items():
            target = folder / name
            if name == bundle_name and result.get("sha256") not in (None, sha256_bytes(content)):
                error = "on the Dask cluster: its model file arrived damaged (sha256 differs)"
                return {**result, "status": "failed", "error": error, "model_path": None}
            _write_atomic(target, content)
        return _moved(result, answer["tmp"], str(folder))

    def cancel(self) -> None:
        self.cluster.cancel()

    def close(self) -> None:
        self.cluster.close()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def _write_atomic(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _moved(value: Any, old: str, new: str) -> Any:
    """`value` with the worker's temporary folder replaced by the project's models/ in every
    path it holds (the result's model_path, and any other file a fit wrote)."""
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_moved(v, old, new) for v in value)
    return value


# ---- on the workers ------------------------------------------------------------------------------
def fit_remote(
    fit_and_save: Callable[..., dict[str, Any]],
    own: dict[str, Any],
    common: dict[str, Any],
    data: tuple[Any, Any, Any, Any],
    folds: list[Any] | None = None,
) -> dict[str, Any]:
    """One model's fit_and_save on a worker, into a temporary folder: {"result", "files" (name
    -> bytes of what it wrote), "tmp" (the folder, for the result's paths)}."""
    task = {**common, **own}
    if folds is not None:  # the folds' scores, computed by their own tasks
        task["cv"] = {**task["cv"], "done": [_fold_outcome(fold) for fold in folds]}
    with tempfile.TemporaryDirectory(prefix="haj-fit-") as tmp:
        task["model_path"] = str(Path(tmp) / Path(own["model_path"]).name)
        result = fit_and_save(task, *data)
        files = {
            str(path.relative_to(tmp)): path.read_bytes()
            for path in sorted(Path(tmp).rglob("*"))
            if path.is_file() and not path.name.endswith(".tmp")
        }
    return {"result": result, "files": files, "tmp": tmp}


def fold_remote(
    fit: Callable[..., Any],
    score: Callable[..., Any],
    own: dict[str, Any],
    common: dict[str, Any],
    data: tuple[Any, Any, Any, Any],
    index: int,
) -> tuple[Any, ...]:
    """One cross-validation fold on a worker: ("ok", scores, notes), or ("error", exception
    type's name, message) when the user's model failed on it (said by the model's task, as a
    local fit says it)."""
    from functools import partial

    from engine.validation import fold

    task = {**common, **own}
    if task.get("custom_metrics"):  # model.py's metrics too, as training's _cross_validated
        score = partial(score, custom=task["custom_metrics"])
    try:
        scores, notes = fold(task, data[0], data[1], index, fit, score)
    except Exception as exc:  # user models may raise anything: the run fails with it
        return ("error", type(exc).__name__, str(exc))
    return ("ok", scores, notes)


def _fold_outcome(answer: tuple[Any, ...]) -> Any:
    """A fold task's answer as cross_validate takes it: (scores, notes), or the exception to
    raise (of the same type name and message, so the run's error reads as locally)."""
    if answer[0] == "ok":
        return answer[1], answer[2]
    return type(str(answer[1]), (Exception,), {})(answer[2])
