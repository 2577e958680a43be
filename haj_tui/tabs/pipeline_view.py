"""The Monitor tab's Pipeline view (P): the project's pipeline runs, a key to run it now, its
schedule and its notifications.

- The runs (`ProjectAPI.pipeline_history`): when, trigger, status and time; the highlighted
  run's steps beside them with ✓ / ✓ retried n / skipped / ✗, their seconds and the reason.
- R runs the pipeline now (`ProjectAPI.pipeline_run`, the configured steps) in a worker: each
  step appears as it starts, retries and ends (the engine's PipelineStep events, and the
  retrain's own steps as a note); x cancels (the running step is recorded as cancelled). When
  another writer holds the project's lock the engine refuses at once (ProjectBusy): a warning,
  nothing recorded.
- The schedule field holds `[pipeline] schedule`. As you type, the expression is explained in
  words with its next three times (`ProjectAPI.preview_schedule`), or the engine's one-line
  error shows in its place; enter saves it (`ProjectAPI.set_schedule`, which keeps an installed
  crontab line in step). Under it: what runs the schedule (cron, haj's scheduler, or nothing).
- The notifications: whether a webhook is set (masked, as `ProjectAPI.secrets` gives it) and
  the last messages, sent or failed, with their attempts and error.

The keys are the Monitor tab's (its BINDINGS), so they work wherever the focus is while the view
is shown. The view reads the project when shown and again within POLL_SECONDS of any change to
its store or config (`changed_since`: stat() calls only), whoever made it: a scheduled run, a
`haj pipeline run` in a shell.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Static

from engine import events
from engine.api import PipelineResult, ScheduleStatus, StepResult, duration_text
from engine.errors import Cancelled, HajError, ProjectBusy
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.formats import (
    STATUS_STYLE,
    FittingTable,
    column_width,
    columns_that_fit,
    hidden_columns,
    short_time,
)
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI, Stamp

POLL_SECONDS = 1.0  # a look at the store's stamp (stat() calls): a re-read only when it moved
SHOWN_RUNS = 50
SHOWN_NOTIFICATIONS = 10
NOTIFY_URL = "HAJ_NOTIFY_URL"
RUN_STYLE = {**STATUS_STYLE, "refused": "yellow"}
OUTCOME_STYLE = {"done": "green", "skipped": "dim", "failed": "bold red", "cancelled": "magenta"}
NO_SCHEDULE = "No schedule: the pipeline runs only when you press R."
NO_RUNS = "No pipeline run yet: press R to run the configured steps now."
NO_NOTIFICATIONS = "None sent yet."
WIDE_REASON = 30  # cells the reason column needs beside the steps; less: under each step


# ---- what the view shows ---------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineState:
    """One read of the project: its runs (newest first), notifications, webhook (masked, ""
    when none), schedule status, configured steps and schedule, and the stamp it saw."""

    history: list[PipelineResult]
    notifications: list[dict[str, Any]]
    webhook: str
    schedule: ScheduleStatus | None
    steps: list[str]
    configured: str  # [pipeline] schedule as config.toml holds it
    stamp: Stamp | None = None


@dataclass(frozen=True)
class PipelineRan:
    result: PipelineResult


@dataclass(frozen=True)
class PipelineStopped:
    """Cancelled (x): the engine recorded the run as cancelled."""

    message: str


@dataclass(frozen=True)
class PipelineRefused:
    """The project's lock is held (another pipeline run, a training...): nothing ran."""

    message: str


@dataclass(frozen=True)
class ScheduleSaved:
    status: ScheduleStatus
    notes: list[str]


class PipelineFailed(WorkFailed):
    """The run failed (the app has said why; the engine recorded it): R comes back."""


class ScheduleFailed(WorkFailed):
    """Saving the schedule failed (the app has said why)."""


class ReadFailed(WorkFailed):
    """Reading the project failed (said once): the view stops polling until shown again."""


@dataclass
class Live:
    """The run this view started, as its events tell it: the steps ended, the one running."""

    steps: list[str]
    ended: list[StepResult] = field(default_factory=list)
    step: str | None = None  # running now
    attempt: int = 1
    since: float = field(default_factory=time.monotonic)
    note: str = ""  # a retry's error, or what the retrain does now

    def event(self, event: events.Event) -> bool:
        """Take one engine event; True when a step ended (the store has a new row to read)."""
        if isinstance(event, events.PipelineStep):
            if event.status == "started":
                self.step, self.attempt, self.since, self.note = event.step, 1, time.monotonic(), ""
            elif event.status == "retrying":
                self.attempt, self.note = event.attempt, event.detail
            else:
                self.ended.append(
                    StepResult(
                        event.step, event.status, event.attempt, event.seconds or 0.0, event.detail
                    )
                )
                self.step, self.note = None, ""
                return True
        elif isinstance(event, events.RetrainStep) and event.status == "started":
            self.note = f"retrain: {event.step}…"
        elif isinstance(event, events.RunStarted):
            self.note = f"training {event.label or event.model}…"
        return False


def when_text(moment: datetime) -> str:
    """A next run time as `haj schedule` says it: 2026-12-03 03:00 Thu."""
    return moment.strftime("%Y-%m-%d %H:%M %a")


def run_cells(run: PipelineResult) -> list[Text]:
    """A run's row: when, trigger, status, time."""
    return [
        Text(short_time(run.started_at)),
        Text(run.trigger or ""),
        Text(run.status, style=RUN_STYLE.get(run.status, "")),
        Text("" if run.status == "running" else duration_text(run.seconds) or "-", justify="right"),
    ]


def step_row(step: StepResult) -> list[Text]:
    return [
        Text(step.name, style="bold"),
        Text(step.mark, style=OUTCOME_STYLE.get(step.outcome, "")),
        Text(duration_text(step.seconds) or "-", justify="right"),
        Text(step.detail, style="dim" if step.outcome == "skipped" else ""),
    ]


def steps_table(rows: Sequence[list[Text]], width: int) -> RenderableType:
    """The steps with their reasons: a table when the reason column gets WIDE_REASON cells,
    else each reason on its own lines under its step, so a narrow panel never folds a reason
    into a column a few letters wide."""
    widths = [max([4, *(row[i].cell_len for row in rows)]) for i in range(3)]
    if width - sum(w + 1 for w in widths) >= WIDE_REASON:
        table = Table(box=None, padding=(0, 1, 0, 0), expand=True, header_style="bold")
        table.add_column("step", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("time", no_wrap=True, justify="right")
        table.add_column("reason", overflow="fold", ratio=1)
        for row in rows:
            table.add_row(*row)
        return table
    parts: list[RenderableType] = []
    for row in rows:
        line = Table.grid(padding=(0, 1, 0, 0))
        for w in widths:
            line.add_column(width=w, no_wrap=True)
        line.add_row(*row[:3])
        parts.append(line)
        if row[3].plain:
            parts.append(Padding(row[3], (0, 0, 0, 2)))
    return Group(*parts)


def live_rows(live: Live) -> list[list[Text]]:
    """The run going on here: the steps ended, the one running (its attempt and time so far),
    and those still to come."""
    rows = [step_row(step) for step in live.ended]
    if live.step is not None:
        mark = "running…" if live.attempt == 1 else f"attempt {live.attempt}…"
        rows.append([
            Text(live.step, style="bold"),
            Text(mark, style="yellow"),
            Text(duration_text(time.monotonic() - live.since), justify="right"),
            Text(live.note, style="yellow" if live.attempt > 1 else "italic"),
        ])  # fmt: skip
    done = {step.name for step in live.ended} | {live.step}
    for name in live.steps:
        if name not in done:
            rows.append([Text(name, style="dim"), Text("waiting", style="dim"), Text(""), Text("")])
    return rows


def runs_by_text(status: ScheduleStatus | None) -> Text:
    """What runs the schedule, in a line (or what is wrong with how it runs)."""
    if status is None:
        return Text("")
    if status.warning:
        return Text(f"⚠ {status.warning}", style="yellow")
    if not status.schedule:
        return Text("")
    found = []
    if "cron" in status.runs_by:
        found.append("cron runs it (its crontab line is installed)")
    if "scheduler" in status.runs_by:
        pid = (status.scheduler or {}).get("pid")
        found.append(f"haj's scheduler runs it (pid {pid})" if pid else "haj's scheduler runs it")
    if found:
        return Text("● " + "; ".join(found), style="green")
    if status.crontab_error:
        return Text(f"⚠ {status.crontab_error}", style="yellow")
    return Text("")


def webhook_text(masked: str, name: str) -> Text:
    """Whether a webhook is set: the URL is a secret, so only its mask is shown."""
    if masked:
        return Text.assemble(
            ("● webhook set", "bold green"),
            f" ({masked}): sent on degradation, drift, promotion, failure",
        )
    return Text.assemble(
        ("○ no webhook", "bold"),
        f": nothing is sent. `haj config {name} --notify-url` sets one (in .env).",
        style="dim",
    )


# ---- the view --------------------------------------------------------------------------------
class PipelineView(ReportsWorkerErrors, Vertical):
    """The pipeline's runs, run now, its schedule and notifications (the Monitor tab, P)."""

    DEFAULT_CSS = """
    PipelineView {
        height: 1fr;
    }
    PipelineView #pipeline-head {
        dock: top;
        height: auto;
    }
    PipelineView #pipeline-schedule-label {
        margin: 0 1 0 1;
        color: $text-muted;
    }
    PipelineView #pipeline-schedule {
        width: 22;
        margin: 0 1 0 0;
    }
    PipelineView #pipeline-state {
        width: 1fr;
        height: 1;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    PipelineView #pipeline-preview {
        height: auto;
        max-height: 3;
        padding: 0 1;
        color: $text-muted;
    }
    PipelineView #pipeline-body {
        height: 1fr;
    }
    PipelineView #pipeline-runs {
        width: 50;
        height: 1fr;
    }
    PipelineView #pipeline-steps-box {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    PipelineView #pipeline-notes-box {
        height: 7;
        padding: 0 1;
    }
    PipelineView #pipeline-notes {
        height: 1fr;
    }
    PipelineView #pipeline-runs, PipelineView #pipeline-steps-box,
    PipelineView #pipeline-notes-box {
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        background: $surface;
    }
    PipelineView #pipeline-runs:focus, PipelineView #pipeline-steps-box:focus {
        border: round $primary;
        border-title-color: $primary;
    }
    """

    def __init__(self, project: ProjectAPI, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.project = project
        self.state: PipelineState | None = None  # None until first read
        self.running = False  # a run started here goes on
        self.live: Live | None = None
        self.selected: str | None = None  # the run whose steps are shown (its id)
        self.preview_error: str | None = None  # the typed schedule's error, shown in place
        self._cancel: threading.Event | None = None
        self._loaded_schedule: str | None = None  # the field's value as last read
        self._read_failed = False
        self._ready = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="pipeline-body"):
            runs = FittingTable(
                id="pipeline-runs", cursor_type="row", zebra_stripes=True, refit=self._fill_runs
            )
            runs.border_title = "Pipeline runs"
            yield runs
            with VerticalScroll(id="pipeline-steps-box") as box:
                box.border_title = "Steps"
                yield Static("", id="pipeline-steps")
        with Vertical(id="pipeline-notes-box") as notes:
            notes.border_title = "Notifications"
            yield Static("", id="pipeline-webhook")
            yield FittingTable(
                id="pipeline-notes", cursor_type="none", zebra_stripes=True, refit=self._fill_notes
            )
        # docked on top, composed last: the runs table is the view's first focusable widget
        with Vertical(id="pipeline-head"):
            with Horizontal(classes="toolbar"):
                yield Button("Run now (R)", id="pipeline-run", compact=True, variant="primary")
                yield Button("Cancel (x)", id="pipeline-cancel", compact=True, disabled=True)
                yield Label("Schedule (o)", id="pipeline-schedule-label")
                yield Input(placeholder="cron: 0 3 * * *", id="pipeline-schedule", compact=True)
                yield Label("", id="pipeline-state")
            yield Static("", id="pipeline-preview")

    def on_mount(self) -> None:
        self._ready = True
        self._show()
        self.set_interval(POLL_SECONDS, self._tick, name="pipeline-poll")

    def refresh_data(self) -> None:
        """Shown: read the project now (it may have changed while hidden)."""
        self._read_failed = False
        if self._ready:
            self._read()

    def on_resize(self) -> None:
        """At 80 columns the runs keep when, status and time; the steps take the rest (their
        reasons under each step when the panel is narrow)."""
        runs = self.query_one("#pipeline-runs")
        runs.styles.width = 40 if self.size.width < 96 else 50
        self.call_after_refresh(self._show_steps)

    # ---- reading ---------------------------------------------------------------------------
    def _tick(self) -> None:
        if not (self.display and self.is_on_screen) or self._read_failed:
            return
        if self.live is not None:
            self._show_steps()  # the running step's time goes on
        try:
            _, changed = self.project.changed_since(self.state.stamp if self.state else None)
        except (HajError, OSError):
            return
        if self.state is None or changed & {"store", "config"}:
            self._read()

    @haj_work(group="pipeline-read", failed=ReadFailed)
    def _read(self) -> PipelineState:
        """Everything again (a handful of rows), with the stamp this read sees."""
        new_stamp = self.project.changed_since(None)[0]
        try:
            pipeline = self.project.config().get("pipeline", {})
        except HajError:  # a broken config.toml: the Config tab says why; the runs still show
            pipeline = {}
        try:
            schedule: ScheduleStatus | None = self.project.workspace.schedules(self.project.name)[0]
        except HajError:
            schedule = None
        return PipelineState(
            history=self.project.pipeline_history(SHOWN_RUNS),
            notifications=self.project.notifications(SHOWN_NOTIFICATIONS),
            webhook=self.project.secrets().get(NOTIFY_URL, ""),
            schedule=schedule,
            steps=[str(s) for s in pipeline.get("steps", [])],
            configured=str(pipeline.get("schedule", "") or ""),
            stamp=new_stamp,
        )

    @on(ReadFailed)
    def _read_failed_once(self, message: ReadFailed) -> None:
        message.stop()
        self._read_failed = True

    # ---- keys (the Monitor tab's bindings call these) -------------------------------------
    @on(Button.Pressed, "#pipeline-run")
    def run_now(self) -> None:
        """R: the configured steps, now, with each step shown as it goes."""
        if self.running:
            return
        steps = self.state.steps if self.state else []
        self.running = True
        self._cancel = threading.Event()
        self.live = Live(steps)
        self.selected = None  # follow the new run
        self._busy()
        self._say(Text("● starting…", style="yellow"))
        self._show_steps()
        self.app.notify(
            f"Running the pipeline: {', '.join(steps) or 'its steps'} (x cancels).",
            title="Pipeline",
        )
        self._run(self._cancel)

    @on(Button.Pressed, "#pipeline-cancel")
    def cancel(self) -> None:
        """x: the running step stops; the run is recorded as cancelled."""
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._say(Text("cancelling…", style="magenta"))

    def edit_schedule(self) -> None:
        """o: into the schedule field (enter saves, escape leaves it)."""
        self.query_one("#pipeline-schedule", Input).focus()

    def focus_main(self) -> None:
        self.query_one("#pipeline-runs", DataTable).focus()

    def _busy(self) -> None:
        self.query_one("#pipeline-run", Button).disabled = self.running
        self.query_one("#pipeline-cancel", Button).disabled = not self.running
        self.refresh_bindings()

    def _say(self, text: Text | str) -> None:
        self.query_one("#pipeline-state", Label).update(text)

    @haj_work(group="pipeline-run", failed=PipelineFailed)
    def _run(self, cancel: threading.Event) -> PipelineRan | PipelineStopped | PipelineRefused:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="pipeline"))

        try:
            return PipelineRan(self.project.pipeline_run(on_event=relay, cancel=cancel))
        except ProjectBusy as exc:  # another run (or a training) holds the lock: not an error
            return PipelineRefused(exc.message)
        except Cancelled as exc:
            return PipelineStopped(exc.message)

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "pipeline":
            return
        message.stop()
        if self.live is None:
            return
        ended = self.live.event(message.event)
        event = message.event
        if isinstance(event, events.PipelineStep):
            if event.status == "started":
                self._say(Text(f"● {event.step}…", style="yellow"))
            elif event.status == "retrying":
                self._say(Text(f"↻ {event.step} {event.attempt}", style="yellow"))
        self._show_steps()
        if ended:
            self._read()  # the step's row is in the store: the runs table follows

    def _ended(self) -> None:
        """The run is over, however it ended (a notification says how)."""
        self._say("")
        self.running = False
        self.live = None
        self._cancel = None
        self._busy()
        self._read()

    @on(PipelineFailed)
    def _run_failed(self, message: PipelineFailed) -> None:
        message.stop()
        self._ended()  # the app said why; the runs table shows the failed run

    # ---- the schedule field ----------------------------------------------------------------
    @on(Input.Changed, "#pipeline-schedule")
    def _schedule_changed(self) -> None:
        self._show_preview()

    @on(Input.Submitted, "#pipeline-schedule")
    def _schedule_submitted(self) -> None:
        typed = self.query_one("#pipeline-schedule", Input).value
        if self.preview_error is not None:
            self.app.bell()  # the error is on screen, under the field
            return
        self.focus_main()  # out of the field: the keys work again
        if self._same_as_saved(typed):
            return
        self._say(Text("saving…", style="yellow"))
        self._save_schedule(typed)

    def _same_as_saved(self, typed: str) -> bool:
        saved = self.state.configured if self.state else ""
        try:
            return (
                self.project.preview_schedule(typed)[0] == self.project.preview_schedule(saved)[0]
            )
        except HajError:
            return False

    @haj_work(group="pipeline-schedule", failed=ScheduleFailed)
    def _save_schedule(self, typed: str) -> ScheduleSaved:
        status, notes = self.project.set_schedule(typed)
        return ScheduleSaved(status, notes)

    @on(ScheduleFailed)
    def _schedule_failed(self, message: ScheduleFailed) -> None:
        message.stop()
        self._say("")

    # ---- outcomes --------------------------------------------------------------------------
    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case PipelineState() as state:
                self._took(state)
            case PipelineRan(result=result):
                self.selected = result.id
                self.app.notify(
                    f"{result.summary} ({duration_text(result.seconds)})",
                    title=f"Pipeline {result.status}",
                    timeout=10,
                )
                self._ended()
            case PipelineStopped():
                self.app.notify("Pipeline cancelled.", severity="warning")
                self._ended()
            case PipelineRefused(message=said):
                self.app.notify(said, title="Pipeline not started", severity="warning")
                self._ended()
            case ScheduleSaved(status=status, notes=notes):
                # what the field holds now is saved: the next read may write it as stored
                self._loaded_schedule = self.query_one("#pipeline-schedule", Input).value
                said = status.schedule or "off"
                if status.explain:
                    said += f" ({status.explain})"
                self._say("")
                self.app.notify("; ".join([said, *notes]), title="Schedule saved", timeout=6)
                self._read()
            case _:
                return
        message.stop()

    def _took(self, state: PipelineState) -> None:
        field_ = self.query_one("#pipeline-schedule", Input)
        editing = field_.has_focus or (
            self._loaded_schedule is not None and field_.value != self._loaded_schedule
        )
        self.state = state
        if not editing:
            self._loaded_schedule = state.configured
            field_.value = state.configured  # Changed: the preview follows
        self._show()

    # ---- display ---------------------------------------------------------------------------
    def _show(self) -> None:
        if not self._ready:
            return
        self._fill_runs()
        self._show_steps()
        self._show_preview()
        self._fill_notes()

    def _run_of(self, run_id: str | None) -> PipelineResult | None:
        history = self.state.history if self.state else []
        return next((r for r in history if r.id == run_id), None)

    def _ours(self, run: PipelineResult) -> bool:
        """The run this view started and is still going."""
        return self.live is not None and run.status == "running" and run.pid == os.getpid()

    def _fill_runs(self) -> None:
        table = self.query_one("#pipeline-runs", FittingTable)
        runs = self.state.history if self.state else []
        titles = ["when", "trigger", "status", "time"]
        rows = [run_cells(run) for run in runs]
        widths = [column_width(t, [row[i] for row in rows]) for i, t in enumerate(titles)]
        shown = columns_that_fit(widths, table.size.width - 1, priority=[0, 2, 3, 1], required=2)
        table.clear(columns=True)
        for i in shown:
            table.add_column(titles[i], key=titles[i], width=widths[i])
        for run, row in zip(runs, rows, strict=True):
            table.add_row(*(row[i] for i in shown), key=run.id)
        if not runs:
            table.border_subtitle = ""
            return
        table.border_subtitle = hidden_columns(len(titles) - len(shown)) or (
            f"{len(runs)} run{'s' * (len(runs) != 1)}"
        )
        ids = [run.id for run in runs]
        if self.selected not in ids:
            self.selected = ids[0]
        table.move_cursor(row=ids.index(self.selected), animate=False)

    @on(DataTable.RowHighlighted, "#pipeline-runs")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is not None and key != self.selected:
            self.selected = key
            self._show_steps()

    def _show_steps(self) -> None:
        box = self.query_one("#pipeline-steps-box", VerticalScroll)
        steps = self.query_one("#pipeline-steps", Static)
        width = box.scrollable_content_region.width
        run = self._run_of(self.selected)
        if run is None and self.live is not None:  # started: not in the store yet
            box.border_title = "Steps of this run"
            steps.update(steps_table(live_rows(self.live), width))
            return
        if run is None:
            box.border_title = "Steps"
            steps.update(Text(NO_RUNS if self.state else "Reading…", style="italic"))
            return
        box.border_title = f"Steps: {short_time(run.started_at)} {run.trigger}"
        if self._ours(run):
            assert self.live is not None
            steps.update(steps_table(live_rows(self.live), width))
            return
        parts: list[RenderableType] = []
        if run.summary:
            parts.append(Text(f"{run.status}: {run.summary}", style=RUN_STYLE.get(run.status, "")))
        elif run.status == "running":
            parts.append(Text(f"running in pid {run.pid}", style="yellow"))
        parts.append(steps_table([step_row(step) for step in run.steps], width))
        steps.update(Group(*parts))

    def _show_preview(self) -> None:
        """The typed schedule in words and its next times (or its error, in place), and what
        runs the saved one. Nothing before the first read: the view may never be shown."""
        if not self._ready or self.state is None:
            return
        preview = self.query_one("#pipeline-preview", Static)
        typed = self.query_one("#pipeline-schedule", Input).value
        saved = self.state.configured
        self.preview_error = None
        try:
            text, words, times = self.project.preview_schedule(typed)
        except HajError as exc:
            self.preview_error = exc.message
            preview.update(Text(f"✗ {exc.message}", style="red"))
            return
        changed = not self._same_as_saved(typed)
        if not text:
            line = Text(NO_SCHEDULE, style="italic")
        else:
            line = Text.assemble(
                (words or text, "bold"),
                "  ·  next " + ", ".join(when_text(t) for t in times),
            )
        if changed:
            line.append("  ·  enter saves", style="bold yellow")
        lines = [line]
        if not changed and saved and self.state.schedule is not None:
            lines.append(runs_by_text(self.state.schedule))
        preview.update(Text("\n").join(line for line in lines if line.plain))

    def _fill_notes(self) -> None:
        webhook = self.query_one("#pipeline-webhook", Static)
        table = self.query_one("#pipeline-notes", FittingTable)
        table.clear(columns=True)
        if self.state is None:
            webhook.update("")
            return
        notes = self.state.notifications
        said = webhook_text(self.state.webhook, self.project.name)
        if not notes and self.state.webhook:
            said.append("\n" + NO_NOTIFICATIONS, style="italic")
        webhook.update(said)
        box = self.query_one("#pipeline-notes-box")
        box.border_subtitle = f"last {len(notes)}" if notes else "none yet"
        table.display = bool(notes)
        if not notes:
            return
        titles = ["when", "event", "status", "tries", "error"]
        rows = []
        for note in notes:
            sent = note.get("status") == "sent"
            rows.append([
                Text(short_time(note.get("created_at"))),
                Text(str(note.get("event", ""))),
                Text(str(note.get("status", "")), style="green" if sent else "bold red"),
                Text(str(note.get("attempts", "")), justify="right"),
                Text(str(note.get("error") or ""), style="red"),
            ])  # fmt: skip
        widths = [column_width(t, [row[i] for row in rows]) for i, t in enumerate(titles)]
        room = table.size.width - 1
        shown = columns_that_fit(widths[:4], room, priority=[1, 2, 0, 3], required=2)
        left = room - sum(widths[i] + 2 for i in shown) - 2
        if any(row[4].plain for row in rows) and left >= 10:
            shown.append(4)
            widths[4] = min(widths[4], left)  # the error, cut at the table's edge
            for row in rows:
                row[4].truncate(widths[4], overflow="ellipsis")
        for i in shown:
            table.add_column(titles[i], key=titles[i], width=widths[i])
        for row in rows:
            table.add_row(*(row[i] for i in shown))
