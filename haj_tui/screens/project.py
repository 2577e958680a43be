"""The Project screen: one project in tabs (Config, Code, Data, Train, Runs, Serve, Container,
Deploy).

Each tab is a widget `XTab(project)` in haj_tui/tabs/<x>.py, given the project's API object
(engine.api.ProjectAPI, or a fake; its workspace is `project.workspace`). The screen owns the keys
that work from every tab (see TAB_ACTIONS) and the unsaved-changes question.

Keys (the lazygit/k9s rule: every key a tab shows works whenever the tab is visible, and the
footer shows exactly those):
- the visible tab's own BINDINGS (x, a, m, e, k, l, f, v, u) are in the key chain wherever the
  focus is, on the tab strip or nowhere included (`_binding_chain`);
- letters typed in a form field (Input, TextArea, Select, Checkbox) stay in the field: no
  single-character key of the screen or the tab fires from there;
- a number shows its tab and focuses the tab's main widget (TabSpec.main);
- escape leaves the field (back to the tab's main widget), then leaves the screen.

What a tab may implement (all optional):
- `refresh_data()`: called each time the tab is shown.
- `action_<name>()` for the TAB_ACTIONS below: the screen's key / palette entry calls it.
- `unsaved_changes() -> str | None` and `save() -> bool`: asked before leaving the tab/screen.
- `project` attribute: the screen sets it to the new ProjectAPI after a rename.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.keys import key_to_character
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import (
    Checkbox,
    Header,
    Input,
    RadioSet,
    Select,
    Switch,
    TabbedContent,
    TabPane,
    TextArea,
)

from engine.errors import HajError
from haj_tui.commands import Command
from haj_tui.messages import ProjectChanged
from haj_tui.widgets.footer import HajFooter
from haj_tui.widgets.modals import ConfirmModal, UnsavedModal
from haj_tui.widgets.work import ReportsWorkerErrors

if TYPE_CHECKING:
    from engine.api import ProjectAPI


@dataclass(frozen=True)
class TabSpec:
    id: str
    title: str
    module: str
    widget: str
    main: str  # the widget focused when the tab is shown, and where escape from a field lands


TABS = (
    TabSpec("config", "Config", "haj_tui.tabs.config", "ConfigTab", "#config-form"),
    TabSpec("code", "Code", "haj_tui.tabs.code", "CodeTab", "#code-files"),
    TabSpec("data", "Data", "haj_tui.tabs.data", "DataTab", "#data-versions"),
    TabSpec("train", "Train", "haj_tui.tabs.train", "TrainTab", "#train-models"),
    TabSpec("runs", "Runs", "haj_tui.tabs.runs", "RunsTab", "#runs-board"),
    TabSpec("serve", "Serve", "haj_tui.tabs.serve", "ServeTab", "#serve-request-box"),
    TabSpec("monitor", "Monitor", "haj_tui.tabs.monitor", "MonitorTab", "#monitor-quality-box"),
    TabSpec(
        "container", "Container", "haj_tui.tabs.container", "ContainerTab", "#container-images"
    ),
    TabSpec("deploy", "Deploy", "haj_tui.tabs.deploy", "DeployTab", "#deploy-plan-box"),
)
SPECS = {spec.id: spec for spec in TABS}

# Widgets that take what is typed: letters typed there never fire a key of the tab or screen.
FORM_FIELDS = (Input, TextArea, Select, Checkbox, RadioSet, Switch)


def in_form_field(widget: Widget | None) -> bool:
    """True when `widget` is a form field or inside one (a Select's open list)."""
    node: DOMNode | None = widget
    while isinstance(node, Widget):
        if isinstance(node, FORM_FIELDS):
            return True
        node = node.parent
    return False


@dataclass(frozen=True)
class TabAction:
    key: str
    tab: str
    action: str  # the tab widget's method is action_<action>
    title: str
    says: str = ""  # heavy work started by one key: what it does, shown as it starts


# Keys that work from every tab: the screen shows the tab and calls the tab's action.
TAB_ACTIONS = (
    TabAction(
        "r",
        "data",
        "retrieve",
        "Retrieve data",
        "Running retriever.py: a new raw version if the data changed (x cancels).",
    ),
    TabAction(
        "p",
        "data",
        "process",
        "Process data",
        "Running processor.py on the current raw version (x cancels).",
    ),
    TabAction(
        "t",
        "train",
        "train",
        "Train models",
        "Training the checked models on the chosen data (x cancels).",
    ),
    TabAction("c", "runs", "crown", "Crown the champion"),
    TabAction("s", "serve", "toggle_server", "Start/stop the server"),
    TabAction("b", "container", "build", "Build the container image"),  # says it itself
    TabAction("d", "deploy", "deploy", "Deploy"),  # always asks first
)
ACTIONS = {action.action: action for action in TAB_ACTIONS}


def tab_class(spec: TabSpec) -> type[Widget]:
    """The tab's widget class (imported when a project is first opened, not at app start)."""
    return getattr(importlib.import_module(spec.module), spec.widget)


class ProjectScreen(ReportsWorkerErrors, Screen[None]):
    """One project.

    A tab's widget is built the first time the tab is shown (or one of its actions runs):
    opening a project stays quick, and a tab never shown costs nothing.
    """

    # No first-focusable-widget guess from Textual (on push and resume): it can pick a field
    # of a pane about to be hidden, and focus there pulls the tabs back; focus_main decides.
    AUTO_FOCUS = ""
    BINDINGS = [
        # escape: out of the field first (footer: "Leave field"), then back to the projects
        Binding("escape", "leave_field", "Leave field", id="project.leave_field"),
        Binding("escape", "back", "Projects", id="project.back"),
        Binding("ctrl+s", "save", "Save", id="project.save"),
        Binding("ctrl+o", "open_in_editor", "$EDITOR", show=False, id="project.editor"),
        *(
            Binding(
                a.key,
                f"tab_action('{a.tab}', '{a.action}')",
                a.title.split()[0],
                id=a.action,
            )
            for a in TAB_ACTIONS
        ),
        *(
            Binding(
                str(n),
                f"show_tab('{spec.id}')",
                spec.title,
                show=False,
                id=f"tab.{spec.id}",
            )
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
            for n, spec in enumerate(TABS, start=1):
                with TabPane(f"{n} {spec.title}", id=spec.id):
                    if spec.id == TABS[0].id:
                        yield self._build(spec.id)
        yield HajFooter()

    def on_mount(self) -> None:
        self._set_titles()
        self.call_after_refresh(self.focus_main)  # the tab shown by then (a key may be quick)

    def on_screen_resume(self) -> None:
        if self.focused is None:  # back from a dialog that closed the widget it came from
            self.focus_main()

    def _set_titles(self) -> None:
        self.title = f"haj — {self.project.name}"
        self.sub_title = str(self.project.path)

    # ---- keys ----------------------------------------------------------------------------
    @property
    def _binding_chain(self) -> list[tuple[DOMNode, BindingsMap]]:
        """Textual's chain (the focused widget and its ancestors), plus the visible tab's
        own keys wherever the focus is (the tab strip, a button, nowhere), minus every
        single-character key while a form field has the focus (the field takes the letter).

        Textual 8.2.8 (pinned) builds both the key dispatch and the footer from this property,
        so the footer shows exactly the keys that work."""
        chain = super()._binding_chain
        tab = self.tabs.get(self._current_tab)
        if tab is not None and tab.is_mounted and all(node is not tab for node, _ in chain):
            at = next((i for i, (node, _) in enumerate(chain) if node is self), len(chain))
            chain.insert(at, (tab, tab._bindings.copy()))
        focused = self.focused
        if in_form_field(focused):
            for node, bindings in chain:
                if node is focused:
                    continue
                for key in list(bindings.key_to_bindings):
                    character = key_to_character(key)
                    if character is not None and character.isprintable():
                        del bindings.key_to_bindings[key]
        return chain

    def focus_main(self, tab_id: str | None = None) -> None:
        """Focus the tab's main widget (a table, a list: never a field, so keys work), or
        the tab's first focusable widget outside a field when the main one is disabled."""
        tab_id = tab_id or self._current_tab
        widget = self.tabs.get(tab_id)
        shown = self.query_one(TabbedContent).active  # ahead of _current_tab while switching
        if widget is None or not widget.is_mounted or not tab_id == self._current_tab == shown:
            return  # focus in a hidden pane would pull the tabs back to it
        try:
            main: Widget | None = widget.query_one(SPECS[tab_id].main)
        except NoMatches:
            main = None
        if main is None or not main.focusable:
            main = next(
                (w for w in widget.query("*") if w.focusable and not in_form_field(w)), None
            )
        if main is not None:
            # now, not Widget.focus()'s deferred call: a tab number pressed meanwhile would hide
            # this pane first, and focus landing in a hidden pane pulls the tabs back to it
            self.set_focus(main)

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
        # make TabbedContent switch straight back: drop the focus before switching (_show
        # then focuses the tab's main widget).
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
        if tab_id != self._current_tab:
            return  # another tab was asked for while this one was being built
        refresh = getattr(self.tabs.get(tab_id), "refresh_data", None)
        if refresh is not None:
            refresh()
        self.focus_main(tab_id)
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

    async def _go_to(self, tab_id: str) -> bool:
        """Show `tab_id` (built if needed), after asking about the unsaved changes of the tab
        being left; False when the user chose to stay (Cancel)."""
        old = self._current_tab
        leaving = self.tabs.get(old)
        asked = tab_id != old and leaving is not None and _unsaved(leaving)
        if asked and not await self._confirm_tab(leaving):  # type: ignore[arg-type]
            return False
        mounting = self._ensure_tab(tab_id)
        if mounting is not None:
            await mounting
        if tab_id != old:
            self._current_tab = tab_id  # so TabActivated has nothing left to do
            self.set_focus(None)  # as in action_show_tab
            self.query_one(TabbedContent).active = tab_id
            await self._show(tab_id)
        return True

    def action_save(self) -> None:
        """ctrl+s when the focus is outside the tab's own widgets (e.g. on the tab strip)."""
        tab = self.active_tab()
        save = getattr(tab, "action_save", None) or getattr(tab, "save", None)
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
        """A tab action is offered only where the tab has the method and, once the tab is
        built, while the tab itself allows it (not during its own work)."""
        if action == "tab_action" and len(parameters) == 2:
            tab, name = parameters
            cls = self.tab_classes.get(str(tab))
            if cls is None or not hasattr(cls, f"action_{name}"):
                return False
            widget = self.tabs.get(str(tab))
            if widget is not None and widget.is_mounted:
                return widget.check_action(str(name), ()) is not False
            return True
        if action in ("save", "open_in_editor"):  # only on the tabs that have a file or form
            method = "save" if action == "save" else "action_open_in_editor"
            return hasattr(self.tab_classes.get(self._current_tab), method)
        if action == "leave_field":
            return in_form_field(self.focused)
        if action == "back":
            return not in_form_field(self.focused)
        return True

    def action_tab_action(self, tab_id: str, name: str) -> None:
        """A screen-wide key: show the tab (asking first about unsaved changes of the tab left:
        Cancel runs nothing), then run the tab's action."""
        if not self.check_action("tab_action", (tab_id, name)):
            self.notify(f"{name} is not available now", severity="warning")
            return
        self._run_tab_action(tab_id, name)

    @work(group="tab-action")
    async def _run_tab_action(self, tab_id: str, name: str) -> None:
        if not await self._go_to(tab_id):
            return
        if name == "crown" and not await self._crown_confirmed():
            return
        widget = self.tabs[tab_id]
        getattr(widget, f"action_{name}")()
        action = ACTIONS[name]
        if action.says and widget.check_action(name, ()) is False:  # it started: say what
            self.notify(action.says, title=action.title)

    async def _crown_confirmed(self) -> bool:
        """Crowning swaps the model a running server serves: asked first when one runs."""
        try:
            record = await asyncio.to_thread(self.project.server)
        except (HajError, OSError):
            return True  # crowning will say what is wrong
        if record is None:
            return True
        message = (
            f"The server at {record.url} serves the current champion: crowning a new one "
            "swaps the model it serves."
        )
        return bool(
            await self.app.push_screen_wait(ConfirmModal("Crown", message, confirm="Crown"))
        )

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

    def action_leave_field(self) -> None:
        """escape in a form field: leave it for the tab's main widget (keys work again)."""
        self.focus_main()

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
        return commands  # back to the list: the app's entry (haj_tui/commands.py)


def _unsaved(widget: Widget) -> str | None:
    """What a tab would lose if left (None: nothing). A tab still being built has nothing to
    lose: a check that cannot run yet never blocks the switch."""
    check = getattr(widget, "unsaved_changes", None)
    if check is None:
        return None
    try:
        return check()
    except (LookupError, AttributeError):  # queried before its widgets and values are there
        return None


def _bind(function: Any, *args: Any) -> Any:
    """A palette callback calling function(*args); a coroutine it returns runs as a worker."""

    def call() -> None:
        result = function(*args)
        if inspect.isawaitable(result):
            function.__self__.run_worker(result, group="palette")

    return call
