"""`haj pipeline run`: the project's configured steps (retrieve, process, check, retrain,
monitor), in order, each recorded with its attempts, seconds, outcome and why it was skipped.

Why inside haj and not an orchestrator: the steps are haj's own engine calls, the project lock
already serialises writers, and haj.db already records everything else about the project; a
pipeline run is one more row there, that `haj pipeline history`, the schedule and the app read.
Only transient failures are retried (engine.errors.TransientError: the network, a 5xx, a
timeout), with exponential backoff; an error in the user's code fails at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import events, pipeline_config
from engine.errors import (
    Cancelled,
    DataError,
    HajError,
    NoChampion,
    ProjectBusy,
    TransientError,
    UsageError,
)
from engine.project import Project

# The project's engine.api.ProjectAPI (the retrain step needs its verbs): typed loosely, since
# engine.api imports this module (no import cycle in the core).
ProjectAPI = Any

STEPS = pipeline_config.STEPS
WHEN = pipeline_config.WHEN
REDEPLOY = pipeline_config.REDEPLOY
validate = pipeline_config.validate


@dataclass
class StepResult:
    name: str
    outcome: str  # done, skipped, failed, cancelled
    attempts: int
    seconds: float
    detail: str

    @property
    def mark(self) -> str:
        """How a table shows it: ✓, retried n, skipped, ✗."""
        if self.outcome == "done":
            return "✓" if self.attempts == 1 else f"✓ retried {self.attempts - 1}"
        return {"skipped": "skipped", "failed": "✗", "cancelled": "cancelled"}.get(
            self.outcome, self.outcome
        )


@dataclass
class PipelineResult:
    id: str
    started_at: str
    trigger: str  # manual | schedule
    status: str = "running"  # running, finished, failed, cancelled
    finished_at: str | None = None
    summary: str = ""
    steps: list[StepResult] = field(default_factory=list)
    pid: int | None = None

    @property
    def seconds(self) -> float:
        return round(sum(s.seconds for s in self.steps), 3)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = self.seconds
        for step, shown in zip(out["steps"], self.steps, strict=True):
            step["mark"] = shown.mark
        return out

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "steps": [asdict(s) for s in self.steps]}

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> PipelineResult:
        steps = [StepResult(**step) for step in row.get("steps") or []]
        fields = {k: row.get(k) for k in ("id", "started_at", "trigger", "status", "finished_at")}
        return cls(**fields, summary=row.get("summary") or "", steps=steps, pid=row.get("pid"))


def settings(config: dict[str, Any]) -> dict[str, Any]:
    from engine.project import DEFAULTS

    return pipeline_config.settings(config, DEFAULTS["pipeline"])


@contextlib.contextmanager
def exclusive(project: Project, cancel: threading.Event | None = None) -> Iterator[None]:
    """The project's lock for the whole run, refused at once (never waited for): a schedule
    that fires while a run is still going must not pile up behind it."""
    from engine.lock import project_lock, read_holder

    try:
        with project_lock(project.path, "pipeline run", wait=False, cancel=cancel):
            yield
    except ProjectBusy:
        holder = read_holder(project.path)
        if holder is not None and holder.command == "pipeline run":
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.started_at))
            raise ProjectBusy(
                f"the pipeline is already running since {when} (pid {holder.pid})"
            ) from None
        raise


def run(
    api: ProjectAPI,
    steps: list[str] | None = None,
    *,
    force: bool = False,
    trigger: str = "manual",
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineResult:
    """Run the steps (default: [pipeline] steps) under the caller's lock; recorded however it
    ends. `force` runs every step even when there is nothing new."""
    job = _Pipeline(api, steps, force, trigger, on_event, cancel, sleep)
    job.record()
    try:
        job.run()
    except (KeyboardInterrupt, Cancelled):
        job.finish("cancelled", "cancelled by the user")
        raise
    except HajError as exc:
        job.finish("failed", exc.message)
        job.notify("failed", f"pipeline failed: {job.result.summary}")
        raise
    except Exception as exc:  # a bug: recorded, notified, then raised for its traceback
        job.finish("failed", f"{type(exc).__name__}: {exc}")
        job.notify("failed", f"pipeline failed: {job.result.summary}")
        raise
    job.finish("finished")
    return job.result


def history(project: Project, limit: int | None = None) -> list[PipelineResult]:
    from engine.store import Store

    if not project.db_path.exists():
        return []
    with Store(project.db_path) as store:
        return [PipelineResult.from_record(row) for row in store.pipeline_runs(limit)]


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Pipeline:
    def __init__(
        self,
        api: ProjectAPI,
        steps: list[str] | None,
        force: bool,
        trigger: str,
        on_event: events.Callback,
        cancel: threading.Event | None,
        sleep: Callable[[float], None],
    ) -> None:
        from engine.store import now_iso

        self.api = api
        self.project = api.project
        self.config = self.project.read_config()
        self.settings = settings(self.config)
        self.steps = list(steps) if steps else list(self.settings["steps"])
        validate({**self.settings, "steps": self.steps}, "--steps")
        self.force = force
        self.emit = on_event
        self.cancel = cancel
        self.sleep = sleep
        self.result = PipelineResult(
            id=uuid.uuid4().hex[:12], started_at=now_iso(), trigger=trigger, pid=os.getpid()
        )
        self.new_data: bool | None = None
        self.degraded: bool | None = None
        self.drift: bool | None = None
        self.notes: list[str] = []

    # ---- recording ----------------------------------------------------------------------------
    def record(self) -> None:
        from engine.store import Store

        with Store(self.project.db_path) as store:
            store.record_pipeline_run(self.result.to_record())

    def finish(self, status: str, reason: str | None = None) -> None:
        from engine.store import now_iso

        result = self.result
        result.status = status
        result.finished_at = now_iso()
        done = [s for s in result.steps if s.outcome == "done"]
        result.summary = (
            reason.splitlines()[0][:300]
            if reason
            else "; ".join(self.notes) or (f"{len(done)} of {len(result.steps)} steps done")
        )
        with contextlib.suppress(Exception):  # the failure matters more than its record
            self.record()

    def notify(self, event: str, text: str, details: dict[str, Any] | None = None) -> None:
        from engine import notify

        notify.notify(self.project, event, text, details, pipeline_id=self.result.id)

    # ---- running ------------------------------------------------------------------------------
    def run(self) -> None:
        for i, name in enumerate(self.steps):
            try:
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled("pipeline cancelled")
                self._step(name, getattr(self, f"_{name}"))
            except BaseException:
                for later in self.steps[i + 1 :]:  # the history shows what did not run, and why
                    self.result.steps.append(
                        StepResult(later, "skipped", 0, 0.0, f"not run: {name} did not finish")
                    )
                raise

    def _step(self, name: str, body: Callable[[], str]) -> None:
        attempts = int(self.settings["retries"].get(name, 1))
        backoff = float(self.settings["backoff_seconds"])
        started = time.monotonic()
        self.emit(events.PipelineStep(step=name, status="started"))
        attempt = 1
        while True:
            try:
                detail = body()
            except _Skip as skip:
                self._end(name, "skipped", attempt, started, skip.reason)
                return
            except TransientError as exc:
                if attempt < attempts:
                    wait = backoff * 2 ** (attempt - 1)
                    self.emit(
                        events.PipelineStep(
                            step=name,
                            status="retrying",
                            attempt=attempt + 1,
                            detail=f"{exc.message} (trying again in {wait:g} s)",
                        )
                    )
                    self._wait(wait)
                    attempt += 1
                    continue
                self._end(name, "failed", attempt, started, exc.message)
                raise
            except (KeyboardInterrupt, Cancelled):
                self._end(name, "cancelled", attempt, started, "cancelled by the user")
                raise
            except HajError as exc:
                self._end(name, "failed", attempt, started, exc.message)
                raise
            except Exception as exc:
                self._end(name, "failed", attempt, started, f"{type(exc).__name__}: {exc}")
                raise
            self._end(name, "done", attempt, started, detail)
            return

    def _wait(self, seconds: float) -> None:
        if self.cancel is not None:
            if self.cancel.wait(seconds):
                raise Cancelled("pipeline cancelled")
        else:
            self.sleep(seconds)

    def _end(self, name: str, outcome: str, attempts: int, started: float, detail: str) -> None:
        seconds = round(time.monotonic() - started, 3)
        detail = detail.splitlines()[0][:300] if detail else ""
        self.result.steps.append(StepResult(name, outcome, attempts, seconds, detail))
        self.emit(
            events.PipelineStep(
                step=name, status=outcome, attempt=attempts, seconds=seconds, detail=detail
            )
        )
        self.record()  # the app and `history` see each step as it ends

    def _nothing_new(self) -> None:
        if self.new_data is False and not self.force:
            raise _Skip("no new data")

    # ---- the steps -----------------------------------------------------------------------------
    def _retrieve(self) -> str:
        from engine import data

        before = self._current_raw()
        got = data.retrieve(self.project, self.emit, self.cancel)
        version = got["version"]["id"]
        self.new_data = bool(got["created"]) or version != before
        if not self.new_data:
            self.notes.append("no new data")
        if got["created"]:
            return f"new raw version {version}"
        if version != before:
            return f"{version} is the current raw version again (was {before})"
        return f"nothing new: the source returned {version} again"

    def _process(self) -> str:
        from engine import data

        self._nothing_new()
        processed = data.process(self.project, None, self.emit, self.cancel)
        version = processed["version"]["id"]
        return f"processed into {version}" + ("" if processed.get("created", True) else " (reused)")

    def _check(self) -> str:
        from engine import evaluation

        self._nothing_new()
        try:
            checked = evaluation.check(self.project)
        except NoChampion:
            raise _Skip("no champion to check yet") from None
        except DataError as exc:
            raise _Skip(f"cannot check on this data: {exc.message}") from None
        self.degraded = not checked.holds
        if self.degraded:
            self.notify("degraded", f"the champion {checked.label} {checked.verdict}")
        return checked.verdict

    def _retrain(self) -> str:
        from engine import retrain

        self._nothing_new()
        when = self.settings["when"]
        if not self.force:
            if when == "new-data" and self.new_data is None:
                when = "always"  # no retrieve step: the data is what it is
            if when == "degraded":
                if self.degraded is None:
                    self._check()
                if not self.degraded:
                    raise _Skip("the champion holds: not degraded")
            if when == "drift":
                if self.drift is None:
                    self.drift = self._drifted()
                if not self.drift:
                    raise _Skip("no dataset drift")
        options = retrain.Options(
            when="always",
            models=list(self.settings["models"]) or None,
            min_improvement=float(self.settings["min_improvement"]),
            redeploy=str(self.settings["redeploy"]),
            retrieved=True,
        )
        result = retrain.retrain(self.api, options, self.emit, self.cancel)
        if result.decision == "promoted":
            self.notes.append(f"promoted {result.challenger.label if result.challenger else ''}")
            self.notify("promoted", result.reason or "a new champion was crowned")
        elif result.decision == "rejected":
            self.notes.append("challenger not better")
            return f"challenger not better: {result.reason}"
        return result.reason or result.decision or "retrained"

    def _drifted(self) -> bool:
        """Dataset drift of the current raw data against the champion's reference (not stored:
        the monitor step stores its own report)."""
        from engine import monitor

        try:
            result = monitor.monitor(self.project, self._current_raw(), save=False)
        except (NoChampion, DataError, UsageError):
            return True  # nothing to compare with: a model is wanted
        return result.report.dataset_drift

    def _monitor(self) -> str:
        from engine import monitor

        try:
            result = monitor.monitor(self.project)
        except NoChampion:
            raise _Skip("no champion to monitor yet") from None
        except DataError as exc:
            raise _Skip(exc.message) from None
        report = result.report
        self.drift = report.dataset_drift
        if report.dataset_drift:
            drifted = ", ".join(c.name for c in report.drifted[:5])
            self.notify("drift", f"{report.verdict()} ({drifted})", {"report_id": result.report_id})
            self.notes.append("dataset drift")
        return f"{result.source}: {report.verdict()}"

    def _report(self) -> str:
        """reports/report-<UTC time>.pdf, keeping the last [pipeline] keep_reports; written
        whether or not there was new data (traffic, drift and the server move on anyway)."""
        from engine import report

        try:
            written = report.make(self.api)
        except DataError as exc:  # no data yet: nothing to report
            raise _Skip(exc.message) from None
        assert written.path is not None
        shown = written.path.relative_to(self.project.path)
        removed = f"; removed {len(written.removed)} older" if written.removed else ""
        return f"wrote {shown} ({written.pages} pages){removed}"

    def _current_raw(self) -> str | None:
        from engine.store import Store

        if not self.project.db_path.exists():
            return None
        with Store(self.project.db_path) as store:
            current = store.current_raw_version()
        return current.id if current else None
