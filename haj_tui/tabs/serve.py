"""The Serve tab: start and stop the project's server in the background, watch its counters and
latency, and send it a real row of the data.

The server is a detached process (engine.serving.control), so it outlives the app and the tab
only observes it: once a second, while the tab is on screen, a worker reads its record and its
/predictions_count, /latency and /health. An unreachable server is a state shown here, not an
error to pop up every second.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from pathlib import Path
from typing import Any

from rich.json import JSON
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Label, Sparkline, Static

from engine import data
from engine.errors import HajError, ServingError
from engine.project import Project
from haj_tui.messages import WorkFailed, WorkFinished
from haj_tui.widgets.tab_focus import NoFocusWhileHidden
from haj_tui.widgets.work import ReportsWorkerErrors

POLL_SECONDS = 1.0
HISTORY = 60  # latency points kept for the sparklines


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


class ServeTab(NoFocusWhileHidden, ReportsWorkerErrors, Vertical):
    """The project's prediction server: state, counters, latency, a test request."""

    BINDINGS = [Binding("e", "test_request", "Test request")]

    def __init__(self, root: Path, project: Project) -> None:
        super().__init__()
        self.root = root
        self.project = project
        self.record: dict[str, Any] | None = None
        self.stats: dict[str, Any] | None = None
        self.unreachable: str | None = None
        self._p50: deque[float] = deque(maxlen=HISTORY)
        self._p95: deque[float] = deque(maxlen=HISTORY)
        self._row = 0
        self._timer: Timer | None = None
        self._switching = False
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
                latency.border_title = "Latency, recent requests"
                yield Label("p50 -", id="serve-p50-label", classes="spark-label")
                yield Sparkline([], id="serve-p50")
                yield Label("p95 -", id="serve-p95-label", classes="spark-label")
                yield Sparkline([], id="serve-p95")
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
        self._poll()

    # ---- polling -----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.is_on_screen and not self._switching:
            self._poll()

    @work(thread=True, exclusive=True, exit_on_error=False, group="serve-poll", name="poll")
    def _poll(self) -> dict[str, Any]:
        from engine.serving import control

        try:
            record = control.server_status(self.project)
        except (HajError, OSError, sqlite3.Error) as exc:  # once a second: a state, not a popup
            return {"record": None, "unreachable": str(exc)}
        if record is None:
            return {"record": None}
        try:
            return {"record": record, "stats": control.fetch_stats(record)}
        except ServingError as exc:
            return {"record": record, "unreachable": exc.message}

    def _polled(self, result: dict[str, Any]) -> None:
        self.record = result.get("record")
        self.stats = result.get("stats")
        self.unreachable = result.get("unreachable")
        latency = ((self.stats or {}).get("latency") or {}).get("window", {})
        if self.record is None:
            self._p50.clear()
            self._p95.clear()
        elif latency.get("p50_ms") is not None:
            self._p50.append(float(latency["p50_ms"]))
            self._p95.append(float(latency["p95_ms"]))
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
            state.update(Text(f"◌ not answering at {self.record['url']}", style="yellow"))
        else:
            state.update(
                Text.assemble(
                    ("● running ", "bold green"),
                    (self.record["url"], "underline"),
                    f"  pid {self.record['pid']}",
                )
            )
        self.query_one("#serve-counters", Static).update(self._counters())
        latency = ((self.stats or {}).get("latency") or {}).get("window", {})
        self.query_one("#serve-p50-label", Label).update(f"p50 {_ms(latency.get('p50_ms'))}")
        self.query_one("#serve-p95-label", Label).update(f"p95 {_ms(latency.get('p95_ms'))}")
        # A fixed-length timeline (zeros before the first request) so one point is not one
        # bar stretched over the whole width, and the scale starts at 0 ms.
        for name, points in (("#serve-p50", self._p50), ("#serve-p95", self._p95)):
            padding = [0.0] * (HISTORY - len(points)) if points else []
            self.query_one(name, Sparkline).data = padding + list(points)

    def _counters(self) -> Table | Text:
        if self.record is None:
            try:
                serving = self.project.read_config()["serving"]
            except HajError as exc:
                return Text(exc.message, style="red")
            return Text(
                f"Not running. Press s to serve the champion at "
                f"http://{serving['host']}:{serving['port']} (see Config).",
                style="italic",
            )
        if self.stats is None:
            return Text(self.unreachable or "Waiting for the server…", style="italic")
        counts = self.stats.get("counts") or {}
        health = self.stats.get("health") or {}
        window = (self.stats.get("latency") or {}).get("window", {})
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        table.add_row("model", str(health.get("model") or self.record.get("model") or "-"))
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
        if self._switching:
            return
        self._switching = True
        self.query_one("#serve-request-box").focus()  # so e (test request) works next
        self.query_one("#serve-toggle", Button).disabled = True
        if self.record is None:
            self.query_one("#serve-state", Label).update(Text("starting…", style="yellow"))
            self._start()
        else:
            self.query_one("#serve-state", Label).update(Text("stopping…", style="yellow"))
            self._stop()

    @work(thread=True, exclusive=True, exit_on_error=False, group="serve", name="start")
    def _start(self) -> dict[str, Any]:
        from engine.serving import control

        serving = self.project.read_config()["serving"]
        return control.start_detached(self.project, host=serving["host"], port=serving["port"])

    @work(thread=True, exclusive=True, exit_on_error=False, group="serve", name="stop")
    def _stop(self) -> bool:
        from engine.serving import control

        return control.stop(self.project)

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
        self._send(self.record["url"], self._row)
        self._row += 1

    @work(thread=True, exclusive=True, exit_on_error=False, group="serve-test", name="test")
    def _send(self, url: str, index: int) -> dict[str, Any]:
        import httpx

        record = data.sample_record(self.project, index)
        started = time.perf_counter()
        try:
            response = httpx.post(f"{url}/predict", json=record, timeout=10)
        except httpx.HTTPError as exc:
            raise ServingError(f"the server at {url} did not answer: {exc}") from None
        elapsed = (time.perf_counter() - started) * 1000
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return {
            "index": index,
            "request": record,
            "status": response.status_code,
            "ms": elapsed,
            "answer": answer,
        }

    def _show_test(self, result: dict[str, Any]) -> None:
        self.query_one("#serve-request", Static).update(JSON(json.dumps(result["request"])))
        self.query_one(
            "#serve-request-box"
        ).border_title = f"Test request: row {result['index'] + 1}"
        answer = result["answer"]
        body = JSON(json.dumps(answer)) if not isinstance(answer, str) else Text(answer)
        self.query_one("#serve-response", Static).update(body)
        box = self.query_one("#serve-response-box")
        box.border_title = f"Answer: HTTP {result['status']} in {result['ms']:.0f} ms"
        box.set_class(result["status"] >= 400, "error")

    # ---- worker outcomes ---------------------------------------------------------------------
    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        result: Any = message.result
        if message.task == "poll":
            self._polled(result)
        elif message.task == "start":
            self._switched()
            self.app.notify(f"Server started at {result['url']}")
            self._poll()
        elif message.task == "stop":
            self._switched()
            self._polled({"record": None})
            if not result:
                self.app.notify("The server was not running.")
        elif message.task == "test":
            self._show_test(result)
        else:
            return
        message.stop()

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        if message.task in ("start", "stop"):
            self._switched()
            self._poll()
        elif message.task == "test":
            error = message.error
            text = error.message if isinstance(error, HajError) else str(error)
            self.query_one("#serve-response", Static).update(Text(text, style="bold red"))
        elif message.task != "poll":
            return
        message.stop()

    def _switched(self) -> None:
        self._switching = False
        self.query_one("#serve-toggle", Button).disabled = False
