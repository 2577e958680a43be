"""The command palette (ctrl+p): every action of the app, by name.

Commands are context-aware, as in Posting: the app's own (new project, open project X, help,
quit) plus whatever the current screen offers through `palette_commands()`, which returns
(title, callback, help) triples. A screen lists only what can run now, so a tab that does not
exist yet (or lacks an action) adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from haj_tui.app import HajApp

Command = tuple[str, Callable[[], object], str]


class HajCommands(Provider):
    """haj's actions for the palette."""

    def _commands(self) -> Iterator[Command]:
        """The screen's entries, then the app's; each action once (Textual's own Quit and Keys
        are left out by HajApp.get_system_commands)."""
        from haj_tui.screens.projects import ProjectsScreen

        app: HajApp = self.app  # type: ignore[assignment]
        screen_commands = getattr(self.screen, "palette_commands", None)
        if screen_commands is not None:
            yield from screen_commands()
        if not isinstance(self.screen, ProjectsScreen):
            yield (
                "Projects: go to the list of projects",
                app_go_home(app),
                "Close the project (esc)",
            )
        yield ("Project: new…", partial(app.run_action, "new_project"), "Create a project")
        try:
            names = app.workspace.names()
        except OSError:
            names = []
        for name in names:
            yield (f"Open project {name}", partial(open_project, app, name), f"Open {name}")
        yield ("Help: keys", app.action_help, "Show every key binding")
        yield ("Quit", partial(app.run_action, "quit"), "Leave haj")

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


def app_go_home(app: HajApp) -> Callable[[], None]:
    def go() -> None:
        app.run_worker(go_home(app), group="navigate", exclusive=True)

    return go


async def go_home(app: HajApp) -> None:
    """Pop back to the Projects screen, asking about unsaved work on the way."""
    from haj_tui.screens.projects import ProjectsScreen

    while not isinstance(app.screen, ProjectsScreen) and len(app.screen_stack) > 1:
        confirm_leave = getattr(app.screen, "confirm_leave", None)
        if confirm_leave is not None and not await confirm_leave():
            return
        await app.pop_screen()


def open_project(app: HajApp, name: str) -> None:
    """Open project `name`, from wherever the user is."""

    async def go() -> None:
        from haj_tui.screens.projects import ProjectsScreen

        await go_home(app)
        if isinstance(app.screen, ProjectsScreen):
            app.screen.open_project(name)

    app.run_worker(go(), group="navigate", exclusive=True)
