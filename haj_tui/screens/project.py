"""The Project screen: one project in tabs (Config, Code, Data, Train, Runs, Serve, Container,
Deploy).

Each tab is a widget `XTab(project)` in haj_tui/tabs/<x>.py, given the project's API object
(engine.api.ProjectAPI, or a fake; its workspace is `project.workspace`). The screen owns the keys
that work from every tab (see TAB_ACTIONS) and the unsaved-changes question.

What a tab may implement (all optional):
- `refresh_data()`: called each time the tab is shown.
- `action_<name>()` for the TAB_ACTIONS below: the screen's key / palette entry calls it.
- `unsaved_changes() -> str | None` and `save() -> bool`: asked before leaving the tab/screen.
- `project` attribute: the screen sets it to the new ProjectAPI after a rename.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Footer, Header, TabbedContent, TabPane

from haj_tui.commands import Command
from haj_tui.messages import ProjectChanged
from haj_tui.widgets.modals import UnsavedModal
from haj_tui.widgets.work import ReportsWorkerErrors

if TYPE_CHECKING:
    from engine.api import ProjectAPI


@dataclass(frozen=True)
class TabSpec:
    id: str
    title: str
    module: str
    widget: str


TABS = (
    TabSpec("config", "Config", "haj_tui.tabs.config", "ConfigTab"),
    TabSpec("code", "Code", "haj_tui.tabs.code", "CodeTab"),
    TabSpec("data", "Data", "haj_tui.tabs.data", "DataTab"),
    TabSpec("train", "Train", "haj_tui.tabs.train", "TrainTab"),
    TabSpec("runs", "Runs", "haj_tui.tabs.runs", "RunsTab"),
    TabSpec("serve", "Serve", "haj_tui.tabs.serve", "ServeTab"),
    TabSpec("container", "Container", "haj_tui.tabs.container", "ContainerTab"),
    TabSpec("deploy", "Deploy", "haj_tui.tabs.deploy", "DeployTab"),
)


@dataclass(frozen=True)
class TabAction:
    key: str
    tab: str
    action: str  # the tab widget's method is action_<action>
    title: str


# Keys that work from every tab: the screen shows the tab and calls the tab's action.
TAB_ACTIONS = (
    TabAction("r", "data", "retrieve", "Retrieve data"),
    TabAction("p", "data", "process", "Process data"),
    TabAction("t", "train", "train", "Train models"),
    TabAction("c", "runs", "crown", "Crown the champion"),
    TabAction("s", "serve", "toggle_server", "Start/stop the server"),
    TabAction("b", "container", "build", "Build the container image"),
    TabAction("d", "deploy", "deploy", "Deploy"),
)


def tab_class(spec: TabSpec) -> type[Widget]:
    """The tab's widget class (imported when a project is first opened, not at app start)."""
    return getattr(importlib.import_module(spec.module), spec.widget)


class ProjectScreen(ReportsWorkerErrors, Screen[None]):
    """One project.

    A tab's widget is built the first time the tab is shown (or one of its actions runs):
    opening a project stays quick, and a tab never shown costs nothing.
    """

    BINDINGS = [
        Binding("escape", "back", "Projects", id="project.back"),
        Binding("ctrl+s", "save", "Save", id="project.save"),
        Binding("ctrl+o", "open_in_editor", "$EDITOR", show=False, id="project.editor"),
        *(
            Binding(a.key, f"tab_action('{a.tab}', '{a.action}')", a.title.split()[0], id=a.action)
            for a in TAB_ACTIONS
        ),
        *(
            Binding(str(n), f"show_tab('{spec.id}')", spec.title, show=False, id=f"tab.{spec.id}")
            for n, spec in enumerate(TABS, start=1)
        ),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.tab_classes = {spec.id: tab_class(spec) for spec in TABS}
        self.tabs: dict[str, Widget] = {}  # the tabs built so far
        self._mounting: dict[str, AwaitMount] = {}
        self._current_tab = TABS[0].id
        self.shown_tab = TABS[0].id  # the tab on screen, once refreshed (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="project-tabs", initial=TABS[0].id):
            for spec in TABS:
                with TabPane(spec.title, id=spec.id):
                    if spec.id == TABS[0].id:
                        yield self._build(spec.id)
        yield Footer()

    def on_mount(self) -> None:
        self._set_titles()

    def _set_titles(self) -> None:
        self.title = f"haj — {self.project.name}"
        self.sub_title = str(self.project.path)

    # ---- tabs ----------------------------------------------------------------------------
    def _build(self, tab_id: str) -> Widget:
        widget = self.tab_classes[tab_id](self.project)  # type: ignore[call-arg]
        if widget.id is None:
            widget.id = f"{tab_id}-tab"
        self.tabs[tab_id] = widget
        return widget

    def _ensure_tab(self, tab_id: str) -> AwaitMount | None:
        """Build and mount the tab's widget if it is not there yet; returns what to await
        before using it (None once mounted)."""
        widget = self.tabs.get(tab_id)
        if widget is None and tab_id in self.tab_classes:
            pane = self.query_one(f"TabPane#{tab_id}", TabPane)
            self._mounting[tab_id] = pane.mount(self._build(tab_id))
        elif widget is not None and widget.is_mounted:
            self._mounting.pop(tab_id, None)
        return self._mounting.get(tab_id)

    def tab(self, tab_id: str) -> Widget | None:
        """The tab's widget if it has been built (shown once), else None."""
        return self.tabs.get(tab_id)

    def active_tab(self) -> Widget | None:
        return self.tabs.get(self.query_one(TabbedContent).active)

    def action_show_tab(self, tab_id: str) -> None:
        self._ensure_tab(tab_id)
        # Textual moves focus out of a pane being hidden to a sibling inside it, which would
        # make TabbedContent switch straight back: drop the focus before switching.
        self.set_focus(None)
        self.query_one(TabbedContent).active = tab_id

    @on(TabbedContent.TabActivated)
    async def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        new = event.pane.id or ""
        old = self._current_tab
        if new == old:
            return
        leaving = self.tabs.get(old)
        if leaving is not None and _unsaved(leaving):
            self._ask_then_switch(old, new)
            return
        self._current_tab = new
        await self._show(new)

    async def _show(self, tab_id: str) -> None:
        mounting = self._ensure_tab(tab_id)
        if mounting is not None:
            await mounting
        refresh = getattr(self.tabs.get(tab_id), "refresh_data", None)
        if refresh is not None:
            refresh()
        self.refresh_bindings()  # the footer shows this tab's keys (ctrl+s only where it saves)
        self.shown_tab = tab_id

    @work(group="leave-tab", exclusive=True)
    async def _ask_then_switch(self, old: str, new: str) -> None:
        tabbed = self.query_one(TabbedContent)
        self._current_tab = old
        tabbed.active = old  # stay until the user answers
        if await self._confirm_tab(self.tabs[old]):
            self._current_tab = new
            tabbed.active = new
            await self._show(new)

    def action_save(self) -> None:
        """ctrl+s when the focus is outside the tab's own widgets (e.g. on the tab strip)."""
        save = getattr(self.active_tab(), "save", None)
        if save is not None:
            save()
        else:
            self.notify("Nothing to save on this tab", severity="warning")

    def action_open_in_editor(self) -> None:
        """ctrl+o from the tab strip: hand the Code tab's file to $EDITOR."""
        open_in_editor = getattr(self.active_tab(), "action_open_in_editor", None)
        if open_in_editor is not None:
            open_in_editor()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A tab action is offered only where the tab has the method (a safety net for keys)."""
        if action == "tab_action" and len(parameters) == 2:
            tab, name = parameters
            cls = self.tab_classes.get(str(tab))
            return cls is not None and hasattr(cls, f"action_{name}")
        if action in ("save", "open_in_editor"):  # only on the tabs that have a file or form
            method = "save" if action == "save" else "action_open_in_editor"
            return hasattr(self.tab_classes.get(self._current_tab), method)
        return True

    async def action_tab_action(self, tab_id: str, name: str) -> None:
        """A screen-wide key: show the tab (building it if needed), then run its action."""
        if not self.check_action("tab_action", (tab_id, name)):
            self.notify(f"{name} is not available yet", severity="warning")
            return
        mounting = self._ensure_tab(tab_id)
        if mounting is not None:
            await mounting
        self.query_one(TabbedContent).active = tab_id
        getattr(self.tabs[tab_id], f"action_{name}")()

    # ---- leaving -------------------------------------------------------------------------
    async def _confirm_tab(self, widget: Widget) -> bool:
        """Ask about one tab's unsaved changes; True when it is fine to leave it."""
        what = _unsaved(widget)
        if not what:
            return True
        choice = await self.app.push_screen_wait(UnsavedModal(what))
        if choice == "save":
            return bool(widget.save())  # type: ignore[attr-defined]
        if choice == "discard":
            discard = getattr(widget, "discard", None)
            if discard is not None:
                discard()
            return True
        return False

    async def confirm_leave(self) -> bool:
        """Before closing the screen (or quitting): ask about every tab with unsaved changes."""
        for spec in TABS:
            widget = self.tabs.get(spec.id)
            if widget is not None and _unsaved(widget):
                self.action_show_tab(spec.id)
                self._current_tab = spec.id
                if not await self._confirm_tab(widget):
                    return False
        return True

    @work(group="leave-screen", exclusive=True)
    async def action_back(self) -> None:
        if await self.confirm_leave():
            self.dismiss()

    # ---- rename --------------------------------------------------------------------------
    @on(ProjectChanged)
    def _project_changed(self, message: ProjectChanged) -> None:
        self.project = message.project
        for widget in self.tabs.values():
            if hasattr(widget, "project"):
                widget.project = message.project  # type: ignore[attr-defined]
        self._set_titles()

    # ---- palette -------------------------------------------------------------------------
    def palette_commands(self) -> list[Command]:
        commands: list[Command] = []
        for action in TAB_ACTIONS:
            if self.check_action("tab_action", (action.tab, action.action)):
                commands.append(
                    (
                        f"{action.title} ({action.key})",
                        _bind(self.action_tab_action, action.tab, action.action),
                        f"{self.project.name}: {action.tab} tab",
                    )
                )
        for n, spec in enumerate(TABS, start=1):
            commands.append(
                (f"Tab: {spec.title} ({n})", _bind(self.action_show_tab, spec.id), "Show the tab")
            )
        for spec in TABS:
            extra = getattr(self.tabs.get(spec.id), "palette_commands", None)
            if extra is not None:
                commands.extend(extra())
        commands.append(("Projects: back (esc)", self.action_back, "Close this project"))
        return commands


def _unsaved(widget: Widget) -> str | None:
    check = getattr(widget, "unsaved_changes", None)
    return check() if check is not None else None


def _bind(function: Any, *args: Any) -> Any:
    """A palette callback calling function(*args); a coroutine it returns runs as a worker."""

    def call() -> None:
        result = function(*args)
        if inspect.isawaitable(result):
            function.__self__.run_worker(result, group="palette")

    return call
