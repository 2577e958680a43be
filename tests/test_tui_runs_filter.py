"""The Runs tab finds and compares runs: a filter above the leaderboard (the engine's, as
`haj runs --filter`; a bad term is a one-line notification) and the marked runs side by side
(space marks, C opens the comparison). On the trained example workspace (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from engine.api import Workspace
from engine.store import Store
from haj_tui.app import HajApp
from haj_tui.screens.compare import CompareScreen
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.runs import RunsTab
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def home(trained_home: Path) -> Path:
    """cancer with a second knn run: knn-1's parameters but n_neighbors=9 (straight into the
    store: nothing is trained)."""
    with Store(trained_home / "cancer" / "haj.db") as store:
        source = store.find_run("knn-1")
        assert source is not None
        (run,) = store.start_runs(
            session="handmade",
            models=[("knn", {**source.params, "n_neighbors": 9})],
            prediction="classification",
            data_version=source.data_version,
        )
        store.finish_run(
            run.id,
            status="finished",
            metrics={**source.metrics, "acc": source.metrics["acc"] - 0.01},
        )
    return trained_home


@asynccontextmanager
async def runs_tab(home: Path) -> AsyncIterator[tuple[Pilot[None], RunsTab]]:
    app = HajApp(Workspace(home))
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project("cancer")))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, "runs")
        tab = screen.tab("runs")
        assert isinstance(tab, RunsTab)
        await wait_for(pilot, lambda: tab.board is not None, what="the leaderboard")
        yield pilot, tab


def board_labels(tab: RunsTab) -> list[str]:
    return [run["label"] for run in tab.board.runs] if tab.board else []


def footer(pilot: Pilot[None]) -> str:
    return screen_text(pilot.app).splitlines()[pilot.app.size.height - 1]


async def test_the_filter_narrows_the_leaderboard_and_says_a_bad_term(home: Path) -> None:
    async with runs_tab(home) as (pilot, tab):
        assert len(board_labels(tab)) == 5
        keys = "/ Filter  ␣ Mark  C Compare"
        await wait_for(pilot, lambda: keys in footer(pilot), what="the footer")
        await pilot.press("slash")
        field = tab.query_one("#runs-filter", Input)
        assert tab.screen.focused is field
        await pilot.press(*"model=knn acc>0.5", "enter")
        await wait_for(pilot, lambda: set(board_labels(tab)) == {"knn-1", "knn-2"}, what="knn")
        table = tab.query_one("#runs-board", DataTable)
        assert table.row_count == 2 and tab.screen.focused is table
        assert "2 of 5 runs match the filter" in screen_text(pilot.app)
        # a bad term: one line, and the board stays as it was
        await pilot.press("slash")
        field.value = "acc>>1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("acc>>1" in n.message for n in pilot.app._notifications))
        said = next(n for n in pilot.app._notifications if "acc>>1" in n.message)
        assert "\n" not in said.message and said.severity == "error"
        assert (
            set(board_labels(tab)) == {"knn-1", "knn-2"} and tab.run_filter == "model=knn acc>0.5"
        )
        # an empty filter shows every run again
        field.value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(board_labels(tab)) == 5, what="every run")


async def test_marked_runs_open_side_by_side_with_only_the_differing_parameters(
    home: Path,
) -> None:
    async with runs_tab(home) as (pilot, tab):
        tab.query_one("#runs-filter", Input).value = "model=knn"
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: len(board_labels(tab)) == 2, what="the knn runs")
        await pilot.press("C")  # nothing marked yet: said, nothing opened
        await wait_for(
            pilot, lambda: any("Mark two" in n.message for n in pilot.app._notifications)
        )
        table = tab.query_one("#runs-board", DataTable)
        table.move_cursor(row=0)
        await pilot.press("space", "down", "space")
        await pilot.pause()
        assert len(tab.marked) == 2 and "● knn-1" in screen_text(pilot.app)
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen), what="compare")
        await pilot.pause()
        shown = screen_text(pilot.app)
        compared = pilot.app.screen.comparison  # type: ignore[attr-defined]
        assert [row.name for row in compared.params] == ["n_neighbors"]
        assert "n_neighbors" in shown and "leaf_size" not in shown
        assert f"({compared.same_params} the same, not shown)" in shown
        assert "-0.0100" in shown  # acc's difference to the first marked run
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is tab.screen, what="the tab again")
