"""The Train tab: pick models, start and cancel training, and watch each model's row fill in.

Training runs in a runner process driven from a thread worker; its events arrive here as
EngineEvent messages (progress ones merge in the queue). Cancel sets the worker's
threading.Event, which the engine forwards to the runner: it stops within 2 s and records the
unfinished runs as cancelled.

A row is queued until a worker takes it (RunStarted), then running with its elapsed time and the
time it is expected to take (from its earlier runs); finished rows are sorted by the project's
metric, best first. What the tab shows does not depend on this session: on mount and whenever
the store or logs/train.log change (`changed_since`, polled every second) it reads the last
session (`last_session()`) and the log (`train_log()`), so a training started by `haj train` in a
shell, or before the app was restarted, shows here too. Log lines carry a short prefix
(`05:31:49 knn-1 ...`); the file keeps the full one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar, Select, SelectionList
from textual.widgets.selection_list import Selection

from engine import events
from engine.api import check_metric, duration_text, elapsed_since, fit, metric_text, remaining
from engine.errors import Cancelled, HajError
from haj_tui import hints
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.tabs.tune import TunePanel
from haj_tui.widgets.formats import STATUS_STYLE, FittingTable, columns_that_fit
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI, Stamp, TrainSession

CURRENT_DATA = "current data"
POLL_SECONDS = 1.0  # elapsed times tick, and the store and train.log are checked, every second
NARROW = 100  # below this many columns the checklist gives the results room
NO_DATA = "No data yet: press r to retrieve it (Data tab, 3), then t to train."
# the order of rows: finished (sorted by the metric), then running, queued, and the rest
_STATUS_ORDER = {"finished": 0, "running": 1, "queued": 2, "failed": 3, "cancelled": 4}


@dataclass(frozen=True)
class Catalog:
    """What the project's type offers: its prediction type, built-in models and metrics, and
    the metric results are sorted by (config.toml's) with its direction."""

    prediction: str
    models: list[str]
    metrics: list[str]
    metric: str = ""
    higher_is_better: bool = True

    @classmethod
    def of(cls, project: ProjectAPI) -> Catalog:
        """Read from config.toml (a HajError when it is broken); model.py is not run."""
        config = project.config()
        prediction = str(config["project"]["prediction"])
        metric = check_metric(str(config["training"]["metric"]), prediction)
        return cls(
            prediction,
            project.models(project_models=False),
            project.metrics(),
            metric.name,
            metric.higher_is_better,
        )


@dataclass
class Row:
    """One model's line in the results: what the table shows of it."""

    model: str
    label: str
    status: str = "queued"
    metrics: dict[str, float] = field(default_factory=dict)
    duration: float | None = None  # when it ended
    started: float | None = None  # time.time() when a worker took it
    estimate: float | None = None  # seconds its earlier runs took

    def elapsed(self, now: float) -> float | None:
        if self.duration is not None:
            return self.duration
        return None if self.started is None else max(0.0, now - self.started)


@dataclass(frozen=True)
class Extras:
    """The models model.py adds (read by a runner process)."""

    names: list[str]


@dataclass(frozen=True)
class Trained:
    """Training ended: the engine's result (`runs`)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class TrainCancelled:
    """Training was stopped by the user (x)."""

    message: str


@dataclass(frozen=True)
class Retrained:
    """A gated retrain ended (engine.retrain): its decision and why."""

    result: Any


class TrainFailed(WorkFailed):
    """Training failed (the app has reported why)."""


class ExtrasFailed(WorkFailed):
    """model.py could not be read: the built-in models stay."""


class TrainTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Train the checked models; a live table of results and the training log."""

    BINDINGS = [
        Binding("x", "cancel", "Cancel"),
        Binding("a", "toggle_all", "All/none"),
        Binding("R", "retrain", "Retrain"),
        # the Tune mode (haj_tui/tabs/tune.py): T shows it, then T tunes; u (its Training
        # button) goes back to the training view
        Binding("T", "tune", "Tune"),
        Binding("u", "train_mode", "Training view", show=False),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self._said_done: str | None = None  # the end of this tab's own training, kept on show
        try:
            self.catalog = Catalog.of(project)
        except HajError:  # a broken config.toml: refresh_data says so
            self.catalog = Catalog("", [], [])
        self._cancel: threading.Event | None = None
        self._extras: list[str] = []
        self._ready = False
        self._rows: dict[str, Row] = {}  # model -> its row, in the order they were queued
        self._stamp: Stamp | None = None  # the project's files as last read (changed_since)
        self._log_offset: int | None = None  # where train.log was read up to
        self._outside = False  # the rows shown are a session of another process, still live
        self._pending_estimates: dict[str, float] = {}  # model -> seconds, for our session
        self._shown: list[str] = []  # the results' columns that fit (keys)
        self._engine_started = False  # the engine queued this session's runs (RunQueued)
        self._model_width = 24
        self._backend = ""  # where this tab's training runs (events.TrainBackend)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Train (t)", id="train-start", compact=True, variant="primary")
            yield Button("Cancel (x)", id="train-cancel", compact=True, disabled=True)
            yield Select(
                [(CURRENT_DATA, CURRENT_DATA)],
                value=CURRENT_DATA,
                allow_blank=False,
                id="train-data",
                compact=True,
                tooltip="The data to train on: the current version (as `haj train`), or one "
                "you pick (as `haj train --data V`)",
            )
            yield ProgressBar(id="train-progress", show_eta=False)
            yield Label("", id="train-state", classes="tab-state")
        with Horizontal(id="train-body"):
            models: SelectionList[str] = SelectionList(
                *((name, name, True) for name in self.catalog.models),
                id="train-models",
            )
            models.border_title = "Models"
            models.border_subtitle = "space: toggle  a: all"
            yield models
            with Vertical(id="train-right"):
                results = FittingTable(
                    id="train-results", cursor_type="row", zebra_stripes=True, refit=self._refit
                )
                results.border_title = "Results"
                yield results
                log = LogView(id="train-log")
                log.border_title = "Log"
                yield log
        yield TunePanel(self.project, id="tune-panel")

    def on_mount(self) -> None:
        self._reset_results()
        self.query_one("#train-progress", ProgressBar).update(total=1, progress=0)
        self._set_state("Check models, then press t to train.")
        lines, self._log_offset = self.project.train_log(None)
        self.query_one("#train-log", LogView).write_lines(lines)
        self._ready = True
        self.refresh_data()
        self._load_session()
        self.set_interval(POLL_SECONDS, self._tick, name="train-tick")

    def on_resize(self) -> None:
        """Narrow terminals: the checklist shrinks so the results keep their columns."""
        models = self.query_one("#train-models", SelectionList)
        models.styles.width = 26 if self.size.width < NARROW else None

    def refresh_data(self) -> None:
        """Read model.py's models (again: the Code tab may have changed them), not mid-training."""
        if not self._ready:  # shown before its widgets are mounted: on_mount will read
            return
        if self._busy():
            return
        try:
            catalog = Catalog.of(self.project)
        except HajError as exc:
            self.app.notify(exc.message, title="Error", severity="error")
            return
        self._fill_data_choices()
        if catalog != self.catalog:  # the type changed on the Config tab: another catalog
            self.catalog = catalog
            models = self.query_one("#train-models", SelectionList)
            models.clear_options()
            models.add_options([(name, name, True) for name in catalog.models])
            self._extras = []
            self._reset_results()
            self._load_session()
        self._load_extras()

    def _fill_data_choices(self) -> None:
        """The data selector: current (what `haj train` takes), then every version, newest
        first. A version the user picked stays picked while it exists."""
        try:
            versions = self.project.versions()
        except HajError:
            versions = []
        select = self.query_one("#train-data", Select)
        picked = select.value
        choices = [(CURRENT_DATA, CURRENT_DATA)]
        for version in sorted(versions, key=lambda v: v["created_at"], reverse=True):
            mark = " ✓" if version.get("current") else ""
            choices.append((f"{version['id']}{mark}", version["id"]))
        select.set_options(choices)
        ids = {value for _, value in choices}
        select.value = picked if picked in ids else CURRENT_DATA

    def chosen_data(self) -> str | None:
        """The version to train on, or None for the current one."""
        value = self.query_one("#train-data", Select).value
        return None if value in (CURRENT_DATA, Select.BLANK) else str(value)

    def _reset_results(self) -> DataTable:
        """An empty results table with fixed widths: rows fill in, the columns must not jump.
        The model, its status and the sorting metric always show, then the times and the other
        metrics while they fit whole (a narrow panel cuts the model's name, never a number)."""
        table = self.query_one("#train-results", DataTable)
        table.clear(columns=True)
        # room for the run number (MODEL-#), capped so the metrics stay in view at 100 columns
        names = self.catalog.models + self._extras + [row.model for row in self._rows.values()]
        model_width = min(max((len(name) for name in names), default=5) + 3, 24)
        metrics = self._metric_order()
        specs = [
            ("model", "model", model_width),
            ("status", "status", 9),
            *((m, self._metric_title(m), self._width(m)) for m in metrics[:1]),
            ("time", "time", 6),
            ("expect", "expect", 7),
            *((m, m, self._width(m)) for m in metrics[1:]),
        ]
        room = table.size.width - 3
        required = 3 if metrics else 2
        if room > 0:
            others = sum(width + 2 for _, _, width in specs[1:required])
            # and leave the elapsed time its place beside them
            model_width = max(10, min(model_width, room - others - 2 - 8))
            specs[0] = ("model", "model", model_width)
        shown = columns_that_fit([w for _, _, w in specs], room, required=required)
        self._model_width = model_width
        self._shown = [specs[i][0] for i in shown]
        for index in shown:
            key, title, width = specs[index]
            table.add_column(title, key=key, width=width)
        return table

    def _refit(self) -> None:
        """The table's width changed: choose its columns again."""
        self._reset_results()
        self._render_rows()

    def _metric_order(self) -> list[str]:
        first = self.catalog.metric
        return [m for m in self.catalog.metrics if m == first] + [
            m for m in self.catalog.metrics if m != first
        ]

    def _metric_title(self, metric: str) -> str:
        return f"{metric} {'↓' if self.catalog.higher_is_better else '↑'}"

    def _width(self, metric: str) -> int:
        title = self._metric_title(metric) if metric == self.catalog.metric else metric
        return max(6, len(title))

    # ---- the rows ----------------------------------------------------------------------------
    def _sort_key(self, row: Row) -> tuple[Any, ...]:
        value = row.metrics.get(self.catalog.metric)
        score = 0.0
        if row.status == "finished" and value is not None:
            score = -value if self.catalog.higher_is_better else value
        missing = row.status == "finished" and value is None
        return (_STATUS_ORDER.get(row.status, 5), missing, score)

    def _render_rows(self) -> None:
        """The rows in order (finished by the metric, best first; then running, queued...),
        keeping the cursor on the same model."""
        table = self.query_one("#train-results", DataTable)
        selected = None
        if table.row_count:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        now = time.time()
        order = sorted(self._rows.values(), key=self._sort_key)
        for row in order:
            table.add_row(*self._cells(row, now), key=row.model)
        keys = [row.model for row in order]
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        self._show_counts()

    def _cells(self, row: Row, now: float) -> list[Any]:
        label = row.label
        if len(label) > self._model_width:
            label = label[: self._model_width - 1] + "…"
        cells: dict[str, Any] = {
            "model": label,
            "status": Text(row.status, style=STATUS_STYLE.get(row.status, "")),
            "time": Text(fit(duration_text(row.elapsed(now)), 6), justify="right"),
            "expect": "",
        }
        if row.estimate is not None and row.status in ("queued", "running"):
            expect = fit("~" + duration_text(row.estimate), 7)
            cells["expect"] = Text(expect, style="dim", justify="right")
        for metric in self._metric_order():
            value = row.metrics.get(metric)
            text = "" if value is None else fit(metric_text(metric, value), self._width(metric))
            cells[metric] = Text(text, justify="right")
        return [cells[key] for key in self._shown]

    def _tick(self) -> None:
        """Every second: running rows' elapsed times, and what other processes wrote."""
        if not self._ready:
            return
        now = time.time()
        table = self.query_one("#train-results", DataTable)
        for row in self._rows.values():
            if row.status == "running" and row.model in table.rows and "time" in self._shown:
                elapsed = duration_text(row.elapsed(now))
                table.update_cell(row.model, "time", Text(fit(elapsed, 6), justify="right"))
        if self._rows and any(r.status in ("queued", "running") for r in self._rows.values()):
            self._show_counts()
        self._poll()

    def _poll(self) -> None:
        try:
            stamp, changed = self.project.changed_since(self._stamp)
        except HajError:
            return
        first = self._stamp is None
        self._stamp = stamp
        if first or self._busy():  # our own training: its events say it all
            return
        if "log" in changed:
            lines, self._log_offset = self.project.train_log(self._log_offset)
            self.query_one("#train-log", LogView).write_lines(lines)
        if "store" in changed or "log" in changed:
            self._load_session()

    def _load_session(self) -> None:
        """Show the last training session from the store (any process's), unless ours runs."""
        if self._busy():
            return
        try:
            session = self.project.last_session()
        except HajError:
            return
        if session is None:
            self._no_session()
            return
        self._show_session(session)

    def _no_session(self) -> None:
        self._rows = {}
        self._render_rows()
        try:
            has_data = bool(self.project.versions())
        except HajError:
            return
        self._set_state(
            "Check models, then press t to train." if has_data else NO_DATA, error=False
        )

    def _show_session(self, session: TrainSession) -> None:
        now = time.time()
        unfinished = [run.model for run in session.runs if run.status in ("queued", "running")]
        estimates = self._estimates(unfinished, session.data_version)
        self._rows = {}
        for run in session.runs:
            elapsed = elapsed_since(run.started)
            self._rows[run.model] = Row(
                run.model,
                run.label,
                run.status,
                dict(run.metrics),
                run.duration_seconds,
                None if elapsed is None else now - elapsed,
                estimates.get(run.model),
            )
        self._outside = session.live
        self._render_rows()
        if not session.live and self._said_done:
            self._set_state(self._said_done)  # this tab's own session: its summary stays
        elif not session.live:
            done = sum(1 for run in session.runs if run.status == "finished")
            other = len(session.runs) - done
            self._set_state(
                f"Last training: {done} finished"
                + (f", {other} failed or cancelled" if other else "")
                + f" on {session.data_version or 'unrecorded data'}. Press t to train again."
            )
        bar = self.query_one("#train-progress", ProgressBar)
        finished = sum(1 for run in session.runs if run.status not in ("queued", "running"))
        bar.update(total=max(1, len(session.runs)), progress=finished)

    def _estimates(self, models: list[str], data_version: str | None) -> dict[str, float]:
        if not models:
            return {}
        try:
            return self.project.train_estimates(models, data_version)
        except HajError:
            return {}

    def _show_counts(self) -> None:
        """While a session runs: how many run, wait and are done, and about how long is left."""
        rows = list(self._rows.values())
        running = [row for row in rows if row.status == "running"]
        queued = [row for row in rows if row.status == "queued"]
        if not running and not queued:
            return
        now = time.time()
        done = len(rows) - len(running) - len(queued)
        left = remaining(
            [(row.estimate, row.elapsed(now) or 0.0) for row in running],
            [row.estimate for row in queued],
            max(1, len(running)),
        )
        who = "" if not self._outside or self._busy() else " (by another process)"
        text = f"{len(running)} running, {len(queued)} queued, {done}/{len(rows)} done{who}"
        if left is not None:
            text += f"; about {duration_text(left)} left"
        if self._backend and self._busy():
            text += f" · {self._backend}"
        if self._cancel is not None and self._cancel.is_set():
            text = "Cancelling…"
        self._set_state(text)

    def _set_row(
        self,
        model: str,
        status: str,
        label: str | None = None,
        metrics: dict[str, float] | None = None,
        duration: float | None = None,
    ) -> None:
        row = self._rows.get(model)
        if row is None:  # a model the session had not queued before (model.py's, say)
            row = self._rows[model] = Row(model, label or model)
        if label:
            row.label = label
        row.status = status
        if status == "running" and row.started is None:
            row.started = time.time()
        if metrics:
            row.metrics = {k: v for k, v in metrics.items() if k in self.catalog.metrics}
        if duration is not None:
            row.duration = duration
        self._render_rows()

    # ---- the checklist -----------------------------------------------------------------------
    @haj_work(group="train-models", failed=ExtrasFailed)
    def _load_extras(self) -> Extras:
        """model.py is user code: read by a runner process; a failure keeps the built-ins."""
        builtin = set(self.catalog.models)
        return Extras([name for name in self.project.models() if name not in builtin])

    def _set_extras(self, names: list[str]) -> None:
        """Show model.py's models (italic) after the built-ins; drop those it no longer has."""
        models = self.query_one("#train-models", SelectionList)
        for gone in [name for name in self._extras if name not in names]:
            models.remove_option(f"extra-{gone}")
        new = [name for name in names if name not in self._extras]
        self._extras = list(names)
        # checked like the others while every model is checked (the default: train them all);
        # unchecked once the user has narrowed the choice, which a late arrival must not undo
        checked = len(models.selected) == models.option_count
        if new:
            models.add_options(
                [
                    Selection(Text(name, style="italic"), name, checked, id=f"extra-{name}")
                    for name in new
                ]
            )
            self.query_one("#train-log", LogView).write_line(
                f"model.py adds: {', '.join(new)} (in italics)", "dim"
            )

    def action_toggle_all(self) -> None:
        models = self.query_one("#train-models", SelectionList)
        if len(models.selected) == models.option_count:
            models.deselect_all()
        else:
            models.select_all()

    # ---- training ----------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._cancel is not None or self._tuning()

    def _tuning(self) -> bool:
        panel = self.query("#tune-panel").first(TunePanel) if self.is_mounted else None
        return panel is not None and panel.busy

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tune_mode = self.has_class("tune-mode")
        if action == "train_mode":
            return tune_mode and not self._busy()
        if action == "tune":
            return not self._busy()
        if action in ("toggle_all", "retrain") and tune_mode:  # the training view's keys
            return False
        if action == "cancel":
            return self._busy()
        if action in ("train", "toggle_all"):
            return not self._busy()
        return True

    @on(Button.Pressed, "#train-start")
    def action_train(self) -> None:
        if self._busy():
            return
        if self.has_class("tune-mode"):  # t from anywhere: back to the training view
            self.action_train_mode()
        models = self.query_one("#train-models", SelectionList)
        checked = set(models.selected)
        values = [models.get_option_at_index(i).value for i in range(models.option_count)]
        chosen = [name for name in values if name in checked]  # in the list's order
        if not chosen:
            self.app.notify("Check at least one model (space toggles, a checks all).")
            return
        self._cancel = threading.Event()
        self._outside = False
        self._said_done = None
        self._set_busy(True)
        # a row per chosen model at once, queued; the engine's events fill them in. If it
        # cannot start (no data), they go: not a "failed" row per model for one reason
        self._pending_estimates = self._estimates(chosen, None)
        self._engine_started = False
        self._backend = ""
        self._rows = {
            name: Row(name, name, estimate=self._pending_estimates.get(name)) for name in chosen
        }
        self._render_rows()
        bar = self.query_one("#train-progress", ProgressBar)
        bar.update(total=len(chosen), progress=0)
        # Everything checked means "all", model.py's models included even if their names are
        # still being read (t from another tab): the engine's own default.
        everything = len(checked) == models.option_count
        self._set_state(
            "Training every model…" if everything else f"Training {len(chosen)} model(s)…"
        )
        self.query_one("#train-log", LogView).write_line(
            f"— train {self.project.name}: "
            + ("every model of the catalog and model.py" if everything else ", ".join(chosen)),
            "bold",
        )
        self._train(None if everything else chosen, self._cancel, self.chosen_data())
        self.query_one("#train-results", DataTable).focus()  # so x (cancel) works from there

    def action_retrain(self) -> None:
        """Gated retraining (R): retrieve; on new data process and train the checked models,
        score the best of them and the champion on the same test rows, crown the challenger
        only if it is better. Each step and the decision are shown as they happen."""
        if self._busy():
            return
        from engine.api import RetrainOptions

        models = self.query_one("#train-models", SelectionList)
        chosen = [str(v) for v in models.selected]
        everything = len(chosen) == models.option_count
        options = RetrainOptions(models=None if everything else chosen)
        self._cancel = threading.Event()
        self._outside = False
        self._set_busy(True)
        self._rows = {}
        self._render_rows()
        self._set_state("Retraining: retrieve, then train and compare if the data is new…")
        self.query_one("#train-log", LogView).write_line(
            f"— retrain {self.project.name}: "
            + ("every model" if everything else ", ".join(chosen)),
            "bold",
        )
        self._retrain(options, self._cancel)
        self.query_one("#train-results", DataTable).focus()

    @haj_work(group="train", failed=TrainFailed)
    def _retrain(self, options: Any, cancel: threading.Event) -> Retrained | TrainCancelled:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="train"))

        try:
            return Retrained(self.project.retrain(options, on_event=relay, cancel=cancel))
        except Cancelled as exc:
            return TrainCancelled(str(exc))

    def action_tune_mode(self) -> None:
        """The Tune mode (one model's parameters searched with Optuna), with the models of the
        checklist, the best of the last training chosen first."""
        best = min(
            (r for r in self._rows.values() if r.status == "finished"),
            key=self._sort_key,
            default=None,
        )
        panel = self.query_one("#tune-panel", TunePanel)
        panel.set_models(self.catalog.models + self._extras, best.model if best else None)
        self.add_class("tune-mode")
        panel.query_one("#tune-table").focus()
        self.refresh_bindings()

    def action_train_mode(self) -> None:
        self.remove_class("tune-mode")
        self.query_one("#train-models").focus()
        self.refresh_bindings()

    def action_tune(self) -> None:
        """T: the Tune mode; there, tune the chosen model."""
        if self._busy():
            return
        if not self.has_class("tune-mode"):
            self.action_tune_mode()
        else:
            self.query_one("#tune-panel", TunePanel).start()

    @on(Button.Pressed, "#train-cancel")
    def action_cancel(self) -> None:
        if self._tuning():
            self.query_one("#tune-panel", TunePanel).cancel()
            return
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._set_state("Cancelling…")

    @haj_work(group="train", failed=TrainFailed)
    def _train(
        self, models: list[str] | None, cancel: threading.Event, version: str | None
    ) -> Trained | TrainCancelled:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="train"))

        try:
            return Trained(self.project.train(models, data=version, on_event=relay, cancel=cancel))
        except Cancelled as exc:  # the user asked for it: not an error to report
            return TrainCancelled(str(exc))

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "train":
            return
        message.stop()
        event = message.event
        if isinstance(event, events.Progress):
            self.query_one("#train-progress", ProgressBar).update(
                total=event.total, progress=event.done
            )
            return
        if isinstance(event, events.RetrainStep):
            mark = {"done": "✓", "skipped": "-", "failed": "✗", "cancelled": "✗"}
            if event.status == "started":
                self._set_state(f"Retraining: {event.step}…")
                return
            took = f" {event.seconds:.1f}s" if event.seconds is not None else ""
            detail = f": {event.detail}" if event.detail else ""
            self.query_one("#train-log", LogView).write_line(
                f"retrain {event.step} {mark.get(event.status, event.status)}{took}{detail}",
                "red" if event.status in ("failed", "cancelled") else "",
            )
            return
        if isinstance(event, events.TrainBackend):
            self._backend = (
                f"local: {event.workers} worker process(es)"
                if event.backend == "local"
                else f"Dask {event.address}: {event.workers} worker(s), {event.threads} thread(s)"
            )
            self._show_counts()
            return
        if isinstance(event, events.RunQueued):
            self._engine_started = True
            self._set_row(event.model, "queued", label=event.label)
            row = self._rows[event.model]
            row.estimate = self._pending_estimates.get(event.model)
            return
        if isinstance(event, events.RunStarted):
            self._set_row(event.model, "running", label=event.label)
            return
        if isinstance(event, events.RunFinished):
            self._set_row(
                event.model,
                event.status,
                label=event.label,
                metrics=event.metrics,
                duration=event.duration_seconds,
            )
            if event.status != "finished":
                self.query_one("#train-log", LogView).write_event(event)
            return
        self.query_one("#train-log", LogView).write_event(event)

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Extras(names=names):
                message.stop()
                self._set_extras(names)
            case TrainCancelled(message=said):
                message.stop()
                self._set_busy(False)
                self._mark_unfinished("cancelled")
                self._said_done = "Cancelled: unfinished runs were recorded as cancelled."
                self._set_state(self._said_done)  # kept when the store's change is read next
                self.query_one("#train-log", LogView).write_line(said, "magenta")
            case Retrained(result=result):
                message.stop()
                self._set_busy(False)
                decision = result.decision or result.status
                self._said_done = f"Retrain {decision}: {result.reason}"
                self._set_state(self._said_done)
                self.query_one("#train-log", LogView).write_line(
                    f"retrain {decision}: {result.reason}", "bold"
                )
                self.app.notify(f"Retrain {decision}: {result.reason}", timeout=10)
            case Trained(result=result):
                message.stop()
                self._set_busy(False)
                runs = result.get("runs", [])
                done = sum(1 for run in runs if run.get("status") == "finished")
                best = self._best()
                self._said_done = (
                    f"Done: {done} finished, {len(runs) - done} failed"
                    + (f"; best {best}" if best else "")
                    + " (Runs tab: 5)"
                )
                self._set_state(self._said_done)

    def _best(self) -> str:
        finished = [
            row
            for row in self._rows.values()
            if row.status == "finished" and self.catalog.metric in row.metrics
        ]
        if not finished:
            return ""
        row = min(finished, key=self._sort_key)
        value = metric_text(self.catalog.metric, row.metrics[self.catalog.metric])
        return f"{row.label} {self.catalog.metric}={value}"

    @on(ExtrasFailed)
    def _extras_failed(self, message: ExtrasFailed) -> None:
        message.stop()
        self.query_one("#train-log", LogView).write_line(str(message.error), "bold red")

    @on(TrainFailed)
    def _work_failed(self, message: TrainFailed) -> None:
        """The app has notified why; the state line says it once, with the key to press (no
        data: r), and only the runs that were queued are marked failed."""
        message.stop()
        self._set_busy(False)
        if self._engine_started:
            self._mark_unfinished("failed")
        else:  # nothing was queued: the reason is said once, below
            self._rows = {}
            self._render_rows()
        error = message.error
        said = hints.render(error) if isinstance(error, HajError) else str(error)
        self._set_state(said.splitlines()[0][:120], error=True)
        self.query_one("#train-log", LogView).write_line(str(error), "bold red")

    def _mark_unfinished(self, status: str) -> None:
        for row in self._rows.values():
            if row.status in ("queued", "running"):
                row.status = status
        self._render_rows()

    def _set_busy(self, busy: bool) -> None:
        if not busy:
            self._cancel = None
            # train.log holds what the events showed: read on from its end
            _, self._log_offset = self.project.train_log(self._log_offset)
            self._load_extras()  # skipped if training started before the tab was first shown
            self._fill_data_choices()  # training may have processed a new version
        self.query_one("#train-start", Button).disabled = busy
        self.query_one("#train-cancel", Button).disabled = not busy
        self.query_one("#train-models", SelectionList).disabled = busy
        self.query_one("#train-data", Select).disabled = busy
        self.refresh_bindings()

    def _set_state(self, text: str, error: bool = False) -> None:
        label = self.query_one("#train-state", Label)
        label.update(Text(text))
        label.set_class(error, "error")
