"""The haj app: the Projects screen first, a Project screen per opened project.

The app owns what every screen shares: the stylesheet, the command palette, the help screen,
and `report_error`, where every failure of background work ends up (HajError -> a notification,
anything else -> the error panel with its traceback, as Harlequin does). Nothing crashes the app.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.errors import HajError
from haj_tui import hints
from haj_tui.commands import HajCommands
from haj_tui.widgets.modals import ErrorModal

if TYPE_CHECKING:
    from engine.api import Workspace


OWN_COMMANDS = ("Quit", "Keys")  # Textual system commands that haj's palette has its own of


class HajApp(App[None]):
    """haj: projects, data, training, runs, serving — one terminal app over `engine`."""

    CSS_PATH = "app.tcss"
    TITLE = "haj"
    COMMANDS = App.COMMANDS | {HajCommands}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        """`workspace` is the engine's (engine.api.Workspace) or a fake with its methods."""
        super().__init__()
        self.workspace = workspace
        self.sub_title = str(workspace.root)
        if hasattr(workspace, "on_wait"):  # another haj writes the project: say what we wait for
            workspace.on_wait = self._waiting

    def _waiting(self, text: str) -> None:
        """Called from a worker thread while it waits for the project's lock."""
        message = text[:1].upper() + text[1:]
        try:
            self.call_from_thread(self.notify, message, title="Waiting")
        except RuntimeError:  # already on the app's own thread
            self.notify(message, title="Waiting")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own palette entries, less those haj has its own of: Quit (haj's asks about
        unsaved work) and Keys (haj's help, f1, lists every key), so no entry is repeated."""
        for command in super().get_system_commands(screen):
            if command.title not in OWN_COMMANDS:
                yield command

    def get_default_screen(self) -> Screen[None]:
        from haj_tui.screens.projects import ProjectsScreen

        return ProjectsScreen(self.workspace)

    # ---- errors --------------------------------------------------------------------------
    def report_error(self, error: BaseException) -> None:
        """Show a failure: an engine error as a notification, a bug in the error panel."""
        if isinstance(error, HajError):
            self.notify(hints.render(error), title="Error", severity="error", timeout=8)
            return
        details = "".join(traceback.format_exception(error))
        self.push_screen(ErrorModal(f"Unexpected error: {type(error).__name__}: {error}", details))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error)

    # ---- actions -------------------------------------------------------------------------
    def action_help(self) -> None:
        from haj_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_new_project(self) -> None:
        """New project, from anywhere: back to the Projects screen, then the dialog."""

        async def go() -> None:
            from haj_tui.commands import go_home
            from haj_tui.screens.projects import ProjectsScreen

            await go_home(self)
            if isinstance(self.screen, ProjectsScreen):
                self.screen.action_new()

        self.run_worker(go(), group="navigate", exclusive=True)

    async def action_quit(self) -> None:
        """Quit, unless a screen holds unsaved work the user wants to keep."""
        self.run_worker(self._quit_after_asking(), group="quit", exclusive=True)

    async def _quit_after_asking(self) -> None:
        for screen in reversed(self.screen_stack):
            confirm_leave = getattr(screen, "confirm_leave", None)
            if confirm_leave is not None and not await confirm_leave():
                return
        self.exit()


def run(workspace: Workspace) -> None:
    """Open the app on a workspace (its folder is created by the engine with a first project).
    Its retrieves and trainings fork from a warm runner, started while the app first paints."""
    workspace.keep_runner_warm()
    HajApp(workspace).run()
