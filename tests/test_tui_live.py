"""Views that stay live, tables that fit, numbers that tell the truth (issue 10), on the fake
engine (tests/tui_fake.py): the Runs, Train and Data tabs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Label

from engine import events
from haj_tui.app import HajApp
from haj_tui.messages import EngineEvent
from haj_tui.screens.project import ProjectScreen
from haj_tui.widgets.charts import ScoreChart, bar_lengths
from haj_tui.widgets.log_view import LogView
from tests.tui_fake import FakeProject, FakeWorkspace
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for, workers_done


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def ws() -> FakeWorkspace:
    return FakeWorkspace.populated()


@asynccontextmanager
async def open_tab(
    project: FakeProject, tab: str, size: tuple[int, int] = (100, 30)
) -> AsyncIterator[tuple[Pilot, Any]]:
    app = HajApp(project.workspace)  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await app.push_screen(ProjectScreen(project))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, tab)
        await workers_done(app)
        await pilot.pause()
        yield pilot, screen.tab(tab)


def cells(table: DataTable, column: str) -> list[str]:
    return [
        str(table.get_cell_at((row, table.get_column_index(column))))
        for row in range(table.row_count)
    ]


def columns_fit(table: DataTable) -> bool:
    """Every column is shown whole: none is cut at the table's edge."""
    used = sum(column.get_render_width(table) for column in table.columns.values())
    return used <= table.scrollable_content_region.width


def state(tab: Any) -> str:
    return str(tab.query_one("#train-state", Label).render())


# ---- views that stay live ---
async def test_runs_tab_shows_runs_finished_elsewhere_within_2s(ws: FakeWorkspace) -> None:
    cancer = ws.project("cancer")
    async with open_tab(cancer, "runs") as (pilot, tab):
        board = tab.query_one("#runs-board", DataTable)
        assert board.row_count == 2
        cancer.add_runs(["knn"])  # `haj train` in a shell: the store changes, no event here
        await wait_for(pilot, lambda: board.row_count == 3, 2.0, "the new run")
        cancer.crown("f1")  # a crowning elsewhere
        await wait_for(pilot, lambda: "Leaderboard by" in screen_text(pilot.app))
        await wait_for(
            pilot, lambda: "f1=" in str(tab.query_one("#runs-champion", Label).render()), 2.0
        )


async def test_train_tab_shows_the_last_session_from_the_store_sorted(ws: FakeWorkspace) -> None:
    """After a restart (a new app), the results of the last session are there, best first."""
    cancer = ws.project("cancer")
    cancer.add_runs(["knn", "svc", "random_forest"])
    for run in cancer.runs:
        run["session"] = "last"
    cancer.train_lines = ["05:31:49 knn-1 finished in 0.60s: acc=0.9200"]
    async with open_tab(cancer, "train") as (_, tab):
        table = tab.query_one("#train-results", DataTable)
        assert table.row_count == 5
        accs = [float(text) for text in cells(table, "acc")]
        assert accs == sorted(accs, reverse=True)
        assert set(cells(table, "status")) == {"finished"}
        assert "Last training: 5 finished" in state(tab)
        log = tab.query_one("#train-log", LogView)
        assert "05:31:49 knn-1 finished in 0.60s: acc=0.9200" in log.plain_lines


async def test_train_tab_without_data_says_so_once_and_offers_the_key(ws: FakeWorkspace) -> None:
    wine = ws.project("wine")  # created, never retrieved
    async with open_tab(wine, "train") as (pilot, tab):
        assert "press r to retrieve" in state(tab)
        await pilot.press("t")
        await wait_for(pilot, lambda: not tab._busy(), what="the failed start")
        await pilot.pause()
        table = tab.query_one("#train-results", DataTable)
        assert table.row_count == 0  # not 11 "failed" rows
        assert "press r to retrieve" in state(tab)


async def test_train_tab_tells_queued_from_running_with_elapsed_and_estimate(
    ws: FakeWorkspace,
) -> None:
    cancer = ws.project("cancer")
    async with open_tab(cancer, "train") as (pilot, tab):
        tab._cancel = __import__("threading").Event()  # as while training: events come in
        tab._rows = {}
        tab._pending_estimates = {"knn": 3.0, "svc": 5.0, "logistic_regression": 1.0}
        for model in ("knn", "svc", "logistic_regression"):
            tab.post_message(
                EngineEvent(events.RunQueued(f"id-{model}", model, f"{model}-9", "p1"), "train")
            )
        tab.post_message(EngineEvent(events.RunStarted("id-knn", "knn", "knn-9", "p1"), "train"))
        table = tab.query_one("#train-results", DataTable)
        await wait_for(pilot, lambda: "running" in cells(table, "status"))
        assert sorted(cells(table, "status")) == ["queued", "queued", "running"]
        assert "1 running, 2 queued, 0/3 done" in state(tab)
        assert "left" in state(tab)  # an estimate from earlier runs
        # where the fits run (engine.cluster): the backend and the cluster's workers
        backend = events.TrainBackend("dask", workers=3, threads=6, address="tcp://10.1.2.3:8786")
        tab.post_message(EngineEvent(backend, "train"))
        await wait_for(pilot, lambda: "Dask tcp://10.1.2.3:8786: 3 worker(s)" in state(tab))
        assert "~3.00s" in cells(table, "expect")
        await pilot.pause(1.2)  # the elapsed time ticks
        knn = table.get_row_index("knn")
        assert str(table.get_cell_at((knn, table.get_column_index("time")))).endswith("s")
        tab._cancel = None


async def test_log_lines_written_while_hidden_wrap_at_the_panel_width(ws: FakeWorkspace) -> None:
    cancer = ws.project("cancer")
    async with open_tab(cancer, "train") as (pilot, tab):
        log = tab.query_one("#train-log", LogView)
        pilot.app.screen.action_show_tab("runs")
        await pilot.pause()
        line = (
            "[2026-12-02 05:31:49 cancer (gradient_boosting-1) proc-0001] finished in 0.17s: "
            "acc=0.9825 precision=0.9826 recall=0.9825"
        )
        log.write_event(events.Log(line))
        pilot.app.screen.action_show_tab("train")
        await wait_for(pilot, lambda: log.size.width > 40)
        await pilot.pause()
        shown = [strip.text.rstrip() for strip in log.lines]
        # the compact prefix, wrapped at the panel's width (~70), not at 20 columns
        assert shown[-1].startswith("05:31:49 gradient_boosting-1 finished") or any(
            s.startswith("05:31:49 gradient_boosting-1 finished in 0.17s: acc=0.9825")
            for s in shown
        )
        assert max(len(s) for s in shown) > 40


# ---- tables that fit, numbers that tell the truth ---
@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
@pytest.mark.parametrize("tab_id", ["runs", "train", "data"])
async def test_no_number_is_cut_at_the_tables_edge(
    ws: FakeWorkspace, tab_id: str, size: tuple[int, int]
) -> None:
    cancer = ws.project("cancer")
    cancer.add_runs(["hist_gradient_boosting", "random_forest", "knn"])
    async with open_tab(cancer, tab_id, size) as (pilot, tab):
        await pilot.pause(0.2)
        tables = [t for t in tab.query(DataTable) if t.region.width]  # on screen (not Tune's)
        assert tables
        for table in tables:
            assert columns_fit(table), (table.id, screen_text(pilot.app))
        if tab_id == "runs":  # the sort metric and the status are kept
            keys = [key.value for key in tab.query_one("#runs-board", DataTable).columns]
            assert keys[:3] == ["run", "acc", "status"]
        if tab_id == "train":
            keys = [key.value for key in tab.query_one("#train-results", DataTable).columns]
            assert keys[:3] == ["model", "status", "acc"]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_projects_list_keeps_the_score_and_the_server(
    ws: FakeWorkspace, size: tuple[int, int]
) -> None:
    """Failed before: at 80x24 the Server column was cut at the screen's edge (the table
    scrolled sideways). Now the lower-priority columns (Title, Data, Runs first) give way."""
    async with HajApp(ws).run_test(size=size) as pilot:
        table = pilot.app.screen.query_one("#projects-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="the projects")
        # the columns are chosen again once the table has its width (a loaded machine: later)
        await wait_for(pilot, lambda: columns_fit(table), 10, "the columns that fit")
        await pilot.pause()
        keys = [key.value for key in table.columns]
        assert {"name", "score", "server"} <= set(keys), keys
        assert columns_fit(table), screen_text(pilot.app)
        assert table.max_scroll_x == 0
        text = screen_text(pilot.app)
        assert "acc 0.9825" in text and "127.0.0.1:8000" in text
        if size == (80, 24):  # what gives way first: the title, the data and run counts
            assert keys == ["name", "type", "champion", "score", "server"]
        else:
            assert len(keys) == 8


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_data_first_rows_show_whole_columns_and_say_how_many_are_hidden(
    ws: FakeWorkspace, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """Failed before: the First rows table showed all 14 columns and cut the last one in view
    at the panel's edge (mid-number), saying nothing of the others."""
    import pandas as pd

    cancer = ws.project("cancer")
    real = cancer.preview
    wide = pd.DataFrame(
        {f"feature {n}": [1234.5678 * (n + 1), None, -0.001234 * n] for n in range(12)}
        | {"label": ["benign", "malignant", "benign"], "target": [0, 1, 0]}
    )

    def preview(version_id: str, rows: int = 20) -> dict[str, Any]:
        return {**real(version_id, rows), "head": wide}

    monkeypatch.setattr(cancer, "preview", preview)
    async with open_tab(cancer, "data", size) as (pilot, tab):
        head = tab.query_one("#data-head", DataTable)
        await wait_for(pilot, lambda: head.row_count == 3, what="the first rows")
        await wait_for(pilot, lambda: head.border_subtitle, 10, "the hidden columns said")
        await pilot.pause()
        shown = [str(column.label) for column in head.columns.values()]
        assert shown == list(wide.columns[: len(shown)]) and 0 < len(shown) < 14
        assert columns_fit(head) and head.max_scroll_x == 0, screen_text(pilot.app)
        hidden = 14 - len(shown)
        assert head.border_subtitle == f"{hidden} columns hidden"
        assert f"{hidden} columns hidden" in screen_text(pilot.app)  # whole, in the border
        values = [str(cell) for cell in head.get_row_at(0)]
        assert values[0] == "1235" and values[1] == "2469"  # one precision a column, whole
        assert str(head.get_row_at(1)[0]) == "NA"


async def test_data_summary_shows_noise_as_zero_and_missing_explicitly(
    ws: FakeWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancer = ws.project("cancer")
    real = cancer.preview

    def preview(version_id: str, rows: int = 20) -> dict[str, Any]:
        answer = real(version_id, rows)
        answer["summary"] = [
            {"column": "s1", "type": "float64", "missing_pct": 0.0,
             "min": -0.1268, "mean": -2.512e-19, "max": 0.1539},
            {"column": "tiny", "type": "float64", "missing_pct": 0.0,
             "min": 1.2e-06, "mean": 6.903e-06, "max": 1.5e-05},
            {"column": "gone", "type": "float64", "missing_pct": 100.0,
             "min": None, "mean": None, "max": None},
        ]  # fmt: skip
        return answer

    monkeypatch.setattr(cancer, "preview", preview)
    async with open_tab(cancer, "data") as (pilot, tab):
        summary = tab.query_one("#data-summary", DataTable)
        await wait_for(pilot, lambda: summary.row_count == 3)
        rows = [[str(c) for c in summary.get_row_at(i)] for i in range(3)]
        assert rows[0][rows[0].index("-0.1268") + 1] == "0.0000"  # not -2.512e-19
        assert "6.903e-06" in rows[1]  # whole, not 6.90
        assert rows[2].count("NA") == 3  # missing is said, not a blank cell


# ---- charts ---
def test_bars_scale_from_the_worst_to_the_best_in_the_metrics_direction() -> None:
    rmse = [52.94, 53.15, 57.0]  # lower is better: the best has the longest bar
    lengths = bar_lengths(rmse, higher_is_better=False)
    assert lengths[0] == 1.0 and lengths[2] < 0.2
    assert lengths[0] - lengths[1] > 0.03  # close scores stay apart (from 0 they would not)
    assert bar_lengths([0.97, 0.95], higher_is_better=True) == [1.0, 0.1]


async def test_runs_chart_has_an_axis_with_the_worst_and_best_scores(ws: FakeWorkspace) -> None:
    diabetes = ws.project("diabetes")  # rmse: lower is better
    async with open_tab(diabetes, "runs") as (pilot, tab):
        chart = tab.query_one("#runs-chart", ScoreChart)
        assert [bar.value for bar in chart.bars] == sorted(bar.value for bar in chart.bars)
        text = screen_text(pilot.app)
        assert "rmse: lower is better" in text and "better →" in text
        best, worst = chart.bars[0].value, chart.bars[-1].value
        assert f"{best:.2f}" in text and f"{worst:.2f}" in text


async def test_data_tab_lists_the_files_of_a_folder_version(tmp_path: Path) -> None:
    """A version made from a folder shows its files (engine.folder's record) under the preview."""
    from engine.api import Workspace
    from haj_tui.app import HajApp
    from tests.support import call_haj

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for month, start in (("jan", 0), ("feb", 20)):
        lines = ["x,label"] + [f"{i},{'a' if i % 2 else 'b'}" for i in range(start, start + 20)]
        (incoming / f"{month}.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "home"
    assert call_haj(home, "init", "f", "-p", "classification", "--url", str(incoming),
                    "--target", "label").code == 0  # fmt: skip
    from engine.data import retrieve_in_process
    from engine.project import Project

    retrieve_in_process(Project("f", home / "f"), lambda event: None)
    app = HajApp(Workspace(home))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("3")
        for _ in range(50):
            await pilot.pause(0.05)
            table = app.screen.query_one("#data-files")
            if table.display and table.row_count:
                break
        assert table.display and table.row_count == 2
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["feb.csv", "jan.csv"]


async def test_projects_list_shows_a_crowning_made_elsewhere_within_2_s(tmp_path: Path) -> None:
    """The Projects list is not a snapshot: a champion crowned by another process's store
    write (here: the store directly, as `haj evaluate` in a shell would) appears on its own."""
    from engine.api import Workspace
    from engine.store import Store
    from tests.support import call_haj

    home = tmp_path / "home"
    assert call_haj(home, "init", "p", "-p", "classification").code == 0
    app = HajApp(Workspace(home))
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one("#projects-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the project")
        assert str(table.get_row_at(0)[5]) == "-"  # no champion yet
        await pilot.pause(1.2)  # the list has taken its first stamp
        with Store(home / "p" / "haj.db") as store:
            (run,) = store.start_runs(session="s", models=[("knn", {})],
                                      prediction="classification", data_version=None)  # fmt: skip
            store.finish_run(run.id, status="finished", metrics={"acc": 0.9})
            store.crown(run.id, "acc", 0.9)
        started = time.monotonic()
        await wait_for(pilot, lambda: str(table.get_row_at(0)[5]) == "knn", timeout=5,
                       what="the crowning")  # fmt: skip
        assert time.monotonic() - started < 2.5
