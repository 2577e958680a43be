"""The Container tab: build the champion's image with a live log, list the project's images, start
and stop its container, read the container's log.

Everything Docker-related runs in thread workers (the engine API's build, images, containers),
so a slow or absent engine never freezes the app; "no Docker engine" is a state shown in the
tab, not an error that pops up on every refresh. The build settings start as the engine says a
build is made when nothing is said (`build_settings()`: as the project's last build, else haj's
defaults); what is changed here applies to builds from this tab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select

from engine import events
from engine.api import BuildSettings, ContainerRecord, ContainerRow, ContainerStatus, ImageRecord
from engine.errors import ContainerError, HajError
from engine.units import human_size
from haj_tui import hints
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI


# ---- worker outcomes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Loaded:
    """The project's containers and images, or why Docker could not be asked."""

    status: ContainerStatus = field(default_factory=ContainerStatus)  # container_status()
    images: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # no Docker engine: the whole message, with how to fix it


@dataclass(frozen=True)
class Built:
    record: ImageRecord  # the build's record (image, size, ...)


@dataclass(frozen=True)
class ContainerStarted:
    record: ContainerRecord  # the container's record (url, ...)


@dataclass(frozen=True)
class ContainerStopped:
    count: int  # how many were running


@dataclass(frozen=True)
class ContainerLog:
    lines: list[str]


class BuildFailed(WorkFailed):
    """The build failed (the app has shown why; the build log says it too)."""


class SwitchFailed(WorkFailed):
    """Starting or stopping the container failed: the state is read again."""


class LogFailed(WorkFailed):
    """Reading the container's log failed: the state is read again."""


class ContainerTab(ReportsWorkerErrors, Vertical):
    """Build (b), start / stop (k), container log (l), refresh (f)."""

    BINDINGS = [
        Binding("k", "toggle_container", "Start/stop"),
        Binding("l", "show_logs", "Container log"),
        Binding("f", "refresh", "Refresh"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.info: Loaded | None = None
        self.docker_problem: str | None = None
        self.building = False
        self.switching = False
        self.loaded = False  # Docker asked at least once (the state shown is real)
        self._build_when_loaded = False  # b before the first answer: decide once it arrives

    def _initial_settings(self) -> BuildSettings | None:
        """The engine's answer for a build nothing is said about; None when the project's
        store cannot be read (the fields start empty: the build will say what is wrong)."""
        try:
            return self.project.build_settings()
        except (HajError, OSError):
            return None

    def compose(self) -> ComposeResult:
        settings = self._initial_settings()
        with Horizontal(classes="toolbar"):
            yield Button("Build image (b)", id="container-build", compact=True, variant="primary")
            yield Button("Start (k)", id="container-toggle", compact=True)
            yield Button("Log (l)", id="container-logs", compact=True)
            yield Label("", id="container-state", classes="tab-state")
        with Horizontal(id="container-settings"):
            yield Label("base image", classes="setting-label")
            yield Input(
                settings.base_image if settings else "",
                placeholder="base image (default)",
                id="container-base",
                compact=True,
            )
            yield Checkbox(
                "wheelhouse",
                value=settings.wheelhouse if settings else False,
                id="container-wheelhouse",
                compact=True,
            )
            yield Label("network", classes="setting-label")
            yield Select(
                [("bridge", "bridge"), ("host", "host")],
                value=settings.network if settings else "bridge",
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
    @haj_work(group="container-load")
    def _load(self) -> Loaded:
        try:
            return Loaded(self.project.container_status(), self.project.images())
        except ContainerError as exc:
            return Loaded(problem=hints.render(exc))

    def _loaded(self, result: Loaded) -> None:
        problem = result.problem
        if problem and problem != self.docker_problem:  # the whole message, with how to fix it
            self.query_one("#container-log", LogView).write_line(problem, "bold red")
        self.docker_problem = problem
        self.loaded = True
        self.info = None if problem else result
        if self._build_when_loaded:
            self._build_when_loaded = False
            self.call_after_refresh(self.action_build)
        table = self.query_one("#container-images", DataTable)
        table.clear()
        for row in self.info.images if self.info else []:
            table.add_row(
                ", ".join(row["tags"]) or "<none>",
                human_size(row["size"]),
                row["run_id"] or "-",
                row["model"] or "-",
                row["created"][:19],
            )
        self._show()

    def running_container(self) -> ContainerRow | None:
        return self.info.status.running() if self.info else None

    def _show(self) -> None:
        state = self.query_one("#container-state", Label)
        toggle = self.query_one("#container-toggle", Button)
        running = self.running_container()
        toggle.label = "Stop (k)" if running else "Start (k)"
        toggle.variant = "error" if running else "default"
        busy = self.building or self.switching
        self.query_one("#container-build", Button).disabled = busy or bool(self.docker_problem)
        toggle.disabled = busy or self.docker_problem is not None
        state.set_class(self.docker_problem is not None, "error")
        self.refresh_bindings()  # b and k follow the engine's state in the footer
        if self.building:
            return
        if self.docker_problem:
            state.update(Text("no Docker engine (b is off): see the log below"))
        elif running:
            health = f" ({running.health})" if running.health else ""
            state.update(
                Text.assemble(("● running ", "bold green"), (running.url, "underline"), health)
            )
        elif self.info and self.info.status.image:
            image = self.info.status.image
            state.update(Text(f"○ stopped; image {image.image} ({human_size(image.size)})"))
        else:
            state.update(Text("No image yet: press b to build one.", style="italic"))

    # ---- build -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """b is refused (and hidden) while the tab says there is no engine or a build runs."""
        if action == "build":
            return not self.building and self.docker_problem is None
        if action == "toggle_container":
            return self.docker_problem is None
        return True

    def action_build(self) -> None:
        if self.building:
            return
        if self.docker_problem is not None:
            self.app.notify(
                "No Docker engine: the image cannot be built (see the log).", severity="warning"
            )
            return
        if not self.loaded:  # b on a tab not shown yet: build once Docker has answered
            self._build_when_loaded = True
            return
        self.building = True
        log = self.query_one("#container-log", LogView)
        log.clear()
        log.border_title = "Build log"
        self.query_one("#container-state", Label).update(Text("building…", style="yellow"))
        self._show()
        base = self.query_one("#container-base", Input).value.strip() or None
        wheelhouse = self.query_one("#container-wheelhouse", Checkbox).value
        network = str(self.query_one("#container-network", Select).value)
        says = (
            f"Building {self.project.name}'s champion: base image {base or 'the default'}, "
            f"{'wheelhouse, ' if wheelhouse else ''}{network} network"
        )
        log.write_line(f"— {says}", "bold")
        self.app.notify(says, title="Build")  # one key starts minutes of work: say what
        self._build(base, wheelhouse, network)

    @on(Button.Pressed, "#container-build")
    def _build_pressed(self) -> None:
        self.action_build()

    @haj_work(group="container", failed=BuildFailed)
    def _build(self, base_image: str | None, wheelhouse: bool, network: str) -> Built:
        def on_event(event: events.Event) -> None:
            self.post_message(EngineEvent(event, task="build"))

        settings = self.project.build_settings(
            base_image=base_image, wheelhouse=wheelhouse, network=network
        )
        return Built(self.project.build(settings, on_event=on_event))

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

    @haj_work(group="container", failed=SwitchFailed)
    def _start(self, port: int, network: str) -> ContainerStarted:
        return ContainerStarted(self.project.start_container(port=port, network=network))

    @haj_work(group="container", failed=SwitchFailed)
    def _stop(self) -> ContainerStopped:
        return ContainerStopped(self.project.stop_container())

    @on(Button.Pressed, "#container-logs")
    def action_show_logs(self) -> None:
        self._logs()

    @haj_work(group="container-logs", failed=LogFailed)
    def _logs(self) -> ContainerLog:
        return ContainerLog(list(self.project.container_logs(tail=200)))

    # ---- worker outcomes ---------------------------------------------------------------------
    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Loaded() as loaded:
                self._loaded(loaded)
            case Built(record=record):
                self.building = False
                self.app.notify(f"Built {record.image} ({human_size(record.size)})")
                self._load()
            case ContainerStarted(record=record):
                self.switching = False
                self.app.notify(f"Container serving at {record.url}")
                self._load()
            case ContainerStopped():
                self.switching = False
                self._load()
            case ContainerLog(lines=lines):
                log = self.query_one("#container-log", LogView)
                log.clear()
                log.border_title = "Container log"
                for line in lines or ["(empty)"]:
                    log.write_line(line)
            case _:
                return
        message.stop()

    @on(BuildFailed)
    def _build_failed(self, message: BuildFailed) -> None:
        message.stop()
        self.building = False
        error = message.error
        text = hints.render(error) if isinstance(error, HajError) else str(error)
        self.query_one("#container-log", LogView).write_line(text, style="bold red")
        self._load()

    @on(SwitchFailed)
    def _switch_failed(self, message: SwitchFailed) -> None:
        message.stop()
        self.switching = False
        self._load()

    @on(LogFailed)
    def _log_failed(self, message: LogFailed) -> None:
        message.stop()
        self._load()
