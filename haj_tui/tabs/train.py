"""The Train tab: pick models, start and cancel training, and watch each model's row fill in.

Training runs in a runner process driven from a thread worker; its events arrive here as
EngineEvent messages (progress ones merge in the queue). Cancel sets the worker's
threading.Event, which the engine forwards to the runner: it stops within 2 s and records the
unfinished runs as cancelled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar, Select, SelectionList
from textual.widgets.selection_list import Selection

from engine import events
from engine.errors import Cancelled, HajError
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.formats import STATUS_STYLE, seconds
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI

CURRENT_DATA = "current data"


@dataclass(frozen=True)
class Catalog:
    """What the project's type offers: its prediction type, built-in models and metrics."""

    prediction: str
    models: list[str]
    metrics: list[str]

    @classmethod
    def of(cls, project: ProjectAPI) -> Catalog:
        """Read from config.toml (a HajError when it is broken); model.py is not run."""
        prediction = str(project.config()["project"]["prediction"])
        return cls(prediction, project.models(project_models=False), project.metrics())


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


class TrainFailed(WorkFailed):
    """Training failed (the app has reported why)."""


class ExtrasFailed(WorkFailed):
    """model.py could not be read: the built-in models stay."""


class TrainTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Train the checked models; a live table of results and the training log."""

    BINDINGS = [
        Binding("x", "cancel", "Cancel"),
        Binding("a", "toggle_all", "All/none"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        try:
            self.catalog = Catalog.of(project)
        except HajError:  # a broken config.toml: refresh_data says so
            self.catalog = Catalog("", [], [])
        self._cancel: threading.Event | None = None
        self._extras: list[str] = []
        self._ready = False

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
                results = DataTable(id="train-results", cursor_type="row", zebra_stripes=True)
                results.border_title = "Results"
                yield results
                log = LogView(id="train-log")
                log.min_width = 20  # wrap at the panel width (RichLog defaults to 78 columns)
                log.border_title = "Log"
                yield log

    def on_mount(self) -> None:
        self._reset_results(self.catalog.models)
        self.query_one("#train-progress", ProgressBar).update(total=1, progress=0)
        self._set_state("Check models, then press t to train.")
        self._ready = True
        self.refresh_data()

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
            self._reset_results(catalog.models)
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

    def _reset_results(self, names: list[str]) -> DataTable:
        """An empty results table with fixed widths: rows fill in, the columns must not jump."""
        table = self.query_one("#train-results", DataTable)
        table.clear(columns=True)
        # room for the run number (MODEL-#), capped so the metrics stay in view at 100 columns
        width = min(max((len(name) for name in names), default=5) + 3, 24)
        table.add_column("model", key="model", width=width)
        table.add_column("status", key="status", width=9)
        for metric in self.catalog.metrics:
            table.add_column(metric, key=metric, width=max(6, len(metric)))
        table.add_column("time", key="time", width=7)
        return table

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
        return self._cancel is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self._busy()
        if action in ("train", "toggle_all"):
            return not self._busy()
        return True

    @on(Button.Pressed, "#train-start")
    def action_train(self) -> None:
        if self._busy():
            return
        models = self.query_one("#train-models", SelectionList)
        checked = set(models.selected)
        values = [models.get_option_at_index(i).value for i in range(models.option_count)]
        chosen = [name for name in values if name in checked]  # in the list's order
        if not chosen:
            self.app.notify("Check at least one model (space toggles, a checks all).")
            return
        self._cancel = threading.Event()
        self._set_busy(True)
        table = self._reset_results(chosen)
        for name in chosen:
            table.add_row(name, Text("queued", style=STATUS_STYLE["queued"]), key=name)
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
        table.focus()  # so x (cancel) works whatever had focus before

    @on(Button.Pressed, "#train-cancel")
    def action_cancel(self) -> None:
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
        if isinstance(event, events.RunStarted):
            self._set_row(event.model, "running", label=event.label)
        elif isinstance(event, events.RunFinished):
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

    def _set_row(
        self,
        model: str,
        status: str,
        label: str | None = None,
        metrics: dict[str, float] | None = None,
        duration: float | None = None,
    ) -> None:
        table = self.query_one("#train-results", DataTable)
        if model not in table.rows:  # a model.py model the checklist had not listed yet
            table.add_row(model, key=model)
        if label:
            table.update_cell(model, "model", label)
        table.update_cell(model, "status", Text(status, style=STATUS_STYLE.get(status, "")))
        for key, value in (metrics or {}).items():
            if key in self.catalog.metrics:
                table.update_cell(model, key, f"{value:.4f}")
        if duration is not None:
            table.update_cell(model, "time", seconds(duration))

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
                self._set_state("Cancelled: unfinished runs were recorded as cancelled.")
                self.query_one("#train-log", LogView).write_line(said, "magenta")
            case Trained(result=result):
                message.stop()
                self._set_busy(False)
                runs = result.get("runs", [])
                done = sum(1 for run in runs if run.get("status") == "finished")
                self._set_state(f"Done: {done} finished, {len(runs) - done} failed (Runs tab: 5)")

    @on(ExtrasFailed)
    def _extras_failed(self, message: ExtrasFailed) -> None:
        message.stop()
        self.query_one("#train-log", LogView).write_line(str(message.error), "bold red")

    @on(TrainFailed)
    def _work_failed(self, message: TrainFailed) -> None:
        message.stop()
        self._set_busy(False)
        self._mark_unfinished("failed")
        self._set_state(str(message.error).splitlines()[0][:90], error=True)
        self.query_one("#train-log", LogView).write_line(str(message.error), "bold red")

    def _mark_unfinished(self, status: str) -> None:
        table = self.query_one("#train-results", DataTable)
        for key in list(table.rows):
            current = str(table.get_cell(key, "status"))
            if current in ("queued", "running"):
                table.update_cell(key, "status", Text(status, style=STATUS_STYLE[status]))

    def _set_busy(self, busy: bool) -> None:
        if not busy:
            self._cancel = None
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
