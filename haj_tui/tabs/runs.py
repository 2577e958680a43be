"""The Runs tab: the leaderboard by any metric, the champion and its history, a bar chart of
the models' scores, and the selected run's detail.

Like `haj runs`, it ranks only the runs scored on the current data version (the engine's
leaderboard decides which), shows a cross-validated score as mean ± std and a finalized run as
such, and says when the champion was trained on other data than the current.

Everything here is a quick read of the project's SQLite store through the engine API
(`leaderboard()`, `champion_history()`), so it is read on the UI thread; crowning copies a model
file, so it runs in a worker. The tab stays live: every second it asks the engine whether the
project's store changed (`changed_since`, a few stat() calls) and reads again when it did, so
runs finished by `haj train` in a shell or a crowning elsewhere appear within 2 s.

Numbers are the engine's (`score_text`, `metric_text`: one precision per metric, as `haj runs`
prints them). The leaderboard keeps the run, the sorting metric and the status first, so they
stay in view at 80 columns; the chart draws each model's best run on a scale from the worst
score to the best (engine-independent plotting: haj_tui/widgets/charts.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from engine.api import MISSING, metric_text, run_kind, score_text
from engine.errors import HajError, UsageError
from haj_tui.messages import WorkFailed, WorkFinished
from haj_tui.widgets.charts import Bar, ScoreChart, XYChart
from haj_tui.widgets.formats import (
    STATUS_STYLE,
    FittingTable,
    cell_width,
    column_width,
    columns_that_fit,
    hidden_columns,
    seconds,
    short_time,
)
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    # what leaderboard() and crown() return
    from engine.api import CrownResult, Leaderboard, ProjectAPI, Scored, Stamp

CROWN = "★"
POLL_SECONDS = 1.0  # how often the tab asks whether the store changed (within 2 s of a change)
NARROW = 100  # below this many columns the chart and detail panel give the leaderboard room


@dataclass(frozen=True)
class Crowned:
    """The crown worker's outcome: what the engine's crown answered (run, metric, value)."""

    answer: CrownResult


class CrownFailed(WorkFailed):
    """Crowning failed (the app has shown why): the button comes back."""


@dataclass(frozen=True)
class ScoredRun:
    """The score worker's outcome: the run's evaluation on labelled data (engine.evaluation)."""

    scored: Scored


def evaluation_detail(scored: Scored) -> Table:
    """Metrics now and at training, then the confusion matrix (rows: truth), errors shaded by
    their share of the row, or the residual summary of a regression."""
    table = Table.grid(padding=(0, 1))
    table.add_column()
    table.add_column(justify="right")
    table.add_column(justify="right")
    table.add_row(Text("metric", style="bold"), Text("now", style="bold"),
                  Text("training", style="bold"))  # fmt: skip
    for name, value in scored.evaluation.metrics.items():
        recorded = scored.recorded.get(name)
        table.add_row(
            name,
            metric_text(name, value),
            metric_text(name, recorded) if recorded is not None else MISSING,
        )
    details = scored.evaluation.details or {}
    outer = Table.grid()
    outer.add_row(table)
    if "confusion" in details:
        outer.add_row(confusion_heat(details["confusion"]))
    if "residuals" in details:
        outer.add_row(residual_summary(details["residuals"]))
    return outer


def confusion_heat(confusion: dict[str, Any]) -> Group:
    """The confusion matrix (rows: truth, columns: predicted) as a heat table: a cell's
    background is as deep as its share of its row, green on the diagonal, red off it."""
    labels = [str(label) for label in confusion["labels"]]
    matrix = Table(box=None, padding=(0, 1))
    matrix.add_column("")
    for label in labels:
        matrix.add_column(label[:8], justify="right")
    for i, row in enumerate(confusion["matrix"]):
        total = sum(row) or 1
        cells = [Text(f" {n} ", style=_heat(n / total, i == j)) for j, n in enumerate(row)]
        matrix.add_row(labels[i][:8], *cells)
    return Group(Text("truth \\ predicted"), matrix)


def _heat(share: float, right: bool) -> str:
    if share == 0:
        return "dim"
    red, green, blue = (38, 166, 91) if right else (214, 48, 49)
    depth = 0.3 + 0.7 * share
    return f"bold white on rgb({int(red * depth)},{int(green * depth)},{int(blue * depth)})"


def residual_summary(residuals: dict[str, float]) -> Group:
    """The residual summary of a regression (truth - prediction), a row per figure."""
    table = Table.grid(padding=(0, 1))
    for name, value in residuals.items():
        table.add_row(name, f"{value:.4g}")
    return Group(Text("residuals (truth - prediction)", style="bold"), table)


def artifacts_detail(artifacts: dict[str, Any]) -> Table:
    """What a run's test split says beyond its metrics (engine.artifacts): the confusion matrix
    as a heat table and the per-class scores, or the residual summary."""
    outer = Table.grid()
    if artifacts.get("missing"):
        outer.add_row(Text(f"{artifacts['missing']} is missing", style="italic yellow"))
    if "format" not in artifacts:
        return outer
    source = f", of run {artifacts['from_run']}" if artifacts.get("from_run") else ""
    outer.add_row(Text(f"On the test split ({artifacts['rows']:,} rows{source})", style="bold"))
    if "confusion" in artifacts:
        outer.add_row(confusion_heat(artifacts["confusion"]))
        outer.add_row(_per_class(artifacts))
    if artifacts.get("curves_note"):
        outer.add_row(Text(artifacts["curves_note"], style="italic"))
    if "residuals" in artifacts:
        outer.add_row(residual_summary(artifacts["residuals"]))
    return outer


def _per_class(artifacts: dict[str, Any]) -> Table:
    auc = {str(c["label"]): c["auc"] for c in artifacts.get("roc") or []}
    table = Table(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold")
    table.add_column("class")
    for title in ("prec", "rec", "f1", "n", "auc"):
        table.add_column(title, justify="right")
    for row in artifacts["per_class"]:
        label = str(row["label"])
        table.add_row(
            label[:10],
            *(metric_text(key, row[key]) for key in ("precision", "recall", "f1")),
            str(row["support"]),
            metric_text("roc_auc", auc[label]) if label in auc else "",
        )
    return table


def importance_bars(importances: dict[str, Any], top: int = 10) -> Group:
    """The `top` most important input features as bars across the panel's width, the most
    important the longest."""
    from rich.bar import Bar as RichBar

    features = [f for f in importances.get("features") or [] if f["importance"] is not None]
    if not features:
        return Group()
    method = importances["method"]
    if method == "permutation":
        method += f", {importances['repeats']}x on {importances['rows']:,} rows"
    bars = Table.grid(padding=(0, 1), expand=True)
    bars.add_column(no_wrap=True, max_width=16)
    bars.add_column(ratio=1)
    bars.add_column(justify="right", no_wrap=True)
    shown = features[:top]
    largest = max(abs(f["importance"]) for f in shown) or 1.0
    for feature in shown:
        value = feature["importance"]
        bars.add_row(
            Text(feature["feature"], overflow="ellipsis"),
            RichBar(largest, 0, max(0.0, value), color="cyan"),
            metric_text("importance", value),
        )
    return Group(Text(f"Importances ({method})", style="bold"), bars)


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
    if run_kind(run) != "test split":
        table.add_row("validation", run_kind(run))
    if run.get("refit_of"):
        table.add_row(
            "refit of",
            Text(
                f"{run['refit_of']}: refit on all rows; its metrics are that run's "
                "(no test set is left)",
                style="italic",
            ),
        )
    table.add_row("duration", seconds(run.get("duration_seconds")) or "-")
    table.add_row("started", short_time(run["started_at"]))
    table.add_row("model file", run.get("model_path") or "-")
    test = run.get("test_metrics") or {}
    for key in run["metrics"]:
        held_out = f"   (test {metric_text(key, test[key])})" if key in test else ""
        table.add_row(key, score_text(run, key) + held_out)
    for metric, why in (run.get("notes") or {}).items():  # why a metric is missing
        table.add_row(metric, Text(why, style="italic"))
    if run["params"]:
        params = ", ".join(f"{key}={value}" for key, value in sorted(run["params"].items()))
        table.add_row("params", Text(params, style="dim"))
    return table


def _curves(curves: list[dict[str, Any]], key: str) -> dict[str, tuple[Any, Any]]:
    """An XYChart's series: a curve per class, named with its score (`key`: auc or ap)."""
    return {f"{c['label']} {metric_text('roc_auc', c[key])}": (c["x"], c["y"]) for c in curves}


def _curve_title(curves: list[dict[str, Any]], key: str, score: str) -> str:
    """`of 1: AUC 0.9950` for the positive class of a binary target, else `one-vs-rest: AUC`
    (the legend gives each class and its score)."""
    if len(curves) == 1:
        return f"of {curves[0]['label']}: {score} {metric_text('roc_auc', curves[0][key])}"
    return f"one-vs-rest: {score}"


def _cell_len(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else Text(str(cell)).cell_len


def _columns_that_fit(
    columns: list[tuple[str, str, list[Any]]], room: int, required: int
) -> list[tuple[str, str, list[Any]]]:
    """The first `required` columns, then the others in order while they fit whole in `room`
    cells (a DataTable column is its widest cell plus one cell of padding each side): a column
    is shown entirely or not at all, so no number is cut at the panel's edge. Everything when
    the room is not known yet (the table is hidden)."""
    if room <= 0:
        return columns
    widths = [max([len(title), *(_cell_len(c) for c in cells)]) + 2 for _, title, cells in columns]
    # the first column (a name) gives way to the other required ones: cut with an ellipsis
    others = sum(widths[1:required])
    if widths[0] + others > room:
        limit = max(10, room - others - 2)
        key, title, cells = columns[0]
        columns = [(key, title, [_shorten(cell, limit) for cell in cells]), *columns[1:]]
        widths[0] = min(widths[0], limit + 2)
    shown, used = [], 0
    for index, (column, width) in enumerate(zip(columns, widths, strict=True)):
        if index >= required and used + width > room:
            continue
        shown.append(column)
        used += width
    return shown


def _shorten(cell: Any, limit: int) -> Any:
    text = cell if isinstance(cell, Text) else Text(str(cell))
    if text.cell_len <= limit:
        return cell
    short = text.copy()
    short.truncate(limit - 1)
    short.append("…")
    return short


class RunsTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Compare runs and choose the champion."""

    BINDINGS = [
        Binding("m", "next_metric", "Metric"),
        Binding("g", "crown_selected", "Crown selected"),
        Binding("z", "rollback", "Roll back"),
        Binding("v", "score_selected", "Score on data"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("space", "toggle_mark", "Mark", key_display="␣"),  # short: the footer fits
        Binding("C", "compare", "Compare"),
    ]

    DEFAULT_CSS = """
    RunsTab #runs-filter {
        margin: 0 0 0 1;
    }
    RunsTab #runs-chart {
        height: 14;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        background: $surface;
    }
    RunsTab #runs-detail-box XYChart {
        height: 14;
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        background: $surface;
    }
    """

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.metric: str | None = None  # None: the project's metric (config.toml)
        self.board: Leaderboard | None = None  # None until first read
        self._metric_options: list[str] = []
        self._ready = False
        self._stamp: Stamp | None = None  # the store as last read (changed_since)
        self.fitted_width = 0  # the leaderboard's width its columns were chosen for
        self._history: list[dict[str, Any]] = []
        self._scored: Scored | None = None  # the evaluation shown in the run panel, if any
        self._artifacts: dict[str, dict[str, Any]] = {}  # run id -> its artifacts, once read
        self.run_filter = ""  # the leaderboard's filter (engine.run_filter), as applied
        self.marked: list[str] = []  # runs marked (space) for comparing, in marking order

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Label("Metric", classes="toolbar-label")
            yield Select([], prompt="metric", compact=True, id="runs-metric")
            yield Button("Crown champion (c)", id="runs-crown", compact=True, variant="primary")
            yield Label("", id="runs-champion", classes="tab-state")
        notice = Label("", id="runs-notice")  # shown when the champion is of other data
        notice.display = False
        yield notice
        with Horizontal(id="runs-body"):
            with Vertical(id="runs-left"):
                yield Input(
                    placeholder="/ filter: acc>0.9 model=knn tag.owner=ana (enter applies)",
                    id="runs-filter",
                    compact=True,
                )
                board = FittingTable(
                    id="runs-board", cursor_type="row", zebra_stripes=True, refit=self.refit
                )
                board.border_title = "Leaderboard"
                yield board
                history = FittingTable(
                    id="runs-history",
                    cursor_type="row",
                    zebra_stripes=True,
                    refit=lambda: self._fill_history(self._history),
                )
                history.border_title = "Champion history"
                yield history
            with Vertical(id="runs-right"):
                chart = ScoreChart(id="runs-chart")
                chart.border_title = "Best run per model"
                yield chart
                with VerticalScroll(id="runs-detail-box") as box:
                    box.border_title = "Run"
                    yield Static("", id="runs-detail")
                    # the run's artifacts (engine.artifacts), shown when it has them
                    yield Static("", id="runs-artifacts")
                    for curve in ("runs-roc", "runs-pr", "runs-scatter"):
                        yield XYChart(id=curve)
                    yield Static("", id="runs-importances")

    def on_mount(self) -> None:
        self._ready = True
        self.refresh_data()
        self.set_interval(POLL_SECONDS, self._poll, name="runs-poll")

    def on_resize(self) -> None:
        """Narrow terminals: the side panel shrinks so the run, the metric and the status fit;
        the leaderboard shows again the columns that fit."""
        side = self.query_one("#runs-right")
        side.styles.width = 34 if self.size.width < NARROW else None

    def refit(self) -> None:
        """The leaderboard again, with the columns that fit its width now."""
        if self.board is not None:
            self._fill_board(self.board, self._selected_run_id())

    # ---- reading -----------------------------------------------------------------------------
    def _poll(self) -> None:
        """Read again when the project's store or config changed (any process wrote it)."""
        try:
            stamp, changed = self.project.changed_since(self._stamp)
        except HajError:
            return
        if changed & {"store", "config"}:
            self.refresh_data()
        self._stamp = stamp

    def refresh_data(self) -> None:
        """Re-read the leaderboard and champion history, keeping the selected run."""
        if not self._ready:  # shown before its widgets are mounted: on_mount will read
            return
        try:
            self._stamp = self.project.changed_since(None)[0]  # what this read sees
        except HajError:
            self._stamp = None
        selected = self._selected_run_id()
        try:
            try:
                board = self.project.leaderboard(metric=self.metric, **self._where())
            except UsageError:  # the prediction type changed: its metrics differ
                board = self.project.leaderboard(**self._where())
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
        self._fill_chart(board)
        self._fill_champion(board)

    def _champion_id(self) -> str | None:
        return self.board.champion_id if self.board else None

    def _fill_board(self, board: Leaderboard, selected: str | None) -> None:
        table = self.query_one("#runs-board", DataTable)
        table.clear(columns=True)
        arrow = "↓" if board.higher_is_better else "↑"
        champion_id = board.champion_id
        metrics = [board.metric] + [m for m in board.metrics if m != board.metric]
        # (key, title, cells) in priority order: the run, the sorting metric and the status
        # always; then the other metrics, the time and the data while they fit whole
        names = []
        for run in board.runs:
            name = Text(run["label"] + (" (finalized)" if run.get("refit_of") else ""))
            if run["id"] == champion_id:
                name = Text.assemble((f"{CROWN} ", "bold"), name)
            if run["id"] in self.marked:  # marked for comparing (space)
                name = Text.assemble(("● ", "bold magenta"), name)
            names.append(name)
        columns: list[tuple[str, str, list[Any]]] = [
            ("run", "run", names),
            (board.metric, f"{board.metric} {arrow}", self._scores(board, board.metric)),
            (
                "status",
                "status",
                [Text(r["status"], style=STATUS_STYLE.get(r["status"], "")) for r in board.runs],
            ),
            *((m, m, self._scores(board, m)) for m in metrics[1:]),
            (
                "time",
                "time",
                [Text(seconds(r.get("duration_seconds")), justify="right") for r in board.runs],
            ),
            ("data", "data", [r.get("data_version") or "" for r in board.runs]),
        ]
        self.fitted_width = table.size.width
        shown = _columns_that_fit(columns, table.size.width - 3, required=3)
        for key, title, cells in shown:  # measured here: never drawn at the titles' widths
            table.add_column(title, key=key, width=column_width(title, cells))
        for index, run in enumerate(board.runs):
            table.add_row(*(cells[index] for _, _, cells in shown), key=run["id"])
        hidden = len(columns) - len(shown)
        table.border_subtitle = hidden_columns(hidden, see="the run")
        table.border_title = f"Leaderboard by {board.metric} ({len(board.runs)} runs)"
        if board.other_runs or board.any_data or board.data_version != board.current_data:
            table.border_title = (
                f"Leaderboard by {board.metric} {board.scope} ({len(board.runs)} runs"
                + (f"; {board.other_runs} on other data" if board.other_runs else "")
                + ")"
            )
        if board.filter:
            table.border_title = (
                f"Leaderboard by {board.metric}: {len(board.runs)} of "
                f"{len(board.runs) + board.filtered_out} runs match the filter"
            )
        ids = [run["id"] for run in board.runs]
        if ids:
            table.move_cursor(row=ids.index(selected) if selected in ids else 0)
            self._show_detail(ids[table.cursor_row])
        else:
            empty = "No runs yet: train on the Train tab (t)."
            if board.filter:
                empty = f"No run matches the filter {board.filter!r}."
            elif board.other_runs:
                empty = (
                    f"No runs {board.scope}: train on the Train tab (t). "
                    f"{board.other_runs} run(s) are on other data versions."
                )
            self.query_one("#runs-detail", Static).update(Text(empty, style="italic"))
            self._show_artifacts(None)

    @staticmethod
    def _scores(board: Leaderboard, metric: str) -> list[Text]:
        return [Text(score_text(run, metric), justify="right") for run in board.runs]

    def _fill_history(self, history: list[dict[str, Any]]) -> None:
        self._history = history
        rows = []
        for event in history:
            if event["run_id"] is None:
                model, metric, value = Text("(cleared)", style="dim"), "", ""
            else:
                model = event.get("model") or event["run_id"]
                metric = event.get("metric") or ""
                value = metric_text(metric, event.get("value")) if metric else ""
            rows.append(
                [
                    model,
                    metric,
                    Text(value, justify="right"),
                    short_time(event["crowned_at"]),
                    event.get("reason") or "",
                ]
            )
        table = self.query_one("#runs-history", DataTable)
        table.clear(columns=True)
        titles = ("model", "metric", "value", "when", "reason")
        widths = [
            max([len(title), *(cell_width(row[i]) for row in rows)])
            for i, title in enumerate(titles)
        ]
        shown = columns_that_fit(widths, table.size.width - 3, required=3)
        for i in shown:
            table.add_column(titles[i], width=widths[i])
        for row in rows:
            table.add_row(*(row[i] for i in shown))

    def _fill_chart(self, board: Leaderboard) -> None:
        bars = [
            Bar(run["model"], run["metrics"][board.metric], run["id"] == board.champion_id)
            for run in board.best_per_model()
        ]
        chart = self.query_one("#runs-chart", ScoreChart)
        chart.set_bars(
            bars,
            metric=board.metric,
            higher_is_better=board.higher_is_better,
            value_text=lambda value: metric_text(board.metric, value),
        )
        chart.border_title = f"{board.metric} of each model's best run"

    def _fill_champion(self, board: Leaderboard) -> None:
        current = board.champion
        notice = self.query_one("#runs-notice", Label)
        notice.update(Text(f"⚠ {board.stale}", style="bold yellow") if board.stale else "")
        notice.display = bool(board.stale)
        label = self.query_one("#runs-champion", Label)
        if current is None:
            label.update(Text("No champion yet: press c to crown the best run."))
            return
        label.update(
            Text.assemble(
                (f"{CROWN} ", "bold"),
                (current.get("model") or current["run_id"], "bold"),
                f"  {current['metric']}={metric_text(current['metric'], current['value'])}",
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
        scored = self._scored
        if scored is not None and scored.evaluation.run_id == run_id:
            # the run just scored keeps its evaluation on screen when the store's change
            # (that very evaluation) refreshes the leaderboard, until another run is selected
            self._render_scored(scored)
            return
        self._scored = None
        self.query_one("#runs-detail", Static).update(run_detail(run, self._champion_id()))
        self.query_one("#runs-detail-box").border_title = f"Run {run['label']}"
        self._show_artifacts(run_id)

    def _artifacts_of(self, run_id: str) -> dict[str, Any]:
        """The run's artifacts, read once (they never change once kept)."""
        if run_id in self._artifacts:
            return self._artifacts[run_id]
        try:
            found = self.project.run_artifacts(run_id)
        except HajError:
            return {}
        if "format" in found:  # a running run has none yet: asked again later
            self._artifacts[run_id] = found
        return found

    def _show_artifacts(self, run_id: str | None) -> None:
        """Under the run: its confusion matrix and per-class scores (or residuals), its ROC,
        precision-recall or predicted-vs-actual charts and its importances; nothing for None
        (an evaluation is shown, or no run)."""
        found = self._artifacts_of(run_id) if run_id else {}
        self.query_one("#runs-artifacts", Static).update(artifacts_detail(found))
        roc = self.query_one("#runs-roc", XYChart)
        roc.display = bool(found.get("roc"))
        if roc.display:
            roc.set_series(
                _curves(found["roc"], "auc"),
                xlabel="false positive rate",
                ylabel="TPR",
                diagonal=True,
                limits=(0.0, 1.0),
            )
            roc.border_title = "ROC " + _curve_title(found["roc"], "auc", "AUC")
        pr = self.query_one("#runs-pr", XYChart)
        pr.display = bool(found.get("pr"))
        if pr.display:
            pr.set_series(
                _curves(found["pr"], "ap"), xlabel="recall", ylabel="precision", limits=(0.0, 1.0)
            )
            pr.border_title = "PR " + _curve_title(found["pr"], "ap", "AP")
        scatter = self.query_one("#runs-scatter", XYChart)
        points = found.get("predicted_vs_actual")
        scatter.display = bool(points and points["actual"])
        if scatter.display:
            scatter.set_series(
                {"rows": (points["actual"], points["predicted"])},
                xlabel="actual",
                ylabel="predicted",
                points=True,
                diagonal=True,
            )
            scatter.border_title = (
                f"Predicted vs actual ({len(points['actual'])} of {points['sampled_from']:,})"
            )
        bars = self.query_one("#runs-importances", Static)
        bars.update(importance_bars(found.get("importances") or {}))

    # ---- finding and comparing runs (engine.run_filter, engine.compare) ----------------------
    def _where(self) -> dict[str, str]:
        """The leaderboard's filter argument (none without a filter: any engine answers)."""
        return {"where": self.run_filter} if self.run_filter else {}

    def action_focus_filter(self) -> None:
        """Type a filter (/): enter applies it, escape goes back to the leaderboard."""
        self.query_one("#runs-filter", Input).focus()

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        """Apply the filter typed; a bad term is said in one line and the board stays."""
        text = event.value.strip()
        if text:
            try:
                self.project.leaderboard(metric=self.metric, where=text)
            except HajError as exc:
                self.app.notify(exc.message, title="Filter", severity="error", timeout=8)
                return
        self.run_filter = text
        self.refresh_data()
        self.query_one("#runs-board", DataTable).focus()

    def action_toggle_mark(self) -> None:
        """Mark or unmark the highlighted run for comparing (space)."""
        run_id = self._selected_run_id()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        if self.board is not None:
            self._fill_board(self.board, run_id)

    def action_compare(self) -> None:
        """The marked runs side by side (C), the first marked as the baseline of the deltas."""
        from haj_tui.screens.compare import CompareScreen

        if len(self.marked) < 2:
            self.app.notify(
                f"Mark two or more runs with space to compare them ({len(self.marked)} marked).",
                severity="warning",
            )
            return
        try:
            comparison = self.project.compare(self.marked)
        except HajError as exc:
            self.app.notify(exc.message, title="Compare", severity="error")
            return
        self.app.push_screen(CompareScreen(comparison))

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
    def _crown_pressed(self) -> None:
        """The button goes the way c goes: asked first when a server runs (it swaps what the
        server serves)."""
        self.screen.action_tab_action("runs", "crown")

    def action_crown(self) -> None:
        self.query_one("#runs-crown", Button).disabled = True
        self.query_one("#runs-board", DataTable).focus()
        self._crown(self.metric)

    @haj_work(group="runs", failed=CrownFailed)
    def _crown(self, metric: str | None) -> Crowned:
        return Crowned(self.project.crown(metric))

    def action_crown_selected(self) -> None:
        """Crown the highlighted run, whatever its score (g)."""
        run_id = self._selected_run_id()
        if run_id is None:
            self.app.notify("Select a run first.", severity="warning")
            return
        self._after_confirming(lambda: self._crown_chosen(run_id, self.metric))

    @haj_work(group="runs", failed=CrownFailed)
    def _crown_chosen(self, run_id: str, metric: str | None) -> Crowned:
        return Crowned(self.project.crown_run(run_id, metric))

    def action_rollback(self) -> None:
        """Crown the previous champion again (z)."""
        self._after_confirming(lambda: self._rollback(self.metric))

    @work(group="runs-confirm")
    async def _after_confirming(self, crown: Callable[[], object]) -> None:
        """Run `crown` once the screen has asked (when a server runs: crowning swaps the model
        it serves), as c does."""
        confirmed = getattr(self.screen, "_crown_confirmed", None)
        if confirmed is not None and not await confirmed():
            return
        self.query_one("#runs-crown", Button).disabled = True
        crown()

    @haj_work(group="runs", failed=CrownFailed)
    def _rollback(self, metric: str | None) -> Crowned:
        return Crowned(self.project.rollback(metric))

    # ---- scoring on labelled data ------------------------------------------------------------
    def action_score_selected(self) -> None:
        """Score the highlighted run on a data version or a labelled file (v)."""
        from haj_tui.widgets.modals import PromptModal

        run_id = self._selected_run_id()
        if run_id is None:
            self.app.notify("Select a run first.", severity="warning")
            return

        def chosen(data: str | None) -> None:
            if data is None:
                return
            self.app.notify(f"Scoring on {data or 'the current raw version'}…")
            self._score(run_id, data or None)

        self.app.push_screen(
            PromptModal(
                "Score the run on labelled data",
                "A data version id (empty: the current raw version) or a CSV / JSON file",
                confirm="Score",
            ),
            chosen,
        )

    @haj_work(group="runs-score")
    def _score(self, run_id: str, data: str | None) -> ScoredRun:
        (scored,) = self.project.score(data, runs=[run_id])
        return ScoredRun(scored)

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Crowned(answer=answer):
                message.stop()
                self._crowned(answer)
            case ScoredRun(scored=scored):
                message.stop()
                self._show_scored(scored)

    def _crowned(self, answer: CrownResult) -> None:
        self.query_one("#runs-crown", Button).disabled = False
        run = answer.run
        self.refresh_data()
        score = metric_text(answer.metric, answer.value)
        said = [f"Champion: {run.label} ({answer.metric}={score})"]
        said += [note for note in (answer.caveat, answer.stale, answer.inputs) if note]
        self.app.notify("\n".join(said), timeout=10 if len(said) > 1 else 5)
        table = self.query_one("#runs-board", DataTable)
        table.move_cursor(row=table.get_row_index(run.id))

    def _show_scored(self, scored: Scored) -> None:
        """The evaluation in the run panel: metrics now and at training, and the confusion
        matrix as a heat table (or the residual summary)."""
        self._scored = scored
        self._render_scored(scored)
        metric = self.board.metric if self.board else None
        value = scored.evaluation.metrics.get(metric) if metric else None
        if metric and value is not None:
            self.app.notify(f"{scored.label}: {metric} = {metric_text(metric, value)} on "
                            f"{scored.evaluation.rows:,} rows")  # fmt: skip

    def _render_scored(self, scored: Scored) -> None:
        self.query_one("#runs-detail", Static).update(evaluation_detail(scored))
        self._show_artifacts(None)  # the evaluation has its own matrix
        self.query_one(
            "#runs-detail-box"
        ).border_title = f"{scored.label} on {Path(scored.evaluation.data).name}"

    @on(CrownFailed)
    def _crown_failed(self, message: CrownFailed) -> None:
        message.stop()
        self.query_one("#runs-crown", Button).disabled = False
