"""A project's training as a view shows it: the last session, estimates, and the training log.

Training records each run in the store when it is queued ('running', with its runner's pid) and
again when it ends; logs/train.log says, in between, when a worker took it (`started`). From the
two, `last_session()` tells queued from running runs of a session whatever process runs it (the
app's own worker, `haj train` in a shell, a schedule), so the Train tab shows the same after a
restart as during the session that started it.

`estimates()` expects a model to take what its recent runs took (the median of its last five
finished runs, on the same data version when there are some); `remaining()` spreads the queue
over the workers to say how long the whole session has left.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from engine.project import Project

LOG_LINE = re.compile(
    r"^\[(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d) (?P<project>\S+) \((?P<label>[^)]*)\) "
    r"(?P<data>\S+)\] (?P<message>.*)$",
    re.DOTALL,
)
STARTED = "started"  # the message of the line a run's start writes (engine.training)
_TAIL_BYTES = 256 * 1024


def log_line(project: str, label: str, data_version: str | None, message: str) -> str:
    """A train.log line: `[DATETIME PROJECT (LABEL) DATA_VERSION] message` (LOG_LINE reads it)."""
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return f"[{stamp} {project} ({label}) {data_version or '-'}] {message}"


def compact_line(line: str) -> str:
    """A train.log line with a short prefix for a narrow panel: `[2026-12-02 05:31:49 diabetes
    (knn-1) proc-0001] finished ...` reads `05:31:49 knn-1 finished ...` (the file keeps the
    full line); a session line drops its label. Other lines are returned as they are."""
    match = LOG_LINE.match(line)
    if match is None:
        return line
    label = match["label"]
    who = "" if label == "session" else f"{label} "
    return f"{match['time']} {who}{match['message']}"


@dataclass
class SessionRun:
    """One run of a session: `status` is queued, running, finished, failed or cancelled;
    `started` when a worker took it (local time, ISO; None while queued)."""

    run_id: str
    model: str
    label: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_std: dict[str, float] = field(default_factory=dict)
    duration_seconds: float | None = None
    started: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainSession:
    """The project's last training session: its runs (queue order) and whether it still runs."""

    session: str
    data_version: str | None
    runs: list[SessionRun]

    @property
    def live(self) -> bool:
        return any(run.status in ("queued", "running") for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "live": self.live}


def _log_tail(project: Project, size: int = _TAIL_BYTES) -> list[str]:
    path = project.logs_dir / "train.log"
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            handle.seek(max(0, end - size))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if end > size else lines  # the first may be cut


def _started_times(project: Project, labels: set[str]) -> dict[str, str]:
    """label -> when train.log says a worker took it (the latest such line)."""
    started: dict[str, str] = {}
    for line in _log_tail(project):
        match = LOG_LINE.match(line)
        if match and match["label"] in labels and match["message"] == STARTED:
            started[match["label"]] = f"{match['date']}T{match['time']}"
    return started


def last_session(project: Project) -> TrainSession | None:
    """The last training session (finalize's refits are not training), or None."""
    from engine.store import Store

    if not project.db_path.exists():
        return None
    with Store(project.db_path) as store:
        recent = [r for r in store.runs(limit=50) if r.refit_of is None]
        if not recent:
            return None
        session = max(recent, key=lambda r: r.started_at).session
        runs = store.runs(session=session)
    runs.sort(key=lambda r: (r.started_at, r.model))  # as they started (queued: by name)
    unfinished = {r.label for r in runs if r.status == "running"}
    started = _started_times(project, unfinished) if unfinished else {}
    rows = []
    for run in runs:
        status = run.status
        when = None
        if status == "running":
            when = started.get(run.label)
            status = "running" if when else "queued"
        rows.append(
            SessionRun(
                run_id=run.id,
                model=run.model,
                label=run.label,
                status=status,
                metrics=dict(run.metrics),
                metrics_std=dict(run.metrics_std),
                duration_seconds=run.duration_seconds,
                started=when,
                error=run.error,
            )
        )
    return TrainSession(session, runs[0].data_version if runs else None, rows)


def elapsed_since(started: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a `SessionRun.started` (local time), or None."""
    if not started:
        return None
    try:
        then = datetime.fromisoformat(started)
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now()) - then).total_seconds())


def estimates(
    project: Project, models: list[str], data_version: str | None = None
) -> dict[str, float]:
    """model -> the seconds it is expected to take: the median duration of its last five
    finished runs (on `data_version` when it has some there). Models never trained are left
    out."""
    from engine.store import Store

    if not project.db_path.exists() or not models:
        return {}
    wanted = set(models)
    same: dict[str, list[float]] = {}
    other: dict[str, list[float]] = {}
    with Store(project.db_path) as store:
        finished = store.runs(status="finished", limit=2000)
    for run in finished:  # newest first
        if run.model not in wanted or run.duration_seconds is None or run.refit_of:
            continue
        bucket = same if data_version and run.data_version == data_version else other
        durations = bucket.setdefault(run.model, [])
        if len(durations) < 5:
            durations.append(run.duration_seconds)
    return {
        model: statistics.median(same.get(model) or other[model])
        for model in models
        if same.get(model) or other.get(model)
    }


def remaining(
    running: list[tuple[float | None, float]],
    queued: list[float | None],
    workers: int,
) -> float | None:
    """Seconds until a session ends: `running` as (estimate, elapsed) per running run,
    `queued` the estimates of the queued ones, spread over `workers` (each takes the next run
    when it is free). An unknown estimate counts as the median of the known ones; None when
    none is known."""
    known = [e for e, _ in running if e is not None] + [e for e in queued if e is not None]
    if not known:
        return None
    typical = statistics.median(known)
    free = sorted(
        max(0.0, (estimate if estimate is not None else typical) - elapsed)
        for estimate, elapsed in running
    )
    free += [0.0] * max(0, max(1, workers) - len(free))
    for estimate in queued:
        free.sort()
        free[0] += estimate if estimate is not None else typical
    return max(free) if free else 0.0


def read_log(
    project: Project, offset: int | None = None, lines: int = 300
) -> tuple[list[str], int]:
    """train.log's lines after byte `offset` (None: its last `lines`), compacted
    (compact_line), and the offset to read from next time."""
    path = project.logs_dir / "train.log"
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            # from the tail when no offset is given, or the file was replaced (shorter now)
            start = max(0, end - _TAIL_BYTES) if offset is None or offset > end else offset
            handle.seek(start)
            data = handle.read(end - start)
    except OSError:
        return [], 0
    text = data.decode("utf-8", errors="replace")
    if not text.endswith("\n"):  # a line still being written: next time
        cut = text.rfind("\n") + 1
        end = start + len(text[:cut].encode("utf-8"))
        text = text[:cut]
    found = text.splitlines()
    if offset is None:
        if start > 0:
            found = found[1:]
        found = found[-lines:]
    return [compact_line(line) for line in found], end
