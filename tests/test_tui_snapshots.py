"""Snapshot tests of the Projects screen, the New project dialog, the Config and Code tabs and
the help screen and the command palette, at 100x30; the Projects screen also at 80x24.

The pictures of screens are taken on the fake engine (tests/tui_fake.py: two trained projects
and one just created, in memory, always the same scores), so they take no training. The Code
tab's show the real engine's code templates, on a real workspace (a project just created, no
training); its temp path in the title bar is replaced by a fixed one. Update with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs before accepting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from engine.api import Workspace
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from tests.tui_fake import FakeWorkspace
from tests.tui_support import click, no_cursor_blink, screen_text, wait_for, wait_settled

SIZE = (100, 30)
SMALL = (80, 24)  # the smallest terminal the app is made for: no number cut, none scrolled away
SHOWN_ROOT = "~/ml_projects"


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def populated() -> HajApp:
    """The app on two trained projects and one just created (the fake engine), as a user has
    after a first session."""
    return HajApp(FakeWorkspace.populated())


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real workspace with a project just created: the Code tab shows the real templates."""
    root = tmp_path_factory.mktemp("tui-snapshots") / "ws"
    Workspace.open(root).create("cancer", "classification", example="breast_cancer")
    return root


def _mask_path(pilot: Pilot[Any]) -> None:
    """The temp dir differs on every run: show a fixed path instead."""
    screen = pilot.app.screen
    if isinstance(screen, ProjectScreen):
        screen.sub_title = f"{SHOWN_ROOT}/{screen.project.name}"
    else:
        screen.sub_title = SHOWN_ROOT


def _before(*steps: Callable[[Pilot[Any]], Awaitable[None]]) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        _mask_path(pilot)
        for step in steps:
            await step(pilot)
        await wait_settled(pilot)

    return run_before


async def _open(pilot: Pilot[Any], name: str = "cancer", tab: str = "config") -> None:
    app = pilot.app
    project = app.workspace.project(name)  # type: ignore[attr-defined]
    await app.push_screen(ProjectScreen(project))
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ProjectScreen)
    screen.action_show_tab(tab)
    await wait_for(pilot, lambda: screen.shown_tab == tab, what=f"{tab} tab")
    _mask_path(pilot)
    await pilot.pause()


def test_projects_empty_snapshot(snap_compare: Any) -> None:
    empty = FakeWorkspace(Path(SHOWN_ROOT))
    assert snap_compare(HajApp(empty), terminal_size=SIZE, run_before=_before())


def test_projects_snapshot(snap_compare: Any, populated: HajApp) -> None:
    assert snap_compare(populated, terminal_size=SIZE, run_before=_before())


def test_projects_80x24_snapshot(snap_compare: Any, populated: HajApp) -> None:
    """The title, data and run counts give way: the score and the server stay whole."""
    assert snap_compare(populated, terminal_size=SMALL, run_before=_before())


def test_projects_filtered_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def type_filter(pilot: Pilot[Any]) -> None:
        await pilot.press("c", "l", "a", "s", "s")

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(type_filter))


def test_new_project_modal_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def new_with_bad_name(pilot: Pilot[Any]) -> None:
        await pilot.press("ctrl+n")
        await pilot.press(*"my project", "enter")
        await wait_for(
            pilot, lambda: "invalid" in str(pilot.app.screen.query_one("#name-error").render())
        )

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(new_with_bad_name))


def test_config_tab_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def config(pilot: Pilot[Any]) -> None:
        await _open(pilot, "cancer", "config")

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(config))


def test_config_tab_invalid_value_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def config_error(pilot: Pilot[Any]) -> None:
        await _open(pilot, "diabetes", "config")
        pilot.app.screen.query_one("#cfg-test_size").value = "1.5"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        screen = pilot.app.screen
        field = screen.query_one("#cfg-test_size")

        def reported_and_in_view() -> bool:
            # The focus moves to the invalid field and the form scrolls its message into view
            # after a refresh: wait for both, or the picture depends on which frame is taken.
            message = screen.query_one("#test_size-error")
            return (
                message.has_class("shown")
                and screen.focused is field
                and screen.can_view_entire(message)
            )

        await wait_for(pilot, reported_and_in_view, what="the invalid field, focused and in view")
        pilot.app.clear_notifications()

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(config_error))


def test_code_tab_snapshot(snap_compare: Any, created: Path) -> None:
    async def code(pilot: Pilot[Any]) -> None:
        await _open(pilot, "cancer", "code")

    assert snap_compare(
        HajApp(Workspace.open(created)), terminal_size=SIZE, run_before=_before(code)
    )


def test_code_tab_unsaved_prompt_snapshot(snap_compare: Any, created: Path) -> None:
    async def unsaved(pilot: Pilot[Any]) -> None:
        await _open(pilot, "cancer", "code")
        await click(pilot, "#code-editor")
        editor = pilot.app.screen.query_one("#code-editor")
        await wait_for(pilot, lambda: editor.has_focus, what="the editor's focus")
        await pilot.press(*"# my change", "enter", "escape")
        await wait_for(pilot, lambda: not editor.has_focus, what="leaving the editor")
        await pilot.press("escape")  # leave: asks about retriever.py
        await wait_for(
            pilot,
            lambda: "Unsaved changes" in screen_text(pilot.app),
            what="the unsaved-changes question",
        )

    assert snap_compare(
        HajApp(Workspace.open(created)), terminal_size=SIZE, run_before=_before(unsaved)
    )


def test_help_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def help_screen(pilot: Pilot[Any]) -> None:
        await pilot.press("f1")

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(help_screen))


def test_command_palette_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def palette(pilot: Pilot[Any]) -> None:
        from textual.command import CommandPalette
        from textual.widgets import OptionList

        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette))
        await pilot.press(*"open")
        palette = pilot.app.screen
        await wait_for(
            pilot,
            lambda: (
                palette.query_one(OptionList).option_count > 0
                and not palette.query_one(OptionList).has_class("--populating")
            ),
            what="palette results",
        )
        await pilot.pause(0.5)

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(palette))


def test_rename_prompt_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def rename(pilot: Pilot[Any]) -> None:
        from haj_tui.widgets.modals import PromptModal

        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptModal), what="prompt")

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(rename))


def test_delete_confirmation_snapshot(snap_compare: Any, populated: HajApp) -> None:
    async def delete(pilot: Pilot[Any]) -> None:
        from haj_tui.widgets.modals import ConfirmModal

        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), what="confirm")

    assert snap_compare(populated, terminal_size=SIZE, run_before=_before(delete))
