"""The Serve tab: start and stop the project's server in the background, watch its counters and
latency, and send it a real row of the data.

The server is a detached process (the engine API's `start_server`), so it outlives the app and
the tab only observes it: once a second, while the tab is on screen, a worker reads its record
and its /predictions_count, /latency and /health (`server()`, `server_stats()`). An unreachable
server is a state shown here, not an error to pop up every second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.json import JSON
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Label, Static

from engine.api import PredictResult, ServerRecord, ServerStats, TestReply
from engine.errors import HajError, ServingError
from haj_tui import hints
from haj_tui.messages import WorkFailed, WorkFinished
from haj_tui.widgets.charts import TimeChart
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI

POLL_SECONDS = 1.0


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


@dataclass(frozen=True)
class Polled:
    """One look at the server: its record (None: not running), its figures when it answered,
    else why not."""

    record: ServerRecord | None
    stats: ServerStats | None = None
    unreachable: str | None = None


@dataclass(frozen=True)
class Stopped:
    """The stop worker's outcome: whether a server was running."""

    was_running: bool


class SwitchFailed(WorkFailed):
    """Starting or stopping the server failed (the app has shown why)."""


class PollFailed(WorkFailed):
    """Reading the server's state failed unexpectedly (the app has shown it, once): the ticks
    stop until the tab is shown again, so one fault is not a popup every second."""


class RequestFailed(WorkFailed):
    """The test request failed (the app has shown why; the Answer panel says it too)."""


class ServeTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """The project's prediction server: state, counters, latency, a test request."""

    BINDINGS = [
        Binding("e", "test_request", "Test request"),
        Binding("o", "score_file", "Score a file"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.record: ServerRecord | None = None
        self.stats: ServerStats | None = None
        self.unreachable: str | None = None
        self._row = 0
        self._timer: Timer | None = None
        self._switching = False
        self._poll_failed = False
        self._ready = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Start server (s)", id="serve-toggle", compact=True, variant="primary")
            yield Button("Send test request (e)", id="serve-test", compact=True)
            yield Label("", id="serve-state", classes="tab-state")
        with Horizontal(id="serve-top"):
            counters = Static("", id="serve-counters")
            counters.border_title = "Counters"
            yield counters
            with Vertical(id="serve-latency") as latency:
                latency.border_title = "Latency and requests, last 10 min"
                yield Label("p50 -  p95 -", id="serve-p50-label", classes="spark-label")
                yield TimeChart(id="serve-latency-chart")
                yield TimeChart(id="serve-rate-chart")
        with Horizontal(id="serve-test-box"):
            with VerticalScroll(id="serve-request-box") as request:
                request.border_title = "Test request"
                yield Static(
                    Text("Press e to post a real row of the data to /predict.", style="italic"),
                    id="serve-request",
                )
            with VerticalScroll(id="serve-response-box") as response:
                response.border_title = "Answer"
                yield Static("", id="serve-response")

    def on_mount(self) -> None:
        self._ready = True
        self._show()
        self._timer = self.set_interval(POLL_SECONDS, self._tick)
        self._poll()

    def refresh_data(self) -> None:
        """Shown again: read the server's state now rather than at the next tick."""
        if not self._ready:  # shown before its widgets are mounted: on_mount will read
            return
        self._poll_failed = False
        self._poll()

    # ---- polling -----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.is_on_screen and not self._switching and not self._poll_failed:
            self._poll()

    @haj_work(group="serve-poll", failed=PollFailed)
    def _poll(self) -> Polled:
        try:
            record = self.project.server()
        except (HajError, OSError) as exc:  # once a second: a state, not a popup
            return Polled(None, unreachable=str(exc))
        if record is None:
            return Polled(None)
        try:
            return Polled(record, stats=self.project.server_stats(record))
        except ServingError as exc:
            return Polled(record, unreachable=exc.message)

    def _polled(self, result: Polled) -> None:
        if self._switching:  # a poll sent before s: "stopping…" stays until the stop is done
            return
        self.record = result.record
        self.stats = result.stats
        self.unreachable = result.unreachable
        self._show()

    # ---- display -----------------------------------------------------------------------------
    def _show(self) -> None:
        state = self.query_one("#serve-state", Label)
        toggle = self.query_one("#serve-toggle", Button)
        toggle.label = "Stop server (s)" if self.record else "Start server (s)"
        toggle.variant = "error" if self.record else "primary"
        self.query_one("#serve-test", Button).disabled = self.record is None
        if self.record is None:
            state.update(Text("○ stopped", style="dim"))
        elif self.unreachable:
            state.update(Text(f"◌ not answering at {self.record.url}", style="yellow"))
        else:
            state.update(
                Text.assemble(
                    ("● running ", "bold green"),
                    (self.record.url, "underline"),
                    f"  pid {self.record.pid}",
                )
            )
        self.query_one("#serve-counters", Static).update(self._counters())
        latency = self.stats.window if self.stats else {}
        self.query_one("#serve-p50-label", Label).update(
            f"p50 {_ms(latency.get('p50_ms'))}  p95 {_ms(latency.get('p95_ms'))}"
        )
        # the server keeps one point a second (GET /history): the charts show the last ten
        # minutes whenever the tab is opened, not only what this app saw
        stats = self.stats
        self.query_one("#serve-latency-chart", TimeChart).set_series(
            stats.latency_series() if stats else {},
            title="latency",
            unit="ms",
            empty="No answered request yet: press e to send one.",
        )
        self.query_one("#serve-rate-chart", TimeChart).set_series(
            stats.rate_series() if stats else {},
            title="requests per second",
            unit="req/s",
            empty="The server's request rate shows here once it runs.",
        )

    def _counters(self) -> Table | Text:
        if self.record is None:
            try:
                address = self.project.serving_address()
            except HajError as exc:
                return Text(exc.message, style="red")
            return Text(
                f"Not running. Press s to serve the champion at {address} (see Config).",
                style="italic",
            )
        if self.stats is None:
            return Text(self.unreachable or "Waiting for the server…", style="italic")
        counts = self.stats.counts
        health = self.stats.health
        window = self.stats.window
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        table.add_row("model", str(health.get("model") or self.record.model or "-"))
        if health.get("metric") and health.get("score") is not None:
            table.add_row("score", f"{health['metric']}={float(health['score']):.4f}")
        table.add_row("predictions", str(counts.get("predictions", 0)))
        table.add_row("requests", str(counts.get("requests", 0)))
        table.add_row("errors", str(counts.get("errors", 0)))
        table.add_row("mean / p99", f"{_ms(window.get('mean_ms'))} / {_ms(window.get('p99_ms'))}")
        return table

    # ---- start / stop ------------------------------------------------------------------------
    @on(Button.Pressed, "#serve-toggle")
    def action_toggle_server(self) -> None:
        """Start or stop, as the server's state is now: read again in the worker first (a
        freshly opened tab has not polled yet, and another haj may have started or stopped it)."""
        if self._switching:
            return
        self._switching = True
        self.query_one("#serve-request-box").focus()  # so e (test request) works next
        self.query_one("#serve-toggle", Button).disabled = True
        self.query_one("#serve-state", Label).update(
            Text("stopping…" if self.record else "starting…", style="yellow")
        )
        self._toggle()

    @haj_work(group="serve", failed=SwitchFailed)
    def _toggle(self) -> ServerRecord | Stopped:
        if self.project.server() is None:
            return self.project.start_server()
        return Stopped(self.project.stop_server())

    # ---- test request ------------------------------------------------------------------------
    @on(Button.Pressed, "#serve-test")
    def action_test_request(self) -> None:
        if self.record is None:
            if self._switching:
                self.app.notify("The server is starting: try again in a moment.")
            else:
                self.app.notify("The server is not running: press s to start it.")
            return
        self.query_one("#serve-response", Static).update(Text("sending…", style="italic"))
        self._send(self.record, self._row)
        self._row += 1

    @haj_work(group="serve-test", failed=RequestFailed)
    def _send(self, server: ServerRecord, index: int) -> TestReply:
        return self.project.test_request(server, index)

    def _show_test(self, reply: TestReply) -> None:
        self.query_one("#serve-request", Static).update(JSON(json.dumps(reply.request)))
        self.query_one("#serve-request-box").border_title = f"Test request: row {reply.index + 1}"
        answer = reply.answer
        body = JSON(json.dumps(answer)) if not isinstance(answer, str) else Text(answer)
        self.query_one("#serve-response", Static).update(body)
        box = self.query_one("#serve-response-box")
        box.border_title = f"Answer: HTTP {reply.status} in {reply.ms:.0f} ms"
        box.set_class(not reply.ok, "error")

    # ---- batch scoring: a file to an output path (haj predict) --------------------------------
    def action_score_file(self) -> None:
        """Score a file (or a data version) with the champion into an output file (o): the
        rows in the data's own shape, checked and processed as the server does."""
        from haj_tui.widgets.modals import PromptModal

        def output_chosen(source: str, output: str | None) -> None:
            if output:
                self.app.notify(f"Scoring {source} → {output}…")
                self._score_file(source, output)

        def source_chosen(source: str | None) -> None:
            if not source:
                return
            stem = Path(source).expanduser()
            default = str(stem.with_name(stem.stem + ".scored.csv")) if stem.suffix else ""
            self.app.push_screen(
                PromptModal(
                    "Score a file",
                    "Write the predictions to (.csv, or .jsonl for JSON lines)",
                    value=default,
                    confirm="Score",
                ),
                lambda output: output_chosen(source, output),
            )

        self.app.push_screen(
            PromptModal(
                "Score a file",
                "A CSV, JSON or JSON-lines file (or a data version id) in the data's own shape",
                confirm="Next",
            ),
            source_chosen,
        )

    @haj_work(group="serve-score")
    def _score_file(self, source: str, output: str) -> PredictResult:
        return self.project.predict(source, Path(output).expanduser())

    def _scored_file(self, result: PredictResult) -> None:
        said = (
            f"Scored {result.rows:,} rows with {result.model} in {result.seconds:.1f} s → "
            f"{result.output}"
        )
        if result.rejected:
            said += f" ({result.rejected:,} refused: {result.rejects})"
        self.app.notify(said, timeout=10)

    # ---- worker outcomes ---------------------------------------------------------------------
    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Polled() as polled:
                self._polled(polled)
            case ServerRecord(url=url):
                self._switched()
                self.app.notify(f"Server started at {url}")
                self._poll()
            case Stopped(was_running=was_running):
                self._switched()
                self._polled(Polled(None))
                if not was_running:
                    self.app.notify("The server was not running.")
            case TestReply() as reply:
                self._show_test(reply)
            case PredictResult() as scored:
                self._scored_file(scored)
            case _:
                return
        message.stop()

    @on(SwitchFailed)
    def _switch_failed(self, message: SwitchFailed) -> None:
        message.stop()
        self._switched()
        self._poll()

    @on(PollFailed)
    def _poll_failed_once(self, message: PollFailed) -> None:
        message.stop()
        self._poll_failed = True

    @on(RequestFailed)
    def _test_failed(self, message: RequestFailed) -> None:
        message.stop()
        error = message.error
        text = hints.render(error) if isinstance(error, HajError) else str(error)
        self.query_one("#serve-response", Static).update(Text(text, style="bold red"))

    def _switched(self) -> None:
        self._switching = False
        self.query_one("#serve-toggle", Button).disabled = False
