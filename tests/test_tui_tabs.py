"""Pilot tests of the Data, Train, Runs and Serve tabs, against a real workspace.

Real components throughout: the iris example retrieved and trained by the engine's runner, a
real server process on a free 127.0.0.1 port (stopped by PID at the end). Every wait is on a
condition, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import (
    DataTable,
    ProgressBar,
    Select,
    SelectionList,
    Static,
    TabbedContent,
)
from textual.worker import WorkerState

from engine import champion, data, runs, training, workspace
from engine.api import Workspace
from engine.serving import control
from engine.status import pid_alive
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.data import DataTab
from haj_tui.tabs.runs import RunsTab
from haj_tui.tabs.serve import ServeTab
from haj_tui.tabs.train import TrainTab
from haj_tui.widgets.charts import ScoreChart, TimeChart
from haj_tui.widgets.log_view import LogView
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for

pytestmark = pytest.mark.slow

FAST = ["logistic_regression", "decision_tree", "gaussian_nb"]


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture(scope="module")
def trained_iris(shared_build: Callable[..., Path]) -> Path:
    """A workspace with 'iris' retrieved, trained on three fast models and crowned (once)."""

    def build(root: Path) -> None:
        project = workspace.create_project(root, "iris", "classification", example="iris")
        project.update_config({"training": {"n_jobs": 1}})  # no worker processes: faster
        data.retrieve(project)
        training.train(project, FAST)
        champion.crown(project)

    return shared_build("tabs-iris", build)


@pytest.fixture
def ws(trained_iris: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained workspace for one test."""
    root = tmp_path / "ws"
    shutil.copytree(trained_iris, root, symlinks=True)
    return root


@pytest.fixture
def empty_ws(tmp_path: Path) -> Path:
    """A workspace with 'iris' created but no data yet."""
    root = tmp_path / "ws"
    workspace.create_project(root, "iris", "classification", example="iris")
    return root


@asynccontextmanager
async def open_tab(root: Path, tab: str, name: str = "iris") -> AsyncIterator[tuple[Pilot, object]]:
    """The app on project `name`, showing `tab`, with focus inside the tab (as after a click)."""
    app = HajApp(Workspace(root))
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project(name)))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, tab)
        widget = screen.tab(tab)
        assert widget is not None
        first = next(w for w in widget.query("*") if w.focusable)
        first.focus()
        await pilot.pause()
        yield pilot, widget


async def key_latency(
    pilot: Pilot, key: str, done: Callable[[], bool], limit: float = 2.0
) -> float:
    """Seconds from a key reaching the app (as the terminal driver delivers it) to its effect.

    Pilot.press also waits for the app to go idle and for animations, which measures the test
    harness rather than the app; this times only what a user waits for.
    """
    driver = pilot.app._driver
    assert driver is not None
    event = events.Key(key, None)
    event.set_sender(pilot.app)
    started = time.perf_counter()
    driver.send_message(event)
    while not done():
        if time.perf_counter() - started > limit:
            raise AssertionError(f"{key!r} had no effect within {limit} s")
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


def log_text(log: LogView) -> str:
    """The log's text without whitespace: lines wrap at the panel's width, anywhere."""
    return "".join("".join(line.text.split()) for line in log.lines)


def notifications(pilot: Pilot) -> list[str]:
    return [n.message for n in pilot.app._notifications]


# ---- Data ---------------------------------------------------------------------------------------
async def test_data_tab_retrieves_processes_and_previews(empty_ws: Path) -> None:
    async with open_tab(empty_ws, "data") as (pilot, tab):
        assert isinstance(tab, DataTab)
        versions = tab.query_one("#data-versions", DataTable)
        assert versions.row_count == 0
        assert "No data yet" in screen_text(pilot.app)

        await pilot.press("r")
        await wait_for(pilot, lambda: versions.row_count == 1, 30, "the raw version")
        await wait_for(pilot, lambda: not tab._busy(), 30, "retrieve to end")
        current, *row = versions.get_row_at(0)[:5]
        assert row == ["raw-0001", "csv", "150", "5"] and str(current) == "✓"  # what train uses
        log = tab.query_one("#data-log", LogView)
        assert "newrawversionraw-0001" in log_text(log)

        head = tab.query_one("#data-head", DataTable)
        summary = tab.query_one("#data-summary", DataTable)
        await wait_for(pilot, lambda: head.row_count == 20 and summary.row_count == 5)
        columns = [str(c.label) for c in head.columns.values()]
        assert columns[-1] == "target" and "sepal length (cm)" in columns
        labels = [str(c.label) for c in summary.columns.values()]
        first = dict(zip(labels, (str(cell) for cell in summary.get_row_at(0)), strict=True))
        assert first["column"] == "sepal length (cm)"
        assert first["min"] == "4.300" and first["max"] == "7.900"  # the real data's, at the
        # column's precision (4 significant digits of its largest value)
        assert first.get("miss", "0%") == "0%" and first.get("type", "float64") == "float64"

        await pilot.press("p")
        await wait_for(pilot, lambda: versions.row_count == 2, 30, "the processed version")
        await wait_for(pilot, lambda: not tab._busy(), 30, "process to end")
        assert versions.get_row_at(0)[1] == "proc-0001"
        assert versions.get_row_at(0)[6] == "processor.py(raw-0001)"
        assert [str(versions.get_row_at(i)[0]) for i in range(2)] == ["✓", "✓"]
        await wait_for(pilot, lambda: "Columns of proc-0001" in screen_text(pilot.app))


# ---- Train --------------------------------------------------------------------------------------
SLOW_MODULE = """
import time

from sklearn.naive_bayes import GaussianNB


class SlowNB(GaussianNB):
    \"\"\"Gaussian naive Bayes that takes its time: keeps a run 'running' long enough to act.\"\"\"

    def fit(self, X, y, sample_weight=None):
        time.sleep(SECONDS)
        return super().fit(X, y, sample_weight=sample_weight)
"""

SLOW_MODEL_PY = """
from haj_slow_models import SlowNB


def models():
    return {"slow_nb": SlowNB()}
"""


@pytest.fixture
def slow_project(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> workspace.Project:
    """iris whose model.py adds 'slow_nb' (sleeps `request.param` s in fit).

    The estimator lives in an importable module (on PYTHONPATH for the runner, on sys.path for
    the app) so its fitted model pickles like any user's.
    """
    seconds = getattr(request, "param", 4)
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "haj_slow_models.py").write_text(SLOW_MODULE.replace("SECONDS", str(seconds)))
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.setenv("PYTHONPATH", str(modules))
    project = workspace.get_project(ws, "iris")
    project.code_path("model").write_text(SLOW_MODEL_PY)
    return project


async def start_training(pilot: Pilot, tab: TrainTab, names: list[str]) -> DataTable:
    models = tab.query_one("#train-models", SelectionList)
    await wait_for(pilot, lambda: models.option_count == 12, what="model.py's extra model")
    assert len(models.selected) == 12  # all checked by default
    await pilot.press("a")
    assert models.selected == []
    for name in names:
        models.select(name)
    await pilot.press("t")
    table = tab.query_one("#train-results", DataTable)
    # every chosen model gets its row as the engine queues it (queued, or already running,
    # or on a loaded machine a fast one already finished), and none is "failed"
    await wait_for(pilot, lambda: len(statuses(table)) == len(names), 30, "the queued runs")
    assert set(statuses(table)) <= {"queued", "running", "finished"}, statuses(table)
    await wait_for(pilot, lambda: "running" in statuses(table), 30, "a running model")
    return table


def statuses(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_train_tab_fills_rows_and_answers_keys_while_training(
    slow_project: workspace.Project,
) -> None:
    async with open_tab(slow_project.path.parent, "train") as (pilot, tab):
        assert isinstance(tab, TrainTab)
        table = await start_training(pilot, tab, ["logistic_regression", "slow_nb"])
        worker = next(w for w in pilot.app.workers if w.group == "train")

        # the keyboard answers while the runner trains
        timings = []
        for key in ("down", "up") * 3:
            before = table.cursor_row
            timings.append(await key_latency(pilot, key, lambda b=before: table.cursor_row != b))
        assert worker.state == WorkerState.RUNNING, "training ended before the keys were timed"
        # Not blocked by training: keys are answered in ms (the median), and none waits for the
        # fit (slow_nb takes 4 s; one key may meet a busy moment of a loaded machine).
        assert statistics.median(timings) < 0.1 and max(timings) < 3.0, timings

        # logistic_regression's row fills as it finishes, while slow_nb is still running
        await wait_for(pilot, lambda: statuses(table) == ["finished", "running"], 30)
        await wait_for(pilot, lambda: worker.state == WorkerState.SUCCESS, 60, "training")
        await pilot.pause()
        rows = [table.get_row_at(i) for i in range(2)]
        assert sorted(str(r[0]) for r in rows) == ["logistic_regression-2", "slow_nb-1"]
        accs = [float(str(r[2])) for r in rows]  # acc, from the RunFinished event
        assert accs == sorted(accs, reverse=True)  # the results are sorted, best first
        for row in rows:
            assert str(row[1]) == "finished"
            assert 0.5 < float(str(row[2])) <= 1.0
        assert str(table.get_cell("logistic_regression", "time")).endswith("s")
        assert float(str(table.get_cell("slow_nb", "time"))[:-1]) >= 4  # slow_nb's duration
        bar = tab.query_one("#train-progress", ProgressBar)
        assert bar.progress == bar.total == 2
        assert "Done: 2 finished" in screen_text(pilot.app)
        log = tab.query_one("#train-log", LogView)
        assert "done:2finished" in log_text(log)
    board = runs.leaderboard(slow_project)
    assert len(board.runs) == 5


@pytest.mark.parametrize("slow_project", [60], indirect=True)
async def test_train_tab_cancel_stops_within_2s_and_records_cancelled(
    slow_project: workspace.Project,
) -> None:
    async with open_tab(slow_project.path.parent, "train") as (pilot, tab):
        assert isinstance(tab, TrainTab)
        table = await start_training(pilot, tab, ["slow_nb"])
        worker = next(w for w in pilot.app.workers if w.group == "train")
        # 2 s is the engine's deadline before it kills the runner; the margin is for the
        # worker thread to collect the runner's last events on a loaded 2-core machine
        elapsed = await key_latency(pilot, "x", lambda: worker.is_finished, limit=10)
        assert elapsed < 2.5, elapsed
        await wait_for(pilot, lambda: "Cancelled" in screen_text(pilot.app))
        assert str(table.get_row_at(0)[1]) == "cancelled"
        assert not any("Error" in str(n.title) for n in pilot.app._notifications)
    recorded = {r["label"]: r["status"] for r in runs.leaderboard(slow_project).runs}
    assert recorded["slow_nb-1"] == "cancelled"


async def test_train_tab_trains_on_the_data_version_picked(ws: Path) -> None:
    """A second source makes raw-0002 current; picking raw-0001 trains on it (as `haj train
    --data raw-0001`), and the selector marks which version is current."""
    project = workspace.get_project(ws, "iris")
    first = data.versions(project, "raw")[0]
    subset = ws / "iris-subset.csv"
    lines = (project.path / first["path"]).read_text().splitlines()
    subset.write_text("\n".join(lines[:121]) + "\n")
    project.update_config({"data": {"url": str(subset)}})
    data.retrieve(project)
    async with open_tab(ws, "train") as (pilot, tab):
        assert isinstance(tab, TrainTab)
        picker = tab.query_one("#train-data", Select)
        await wait_for(pilot, lambda: tab.query_one("#train-models").option_count >= 11)
        labels = [str(option[0]) for option in picker._options]
        assert labels[:3] == ["current data", "raw-0002 ✓", "proc-0001"]
        picker.value = "raw-0001"
        models = tab.query_one("#train-models", SelectionList)
        models.deselect_all()
        models.select("knn")
        await pilot.press("t")
        await wait_for(pilot, lambda: not tab._busy() and "Done" in screen_text(pilot.app), 60)
    board = runs.leaderboard(project, any_data=True)  # raw-0001's runs: not the current data
    latest = max(board.runs, key=lambda run: run["started_at"])
    assert latest["model"] == "knn" and latest["data_version"] == "proc-0001"


# ---- Runs ---------------------------------------------------------------------------------------
async def test_runs_tab_leaderboard_metric_detail_and_crown(ws: Path) -> None:
    project = workspace.get_project(ws, "iris")
    async with open_tab(ws, "runs") as (pilot, tab):
        assert isinstance(tab, RunsTab)
        board = tab.query_one("#runs-board", DataTable)
        assert board.row_count == 3
        current = champion.current(project)
        assert current is not None
        champion_row = board.get_row_index(current["run_id"])
        assert str(board.get_row_at(champion_row)[0]).startswith("★")
        accs = [float(str(board.get_row_at(i)[1])) for i in range(3)]  # right after the run
        assert accs == sorted(accs, reverse=True)
        chart = tab.query_one("#runs-chart", ScoreChart)
        assert len(chart.bars) == 3 and sum(b.marked for b in chart.bars) == 1
        history = tab.query_one("#runs-history", DataTable)
        assert history.row_count == 1

        # the detail follows the cursor
        board.focus()
        await pilot.press("down")
        assert tab.board is not None
        second = tab.board.runs[1]
        text = screen_text(pilot.app)
        assert f"Run {second['label']}" in text and f"id         {second['id']}" in text

        # sort by another metric with the selector (m cycles it)
        await pilot.press("m")
        assert tab.query_one("#runs-metric", Select).value == "precision"
        assert tab.board.metric == "precision"
        assert "Leaderboard by precision" in screen_text(pilot.app)
        assert str(list(board.columns.values())[1].label) == "precision ↓"  # sorted column first
        precisions = [float(str(board.get_row_at(i)[1])) for i in range(3)]
        assert precisions == sorted(precisions, reverse=True)

        # crown by that metric: champion and history follow
        await pilot.press("c")
        await wait_for(pilot, lambda: history.row_count == 2, 20, "the new crowning")
        crowned = champion.current(project)
        assert crowned is not None and crowned["metric"] == "precision"
        assert any("Champion:" in m for m in notifications(pilot))
        assert f"precision={crowned['value']:.4f}" in screen_text(pilot.app)

        # with the leaderboard focused, a number key still leaves the tab (no focus bounce)
        assert pilot.app.focused is board
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(TabbedContent).active == "data")


# ---- Serve --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_tab_start_counters_test_request_stop(ws: Path) -> None:
    project = workspace.get_project(ws, "iris")
    port = free_port()
    project.update_config({"serving": {"port": port}})
    pid = None
    try:
        async with open_tab(ws, "serve") as (pilot, tab):
            assert isinstance(tab, ServeTab)
            assert "stopped" in screen_text(pilot.app)
            await pilot.press("s")
            await wait_for(pilot, lambda: tab.stats is not None, 60, "the server to answer")
            assert tab.record is not None
            pid = tab.record.pid
            url = f"http://127.0.0.1:{port}"
            await wait_for(pilot, lambda: f"running {url}" in screen_text(pilot.app))

            await pilot.press("e")
            await wait_for(pilot, lambda: "HTTP 200" in screen_text(pilot.app), 20, "an answer")
            shown = str(tab.query_one("#serve-request", Static).render())
            assert "sepal length (cm)" in shown and "target" not in shown
            answer = str(tab.query_one("#serve-response", Static).render())
            assert "predictions" in answer
            await wait_for(
                pilot,
                lambda: tab.stats is not None and tab.stats.counts.get("predictions") == 1,
                10,
                "the counter",
            )
            # the charts come from the server's own history (GET /history): latency of the
            # answered request, and the request rate with its bump
            latency = tab.query_one("#serve-latency-chart", TimeChart)
            rate = tab.query_one("#serve-rate-chart", TimeChart)
            await wait_for(
                pilot, lambda: len(latency.series.get("p50 ms", ([], []))[1]) > 0, 10, "latency"
            )
            await wait_for(
                pilot, lambda: max(rate.series.get("requests/s", ([], [0]))[1] or [0]) > 0, 10,
                "the request rate",
            )  # fmt: skip
            assert "predictions 1" in " ".join(screen_text(pilot.app).split())

            await pilot.press("s")
            await wait_for(pilot, lambda: "stopped" in screen_text(pilot.app), 20, "the stop")
            assert control.server_status(project) is None
            assert not pid_alive(pid)
    finally:
        if pid is not None and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---- errors -------------------------------------------------------------------------------------
async def test_engine_errors_become_notifications_not_crashes(empty_ws: Path) -> None:
    """No data, no runs, no champion: each tab's action fails in the engine, the app goes on."""
    project = workspace.get_project(empty_ws, "iris")
    project.update_config({"serving": {"port": free_port()}})
    async with open_tab(empty_ws, "data") as (pilot, data_tab):
        assert isinstance(data_tab, DataTab)
        await pilot.press("p")  # nothing retrieved yet: DataError in the runner
        await wait_for(pilot, lambda: any("no data yet" in m for m in notifications(pilot)), 30)
        await wait_for(pilot, lambda: not data_tab._busy())
        assert "no data yet" in str(data_tab.query_one("#data-state").render())

        await pilot.press("c")  # shows the Runs tab and crowns: NoChampion
        await wait_for(pilot, lambda: any("no runs yet" in m for m in notifications(pilot)), 20)
        assert "No runs yet" in screen_text(pilot.app)

        before = len(notifications(pilot))
        await pilot.press("s")  # shows the Serve tab and starts: no champion to serve
        serve_tab = pilot.app.screen.tab("serve")
        assert isinstance(serve_tab, ServeTab)
        await wait_for(pilot, lambda: len(notifications(pilot)) > before, 30, "the error")
        await wait_for(pilot, lambda: not serve_tab._switching)
        assert serve_tab.record is None and "stopped" in screen_text(pilot.app)
        assert pilot.app.is_running
