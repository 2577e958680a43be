"""The Monitor tab's Pipeline view (7, then P) on a small real project: an iris retriever and
`pipeline.models = ["gaussian_nb"]`, so a whole pipeline run (retrieve, process, check, retrain,
monitor) takes seconds.

R runs it with each step shown as it goes and the run in the history; a run while another
holds the project's lock is refused with a warning; x cancels; the schedule field previews a
typed expression in words with its next times (a bad one: the engine's error in place, no
notification), enter saves it into config.toml, and the line under it says what runs it; the
notifications show whether a webhook is set (masked) and what was sent. Runs made elsewhere
(a schedule, a shell) appear without a key.
"""

from __future__ import annotations

import asyncio
import re
import threading
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from engine import notify
from engine.api import ProjectAPI, Workspace
from engine.lock import project_lock
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.monitor import MonitorTab
from haj_tui.tabs.pipeline_view import PipelineView, when_text
from tests.support import call_haj
from tests.test_pipeline import FLAKY_RETRIEVER
from tests.tui_support import (
    footer_shows,
    no_cursor_blink,
    screen_text,
    show_tab,
    wait_for,
    wait_settled,
)

SIZE = (100, 30)
SMALL = (80, 24)
SLEEPY = "__import__('time').sleep(60)"  # a retriever that waits to be cancelled


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_cursor_blink(monkeypatch)
    monkeypatch.setenv("HAJ_CRONTAB", str(tmp_path / "no-crontab-here"))  # never the user's


def make_project(home: Path, raise_line: str = "") -> ProjectAPI:
    """`flaky`: iris from scikit-learn (150 rows), one fast model, no redeploy. With
    `raise_line`, the first retrieve runs it (e.g. sleeps until cancelled)."""
    assert call_haj(home, "init", "flaky", "-p", "classification", "--example", "iris").code == 0
    code = FLAKY_RETRIEVER.format(
        failures=1 if raise_line else 0, raise_line=raise_line or "pass", rows=150
    )
    (home / "flaky" / "retriever.py").write_text(code)
    for setting in ('pipeline.models=["gaussian_nb"]', "training.n_jobs=1",
                    "pipeline.redeploy=none", "pipeline.backoff_seconds=0.05"):  # fmt: skip
        result = call_haj(home, "config", "flaky", "--set", setting)
        assert result.code == 0, result.text
    return Workspace(home).project("flaky")


@asynccontextmanager
async def pipeline_view(
    home: Path, size: tuple[int, int] = SIZE
) -> AsyncIterator[tuple[Pilot[None], PipelineView, list[Note]]]:
    """The app on flaky, the Monitor tab (7) switched to the Pipeline view (P), read once;
    and every notification it gives (a toast goes away after seconds)."""
    app = HajApp(Workspace(home))
    said = record_notifications(app)
    async with app.run_test(size=size) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project("flaky")))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, "monitor")
        tab = screen.tab("monitor")
        assert isinstance(tab, MonitorTab)
        screen.set_focus(None)  # the keys work wherever the focus is (here: nowhere)
        await footer_shows(pilot, "P Pipeline")
        await pilot.press("P")
        view = tab.query_one(PipelineView)
        await wait_for(pilot, lambda: view.state is not None, what="the pipeline read")
        await wait_settled(pilot)
        yield pilot, view, said


@dataclass(frozen=True)
class Note:
    title: str
    message: str
    severity: str


def record_notifications(app: HajApp) -> list[Note]:
    said: list[Note] = []
    notify = app.notify

    def recording(
        message: str, *, title: str = "", severity: Any = "information", **kw: Any
    ) -> None:
        said.append(Note(title, str(message), str(severity)))
        notify(message, title=title, severity=severity, **kw)

    app.notify = recording  # type: ignore[method-assign]
    return said


def widget_text(widget: Widget) -> str:
    """A widget's lines as drawn (all of them, also those scrolled out of its box)."""
    height = max(widget.size.height, widget.virtual_size.height)
    strips = widget.render_lines(Region(0, 0, widget.size.width, height))
    return "\n".join(strip.text.rstrip() for strip in strips)


def steps_text(view: PipelineView) -> str:
    return widget_text(view.query_one("#pipeline-steps", Static))


def squeezed(text: str) -> str:
    return " ".join(text.split())


def preview_text(view: PipelineView) -> str:
    """The preview's words, its lines joined (it wraps at 80 columns)."""
    return squeezed(widget_text(view.query_one("#pipeline-preview", Static)))


def runs_rows(view: PipelineView) -> list[list[str]]:
    table = view.query_one("#pipeline-runs", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


# ---- run now ----------------------------------------------------------------------------------
async def test_r_runs_the_pipeline_with_each_step_shown_and_the_run_in_the_history(
    home: Path,
) -> None:
    project = make_project(home)
    async with pipeline_view(home) as (pilot, view, said):
        await footer_shows(  # the Drift view's keys are off
            pilot, "o Schedule", "R Run pipeline", "P Drift", hidden=("m Check", "i Diagnose")
        )
        assert "No pipeline run yet: press R" in screen_text(pilot.app)
        assert runs_rows(view) == []
        await pilot.press("R")
        # live: the first step ends (✓) while the others still wait, and x is offered
        await wait_for(
            pilot,
            lambda: view.running and "✓" in steps_text(view) and "waiting" in steps_text(view),
            what="the first step done while the run goes on",
        )
        await footer_shows(pilot, "x Cancel", hidden=("R Run pipeline",))
        assert "retrieve ✓" in squeezed(steps_text(view))
        await wait_for(pilot, lambda: not view.running, timeout=180, what="the run")
        await wait_settled(pilot)
        [run] = project.pipeline_history()
        assert run.status == "finished", run.summary
        assert [row[1:3] for row in runs_rows(view)] == [["manual", "finished"]]
        steps = squeezed(steps_text(view))
        for step in ("retrieve", "process", "retrain", "monitor"):
            assert f"{step} ✓" in steps, steps
        assert re.search(r"check skipped [\d.]+s no champion to check yet", steps)  # why
        await footer_shows(pilot, "R Run pipeline", hidden=("x Cancel",))
        assert [n.title for n in said] == ["Pipeline", "Pipeline finished"]  # started, ended
        # a run made elsewhere (a schedule, a shell) shows without a key
        await asyncio.to_thread(project.pipeline_run, ["retrieve"], trigger="schedule")
        await wait_for(
            pilot,
            lambda: [row[2] for row in runs_rows(view)] == ["finished", "finished"],
            timeout=10,
            what="the run made elsewhere",
        )
        assert [row[1:3] for row in runs_rows(view)] == [
            ["schedule", "finished"],
            ["manual", "finished"],
        ]
        # P goes back to the drift view: its keys come back
        await pilot.press("P")
        await footer_shows(pilot, "P Pipeline", "m Check drift", hidden=("R Run pipeline",))


async def test_r_while_another_run_holds_the_lock_is_refused_politely(home: Path) -> None:
    project = make_project(home)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:  # another pipeline run, as far as the project's lock can tell
        with project_lock(project.path, "pipeline run", wait=False):
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(30)
        async with pipeline_view(home) as (pilot, view, said):
            await pilot.press("R")
            await wait_for(pilot, lambda: not view.running and view.live is None)
            await pilot.pause()
            note = said[-1]
            assert note.title == "Pipeline not started" and note.severity == "warning"
            assert note.message.startswith("the pipeline is already running since ")
            assert project.pipeline_history() == []  # nothing ran, nothing recorded
            await footer_shows(pilot, "R Run pipeline")
    finally:
        release.set()
        holder.join(30)


async def test_x_cancels_the_running_step_at_80x24(home: Path) -> None:
    project = make_project(home, raise_line=SLEEPY)
    async with pipeline_view(home, SMALL) as (pilot, view, said):
        await pilot.press("R")
        await wait_for(pilot, lambda: view.live is not None and view.live.step == "retrieve")
        await wait_for(pilot, lambda: "running…" in steps_text(view))
        await wait_for(pilot, lambda: (project.path / "attempts.txt").exists())
        await footer_shows(pilot, "x Cancel")
        await pilot.press("x")
        await wait_for(pilot, lambda: not view.running, timeout=60, what="the cancel")
        await wait_for(pilot, lambda: runs_rows(view) and runs_rows(view)[0][1] == "cancelled")
        [run] = project.pipeline_history()
        assert run.status == "cancelled"
        assert [(s.name, s.outcome) for s in run.steps][:2] == [
            ("retrieve", "cancelled"),
            ("process", "skipped"),
        ]
        await wait_settled(pilot)
        text = screen_text(pilot.app)
        assert said[-1] == Note("", "Pipeline cancelled.", "warning")
        # at 80 columns: when, status and time stay; the reasons are whole, under their step
        assert runs_rows(view)[0][0].startswith("20") and len(runs_rows(view)[0]) == 3
        assert "1 column hidden" in text
        steps = steps_text(view)
        assert "retrieve cancelled" in steps and "\n  cancelled by the user" in steps
        assert "\n  not run: retrieve did not" in steps  # whole, wrapped under its step
        assert re.search(
            r"process skipped [\d.]+s not run: retrieve did not finish", squeezed(steps)
        )


# ---- the schedule -----------------------------------------------------------------------------
def schedule(config: Path) -> str:
    """[pipeline] schedule as config.toml holds it ("" when the key is not written)."""
    return str(tomllib.loads(config.read_text()).get("pipeline", {}).get("schedule", ""))


async def test_the_schedule_is_previewed_as_typed_and_saved_on_enter(home: Path) -> None:
    project = make_project(home)
    config = project.path / "config.toml"
    async with pipeline_view(home) as (pilot, view, said):
        assert "No schedule: the pipeline runs only when you press R." in preview_text(view)
        await pilot.press("o")
        field = view.query_one("#pipeline-schedule", Input)
        assert pilot.app.focused is field
        await footer_shows(pilot, "esc Leave field")
        await pilot.press(*"0 3 * * *")
        await pilot.pause()
        assert field.value == "0 3 * * *"
        preview = preview_text(view)
        _, words, times = project.preview_schedule("0 3 * * *")
        assert words == "At 03:00 every day" and words in preview
        assert "next " + ", ".join(when_text(t) for t in times) in preview
        assert all(t.strftime("%H:%M") == "03:00" for t in times) and len(times) == 3
        assert "enter saves" in preview
        # a bad expression: the engine's one-line error in place, and no notification
        before = len(said)
        field.value = "61 * * * *"
        await pilot.pause()
        assert "'61 * * * *': bad minute field (a minute is 0-59" in preview_text(view)
        await pilot.press("enter")  # refused in place: nothing saved, the focus stays
        await pilot.pause()
        assert pilot.app.focused is field and schedule(config) == ""
        field.value = "0 0 L * *"
        await pilot.pause()
        assert "uses L, W, # or ?, which cron does not understand" in preview_text(view)
        assert len(said) == before
        # enter saves a good one into config.toml; the keys work again
        field.value = "0 3 * * *"
        await pilot.press("enter")
        await wait_for(pilot, lambda: schedule(config) == "0 3 * * *", what="the saved schedule")
        await wait_for(pilot, lambda: view.state is not None and view.state.configured != "")
        await wait_settled(pilot)
        assert pilot.app.focused is view.query_one("#pipeline-runs")
        assert said[-1] == Note("Schedule saved", "0 3 * * * (At 03:00 every day)", "information")
        preview = preview_text(view)
        assert "enter saves" not in preview and "At 03:00 every day" in preview
        assert "nothing runs it" in preview  # no crontab program here, no scheduler
        await footer_shows(pilot, "R Run pipeline")
        # set elsewhere (`haj schedule set`): the field follows, the view stays
        await asyncio.to_thread(project.set_schedule, "@hourly")
        await wait_for(pilot, lambda: field.value == "@hourly", timeout=10, what="the new one")
        await wait_for(pilot, lambda: "At the start of every hour" in preview_text(view))
        # another tab and back: still the Pipeline view, the focus on its runs (not a field)
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        await pilot.press("1")
        await wait_for(pilot, lambda: screen.shown_tab == "config")
        await pilot.press("7")
        await wait_for(pilot, lambda: screen.shown_tab == "monitor")
        assert pilot.app.focused is view.query_one("#pipeline-runs")
        await footer_shows(pilot, "R Run pipeline")


STAND_IN = """#!/bin/sh
case "$1" in
  -l) if [ -f "{table}" ]; then cat "{table}"; else echo "no crontab for tester" >&2; exit 1; fi ;;
  -) cat > "{table}" ;;
  *) exit 1 ;;
esac
"""


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in `crontab` program named so ($HAJ_CRONTAB); its table's path."""
    program, table = tmp_path / "crontab", tmp_path / "table"
    program.write_text(STAND_IN.format(table=table))
    program.chmod(0o755)
    monkeypatch.setenv("HAJ_CRONTAB", str(program))
    yield table


async def test_the_view_says_cron_runs_an_installed_schedule(home: Path, crontab: Path) -> None:
    project = make_project(home)
    project.set_schedule("*/30 * * * *")
    project.install_schedule()
    assert "# haj:" in crontab.read_text()
    async with pipeline_view(home) as (_, view, _said):
        field = view.query_one("#pipeline-schedule", Input)
        assert field.value == "*/30 * * * *"
        preview = preview_text(view)
        assert project.preview_schedule("*/30 * * * *")[1] in preview  # in words
        assert "cron runs it (its crontab line is installed)" in preview
        assert "enter saves" not in preview


# ---- notifications ----------------------------------------------------------------------------
async def test_the_notification_status_masks_the_webhook_and_lists_what_was_sent(
    home: Path,
) -> None:
    project = make_project(home)
    async with pipeline_view(home) as (pilot, view, said):
        assert "○ no webhook: nothing is sent" in screen_text(pilot.app)
        assert "none yet" in screen_text(pilot.app)
        # set elsewhere (`haj config --notify-url`), then a message that could not be delivered
        project.project.set_secret("HAJ_NOTIFY_URL", "http://127.0.0.1:9/hook/T0KEN")
        record = notify.notify(project.project, "drift", "dataset drift", sleep=lambda _: None)
        assert record is not None and record["status"] == "failed"
        await wait_for(
            pilot, lambda: view.state is not None and view.state.notifications, timeout=10
        )
        await wait_settled(pilot)
        text = screen_text(pilot.app)
        assert "● webhook set (••••••••)" in text
        assert "T0KEN" not in text and "127.0.0.1:9" not in text  # a secret: never shown
        table = view.query_one("#pipeline-notes", DataTable)
        row = [str(cell) for cell in table.get_row_at(0)]
        assert row[1:4] == ["drift", "failed", "3"]
        assert "last 1" in text
        assert said == []  # what happens elsewhere is shown in place, never as a popup
