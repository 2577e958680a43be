"""The Runs tab: the leaderboard by any metric, the champion and its history, a bar chart of
the models' scores, and the selected run's detail.

Everything here is a quick read of the project's SQLite store through the engine API
(`leaderboard()`, `champion_history()`), so it is read on the UI thread; crowning copies a model
file, so it runs in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Label, Select, Static

from engine.errors import HajError, UsageError
from haj_tui.messages import WorkFailed, WorkFinished
from haj_tui.widgets.formats import STATUS_STYLE, seconds, short_time
from haj_tui.widgets.metric_bars import Bar, MetricBars
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    # what leaderboard() and crown() return
    from engine.api import CrownResult, Leaderboard, ProjectAPI

CROWN = "★"


@dataclass(frozen=True)
class Crowned:
    """The crown worker's outcome: what the engine's crown answered (run, metric, value)."""

    answer: CrownResult


class CrownFailed(WorkFailed):
    """Crowning failed (the app has shown why): the button comes back."""


def run_detail(run: dict[str, Any], champion_id: str | None) -> Table:
    """A run as a two-column table: what it was, how it scored, where its model is."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    status = Text(run["status"], style=STATUS_STYLE.get(run["status"], ""))
    if run["id"] == champion_id:
        status.append(f"  {CROWN} champion", style="bold")
    table.add_row("id", run["id"])
    table.add_row("status", status)
    if run.get("error"):
        table.add_row("error", Text(run["error"], style="red"))
    table.add_row("data", run.get("data_version") or "-")
    table.add_row("duration", seconds(run.get("duration_seconds")) or "-")
    table.add_row("started", short_time(run["started_at"]))
    table.add_row("model file", run.get("model_path") or "-")
    for key, value in run["metrics"].items():
        table.add_row(key, f"{value:.4f}")
    for metric, why in (run.get("notes") or {}).items():  # why a metric is missing
        table.add_row(metric, Text(why, style="italic"))
    if run["params"]:
        params = ", ".join(f"{key}={value}" for key, value in sorted(run["params"].items()))
        table.add_row("params", Text(params, style="dim"))
    return table


class RunsTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Compare runs and choose the champion."""

    BINDINGS = [Binding("m", "next_metric", "Metric")]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.metric: str | None = None  # None: the project's metric (config.toml)
        self.board: Leaderboard | None = None  # None until first read
        self._metric_options: list[str] = []
        self._ready = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Metric", classes="toolbar-label")
            yield Select([], prompt="metric", compact=True, id="runs-metric")
            yield Button("Crown champion (c)", id="runs-crown", compact=True, variant="primary")
            yield Label("", id="runs-champion", classes="tab-state")
        with Horizontal(id="runs-body"):
            with Vertical(id="runs-left"):
                board = DataTable(id="runs-board", cursor_type="row", zebra_stripes=True)
                board.border_title = "Leaderboard"
                yield board
                history = DataTable(id="runs-history", cursor_type="row", zebra_stripes=True)
                history.border_title = "Champion history"
                yield history
            with Vertical(id="runs-right"):
                bars = MetricBars(id="runs-bars")
                bars.border_title = "Best run per model"
                yield bars
                with VerticalScroll(id="runs-detail-box") as box:
                    box.border_title = "Run"
                    yield Static("", id="runs-detail")

    def on_mount(self) -> None:
        self.query_one("#runs-history", DataTable).add_columns(
            "model", "metric", "value", "when", "reason"
        )
        self._ready = True
        self.refresh_data()

    # ---- reading -----------------------------------------------------------------------------
    def refresh_data(self) -> None:
        """Re-read the leaderboard and champion history, keeping the selected run."""
        if not self._ready:  # shown before its widgets are mounted: on_mount will read
            return
        selected = self._selected_run_id()
        try:
            try:
                board = self.project.leaderboard(metric=self.metric)
            except UsageError:  # the prediction type changed: its metrics differ
                board = self.project.leaderboard()
            history = self.project.champion_history()
        except HajError as exc:  # a broken config.toml: say so, keep what is shown
            self.app.report_error(exc)  # type: ignore[attr-defined]
            return
        self.board = board
        self.metric = board.metric
        select = self.query_one("#runs-metric", Select)
        if board.metrics != self._metric_options:
            self._metric_options = list(board.metrics)
            select.set_options([(m, m) for m in board.metrics])
        if select.value != self.metric:
            select.value = self.metric  # its Changed message finds self.metric equal: no loop
        self._fill_board(board, selected)
        self._fill_history(history)
        self._fill_bars(board)
        self._fill_champion(board)

    def _champion_id(self) -> str | None:
        return self.board.champion_id if self.board else None

    def _fill_board(self, board: Leaderboard, selected: str | None) -> None:
        table = self.query_one("#runs-board", DataTable)
        table.clear(columns=True)
        arrow = "↓" if board.higher_is_better else "↑"
        table.add_column("", key="crown")
        table.add_column("run", key="run")
        # the sorting metric right after the run, so it is in view however narrow the table is
        metrics = [board.metric] + [m for m in board.metrics if m != board.metric]
        for metric in metrics:
            title = f"{metric} {arrow}" if metric == board.metric else metric
            table.add_column(title, key=metric)
        table.add_column("status", key="status")
        table.add_column("time", key="time")
        table.add_column("data", key="data")
        champion_id = board.champion_id
        for run in board.runs:
            table.add_row(
                Text(CROWN, style="bold") if run["id"] == champion_id else "",
                run["label"],
                *(f"{run['metrics'][m]:.4f}" if m in run["metrics"] else "" for m in metrics),
                Text(run["status"], style=STATUS_STYLE.get(run["status"], "")),
                seconds(run.get("duration_seconds")),
                run.get("data_version") or "",
                key=run["id"],
            )
        table.border_title = f"Leaderboard by {board.metric} ({len(board.runs)} runs)"
        ids = [run["id"] for run in board.runs]
        if ids:
            table.move_cursor(row=ids.index(selected) if selected in ids else 0)
            self._show_detail(ids[table.cursor_row])
        else:
            self.query_one("#runs-detail", Static).update(
                Text("No runs yet: train on the Train tab (t).", style="italic")
            )

    def _fill_history(self, history: list[dict[str, Any]]) -> None:
        table = self.query_one("#runs-history", DataTable)
        table.clear()
        for event in history:
            if event["run_id"] is None:
                model, metric, value = Text("(cleared)", style="dim"), "", ""
            else:
                model = event.get("model") or event["run_id"]
                metric = event.get("metric") or ""
                value = f"{event['value']:.4f}" if event.get("value") is not None else ""
            table.add_row(
                model, metric, value, short_time(event["crowned_at"]), event.get("reason") or ""
            )

    def _fill_bars(self, board: Leaderboard) -> None:
        bars = [
            Bar(run["model"], run["metrics"][board.metric], run["id"] == board.champion_id)
            for run in board.best_per_model()
        ]
        widget = self.query_one("#runs-bars", MetricBars)
        widget.set_bars(bars, board.higher_is_better)
        widget.border_title = f"{board.metric} of each model's best run"

    def _fill_champion(self, board: Leaderboard) -> None:
        current = board.champion
        label = self.query_one("#runs-champion", Label)
        if current is None:
            label.update(Text("No champion yet: press c to crown the best run."))
            return
        label.update(
            Text.assemble(
                (f"{CROWN} ", "bold"),
                (current.get("model") or current["run_id"], "bold"),
                f"  {current['metric']}={current['value']:.4f}",
            )
        )

    def _selected_run_id(self) -> str | None:
        table = self.query_one("#runs-board", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    @on(DataTable.RowHighlighted, "#runs-board")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_detail(event.row_key.value)

    def _show_detail(self, run_id: str) -> None:
        runs = self.board.runs if self.board else []
        run = next((r for r in runs if r["id"] == run_id), None)
        if run is None:
            return
        self.query_one("#runs-detail", Static).update(run_detail(run, self._champion_id()))
        self.query_one("#runs-detail-box").border_title = f"Run {run['label']}"

    # ---- the metric --------------------------------------------------------------------------
    @on(Select.Changed, "#runs-metric")
    def _metric_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.metric:
            self.metric = event.value
            self.refresh_data()

    @on(DataTable.HeaderSelected, "#runs-board")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if self.board and key in self.board.metrics:
            self.query_one("#runs-metric", Select).value = key

    def action_next_metric(self) -> None:
        """Sort by the next metric (m), without reaching for the selector."""
        metrics = self.board.metrics if self.board else []
        if metrics and self.metric in metrics:
            following = metrics[(metrics.index(self.metric) + 1) % len(metrics)]
            self.query_one("#runs-metric", Select).value = following

    # ---- crowning ----------------------------------------------------------------------------
    @on(Button.Pressed, "#runs-crown")
    def action_crown(self) -> None:
        self.query_one("#runs-crown", Button).disabled = True
        self.query_one("#runs-board", DataTable).focus()
        self._crown(self.metric)

    @haj_work(group="runs", failed=CrownFailed)
    def _crown(self, metric: str | None) -> Crowned:
        return Crowned(self.project.crown(metric))

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Crowned(answer=answer):
                message.stop()
                self._crowned(answer)

    def _crowned(self, answer: CrownResult) -> None:
        self.query_one("#runs-crown", Button).disabled = False
        run = answer.run
        self.refresh_data()
        self.app.notify(f"Champion: {run.label} ({answer.metric}={answer.value:.4f})")
        table = self.query_one("#runs-board", DataTable)
        table.move_cursor(row=table.get_row_index(run.id))

    @on(CrownFailed)
    def _crown_failed(self, message: CrownFailed) -> None:
        message.stop()
        self.query_one("#runs-crown", Button).disabled = False
