"""The Train tab's Tune mode: tune one model's parameters (`haj tune`, engine.tuning).

Choose a model and a number of trials, press T: the trials appear in the table as they finish
(finished, pruned, failed), the chart draws the best score so far over the trials, and the log
shows the tune's lines. x cancels (the running trial is recorded as cancelled; the study keeps
the others and can be resumed). The tune runs in a runner process driven from a thread worker,
as training does; its events arrive as EngineEvent messages of the task "tune".

The panel's keys are the Train tab's (T shows the mode then tunes, x cancels, u or the
Training button goes back to the training view), so they work wherever the focus is while the
tab is visible.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select

from engine import events
from engine.api import duration_text, fit, metric_text
from engine.errors import Cancelled, HajError
from haj_tui import hints
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.charts import TimeChart
from haj_tui.widgets.formats import STATUS_STYLE
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI

DEFAULT_TRIALS = 20
TRIAL_STYLE = {**STATUS_STYLE, "pruned": "dim magenta"}


@dataclass(frozen=True)
class Tuned:
    """A tune ended: the engine's outcome (engine.tuning's payload)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class TuneCancelled:
    message: str


class TuneFailed(WorkFailed):
    """A tune failed (the app has reported why)."""


def params_text(params: dict[str, Any]) -> str:
    """A trial's parameters on one line (floats to 4 significant digits), as the CLI says them."""
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in params.items()
    )


class TunePanel(ReportsWorkerErrors, Vertical):
    """The model and trials to tune, the trials as they finish, the best so far, the log."""

    def __init__(self, project: ProjectAPI, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.project = project
        self._cancel: threading.Event | None = None
        self._metric = ""
        self._trials: list[events.TrialFinished] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Tune (T)", id="tune-start", compact=True, variant="primary")
            yield Button("Cancel (x)", id="tune-cancel", compact=True, disabled=True)
            yield Button("Training (u)", id="tune-back", compact=True)
            yield Select(
                [],
                prompt="model",
                id="tune-model",
                compact=True,
                tooltip="The model to tune (as `haj tune NAME -m MODEL`)",
            )
            yield Input(
                str(DEFAULT_TRIALS),
                type="integer",
                id="tune-trials",
                compact=True,
                tooltip="How many trials (as --trials): each is scored by 5-fold CV of the "
                "training split",
            )
            yield ProgressBar(id="tune-progress", show_eta=False)
            yield Label("", id="tune-state", classes="tab-state")
        with Horizontal(id="tune-body"):
            table: DataTable[Any] = DataTable(
                id="tune-table", cursor_type="row", zebra_stripes=True
            )
            table.border_title = "Trials"
            yield table
            with Vertical(id="tune-right"):
                chart = TimeChart(id="tune-chart")
                chart.border_title = "Best so far"
                yield chart
                log = LogView(id="tune-log")
                log.border_title = "Log"
                yield log

    def on_resize(self) -> None:
        self._fit_params()

    def _fit_params(self) -> None:
        """The params column takes what the fixed columns leave: no column is cut at the edge
        (at 80 columns it narrows, and its text ends in …)."""
        from textual.widgets.data_table import ColumnKey

        table = self.query_one("#tune-table", DataTable)
        column = table.columns.get(ColumnKey("params"))
        width = table.scrollable_content_region.width
        if column is None or width <= 0:
            return
        others = sum(
            c.get_render_width(table) for key, c in table.columns.items() if key != column.key
        )
        column.width = max(6, width - others - 2 * table.cell_padding)
        column.auto_width = False
        table.refresh()

    def on_mount(self) -> None:
        table = self.query_one("#tune-table", DataTable)
        for key, title, width in (
            ("trial", "#", 4),
            ("status", "status", 9),
            ("score", "score", 16),
            ("params", "params", 60),
            ("time", "time", 6),
        ):
            table.add_column(title, key=key, width=width)
        self._fit_params()
        self.query_one("#tune-progress", ProgressBar).update(total=1, progress=0)
        self.query_one("#tune-chart", TimeChart).set_series(
            {}, empty="The best score so far appears here as trials finish."
        )
        self._set_state("Choose a model and the trials, then press T to tune.")

    # ---- the choice ----------------------------------------------------------------------
    def set_models(self, names: list[str], preferred: str | None = None) -> None:
        """The models to choose from; the one chosen stays, else `preferred` (the best of the
        last training), else the first."""
        select = self.query_one("#tune-model", Select)
        chosen = select.value
        select.set_options([(name, name) for name in names])
        for candidate in (chosen, preferred, names[0] if names else None):
            if candidate in names:
                select.value = candidate
                break

    def chosen(self) -> tuple[str | None, int | None]:
        """(the model, the trials) as the toolbar says them; None where it says nothing usable."""
        value = self.query_one("#tune-model", Select).value
        model = None if value is Select.BLANK else str(value)
        text = self.query_one("#tune-trials", Input).value.strip()
        try:
            trials = int(text) if text else DEFAULT_TRIALS
        except ValueError:
            trials = None
        return model, trials

    @property
    def busy(self) -> bool:
        return self._cancel is not None

    # ---- tuning ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.busy:
            return
        model, trials = self.chosen()
        if model is None:
            self.app.notify("Choose a model to tune first.")
            return
        if trials is None or trials < 1:
            self.app.notify("Trials: a whole number, at least 1.", severity="warning")
            return
        self._cancel = threading.Event()
        self._trials = []
        self.query_one("#tune-table", DataTable).clear()
        self.query_one("#tune-chart", TimeChart).set_series({})
        self.query_one("#tune-progress", ProgressBar).update(total=trials, progress=0)
        self._set_busy(True)
        self._set_state(f"Tuning {model}: {trials} trial(s)…")
        self.query_one("#tune-log", LogView).write_line(
            f"— tune {self.project.name}: {model}, {trials} trial(s)", "bold"
        )
        self._tune(model, trials, self._cancel)
        self.query_one("#tune-table", DataTable).focus()

    def cancel(self) -> None:
        if self._cancel is not None and not self._cancel.is_set():
            self._cancel.set()
            self._set_state("Cancelling…")

    @on(Button.Pressed, "#tune-start")
    def _start_pressed(self) -> None:
        self.start()

    @on(Button.Pressed, "#tune-cancel")
    def _cancel_pressed(self) -> None:
        self.cancel()

    @on(Button.Pressed, "#tune-back")
    def _back_pressed(self) -> None:
        parent = self.parent
        if parent is not None and not self.busy:
            parent.run_action("train_mode")

    @haj_work(group="tune", failed=TuneFailed)
    def _tune(self, model: str, trials: int, cancel: threading.Event) -> Tuned | TuneCancelled:
        def relay(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="tune"))

        try:
            return Tuned(self.project.tune(model, trials=trials, on_event=relay, cancel=cancel))
        except Cancelled as exc:  # the user asked for it: not an error to report
            return TuneCancelled(str(exc))

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "tune":
            return
        message.stop()
        event = message.event
        if isinstance(event, events.Progress):
            if event.total:
                self.query_one("#tune-progress", ProgressBar).update(
                    total=event.total, progress=event.done
                )
        elif isinstance(event, events.TrialFinished):
            self._add_trial(event)
        else:
            self.query_one("#tune-log", LogView).write_event(event)

    def _add_trial(self, trial: events.TrialFinished) -> None:
        self._trials.append(trial)
        self._metric = trial.metric
        table = self.query_one("#tune-table", DataTable)
        score = "" if trial.value is None else metric_text(trial.metric, trial.value, trial.std)
        table.add_row(
            Text(str(trial.trial), justify="right"),
            Text(trial.status, style=TRIAL_STYLE.get(trial.status, "")),
            Text(fit(score, 16), justify="right"),
            params_text(trial.params) if trial.status != "failed" else (trial.error or ""),
            Text(fit(duration_text(trial.duration_seconds), 6), justify="right"),
            key=str(trial.trial),
        )
        table.move_cursor(row=table.row_count - 1)
        self._draw()
        if trial.best_value is not None:
            best = metric_text(trial.metric, trial.best_value)
            self._set_state(
                f"{len(self._trials)} trial(s) done; best: trial {trial.best_trial} "
                f"{trial.metric}={best}"
            )

    def _draw(self) -> None:
        """The best score so far after each finished trial, and each finished trial's score."""
        finished = [t for t in self._trials if t.status == "finished" and t.value is not None]
        if not finished:
            return
        xs = [float(t.trial) for t in finished]
        values = [float(t.value) for t in finished if t.value is not None]
        better = max if finished[-1].higher_is_better else min
        best: list[float] = []
        for value in values:
            best.append(value if not best else better(best[-1], value))
        self.query_one("#tune-chart", TimeChart).set_series(
            {"best so far": (xs, best), "trial": (xs, values)},
            title=f"{self._metric} over trials",
            unit=self._metric,
            xlabel="trial",
        )

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Tuned(result=result):
                message.stop()
                self._set_busy(False)
                self._set_state(self._summary(result))
                self.query_one("#tune-log", LogView).write_line(self._summary(result), "bold")
            case TuneCancelled(message=said):
                message.stop()
                self._set_busy(False)
                self._set_state("Cancelled: the study keeps its finished trials.")
                self.query_one("#tune-log", LogView).write_line(said, "magenta")

    @staticmethod
    def _summary(result: dict[str, Any]) -> str:
        metric, best, refit = result["metric"], result.get("best"), result.get("refit")
        if best is None:
            return f"Study {result['study']}: no trial finished, nothing to refit."
        text = (
            f"Study {result['study']}: best trial {best['trial']} {metric}="
            f"{metric_text(metric, best['value'], best.get('std'))} (CV)"
        )
        if refit and refit.get("status") == "finished":
            holdout = refit["metrics"].get(metric)
            if holdout is not None:
                text += f"; refit {refit['label']} {metric}={metric_text(metric, holdout)}"
            text += " on the holdout (Runs tab: 5, g crowns it)"
        return text

    @on(TuneFailed)
    def _tune_failed(self, message: TuneFailed) -> None:
        message.stop()
        self._set_busy(False)
        error = message.error
        said = hints.render(error) if isinstance(error, HajError) else str(error)
        self._set_state(said.splitlines()[0][:120], error=True)
        self.query_one("#tune-log", LogView).write_line(str(error), "bold red")

    def _set_busy(self, busy: bool) -> None:
        if not busy:
            self._cancel = None
        self.query_one("#tune-start", Button).disabled = busy
        self.query_one("#tune-cancel", Button).disabled = not busy
        self.query_one("#tune-back", Button).disabled = busy
        self.query_one("#tune-model", Select).disabled = busy
        self.query_one("#tune-trials", Input).disabled = busy
        parent = self.parent
        if parent is not None:
            parent.refresh_bindings()  # the Train tab's keys (T, x, u) follow

    def _set_state(self, text: str, error: bool = False) -> None:
        label = self.query_one("#tune-state", Label)
        label.update(Text(text))
        label.set_class(error, "error")
