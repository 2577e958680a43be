"""The Monitor tab: do the inputs still look like the training data, and how is the project?

A check (m) is `haj monitor`: the engine's drift and quality report of current inputs (the
source field: live traffic, the prediction log, a data version or a file; empty, as the engine
chooses: live when a server runs, else the log, else the current data) against the champion's
reference profile, stored for the history. The tab shows

- a banner with the report's verdict: red on dataset drift, yellow when the window is too small
  to test, green otherwise;
- per-feature drift as bars with the threshold marked. A p-value test (KS, chi-squared) is drawn
  as -log10 p, so a longer bar is more drift and the threshold line is p = 0.05; a distance
  (Wasserstein, Jensen-Shannon, PSI) is drawn as it is, the line at its threshold;
- the stored reports' drift share and missing share over time (`monitor_history`), and the live
  metric from `haj feedback` (evaluations whose data is "feedback:...") when there is any;
- the quality issues: missing values, unseen categories, values outside the training range,
  constant columns, duplicate rows, fields the server refused, and the predictions' and
  target's drift.

A diagnosis (i) is `haj diagnose`: missing values per column (the current data, live traffic),
step timings and the outdated dependencies (the package index is asked: seconds, or a note when
it cannot be reached), with the champion's age and predictions per day.

While a server of the project runs, the tab refreshes on its own every POLL_SECONDS with a live
report that is not stored (`save=False`), so the history holds only the checks asked for.
Everything slow runs in workers (haj_work); results come back as WorkFinished.

P switches to the Pipeline view and back (haj_tui/tabs/pipeline_view.py): the pipeline's runs
and their steps, R to run it now (x cancels), the schedule field (o) and the notifications.
Each view's keys are off while the other is shown, as the Train tab does with its Tune mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Static

from engine.api import MonitorResult, duration_text, metric_text
from engine.errors import HajError
from haj_tui.messages import WorkFailed, WorkFinished
from haj_tui.tabs.pipeline_view import PipelineView
from haj_tui.widgets.charts import Bar, ThresholdChart, TimeChart
from haj_tui.widgets.formats import FittingTable, cell_width, columns_that_fit, short_time
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI, ServerRecord, Stamp
    from haj_tui.commands import Command

POLL_SECONDS = 5.0  # a live report while a server runs (not stored)
HISTORY = 60  # stored reports drawn over time
P_CAP = 10.0  # -log10 p drawn at most this long (p below 1e-10)
P_TESTS = ("ks", "chi2")
TEST_NAMES = {
    "ks": "KS",
    "chi2": "chi²",
    "wasserstein": "Wasserstein",
    "jensenshannon": "Jensen-Shannon",
    "psi": "PSI",
}
NO_DATA = "No data yet: press r to retrieve, then train (t) and crown (c)."
NO_CHAMPION = "No champion yet: train (t) and crown (c)."
DIAGNOSE_HINT = (
    "Press i to diagnose: missing values per column, step timings, outdated dependencies "
    "(asks the package index: a few seconds; offline, a note)."
)


# ---- figures ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """Per-feature drift on one axis where longer is more drift."""

    bars: list[Bar]
    threshold: float
    ticks: dict[float, str]
    xlabel: str
    title: str


def test_names(tests: Sequence[str]) -> str:
    return " / ".join(TEST_NAMES.get(t, t) for t in dict.fromkeys(tests))


def _p_length(p: float) -> float:
    return min(P_CAP, -math.log10(max(p, 10.0**-P_CAP)))


def drift_scale(columns: Sequence[Any]) -> Scale:
    """The features' bars (most drift on top), on the scale their tests share: -log10 p for
    p-value tests (threshold p < 0.05), the distance itself for distances (threshold 0.1), and
    a multiple of each test's threshold when a report mixes the two."""
    tested = [c for c in columns if c.statistic is not None]
    names = test_names([c.test for c in tested])
    if not tested:
        return Scale([], 0.0, {}, "", "Drift per feature")
    p_tests = [c.test in P_TESTS and c.p_value is not None for c in tested]
    if all(p_tests):
        threshold = tested[0].threshold
        bars = [Bar(c.name, _p_length(float(c.p_value)), c.drifted) for c in tested]
        top = max(bar.value for bar in bars)
        ticks = {0.0: "p=1", _p_length(threshold): f"p={threshold:g}"}
        if top > _p_length(threshold) * 1.6:
            ticks[top] = f"p<{10.0**-P_CAP:.0e}" if top >= P_CAP else f"p={10.0**-top:.0e}"
        return Scale(
            sorted(bars, key=lambda bar: -bar.value),
            _p_length(threshold),
            ticks,
            "log p-value: longer = more drift",
            f"Drift per feature ({names}, p < {threshold:g})",
        )
    if not any(p_tests):
        threshold = tested[0].threshold
        bars = [Bar(c.name, float(c.statistic), c.drifted) for c in tested]
        top = max(bar.value for bar in bars)
        ticks = {0.0: "0", threshold: f"{threshold:g}"}
        if top > threshold * 1.6:
            ticks[top] = f"{top:.2g}"
        return Scale(
            sorted(bars, key=lambda bar: -bar.value),
            threshold,
            ticks,
            "distance: longer = more drift",
            f"Drift per feature ({names} >= {threshold:g})",
        )
    bars = []
    for c in tested:  # mixed: each figure as a multiple of its own threshold
        if c.test in P_TESTS and c.p_value is not None:
            value = _p_length(float(c.p_value)) / _p_length(c.threshold)
        else:
            value = float(c.statistic) / c.threshold if c.threshold else 0.0
        bars.append(Bar(c.name, value, c.drifted))
    return Scale(
        sorted(bars, key=lambda bar: -bar.value),
        1.0,
        {0.0: "0", 1.0: "threshold"},
        "x threshold: longer = more drift",
        f"Drift per feature ({names})",
    )


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def time_axis(stamps: Sequence[str], before: str) -> tuple[list[float], str]:
    """Each ISO time as a (negative) distance to the last one, in a unit that fits the span:
    "hours before the last check"."""
    times = [_seconds(s) for s in stamps]
    if not times:
        return [], ""
    last = max(times)
    span = last - min(times)
    unit, size = next(
        (u, s)
        for u, s, up_to in (
            ("seconds", 1, 120),
            ("minutes", 60, 2 * 3600),
            ("hours", 3600, 2 * 86400),
            ("days", 86400, math.inf),
        )
        if span < up_to
    )
    return [(t - last) / size for t in times], f"{unit} before {before}"


def history_series(
    history: Sequence[dict[str, Any]],
) -> tuple[dict[str, tuple[list[float], list[float]]], str]:
    """Drift share (the windows big enough to test) and missing share, in %, over time."""
    xs, xlabel = time_axis([r["created_at"] for r in history], "the last check")
    drift = [(x, 100 * float(r["drift_share"])) for x, r in zip(xs, history, strict=True)
             if not r["too_small"]]  # fmt: skip
    missing = [(x, 100 * float(r["missing_share"])) for x, r in zip(xs, history, strict=True)]
    series = {}
    if drift:
        series["drift share"] = ([x for x, _ in drift], [y for _, y in drift])
    if missing:
        series["missing share"] = ([x for x, _ in missing], [y for _, y in missing])
    return series, xlabel


def feedback_metric(
    evaluations: Sequence[dict[str, Any]], metric: str
) -> tuple[str, list[tuple[str, float]]] | None:
    """(metric, [(when, value)] oldest first) of the evaluations `haj feedback` stored (data
    "feedback:FILE"); the project's metric when they have it, else their first. None: none."""
    live = [e for e in evaluations if str(e.get("data", "")).startswith("feedback:")]
    live = [e for e in live if e.get("metrics")]
    if not live:
        return None
    name = metric if metric in live[0]["metrics"] else next(iter(live[0]["metrics"]))
    points = [(e["created_at"], float(e["metrics"][name])) for e in live if name in e["metrics"]]
    return name, sorted(points)


def _share(share: float | None) -> str:
    if share is None:
        return "-"
    if share == 0:
        return "0%"
    return "<0.1%" if share < 0.001 else f"{share:.1%}"


def _counts(found: dict[str, int]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in found.items())


def p_text(p: float) -> str:
    return f"p {p:.4f}" if p >= 0.0001 else f"p {p:.1e}"


def _column_drift(column: Any) -> str:
    test = TEST_NAMES.get(column.test, column.test)
    if column.statistic is None:
        return f"not tested ({column.rows:,} rows)"
    figure = p_text(column.p_value) if column.p_value is not None else f"{column.statistic:.3f}"
    return f"{'drifted' if column.drifted else 'no drift'} ({test} {figure})"


def quality_lines(report: Any) -> list[Text]:
    """The report's quality issues, one line each, and the predictions' and target's drift."""
    quality = report.quality
    by_name = {c.name: c for c in report.features}
    lines: list[Text] = []
    for name, share in quality.missing.items():
        column = by_name.get(name)
        before = f" ({_share(column.reference_missing_share)} at training)" if column else ""
        lines.append(Text(f"missing: {name} {_share(share)}{before}"))
    for key, what in (
        ("unseen", "unseen categories"),
        ("out_of_range", "outside the training range"),
        ("refused", "refused by the server"),
    ):
        found = getattr(quality, key)
        if found:
            lines.append(Text(f"{what}: {_counts(found)}", style="yellow"))
    if quality.constant:
        lines.append(Text("constant now: " + ", ".join(quality.constant), style="yellow"))
    if quality.duplicates:
        lines.append(Text(f"duplicate rows: {quality.duplicates:,}", style="yellow"))
    if not lines and report.rows == 0:
        lines.append(Text("No rows in the window yet.", style="italic"))
    elif not lines:
        lines.append(Text("No quality issue found.", style="green"))
    for what, column in (("predictions", report.prediction), ("target", report.target)):
        if column is not None:
            style = "bold red" if column.drifted else ""
            lines.append(Text(f"{what}: {_column_drift(column)}", style=style))
    return lines


def _source_text(source: str) -> str:
    return Path(source).name if len(source) > 30 else source


def banner_of(result: MonitorResult, live: bool) -> tuple[Text, str]:
    """The verdict line and its class: drift (red), small (yellow), ok (green)."""
    report = result.report
    kind = "small" if report.too_small else "drift" if report.dataset_drift else "ok"
    mark = {"small": "⚠", "drift": "✖", "ok": "✔"}[kind]
    said = "live, not stored" if live else short_time(result.created_at)
    window = "" if result.window == "all rows" else f"{result.window}, "
    text = Text.assemble(
        (f"{mark} {report.verdict()}", "bold"),
        f"  ·  {_source_text(result.source)} ({window}{report.rows:,} rows) vs "
        f"{result.model} ({report.reference_rows:,} training rows)  ·  {said}",
    )
    return text, kind


def stored_banner(last: dict[str, Any]) -> tuple[Text, str]:
    """The last stored report's headline, when nothing was checked since the tab opened."""
    if last["too_small"]:
        kind, summary = "small", f"too few rows to test ({last['rows']:,})"
    elif last["dataset_drift"]:
        kind, summary = "drift", f"dataset drift, {last['drift_share']:.0%} of features drifted"
    else:
        kind, summary = "ok", f"no dataset drift, {last['drift_share']:.0%} of features drifted"
    mark = {"small": "⚠", "drift": "✖", "ok": "✔"}[kind]
    text = Text.assemble(
        (f"{mark} last check {short_time(last['created_at'])}: {summary}", "bold"),
        f"  ·  {_source_text(last['source'])}, {last['rows']:,} rows  ·  press m to check now",
    )
    return text, kind


# ---- worker outcomes -------------------------------------------------------------------------
@dataclass(frozen=True)
class Overview:
    """The project as the tab needs it: whether there is data and a champion, the stored
    reports, and the live metric from feedback."""

    has_data: bool
    champion: str | None
    history: list[dict[str, Any]]
    metric: tuple[str, list[tuple[str, float]]] | None


@dataclass(frozen=True)
class Polled:
    """One look: the server (None: not running), the overview when the store changed (None:
    unchanged), a live report when a server runs, else why not."""

    server: ServerRecord | None
    stamp: Stamp | None
    overview: Overview | None = None
    live: MonitorResult | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Checked:
    """A check asked for (m): the report, stored."""

    result: MonitorResult


@dataclass(frozen=True)
class Diagnosed:
    diagnosis: Any  # engine.diagnose.Diagnosis


class CheckFailed(WorkFailed):
    """The check failed (the app has said why): m comes back."""


class DiagnoseFailed(WorkFailed):
    """The diagnosis failed (the app has said why): i comes back."""


class PollFailed(WorkFailed):
    """Reading the project failed unexpectedly (shown once): the ticks stop until the tab is
    shown again."""


@dataclass
class _Tables:
    """What the diagnosis tables hold, to fill again at a new width."""

    missing: tuple[list[str], list[list[Any]]] = field(default_factory=lambda: ([], []))
    timings: tuple[list[str], list[list[Any]]] = field(default_factory=lambda: ([], []))
    deps: tuple[list[str], list[list[Any]]] = field(default_factory=lambda: ([], []))


class MonitorTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """Drift, quality and the project's health."""

    BINDINGS = [
        Binding("m", "check", "Check drift"),
        Binding("i", "diagnose", "Diagnose"),
        Binding("o", "choose_source", "Source"),
        Binding("o", "edit_schedule", "Schedule"),
        Binding("R", "run_pipeline", "Run pipeline"),
        Binding("x", "cancel_pipeline", "Cancel"),
        Binding("P", "show_pipeline", "Pipeline"),
        Binding("P", "show_drift", "Drift"),
    ]
    DRIFT_PARTS = ("#monitor-toolbar", "#monitor-banner", "#monitor-body")

    DEFAULT_CSS = """
    MonitorTab {
        height: 1fr;
    }
    MonitorTab #monitor-pipeline, MonitorTab.pipeline #monitor-toolbar,
    MonitorTab.pipeline #monitor-banner, MonitorTab.pipeline #monitor-body {
        display: none;
    }
    MonitorTab.pipeline #monitor-pipeline {
        display: block;
    }
    MonitorTab #monitor-source-label {
        margin: 0 1 0 1;
        color: $text-muted;
    }
    MonitorTab #monitor-source {
        width: 1fr;
        margin: 0 1 0 0;
    }
    MonitorTab #monitor-state {
        width: auto;
        max-width: 40;
        height: 1;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    MonitorTab #monitor-banner {
        height: 1;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $panel;
        color: $text-muted;
    }
    MonitorTab #monitor-banner.drift {
        background: $error-muted;
        color: $text-error;
    }
    MonitorTab #monitor-banner.small {
        background: $warning-muted;
        color: $text-warning;
    }
    MonitorTab #monitor-banner.ok {
        background: $success-muted;
        color: $text-success;
    }
    MonitorTab #monitor-body {
        height: 1fr;
    }
    MonitorTab #monitor-left, MonitorTab #monitor-right {
        width: 1fr;
    }
    MonitorTab #monitor-drift, MonitorTab #monitor-quality-box, MonitorTab #monitor-history,
    MonitorTab #monitor-metric, MonitorTab #monitor-diagnosis-box {
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        background: $surface;
    }
    MonitorTab #monitor-quality-box:focus, MonitorTab #monitor-diagnosis-box:focus {
        border: round $primary;
        border-title-color: $primary;
    }
    MonitorTab #monitor-drift {
        height: 1fr;
    }
    MonitorTab #monitor-quality-box {
        height: 8;
        padding: 0 1;
    }
    MonitorTab #monitor-history {
        height: 11;
        min-height: 6;
    }
    MonitorTab #monitor-metric {
        height: 9;
        min-height: 6;
        display: none;
    }
    MonitorTab #monitor-metric.shown {
        display: block;
    }
    MonitorTab #monitor-diagnosis-box {
        height: 1fr;
        padding: 0 1;
    }
    MonitorTab #monitor-diagnosis-box DataTable {
        height: auto;
        max-height: 40;
        margin: 0 0 1 0;
    }
    MonitorTab .diagnosis-part {
        text-style: bold;
        color: $text-muted;
    }
    """

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.server: ServerRecord | None = None
        self.overview: Overview | None = None  # None until first read
        self.result: MonitorResult | None = None  # the report on screen
        self.live = False  # the report on screen is a live one (not stored)
        self.diagnosis: Any = None
        self.checking = False
        self.diagnosing = False
        self._stamp: Stamp | None = None
        self._poll_failed = False
        self._problem: str | None = None  # why there is no live report (a state, not a popup)
        self._ready = False
        self._timer: Timer | None = None
        self._tables = _Tables()

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar", id="monitor-toolbar"):
            yield Button("Check drift (m)", id="monitor-check", compact=True, variant="primary")
            yield Button("Diagnose (i)", id="monitor-diagnose", compact=True)
            yield Label("Source (o)", id="monitor-source-label")
            yield Input(
                placeholder="live, log, version or file",
                id="monitor-source",
                compact=True,
            )
            yield Label("", id="monitor-state")
        yield Static("", id="monitor-banner")
        with Horizontal(id="monitor-body"):
            with Vertical(id="monitor-left"):
                chart = ThresholdChart(id="monitor-drift")
                chart.border_title = "Drift per feature"
                yield chart
                with VerticalScroll(id="monitor-quality-box") as quality:
                    quality.border_title = "Quality"
                    yield Static("", id="monitor-quality")
            with Vertical(id="monitor-right"):
                history = TimeChart(id="monitor-history")
                history.border_title = "Stored checks over time (%)"
                yield history
                metric = TimeChart(id="monitor-metric")
                metric.border_title = "Live metric (haj feedback)"
                yield metric
                with VerticalScroll(id="monitor-diagnosis-box") as box:
                    box.border_title = "Diagnosis"
                    yield Static(Text(DIAGNOSE_HINT, style="italic"), id="monitor-diagnosis")
                    yield Label("", id="monitor-missing-title", classes="diagnosis-part")
                    yield FittingTable(
                        id="monitor-missing",
                        cursor_type="none",
                        zebra_stripes=True,
                        refit=lambda: self._fill("missing"),
                    )
                    yield Label("", id="monitor-timings-title", classes="diagnosis-part")
                    yield FittingTable(
                        id="monitor-timings",
                        cursor_type="none",
                        zebra_stripes=True,
                        refit=lambda: self._fill("timings"),
                    )
                    yield Label("", id="monitor-deps-title", classes="diagnosis-part")
                    yield FittingTable(
                        id="monitor-deps",
                        cursor_type="none",
                        zebra_stripes=True,
                        refit=lambda: self._fill("deps"),
                    )
        yield PipelineView(self.project, id="monitor-pipeline")

    def on_mount(self) -> None:
        self._ready = True
        self._show_diagnosis(None)
        self._show()
        self._timer = self.set_interval(POLL_SECONDS, self._tick, name="monitor-poll")
        self._poll_now()

    def refresh_data(self) -> None:
        """Shown again: read the project now (the store may have changed elsewhere)."""
        if not self._ready:  # on_mount reads
            return
        self._poll_failed = False
        if self.pipeline_shown:
            self.query_one(PipelineView).refresh_data()
            return
        self._poll_now()

    # ---- keys ------------------------------------------------------------------------------
    @property
    def pipeline_shown(self) -> bool:
        return self.has_class("pipeline")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """m is off while a check runs or when there is no champion to compare with; i while a
        diagnosis runs. The drift keys (m i o) work in the Drift view, the pipeline's (R x o)
        in the Pipeline view; x only while a run started here goes on."""
        pipeline = self.pipeline_shown
        if action in ("check", "diagnose", "choose_source", "show_pipeline") and pipeline:
            return False
        if action in ("edit_schedule", "run_pipeline", "cancel_pipeline", "show_drift"):
            if not pipeline:
                return False
            view = self.query_one(PipelineView)
            if action == "run_pipeline":
                return not view.running
            if action == "cancel_pipeline":
                return view.running
        if action == "check":
            return not self.checking and (self.overview is None or bool(self.overview.champion))
        if action == "diagnose":
            return not self.diagnosing
        return True

    def action_show_pipeline(self) -> None:
        """P: the Pipeline view (runs, run now, schedule, notifications)."""
        self._show_view(pipeline=True)

    def action_show_drift(self) -> None:
        """P again: back to the drift and quality view."""
        self._show_view(pipeline=False)

    def _show_view(self, pipeline: bool) -> None:
        self.set_class(pipeline, "pipeline")
        for part in self.DRIFT_PARTS:  # hidden parts take no focus (the screen's focus_main)
            self.query_one(part).disabled = pipeline
        view = self.query_one(PipelineView)
        if pipeline:
            view.refresh_data()
            view.focus_main()
        else:
            self._poll_now()
            self.query_one("#monitor-quality-box").focus()
        self.refresh_bindings()

    def action_run_pipeline(self) -> None:
        """R: run the pipeline now, each step shown as it goes."""
        self.query_one(PipelineView).run_now()

    def action_cancel_pipeline(self) -> None:
        self.query_one(PipelineView).cancel()

    def action_edit_schedule(self) -> None:
        """o (Pipeline view): into the schedule field; enter saves it."""
        self.query_one(PipelineView).edit_schedule()

    def palette_commands(self) -> list[Command]:
        commands: list[Command] = []
        if self.check_action("show_pipeline", ()):
            commands.append(
                (
                    "Monitor: pipeline view (P)",
                    self.action_show_pipeline,
                    "Runs, schedule, notifications",
                )
            )
        if self.check_action("show_drift", ()):
            commands.append(
                ("Monitor: drift view (P)", self.action_show_drift, "Drift and quality")
            )
        if self.check_action("run_pipeline", ()):
            commands.append(
                ("Monitor: run the pipeline now (R)", self.action_run_pipeline, "Its steps, live")
            )
        if self.check_action("check", ()):
            commands.append(
                ("Monitor: check drift (m)", self.action_check, "Drift and quality, stored")
            )
        if self.check_action("diagnose", ()):
            commands.append(
                ("Monitor: diagnose (i)", self.action_diagnose, "Missing values, timings, deps")
            )
        return commands

    def _source(self) -> str | None:
        return self.query_one("#monitor-source", Input).value.strip() or None

    def action_choose_source(self) -> None:
        """o: into the source field (enter checks, escape leaves it)."""
        self.query_one("#monitor-source", Input).focus()

    @on(Input.Submitted, "#monitor-source")
    def _source_submitted(self) -> None:
        self.query_one("#monitor-quality-box").focus()  # out of the field: keys work again
        self.action_check()

    @on(Button.Pressed, "#monitor-check")
    def action_check(self) -> None:
        """m: a drift and quality report of the source, stored for the history."""
        if self.checking:
            return
        if self.overview is not None and not self.overview.champion:
            self.app.notify(NO_CHAMPION, severity="warning")
            return
        self.checking = True
        self._busy()
        source = self._source()
        self.query_one("#monitor-state", Label).update(
            Text(f"checking {source or 'the default source'}…", style="yellow")
        )
        self._check(source)

    @on(Button.Pressed, "#monitor-diagnose")
    def action_diagnose(self) -> None:
        """i: the project's health; the package index is asked (seconds, or its note)."""
        if self.diagnosing:
            return
        self.diagnosing = True
        self._busy()
        self.query_one("#monitor-diagnosis", Static).update(
            Text(
                "Diagnosing… asking the package index for newer releases (up to 30 s; "
                "offline, a note and the installed versions).",
                style="italic yellow",
            )
        )
        self._diagnose()

    def _busy(self) -> None:
        self.query_one("#monitor-check", Button).disabled = self.checking
        self.query_one("#monitor-diagnose", Button).disabled = self.diagnosing
        self.refresh_bindings()

    # ---- workers ---------------------------------------------------------------------------
    @haj_work(group="monitor-check", failed=CheckFailed)
    def _check(self, source: str | None) -> Checked:
        return Checked(self.project.monitor(source, save=True))

    @haj_work(group="monitor-diagnose", failed=DiagnoseFailed)
    def _diagnose(self) -> Diagnosed:
        return Diagnosed(self.project.diagnose())

    def _tick(self) -> None:
        """The live report, while the Drift view is on screen (P's view polls on its own)."""
        if self.pipeline_shown:
            return
        if self.is_on_screen and not self.checking and not self._poll_failed:
            self._poll(self._stamp, self._source() in (None, "live"))

    def _poll_now(self) -> None:
        """Read everything again (the overview too), whatever changed."""
        self._poll(None, self._source() in (None, "live") and not self.checking)

    @haj_work(group="monitor-poll", failed=PollFailed)
    def _poll(self, stamp: Stamp | None, live_source: bool) -> Polled:
        """The server, the overview when the store changed since `stamp` (None: read it), and
        a live report (not stored) when a server runs and the source is live or the default."""
        try:
            server = self.project.server()
            new_stamp, changed = self.project.changed_since(stamp)
            overview = None
            if stamp is None or changed & {"store", "config"}:
                overview = self._overview()
        except (HajError, OSError) as exc:  # every few seconds: a state, not a popup
            return Polled(None, stamp, problem=str(exc))
        live = problem = None
        if server is not None and live_source:
            try:
                live = self.project.monitor("live", save=False)
            except HajError as exc:
                problem = exc.message
        return Polled(server, new_stamp, overview, live, problem)

    def _overview(self) -> Overview:
        status = self.project.status()
        champion = None
        if status.champion is not None:
            champion = status.champion.model or status.champion.run_id
        metric = str(self.project.config()["training"]["metric"])
        return Overview(
            has_data=status.data.raw_versions > 0,
            champion=champion,
            history=self.project.monitor_history(HISTORY),
            metric=feedback_metric(self.project.evaluations(), metric),
        )

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Polled() as polled:
                self._polled(polled)
            case Checked(result=result):
                self.checking = False
                self._busy()
                self.result, self.live = result, False
                self.app.notify(result.report.verdict(), title="Drift check stored")
                self._poll(None, False)  # its history and the overview
                self._show()
            case Diagnosed(diagnosis=diagnosis):
                self.diagnosing = False
                self._busy()
                self._show_diagnosis(diagnosis)
            case _:
                return
        message.stop()

    @on(CheckFailed)
    def _check_failed(self, message: CheckFailed) -> None:
        message.stop()
        self.checking = False
        self._busy()
        self._show()

    @on(DiagnoseFailed)
    def _diagnose_failed(self, message: DiagnoseFailed) -> None:
        message.stop()
        self.diagnosing = False
        self._busy()
        self._show_diagnosis(self.diagnosis)

    @on(PollFailed)
    def _poll_failed_once(self, message: PollFailed) -> None:
        message.stop()
        self._poll_failed = True

    def _polled(self, polled: Polled) -> None:
        self.server = polled.server
        self._stamp = polled.stamp
        if polled.overview is not None:
            self.overview = polled.overview
            self.refresh_bindings()
        if polled.live is not None and not self.checking:
            self.result, self.live = polled.live, True
        self._problem = polled.problem
        self._show()

    # ---- display ---------------------------------------------------------------------------
    def _show(self) -> None:
        if not self._ready:
            return
        self._show_state()
        self._show_banner()
        self._show_drift()
        self._show_quality()
        self._show_history()

    def _show_state(self) -> None:
        if self.checking:
            return  # "checking…" stays until the report is in
        state = self.query_one("#monitor-state", Label)
        problem = self._problem
        if self.server is not None:
            if problem:
                state.update(Text(f"◌ live: {problem}", style="yellow"))
            else:
                state.update(
                    Text.assemble(
                        ("● live", "bold green"),
                        f": refreshed every {POLL_SECONDS:g} s, not stored",
                    )
                )
        elif problem:
            state.update(Text(problem, style="red"))
        else:
            state.update(Text("○ no server", style="dim"))

    def _empty(self) -> str | None:
        """What to do first, when a check cannot run yet."""
        overview = self.overview
        if overview is None or overview.champion:
            return None
        return NO_CHAMPION if overview.has_data else NO_DATA

    def _show_banner(self) -> None:
        banner = self.query_one("#monitor-banner", Static)
        banner.remove_class("drift", "small", "ok")
        empty = self._empty()
        if empty:
            banner.update(Text(empty, style="bold"))
            return
        if self.result is not None:
            text, kind = banner_of(self.result, self.live)
        elif self.overview is not None and self.overview.history:
            text, kind = stored_banner(self.overview.history[-1])
        else:
            banner.update(
                Text("No check yet: press m to compare current inputs with the training data.")
            )
            return
        banner.update(text)
        banner.add_class(kind)

    def _show_drift(self) -> None:
        chart = self.query_one("#monitor-drift", ThresholdChart)
        empty = self._empty()
        if empty or self.result is None:
            chart.border_title = "Drift per feature"
            chart.border_subtitle = ""
            chart.set_bars(
                [], threshold=0.0, empty=empty or "Press m to check drift feature by feature."
            )
            return
        report = self.result.report
        scale = drift_scale(report.features)
        chart.border_title = scale.title
        drifted = len(report.drifted)
        chart.border_subtitle = f"{drifted} of {len(report.features)} drifted" if scale.bars else ""
        chart.set_bars(
            scale.bars,
            threshold=scale.threshold,
            ticks=scale.ticks,
            xlabel=scale.xlabel,
            empty=report.verdict() if report.too_small else "No feature could be tested.",
        )

    def _show_quality(self) -> None:
        quality = self.query_one("#monitor-quality", Static)
        empty = self._empty()
        if empty or self.result is None:
            quality.update(
                Text(
                    empty
                    or "Press m to check: missing values, unseen categories, values outside "
                    "the training range, constant columns, duplicate rows.",
                    style="italic",
                )
            )
            return
        quality.update(Text("\n").join(quality_lines(self.result.report)))

    def _show_history(self) -> None:
        overview = self.overview
        history = overview.history if overview else []
        chart = self.query_one("#monitor-history", TimeChart)
        series, xlabel = history_series(history)
        if len(history) == 1:
            empty = "One stored check so far: press m again to start the trend."
        elif self._empty():
            empty = str(self._empty())
        else:
            empty = "No stored check yet: press m (every check is kept for this chart)."
        chart.set_series(series, title="", unit="%", empty=empty, xlabel=xlabel)
        chart.border_subtitle = f"{len(history)} checks" if history else ""
        metric_chart = self.query_one("#monitor-metric", TimeChart)
        found = overview.metric if overview else None
        metric_chart.set_class(found is not None, "shown")
        if found is None:
            metric_chart.set_series({})
            return
        name, points = found
        xs, xlabel = time_axis([when for when, _ in points], "the last feedback")
        only = (
            f"One feedback so far: {name} {metric_text(name, points[0][1])} "
            f"({short_time(points[0][0])})."
        )
        metric_chart.set_series(
            {name: (xs, [value for _, value in points])},
            unit=name,
            empty=only,
            xlabel=xlabel,
        )
        metric_chart.border_title = f"Live {name} (haj feedback)"

    # ---- the diagnosis ---------------------------------------------------------------------
    def _show_diagnosis(self, diagnosis: Any) -> None:
        self.diagnosis = diagnosis
        head = self.query_one("#monitor-diagnosis", Static)
        parts = ("missing", "timings", "deps")
        for part in parts:
            self.query_one(f"#monitor-{part}-title").display = diagnosis is not None
            self.query_one(f"#monitor-{part}").display = False
        if diagnosis is None:
            head.update(Text(DIAGNOSE_HINT, style="italic"))
            self._tables = _Tables()
            return
        box = self.query_one("#monitor-diagnosis-box")
        box.border_title = f"Diagnosis at {short_time(diagnosis.at)}"
        head.update(self._diagnosis_head(diagnosis))
        self._tables = _Tables(
            missing=self._missing_rows(diagnosis),
            timings=self._timing_rows(diagnosis),
            deps=self._dependency_rows(diagnosis),
        )
        for part in parts:
            self._fill(part)

    @staticmethod
    def _diagnosis_head(diagnosis: Any) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        champion = diagnosis.champion
        if champion is None:
            table.add_row("champion", Text("none: train (t) and crown (c)", style="italic"))
        else:
            score = (
                f", {champion.metric} {metric_text(champion.metric, champion.value)}"
                if champion.metric and champion.value is not None
                else ""
            )
            age = duration_text(champion.age_seconds)
            table.add_row("champion", f"{champion.label}{score}, crowned {age} ago")
        notes = diagnosis.notes
        if "predictions" in notes:
            table.add_row("predictions", Text(notes["predictions"], style="italic"))
        else:
            served = sum(d.served for d in diagnosis.predictions)
            batch = sum(d.batch_logged for d in diagnosis.predictions)
            days = len(diagnosis.predictions)
            table.add_row(
                "predictions",
                f"{served:,} served, {batch:,} batch-logged over {days} days "
                f"({served / max(days, 1):,.0f} served a day)",
            )
        return table

    def _missing_rows(self, diagnosis: Any) -> tuple[list[str], list[list[Any]]]:
        data, live, notes = diagnosis.data_missing, diagnosis.live_missing, diagnosis.notes
        parts = [f"{data.source} ({data.rows:,} rows)" if data else notes.get("data", "no data")]
        parts.append(f"live: {live.rows:,} rows" if live else notes.get("live", "no live traffic"))
        self.query_one("#monitor-missing-title", Label).update(
            "Missing values: " + "; ".join(parts)
        )
        titles = ["column"]
        if data:
            titles.append("data missing")
        if live:
            titles.append("live missing")
        in_data = {c.column: c for c in data.columns} if data else {}
        in_live = {c.column: c for c in live.columns} if live else {}
        rows = []
        for name in [*in_data, *(n for n in in_live if n not in in_data)]:
            row: list[Any] = [name]
            for source, present in ((in_data, data), (in_live, live)):
                if present:
                    entry = source.get(name)
                    if entry is None:
                        row.append(Text("-", justify="right"))
                    else:
                        row.append(
                            Text(
                                f"{entry.count:,} ({_share(entry.share)})",
                                style="yellow" if entry.count else "dim",
                                justify="right",
                            )
                        )
            rows.append(row)
        return (titles, rows) if rows else ([], [])

    def _timing_rows(self, diagnosis: Any) -> tuple[list[str], list[list[Any]]]:
        title = self.query_one("#monitor-timings-title", Label)
        if not diagnosis.timings:
            title.update(f"Step timings: {diagnosis.notes.get('timings', 'none')}")
            return [], []
        title.update("Step timings")
        rows: list[list[Any]] = []
        for t in diagnosis.timings:
            what = t.subject if t.status in (None, "finished") else f"{t.subject} ({t.status})"
            rows.append([
                t.step,
                what,
                Text(duration_text(t.seconds) or "-", justify="right"),
                Text(duration_text(t.fit_seconds), justify="right"),
            ])  # fmt: skip
        return ["step", "what", "time", "fit"], rows

    def _dependency_rows(self, diagnosis: Any) -> tuple[list[str], list[list[Any]]]:
        deps = diagnosis.dependencies
        title = self.query_one("#monitor-deps-title", Label)
        missing = f" Not installed: {', '.join(deps.not_installed)}." if deps.not_installed else ""
        if not deps.index_checked:
            title.update(
                Text.assemble(
                    (f"Dependencies: {deps.note}", "yellow"),
                    f" ({len(deps.packages)} installed).{missing}",
                )
            )
            rows = [[p.package, Text(p.installed or "-", justify="right")] for p in deps.packages]
            return ["package", "installed"], rows
        if not deps.outdated:
            title.update(f"Dependencies: all {len(deps.packages)} up to date.{missing}")
            return [], []
        title.update(
            Text.assemble(
                (f"Outdated dependencies: {len(deps.outdated)}", "yellow"),
                f" of {len(deps.packages)}.{missing}",
            )
        )
        rows = [
            [
                p.package,
                Text(p.installed or "-", justify="right"),
                Text(p.latest or "-", style="green", justify="right"),
            ]
            for p in deps.outdated
        ]
        return ["package", "installed", "latest"], rows

    def _fill(self, part: str) -> None:
        """One diagnosis table with the columns that fit its width (the first always)."""
        titles, rows = getattr(self._tables, part)
        table = self.query_one(f"#monitor-{part}", DataTable)
        table.clear(columns=True)
        table.display = bool(rows)
        if not rows:
            return
        widths = [
            max([len(title), *(cell_width(row[i]) for row in rows)])
            for i, title in enumerate(titles)
        ]
        shown = columns_that_fit(widths, table.size.width - 1, required=1)
        for i in shown:
            table.add_column(titles[i], key=str(i))
        for row in rows:
            table.add_row(*(row[i] for i in shown))
