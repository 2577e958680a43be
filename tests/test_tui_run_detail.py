"""The Runs tab's run panel shows the run's artifacts (engine.artifacts), on the session's trained
breast_cancer (binary) and diabetes (regression) projects: the confusion matrix as a heat table
with the per-class scores, the ROC and precision-recall curves (or predicted against actual) as
charts with axes, and the importances as bars."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from engine.api import Workspace
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.runs import RunsTab
from haj_tui.widgets.charts import XYChart
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for

SIZE = (120, 50)


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@asynccontextmanager
async def runs_tab(home: Path, name: str) -> AsyncIterator[tuple[Pilot, RunsTab]]:
    app = HajApp(Workspace(home))
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen(Workspace(home).project(name)))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, "runs")
        tab = screen.tab("runs")
        assert isinstance(tab, RunsTab)
        await wait_for(pilot, lambda: tab.board is not None and bool(tab.board.runs))
        yield pilot, tab


def text_of(widget: Static, width: int = 60) -> str:
    console = Console(width=width, color_system=None)
    with console.capture() as captured:
        console.print(widget.content)
    return captured.get()


async def see(pilot: Pilot, tab: RunsTab, widget: Any, *texts: str) -> None:
    """Scroll the run panel to `widget` and wait until the screen shows every one of `texts`.
    The scroll is asked again while waiting: asked before the panel is laid out (a loaded
    machine), it does nothing."""
    box = tab.query_one("#runs-detail-box")

    def shown() -> bool:
        box.scroll_to_widget(widget, animate=False, top=True)
        screen = screen_text(pilot.app)
        return all(text in screen for text in texts)

    await wait_for(pilot, shown, what=repr(texts))


async def test_a_classification_run_shows_its_matrix_curves_and_importances(
    trained_home: Path,
) -> None:
    async with runs_tab(trained_home, "cancer") as (pilot, tab):
        shown = text_of(tab.query_one("#runs-artifacts", Static))
        assert "On the test split (114 rows)" in shown
        assert "truth \\ predicted" in shown  # the heat table
        assert "prec" in shown and "auc" in shown  # per class
        roc, pr = tab.query_one("#runs-roc", XYChart), tab.query_one("#runs-pr", XYChart)
        scatter = tab.query_one("#runs-scatter", XYChart)
        assert roc.display and pr.display and not scatter.display
        assert str(roc.border_title).startswith("ROC of 1: AUC 0.9")
        assert str(pr.border_title).startswith("PR of 1: AP 0.9")
        await see(pilot, tab, roc, "false positive rate", "1.00┤")  # axes, ticks
        bars = text_of(tab.query_one("#runs-importances", Static))
        assert "Importances (" in bars and "█" in bars


async def test_a_regression_run_shows_residuals_and_predicted_against_actual(
    trained_home: Path,
) -> None:
    async with runs_tab(trained_home, "diabetes") as (pilot, tab):
        shown = text_of(tab.query_one("#runs-artifacts", Static))
        assert "residuals (truth - prediction)" in shown and "median" in shown
        scatter = tab.query_one("#runs-scatter", XYChart)
        assert scatter.display and not tab.query_one("#runs-roc", XYChart).display
        assert str(scatter.border_title).startswith("Predicted vs actual (89 of 89)")
        await see(pilot, tab, scatter, "actual", "predicted")


async def test_scoring_a_run_puts_its_evaluation_in_place_of_the_artifacts(
    trained_home: Path,
) -> None:
    async with runs_tab(trained_home, "cancer") as (pilot, tab):
        run = tab.board.runs[0]["id"]  # type: ignore[union-attr]
        (scored,) = tab.project.score(None, runs=[run])
        tab._show_scored(scored)
        await pilot.pause()
        assert not tab.query_one("#runs-roc", XYChart).display
        assert text_of(tab.query_one("#runs-importances", Static)).strip() == ""
