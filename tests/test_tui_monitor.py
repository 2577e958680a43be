"""The Monitor tab (7) against a real trained project: the raw penguins table trained once per
module by the real `haj` (tests/support/penguins.py), copied per test.

A check (m) is the engine's drift report on real rows (a file with two columns shifted by a known
amount flags exactly those), stored and drawn over time; a diagnosis (i) reads the project (pip's
answers recorded: no network); a project without a champion says what to press. The snapshot is
of a project whose current data drifted, with the clock of the stored checks fixed.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from engine import champion, diagnose, store
from engine.api import Workspace
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.monitor import MonitorTab, drift_scale, history_series
from haj_tui.widgets.charts import ThresholdChart, TimeChart
from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj
from tests.support.penguins import copy_home, train_penguins
from tests.tui_support import (
    footer_shows,
    no_cursor_blink,
    screen_text,
    show_tab,
    wait_for,
    wait_settled,
    workers_done,
)

SIZE = (100, 30)
SHIFTED = ["Body Mass (g)", "Flipper Length (mm)"]
# a line of pip's --log when the package index cannot be reached (as pip 23.2.1 wrote it)
UNREACHABLE = (
    "2026-12-02T08:01:02,949 Could not fetch URL http://127.0.0.1:9/simple/cloudpickle/: "
    "connection error: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded - "
    "skipping"
)


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture(scope="module")
def trained(shared_build: Callable[..., Path]) -> Path:
    return shared_build("penguins", train_penguins)


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    return copy_home(trained, tmp_path / "ws")


def heavier(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every penguin 900 g heavier and its flippers 15 mm longer."""
    out = []
    for row in rows:
        mass = float(row["Body Mass (g)"].replace(",", "")) + 900
        flipper = float(row["Flipper Length (mm)"]) + 15
        out.append({**row, "Body Mass (g)": f"{mass:.0f}", "Flipper Length (mm)": f"{flipper:.0f}"})
    return out


@asynccontextmanager
async def monitor_tab(home: Path) -> AsyncIterator[tuple[Pilot[None], MonitorTab]]:
    """The app on penguins, showing the Monitor tab once it has read the project."""
    app = HajApp(Workspace(home))
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project("penguins")))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, "monitor")
        tab = screen.tab("monitor")
        assert isinstance(tab, MonitorTab)
        await wait_for(pilot, lambda: tab.overview is not None, what="the project read")
        yield pilot, tab


async def check(pilot: Pilot[None], tab: MonitorTab, key: str = "m") -> None:
    """Press the check key and wait for its stored report (and the history read after it)."""
    before = len(tab.overview.history) if tab.overview else 0
    await pilot.press(key)
    await wait_for(
        pilot,
        lambda: (
            not tab.checking
            and tab.overview is not None
            and len(tab.overview.history) == before + 1
        ),
        what="the check",
    )
    await pilot.pause()


def banner(tab: MonitorTab) -> Static:
    return tab.query_one("#monitor-banner", Static)


# ---- a check ----------------------------------------------------------------------------------
async def test_a_shifted_file_shows_the_red_banner_and_exactly_the_shifted_features(
    home: Path,
) -> None:
    shifted = home / "heavier.csv"
    shifted.write_text(to_csv(heavier(penguin_rows(240))))
    share = call_haj(home, "config", "penguins", "--set", "monitoring.drift_share=0.2")
    assert share.code == 0, share.text
    async with monitor_tab(home) as (pilot, tab):
        tab.screen.set_focus(None)  # the keys work with the focus nowhere (the tab strip)
        await footer_shows(pilot, "m Check drift", "i Diagnose")
        # the source: o goes into the field, enter checks it
        await pilot.press("o")
        field = tab.query_one("#monitor-source", Input)
        assert tab.screen.focused is field
        field.value = str(shifted)
        await check(pilot, tab, "enter")
        assert tab.result is not None and not tab.live
        assert tab.result.source == str(shifted)
        text = screen_text(pilot.app)
        assert "dataset drift: 2 of 9 features drifted (22% >= 20%)" in text
        assert banner(tab).has_class("drift")
        chart = tab.query_one("#monitor-drift", ThresholdChart)
        assert sorted(bar.label for bar in chart.bars if bar.marked) == SHIFTED
        assert {bar.label for bar in chart.bars[:2]} == set(SHIFTED)  # most drift on top
        assert chart.border_title == "Drift per feature (KS / chi², p < 0.05)"
        assert chart.threshold == pytest.approx(-math.log10(0.05))  # the line at p = 0.05
        assert "Body Mass (g)" in text and "p=0.05" in text
        assert set(tab.result.report.quality.out_of_range) == set(SHIFTED)
        assert "outside the training range: " in text
        assert tab.screen.focused is tab.query_one("#monitor-quality-box")  # keys work again


async def test_the_unchanged_data_is_green_and_the_history_chart_gets_points(home: Path) -> None:
    """No server and no prediction log: the engine's default source is the current data."""
    async with monitor_tab(home) as (pilot, tab):
        chart = tab.query_one("#monitor-history", TimeChart)
        assert "No stored check yet: press m" in screen_text(pilot.app)
        assert "No check yet: press m" in str(banner(tab).render())
        await check(pilot, tab)
        assert tab.result is not None and tab.result.source == "raw-0001"
        assert banner(tab).has_class("ok")
        assert "no dataset drift: 0 of 9 features drifted" in screen_text(pilot.app)
        assert not chart._has_data()  # one point is not a line
        assert "One stored check so far" in screen_text(pilot.app)
        await check(pilot, tab)
        assert chart._has_data()
        assert [len(xs) for xs, _ in chart.series.values()] == [2, 2]
        assert set(chart.series) == {"drift share", "missing share"}
        await wait_settled(pilot)
        assert "minutes before the last check" in screen_text(pilot.app) or (
            "seconds before the last check" in screen_text(pilot.app)
        )
        assert len(Workspace(home).project("penguins").monitor_history()) == 2


# ---- a diagnosis ------------------------------------------------------------------------------
def offline_pip(python: str, args: list[str], timeout: float, log: Path | None = None) -> str:
    """pip as it answers when the package index cannot be reached (recorded), no process."""
    if "--outdated" not in args:
        import importlib.metadata

        installed = [
            {"name": d.metadata["Name"], "version": d.version}
            for d in importlib.metadata.distributions()
        ]
        return json.dumps(installed)
    if log is not None:
        log.write_text(UNREACHABLE + "\n")
    return "[]"


async def test_diagnose_shows_missing_values_timings_and_the_offline_note(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diagnose, "_pip", offline_pip)
    async with monitor_tab(home) as (pilot, tab):
        assert "Press i to diagnose" in screen_text(pilot.app)
        await pilot.press("i")
        await wait_for(pilot, lambda: tab.diagnosis is not None and not tab.diagnosing)
        await pilot.pause()
        missing = tab.query_one("#monitor-missing", DataTable)
        assert missing.display and missing.row_count == 11  # every column of the raw table
        cells = {str(missing.get_row_at(i)[0]): missing.get_row_at(i) for i in range(11)}
        assert str(cells["Culmen Length (mm)"][1]) == "15 (6.2%)"
        labels = {
            part: str(tab.query_one(f"#monitor-{part}-title").render())
            for part in ("missing", "timings", "deps")
        }
        assert labels["missing"].startswith("Missing values: raw-0001 (240 rows); no live")
        assert labels["timings"] == "Step timings"
        timings = tab.query_one("#monitor-timings", DataTable)
        steps = [str(timings.get_row_at(i)[0]) for i in range(timings.row_count)]
        assert steps[:2] == ["retrieve", "process"] and "train" in steps
        assert "the package index is unreachable (http://127.0.0.1:9/simple" in labels["deps"]
        assert "installed versions only" in labels["deps"]
        deps = tab.query_one("#monitor-deps", DataTable)
        assert deps.display and deps.row_count > 0


# ---- empty states -----------------------------------------------------------------------------
async def test_without_a_champion_the_tab_says_train_and_crown(home: Path) -> None:
    champion.clear(Workspace(home).project("penguins").project, "test: no champion")
    async with monitor_tab(home) as (pilot, tab):
        await wait_settled(pilot)
        text = screen_text(pilot.app)
        assert "No champion yet: train (t) and crown (c)." in text
        await footer_shows(pilot, "i Diagnose", hidden=("m Check drift",))  # m cannot run
        await pilot.press("m")
        await pilot.pause()
        assert tab.result is None and not tab.checking


async def test_without_data_the_tab_says_retrieve(tmp_path: Path) -> None:
    from engine import workspace

    workspace.create_project(tmp_path / "ws", "penguins", "classification", example="iris")
    async with monitor_tab(tmp_path / "ws") as (pilot, tab):
        await wait_settled(pilot)
        assert not tab.check_action("check", ())
        assert "No data yet: press r to retrieve, then train (t) and crown (c)." in screen_text(
            pilot.app
        )


# ---- pure figures -----------------------------------------------------------------------------
def test_p_values_are_drawn_longer_for_more_drift_and_distances_as_they_are() -> None:
    from engine.drift import ColumnDrift

    def column(name: str, test: str, statistic: float, p: float | None, drifted: bool) -> Any:
        threshold = 0.05 if p is not None else 0.1
        return ColumnDrift(name, "numeric", test, statistic, threshold, p, drifted, 200, 0, 0, 0)

    scale = drift_scale([column("a", "ks", 0.1, 0.5, False), column("b", "ks", 0.4, 1e-6, True)])
    assert [bar.label for bar in scale.bars] == ["b", "a"]  # more drift on top
    assert scale.bars[0].value == pytest.approx(6.0) and scale.bars[0].marked
    assert scale.threshold == pytest.approx(1.30103, rel=1e-4)
    assert scale.ticks[scale.threshold] == "p=0.05"
    distances = drift_scale(
        [column("a", "wasserstein", 0.04, None, False), column("b", "wasserstein", 0.3, None, True)]
    )
    assert distances.threshold == 0.1 and distances.bars[0].value == 0.3
    assert "Wasserstein" in distances.title
    mixed = drift_scale([column("a", "ks", 0.1, 0.05, True), column("b", "psi", 0.2, None, True)])
    assert mixed.threshold == 1.0 and [b.value for b in mixed.bars] == pytest.approx([2.0, 1.0])
    assert drift_scale([column("a", "ks", None, None, False)]).bars == []  # type: ignore[arg-type]


def test_history_series_leave_out_windows_too_small_to_test() -> None:
    reports = [
        {"created_at": f"2026-01-15T0{h}:00:00+00:00", "too_small": h == 9,
         "drift_share": 0.5, "missing_share": 0.01}
        for h in (7, 8, 9)
    ]  # fmt: skip
    series, xlabel = history_series(reports)
    assert series["drift share"] == ([-2.0, -1.0], [50.0, 50.0])
    assert series["missing share"][0] == [-2.0, -1.0, 0.0]
    assert xlabel == "hours before the last check"


# ---- snapshot ---------------------------------------------------------------------------------
@pytest.fixture
def drifted_home(home: Path) -> Path:
    """The source file now holds heavier penguins, retrieved as raw-0002 (the current data);
    dataset drift from a share of 0.2."""
    (home / "penguins.csv").write_text(to_csv(heavier(penguin_rows(240))))
    for args in (
        ["retrieve", "penguins"],
        ["config", "penguins", "--set", "monitoring.drift_share=0.2"],
    ):
        result = call_haj(home, *args)
        assert result.code == 0, result.text
    return home


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stored reports at 08:00, 09:00, 10:00... on 2026-01-15 (UTC), shown in UTC."""
    hours = itertools.count(8)
    monkeypatch.setattr(store, "now_iso", lambda: f"2026-01-15T{next(hours):02d}:00:00.000+00:00")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_monitor_tab_snapshot(snap_compare: Any, drifted_home: Path, frozen_clock: None) -> None:
    project = Workspace(drifted_home).project("penguins")
    project.monitor("raw-0001")  # 08:00 and 09:00: the data as trained
    project.monitor("raw-0001")

    async def run_before(pilot: Pilot) -> None:
        await pilot.app.push_screen(ProjectScreen(Workspace(drifted_home).project("penguins")))
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, "monitor")
        tab = screen.tab("monitor")
        assert isinstance(tab, MonitorTab)
        await wait_for(pilot, lambda: tab.overview is not None)
        await check(pilot, tab)  # 10:00: raw-0002, the default source
        await workers_done(pilot.app)
        pilot.app.clear_notifications()  # "Drift check stored" would cover the quality panel
        screen.sub_title = "~/ml_projects/penguins"  # the temp dir differs on every run
        await wait_settled(pilot)

    assert snap_compare(HajApp(Workspace(drifted_home)), terminal_size=SIZE, run_before=run_before)


# ---- keys, on the fake engine -----------------------------------------------------------------
async def test_keys_work_from_the_tab_strip_and_a_served_project_refreshes_live() -> None:
    """cancer is trained, crowned and served in the fake: the tab reads a live report at once
    (not stored); m and i work with the focus on the tab strip; only m stores a report."""
    from tests.tui_fake import FakeWorkspace

    fake = FakeWorkspace.populated()
    cancer = fake.project("cancer")
    app = HajApp(fake)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ProjectScreen(cancer))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await pilot.press("7")
        await wait_for(pilot, lambda: screen.shown_tab == "monitor")
        tab = screen.tab("monitor")
        assert isinstance(tab, MonitorTab)
        await wait_for(pilot, lambda: tab.result is not None and tab.live)
        assert ("monitor", "cancer", "live", False) in fake.calls
        assert cancer.monitor_reports == []  # a live refresh is never stored
        screen.set_focus(None)
        await footer_shows(pilot, "m Check drift", "i Diagnose")
        await check(pilot, tab)
        assert ("monitor", "cancer", None, True) in fake.calls
        assert len(cancer.monitor_reports) == 1
        await pilot.press("i")
        await wait_for(pilot, lambda: tab.diagnosis is not None)
        assert "the fake has no package index" in str(tab.query_one("#monitor-deps-title").render())
