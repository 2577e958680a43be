"""The Train tab: pick models, start and cancel training, and watch each model's row fill in.

Training runs in a runner process driven from a thread worker; its events arrive here as
EngineEvent messages (progress ones merge in the queue). Cancel sets the worker's
threading.Event, which the engine forwards to the runner: it stops within 2 s and records the
unfinished runs as cancelled.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar, Select, SelectionList
from textual.widgets.selection_list import Selection

from engine import catalog, data, events, training
from engine.errors import Cancelled, HajError
from engine.metrics import metrics_for
from engine.project import Project
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.formats import STATUS_STYLE, seconds
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors


def _prediction(project: Project) -> tuple[str | None, str | None]:
    """(the project's prediction type, None) or (None, why) when config.toml is broken."""
    try:
        return str(project.read_config()["project"]["prediction"]), None
    except HajError as exc:
        return None, exc.message


CURRENT_DATA = "current data"


class TrainTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Train the checked models; a live table of results and the training log."""

    BINDINGS = [
        Binding("x", "cancel", "Cancel"),
        Binding("a", "toggle_all", "All/none"),
    ]

    def __init__(self, root: Path, project: Project) -> None:
        super().__init__()
        self.root = root
        self.project = project
        self.prediction = _prediction(project)[0] or "classification"
        self.metrics = metrics_for(self.prediction)
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
                *((name, name, True) for name in catalog.builtin_names(self.prediction)),
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
        self._reset_results(catalog.builtin_names(self.prediction))
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
        prediction, error = _prediction(self.project)
        if prediction is None:
            self.app.notify(str(error), title="Error", severity="error")
            return
        self._fill_data_choices()
        if prediction != self.prediction:  # changed on the Config tab: another catalog
            self.prediction = prediction
            self.metrics = metrics_for(prediction)
            models = self.query_one("#train-models", SelectionList)
            models.clear_options()
            models.add_options([(name, name, True) for name in catalog.builtin_names(prediction)])
            self._extras = []
            self._reset_results(catalog.builtin_names(prediction))
        self._load_extras()

    def _fill_data_choices(self) -> None:
        """The data selector: current (what `haj train` takes), then every version, newest
        first. A version the user picked stays picked while it exists."""
        try:
            versions = data.versions(self.project)
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
        width = min(max(len(name) for name in names) + 3, 24)
        table.add_column("model", key="model", width=width)
        table.add_column("status", key="status", width=9)
        for metric in self.metrics:
            table.add_column(metric, key=metric, width=max(6, len(metric)))
        table.add_column("time", key="time", width=7)
        return table

    # ---- the checklist -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="train-models", name="extras")
    def _load_extras(self) -> list[str]:
        """model.py is user code: read by a runner process; a failure keeps the built-ins."""
        builtin = set(catalog.builtin_names(self.prediction))
        return [n for n in catalog.project_model_names(self.project) if n not in builtin]

    def _set_extras(self, names: list[str]) -> None:
        """Show model.py's models (italic) after the built-ins; drop those it no longer has."""
        models = self.query_one("#train-models", SelectionList)
        for gone in [name for name in self._extras if name not in names]:
            models.remove_option(f"extra-{gone}")
        new = [name for name in names if name not in self._extras]
        self._extras = list(names)
        if new:
            models.add_options(
                [
                    Selection(Text(name, style="italic"), name, True, id=f"extra-{name}")
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

    @work(thread=True, exclusive=True, exit_on_error=False, group="train", name="train")
    def _train(
        self, models: list[str] | None, cancel: threading.Event, version: str | None
    ) -> dict[str, Any]:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="train"))

        try:
            return training.train(self.project, models, on_event=relay, cancel=cancel, data=version)
        except Cancelled as exc:  # the user asked for it: not an error to report
            return {"cancelled": str(exc), "runs": []}

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
            if key in self.metrics:
                table.update_cell(model, key, f"{value:.4f}")
        if duration is not None:
            table.update_cell(model, "time", seconds(duration))

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        if message.task == "extras":
            message.stop()
            self._set_extras(message.result if isinstance(message.result, list) else [])
            return
        if message.task != "train":
            return
        message.stop()
        self._set_busy(False)
        result = message.result if isinstance(message.result, dict) else {}
        if "cancelled" in result:
            self._mark_unfinished("cancelled")
            self._set_state("Cancelled: unfinished runs were recorded as cancelled.")
            self.query_one("#train-log", LogView).write_line(result["cancelled"], "magenta")
            return
        runs = result.get("runs", [])
        done = sum(1 for run in runs if run.get("status") == "finished")
        self._set_state(f"Done: {done} finished, {len(runs) - done} failed (Runs tab: 5)")

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        if message.task == "extras":
            message.stop()
            self.query_one("#train-log", LogView).write_line(str(message.error), "bold red")
            return
        if message.task != "train":
            return
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
