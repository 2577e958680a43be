"""The Container tab: build the champion's image with a live log, list the project's images, start
and stop its container, read the container's log.

Everything Docker-related runs in thread workers (engine.container), so a slow or absent engine
never freezes the app; "no Docker engine" is a state shown in the tab, not an error that pops up
on every refresh. The build settings start as the project's last build was made; the Deploy tab
builds with them too, when it must.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select

from engine import events
from engine.container import DEFAULT_BASE_IMAGE
from engine.errors import HajError
from engine.project import Project
from engine.units import human_size
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.work import ReportsWorkerErrors


class ContainerTab(ReportsWorkerErrors, Vertical):
    """Build (b), start / stop (k), container log (l), refresh (f)."""

    BINDINGS = [
        Binding("k", "toggle_container", "Start/stop"),
        Binding("l", "show_logs", "Container log"),
        Binding("f", "refresh", "Refresh"),
    ]

    def __init__(self, root: Path, project: Project) -> None:
        super().__init__()
        self.root = root
        self.project = project
        self.info: dict[str, Any] | None = None
        self.docker_problem: str | None = None
        self.building = False
        self.switching = False

    def _initial_settings(self) -> dict[str, Any]:
        """As the last build was made; without one, the engine this app was started for
        (HAJ_BASE_IMAGE: start-dockerd.sh's local base, on an engine with no bridge)."""
        from engine.container.image import last_build

        try:
            last = last_build(self.project) or {}
        except Exception:  # an unreadable store: the defaults, the build will say what is wrong
            last = {}
        if last:
            return {
                "base_image": last.get("base_image") or DEFAULT_BASE_IMAGE,
                "wheelhouse": bool(last.get("wheelhouse")),
                "network": last.get("network") or "bridge",
            }
        local = os.environ.get("HAJ_BASE_IMAGE")
        return {
            "base_image": local or DEFAULT_BASE_IMAGE,
            "wheelhouse": True,
            "network": "host" if local else "bridge",
        }

    def build_settings(self) -> dict[str, Any]:
        """The settings shown, for a build (here, or the one a deploy needs)."""
        network = str(self.query_one("#container-network", Select).value)
        return {
            "base_image": self.query_one("#container-base", Input).value.strip() or None,
            "wheelhouse": self.query_one("#container-wheelhouse", Checkbox).value,
            "network": network if network == "host" else None,
        }

    def compose(self) -> ComposeResult:
        settings = self._initial_settings()
        with Horizontal(classes="toolbar"):
            yield Button("Build image (b)", id="container-build", compact=True, variant="primary")
            yield Button("Start (k)", id="container-toggle", compact=True)
            yield Button("Log (l)", id="container-logs", compact=True)
            yield Label("", id="container-state", classes="tab-state")
        with Horizontal(id="container-settings"):
            yield Label("base image", classes="setting-label")
            yield Input(settings["base_image"], id="container-base", compact=True)
            yield Checkbox(
                "wheelhouse", value=settings["wheelhouse"], id="container-wheelhouse", compact=True
            )
            yield Label("network", classes="setting-label")
            yield Select(
                [("bridge", "bridge"), ("host", "host")],
                value=settings["network"],
                allow_blank=False,
                id="container-network",
                compact=True,
            )
            yield Label("port", classes="setting-label")
            yield Input("8080", id="container-port", compact=True, type="integer")
        table: DataTable[str] = DataTable(id="container-images", cursor_type="row")
        table.border_title = "Images"
        yield table
        log = LogView(id="container-log")
        log.border_title = "Build log"
        yield log

    def on_mount(self) -> None:
        table = self.query_one("#container-images", DataTable)
        table.add_columns("Tags", "Size", "Run", "Model", "Created")
        self._show()
        self.refresh_data()

    def refresh_data(self) -> None:
        if not self.building:
            self._load()

    def action_refresh(self) -> None:
        self.refresh_data()

    # ---- reading state -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="container-load", name="load")
    def _load(self) -> dict[str, Any]:
        from engine.container import image, runtime
        from engine.errors import ContainerError

        try:
            info = runtime.status(self.project)
            info["images"] = image.images(self.project)
            return info
        except ContainerError as exc:
            return {"problem": exc.message}

    def _loaded(self, result: dict[str, Any]) -> None:
        problem = result.get("problem")
        if problem and problem != self.docker_problem:  # the whole message, with how to fix it
            self.query_one("#container-log", LogView).write_line(problem, "bold red")
        self.docker_problem = problem
        self.info = None if self.docker_problem else result
        table = self.query_one("#container-images", DataTable)
        table.clear()
        for row in (self.info or {}).get("images", []):
            table.add_row(
                ", ".join(row["tags"]) or "<none>",
                human_size(row["size"]),
                row["run_id"] or "-",
                row["model"] or "-",
                row["created"][:19],
            )
        self._show()

    def running_container(self) -> dict[str, Any] | None:
        for row in (self.info or {}).get("containers", []):
            if row["status"] == "running":
                return row
        return None

    def _show(self) -> None:
        state = self.query_one("#container-state", Label)
        toggle = self.query_one("#container-toggle", Button)
        running = self.running_container()
        toggle.label = "Stop (k)" if running else "Start (k)"
        toggle.variant = "error" if running else "default"
        busy = self.building or self.switching
        self.query_one("#container-build", Button).disabled = busy
        toggle.disabled = busy or self.docker_problem is not None
        state.set_class(self.docker_problem is not None, "error")
        if self.building:
            return
        if self.docker_problem:
            state.update(Text("no Docker engine: see the log below"))
        elif running:
            health = f" ({running['health']})" if running["health"] else ""
            state.update(
                Text.assemble(("● running ", "bold green"), (running["url"], "underline"), health)
            )
        elif self.info and self.info.get("image"):
            image = self.info["image"]
            state.update(Text(f"○ stopped; image {image['image']} ({human_size(image['size'])})"))
        else:
            state.update(Text("No image yet: press b to build one.", style="italic"))

    # ---- build -------------------------------------------------------------------------------
    def action_build(self) -> None:
        if self.building:
            return
        self.building = True
        log = self.query_one("#container-log", LogView)
        log.clear()
        log.border_title = "Build log"
        self.query_one("#container-state", Label).update(Text("building…", style="yellow"))
        self._show()
        settings = self.build_settings()
        self._build(settings["base_image"], settings["wheelhouse"], settings["network"])

    @on(Button.Pressed, "#container-build")
    def _build_pressed(self) -> None:
        self.action_build()

    @work(thread=True, exclusive=True, exit_on_error=False, group="container", name="build")
    def _build(self, base: str | None, wheelhouse: bool, network: str | None) -> dict[str, Any]:
        from engine.container import image

        def on_event(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="build"))

        return image.build(
            self.project, base_image=base, wheelhouse=wheelhouse, network=network, on_event=on_event
        )

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "build":
            return
        message.stop()
        event = message.event
        if isinstance(event, events.Progress) and event.label:
            self.query_one("#container-state", Label).update(
                Text(f"building: step {event.done}/{event.total}", style="yellow")
            )
            return
        self.query_one("#container-log", LogView).write_event(event)

    # ---- start / stop / logs -----------------------------------------------------------------
    @on(Button.Pressed, "#container-toggle")
    def action_toggle_container(self) -> None:
        if self.switching or self.building or self.docker_problem:
            return
        self.switching = True
        running = self.running_container()
        self.query_one("#container-state", Label).update(
            Text("stopping…" if running else "starting…", style="yellow")
        )
        self._show()
        if running:
            self._stop()
        else:
            try:
                port = int(self.query_one("#container-port", Input).value or "8080")
            except ValueError:
                port = 8080
            self._start(port, str(self.query_one("#container-network", Select).value))

    @work(thread=True, exclusive=True, exit_on_error=False, group="container", name="start")
    def _start(self, port: int, network: str) -> dict[str, Any]:
        from engine.container import runtime

        return runtime.start(self.project, port=port, network=network)

    @work(thread=True, exclusive=True, exit_on_error=False, group="container", name="stop")
    def _stop(self) -> int:
        from engine.container import runtime

        return runtime.stop(self.project)

    @on(Button.Pressed, "#container-logs")
    def action_show_logs(self) -> None:
        self._logs()

    @work(thread=True, exclusive=True, exit_on_error=False, group="container-logs", name="logs")
    def _logs(self) -> list[str]:
        from engine.container import runtime

        return list(runtime.logs(self.project, tail=200))

    # ---- worker outcomes ---------------------------------------------------------------------
    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        result: Any = message.result
        if message.task == "load":
            self._loaded(result)
        elif message.task == "build":
            self.building = False
            self.app.notify(f"Built {result['image']} ({human_size(result['size'])})")
            self._load()
        elif message.task in ("start", "stop"):
            self.switching = False
            if message.task == "start":
                self.app.notify(f"Container serving at {result['url']}")
            self._load()
        elif message.task == "logs":
            log = self.query_one("#container-log", LogView)
            log.clear()
            log.border_title = "Container log"
            for line in result or ["(empty)"]:
                log.write_line(line)
        else:
            return
        message.stop()

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        if message.task not in ("build", "start", "stop", "logs", "load"):
            return
        message.stop()
        if message.task == "build":
            self.building = False
            error = message.error
            text = error.message if isinstance(error, HajError) else str(error)
            self.query_one("#container-log", LogView).write_line(text, style="bold red")
        elif message.task in ("start", "stop"):
            self.switching = False
        self._load()
