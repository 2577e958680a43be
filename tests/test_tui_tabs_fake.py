"""The Runs, Serve, Container and Deploy tabs over the fake engine (tests/tui_fake.py): what each
shows and does with given engine answers, in milliseconds (no process, no server, no Docker, no
AWS). The same tabs against the real engine: test_tui_tabs.py, test_tui_container_deploy.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, Static

from engine.api import (
    BuildSettings,
    ContainerRecord,
    ContainerRow,
    ContainerStatus,
    DeployDefaults,
)
from engine.errors import ConfigError, ContainerError, DeployError, ServingError
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.container import ContainerTab
from haj_tui.tabs.deploy import DeployTab
from haj_tui.tabs.runs import RunsTab
from haj_tui.tabs.serve import ServeTab
from haj_tui.widgets.charts import ScoreChart
from haj_tui.widgets.log_view import LogView
from tests.tui_fake import FakeProject, FakeWorkspace
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for, workers_done


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@pytest.fixture
def cancer() -> FakeProject:
    """cancer: data, two runs (logistic_regression, gaussian_nb), crowned, served."""
    return FakeWorkspace.populated().project("cancer")


@asynccontextmanager
async def open_tab(project: FakeProject, tab: str) -> AsyncIterator[tuple[Pilot, Any]]:
    """The app on `project`, showing `tab`, once the tab's first workers are done."""
    app = HajApp(project.workspace)  # type: ignore[arg-type]
    async with app.run_test(size=(110, 32)) as pilot:
        await app.push_screen(ProjectScreen(project))  # type: ignore[arg-type]
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, tab)
        await workers_done(app)
        widget = screen.tab(tab)
        assert widget is not None
        next(w for w in widget.query("*") if w.focusable).focus()  # as after a click in the tab
        await pilot.pause()
        yield pilot, widget


def notifications(pilot: Pilot) -> list[str]:
    return [n.message for n in pilot.app._notifications]


def log_text(log: LogView) -> str:
    return "\n".join(line.text for line in log.lines)


def label_text(tab: Any, selector: str) -> str:
    return str(tab.query_one(selector, Label).render())


# ---- Runs ---------------------------------------------------------------------------------------
async def test_runs_tab_draws_the_boards_best_run_per_model(cancer: FakeProject) -> None:
    """The bars are the leaderboard's best_per_model(): a worse second run of a model and an
    unfinished run have no bar of their own."""
    [worse] = cancer.add_runs(["logistic_regression"])
    worse["metrics"] = {**worse["metrics"], "acc": 0.5}
    [failed] = cancer.add_runs(["knn"])
    failed["status"] = "failed"
    async with open_tab(cancer, "runs") as (pilot, tab):
        assert isinstance(tab, RunsTab)
        assert tab.query_one("#runs-board", DataTable).row_count == 4
        bars = tab.query_one("#runs-chart", ScoreChart).bars
        board = cancer.leaderboard()
        best = board.best_per_model()
        assert [(b.label, b.value) for b in bars] == [
            (run["model"], run["metrics"]["acc"]) for run in best
        ]
        assert worse["id"] not in {run["id"] for run in best} and len(bars) == 2
        assert [b.marked for b in bars].count(True) == 1  # the champion's model
        champion = cancer.champion
        assert champion is not None
        shown = f"★ {champion['model']}  acc={champion['value']:.4f}"
        assert shown in screen_text(pilot.app)


async def test_runs_tab_keeps_what_it_shows_when_the_config_breaks(cancer: FakeProject) -> None:
    async with open_tab(cancer, "runs") as (pilot, tab):
        board = tab.query_one("#runs-board", DataTable)
        assert board.row_count == 2
        cancer.broken = "config.toml: invalid TOML at line 3"
        tab.refresh_data()
        await wait_for(pilot, lambda: any("invalid TOML" in m for m in notifications(pilot)))
        assert board.row_count == 2 and pilot.app.is_running


async def test_runs_tab_crown_failure_gives_the_button_back(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(metric: str | None = None) -> dict[str, Any]:
        raise ConfigError("the project is being renamed")

    monkeypatch.setattr(cancer, "crown", refuse)
    cancer.serving = None  # with a server, c asks first (test_tui_keys)
    async with open_tab(cancer, "runs") as (pilot, tab):
        tab.query_one("#runs-board", DataTable).focus()  # not the metric dropdown: a field
        await pilot.press("c")
        await wait_for(pilot, lambda: any("renamed" in m for m in notifications(pilot)))
        await wait_for(pilot, lambda: not tab.query_one("#runs-crown", Button).disabled)


# ---- Serve --------------------------------------------------------------------------------------
async def test_serve_tab_shows_the_servers_figures_and_a_test_reply(cancer: FakeProject) -> None:
    async with open_tab(cancer, "serve") as (pilot, tab):
        assert isinstance(tab, ServeTab)
        await wait_for(pilot, lambda: tab.stats is not None, what="the first poll")
        text = " ".join(screen_text(pilot.app).split())
        assert "● running http://127.0.0.1:8000 pid 4242" in text
        assert cancer.champion is not None
        assert f"model {cancer.champion['model']}" in text and "p50 1.2 ms" in text

        await pilot.press("e")
        await wait_for(pilot, lambda: "HTTP 200" in screen_text(pilot.app), what="the reply")
        assert "Test request: row 1" in screen_text(pilot.app)
        assert '"x1": 1.5' in str(tab.query_one("#serve-request", Static).render())
        assert "prediction" in str(tab.query_one("#serve-response", Static).render())
        await pilot.press("e")  # the next row of the data
        await wait_for(pilot, lambda: "Test request: row 2" in screen_text(pilot.app))


async def test_serve_tab_says_why_a_test_request_failed(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(server: Any, index: int = 0) -> Any:
        raise ServingError(f"the server at {server.url} did not answer: connection refused")

    monkeypatch.setattr(cancer, "test_request", down)
    async with open_tab(cancer, "serve") as (pilot, tab):
        await wait_for(pilot, lambda: tab.record is not None)
        await pilot.press("e")
        response = tab.query_one("#serve-response", Static)
        await wait_for(pilot, lambda: "did not answer" in str(response.render()), what="the why")
        assert any("connection refused" in m for m in notifications(pilot))


async def test_serve_tab_an_unreachable_server_is_a_state_not_a_popup(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def silent(server: Any, timeout: float = 1.0) -> Any:
        raise ServingError("no answer from http://127.0.0.1:8000/health")

    monkeypatch.setattr(cancer, "server_stats", silent)
    async with open_tab(cancer, "serve") as (pilot, tab):
        await wait_for(pilot, lambda: tab.unreachable is not None)
        text = screen_text(pilot.app)
        assert "not answering at http://127.0.0.1:8000" in text
        assert "no answer from" in text

        def unreadable() -> Any:
            raise OSError("haj.db: disk I/O error")

        monkeypatch.setattr(cancer, "server", unreadable)
        tab.refresh_data()
        await wait_for(pilot, lambda: tab.record is None and "stopped" in screen_text(pilot.app))
        assert notifications(pilot) == [] and pilot.app.is_running


async def test_serve_tab_an_unexpected_poll_failure_is_shown_once(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault the engine does not turn into a HajError (a bug, a corrupt store): the error
    panel once, then no polling until the tab is shown again, not a panel every second."""
    from haj_tui.widgets.modals import ErrorModal

    async with open_tab(cancer, "serve") as (pilot, tab):
        await wait_for(pilot, lambda: tab.record is not None)

        def broken() -> Any:
            raise RuntimeError("file is not a database")

        monkeypatch.setattr(cancer, "server", broken)
        tab.refresh_data()
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ErrorModal), what="the panel")
        await wait_for(pilot, lambda: tab._poll_failed)
        await pilot.press("escape")
        await wait_for(pilot, lambda: tab.is_on_screen, what="the tab again")
        polls = len([w for w in pilot.app.workers if w.group == "serve-poll"])
        tab._tick()  # the timer's next tick
        assert len([w for w in pilot.app.workers if w.group == "serve-poll"]) == polls
        monkeypatch.undo()
        tab.refresh_data()  # shown again: polled again
        assert not tab._poll_failed


async def test_serve_tab_stops_and_starts_the_server(cancer: FakeProject) -> None:
    async with open_tab(cancer, "serve") as (pilot, tab):
        await wait_for(pilot, lambda: tab.record is not None)
        await pilot.press("s")
        await wait_for(pilot, lambda: "○ stopped" in screen_text(pilot.app), what="the stop")
        assert "serve the champion at http://127.0.0.1:8000" in str(tab._counters())
        assert tab.query_one("#serve-test", Button).disabled
        await pilot.press("s")
        await wait_for(pilot, lambda: any("Server started at" in m for m in notifications(pilot)))
        await wait_for(pilot, lambda: "● running" in screen_text(pilot.app))
        verbs = [call[0] for call in cancer.workspace.calls]
        assert verbs == ["stop_server", "start_server"]


# ---- Container ----------------------------------------------------------------------------------
LAST = BuildSettings("registry.local/python:3.12-slim", True, "host")


async def test_container_tab_starts_from_the_engines_build_settings_and_builds_with_its_own(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fields start as build_settings() answers (the last build's, else the defaults); a
    build passes what the fields say to build_settings() and builds with its answer."""
    asked: list[dict[str, Any]] = []
    fake_settings = cancer.build_settings

    def build_settings(**given: Any) -> BuildSettings:
        asked.append(given)
        return LAST if not any(given.values()) else fake_settings(**given)

    monkeypatch.setattr(cancer, "build_settings", build_settings)
    async with open_tab(cancer, "container") as (pilot, tab):
        assert isinstance(tab, ContainerTab)
        assert tab.query_one("#container-base", Input).value == LAST.base_image
        assert tab.query_one("#container-wheelhouse", Checkbox).value is True
        assert tab.query_one("#container-network", Select).value == "host"
        assert "No image yet: press b to build one." in screen_text(pilot.app)

        tab.query_one("#container-base", Input).value = "chosen:1"
        tab.query_one("#container-network", Select).value = "bridge"
        await pilot.press("b")
        await wait_for(pilot, lambda: any("Built haj/cancer:" in m for m in notifications(pilot)))
        assert not tab.building
        assert asked[-1] == {"base_image": "chosen:1", "wheelhouse": True, "network": "bridge"}
        build = next(call for call in cancer.workspace.calls if call[0] == "build")
        assert build[2] == BuildSettings("chosen:1", True, "bridge")
        log = log_text(tab.query_one("#container-log", LogView))
        assert "building haj/cancer:" in log and "from chosen:1" in log
        assert "123 MB" in notifications(pilot)[-1]


async def test_container_tab_opens_when_the_build_settings_cannot_be_read(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(**given: Any) -> BuildSettings:
        raise OSError("haj.db: permission denied")

    monkeypatch.setattr(cancer, "build_settings", unreadable)
    async with open_tab(cancer, "container") as (pilot, tab):
        assert tab.query_one("#container-base", Input).value == ""
        assert tab.query_one("#container-network", Select).value == "bridge"
        await pilot.press("b")  # the build says what is wrong
        await wait_for(pilot, lambda: not tab.building and tab.query_one("#container-log").lines)
        assert "permission denied" in log_text(tab.query_one("#container-log", LogView))


async def test_container_tab_without_docker_is_a_state(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> ContainerStatus:
        raise ContainerError("no Docker engine reachable: start one")

    monkeypatch.setattr(cancer, "container_status", no_engine)
    async with open_tab(cancer, "container") as (pilot, tab):
        await wait_for(pilot, lambda: tab.docker_problem is not None)
        assert "no Docker engine" in label_text(tab, "#container-state")
        assert tab.query_one("#container-toggle", Button).disabled
        assert "start one" in log_text(tab.query_one("#container-log", LogView))
        await pilot.press("f")  # the same problem again: written once
        await workers_done(pilot.app)
        await pilot.pause()
        assert log_text(tab.query_one("#container-log", LogView)).count("start one") == 1


async def test_container_tab_starts_stops_and_reads_the_log(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = ContainerRow(
        "c0", "haj-cancer-id", "haj/cancer:latest", "running", "healthy", "http://127.0.0.1:9123"
    )
    state = [ContainerStatus()]
    monkeypatch.setattr(cancer, "container_status", lambda: state[-1])
    start, stop = cancer.start_container, cancer.stop_container

    def started(**kwargs: Any) -> ContainerRecord:
        state.append(ContainerStatus([running]))
        return start(**kwargs)

    def stopped(**kwargs: Any) -> int:
        state.append(ContainerStatus())
        return stop(**kwargs)

    monkeypatch.setattr(cancer, "start_container", started)
    monkeypatch.setattr(cancer, "stop_container", stopped)
    monkeypatch.setattr(cancer, "container_logs", lambda tail=100, follow=False: iter(["up"]))
    async with open_tab(cancer, "container") as (pilot, tab):
        tab.query_one("#container-port", Input).value = "9123"
        tab.query_one("#container-images").focus()
        await pilot.press("k")
        await wait_for(pilot, lambda: tab.running_container() is not None and not tab.switching)
        assert ("start_container", "cancer", 9123, "bridge") in cancer.workspace.calls
        assert "running http://127.0.0.1:9123 (healthy)" in label_text(tab, "#container-state")
        assert any("Container serving at" in m for m in notifications(pilot))

        await pilot.press("l")
        log = tab.query_one("#container-log", LogView)
        await wait_for(pilot, lambda: log.border_title == "Container log" and log.lines)
        assert log_text(log) == "up"

        await pilot.press("k")
        await wait_for(pilot, lambda: tab.running_container() is None and not tab.switching)
        assert ("stop_container", "cancer") in cancer.workspace.calls


# ---- Deploy -------------------------------------------------------------------------------------
async def test_deploy_tab_shows_the_engines_defaults(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No region configured: the field is empty and says so (its placeholder is no value); the
    instance type is the engine's; the plan asks for no build settings (the engine's rule)."""
    monkeypatch.setattr(cancer, "deploy_defaults", lambda: DeployDefaults(None, "ml.m5.large", 1))
    async with open_tab(cancer, "deploy") as (pilot, tab):
        assert isinstance(tab, DeployTab)
        await wait_for(pilot, lambda: tab.planned is not None, what="the plan")
        region = tab.query_one("#deploy-region", Input)
        assert region.value == "" and region.placeholder == "none set: type one"
        assert tab.query_one("#deploy-instance", Input).value == "ml.m5.large"
        [(_, _, options)] = [c for c in cancer.workspace.calls if c[0] == "deploy_plan"]
        assert options.instance_type == "ml.m5.large" and options.region is None
        assert (options.base_image, options.wheelhouse, options.build_network) == (None,) * 3
        assert cancer.champion is not None
        assert f"Plan: run {cancer.champion['run_id']} to eu-west-1" in screen_text(pilot.app)


async def test_deploy_tab_fills_in_a_configured_region_and_plans_on_a_change(
    cancer: FakeProject,
) -> None:
    async with open_tab(cancer, "deploy") as (pilot, tab):
        await wait_for(pilot, lambda: tab.planned is not None)
        assert tab.query_one("#deploy-region", Input).value == "eu-west-1"
        assert tab.query_one("#deploy-region", Input).placeholder == "empty: the default region"
        assert tab.query_one("#deploy-instance", Input).value == "ml.t2.medium"
        region = tab.query_one("#deploy-region", Input)
        region.value = "us-east-2"
        region.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "to us-east-2" in screen_text(pilot.app), what="re-plan")


async def test_deploy_tab_shows_why_there_is_no_plan(cancer: FakeProject) -> None:
    cancer.champion = None
    async with open_tab(cancer, "deploy") as (pilot, tab):
        await wait_for(pilot, lambda: tab.planned is not None)
        assert "no champion yet: crown a run first" in screen_text(pilot.app)


async def test_deploy_tab_deploys_and_undeploys_after_asking(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cancer, "deployment", lambda: cancer.deployed)
    async with open_tab(cancer, "deploy") as (pilot, tab):
        await wait_for(pilot, lambda: tab.planned is not None)
        assert "not deployed" in label_text(tab, "#deploy-state")
        await pilot.press("d")
        await wait_for(pilot, lambda: "billed until you undeploy" in screen_text(pilot.app))
        assert "in eu-west-1" in screen_text(pilot.app)
        assert "(ml.t2.medium)? The endpoint" in screen_text(pilot.app)
        await pilot.press("y")
        await wait_for(pilot, lambda: tab.record is not None and not tab.busy, what="deploy")
        assert "● InService haj-cancer-id in eu-west-1" in label_text(tab, "#deploy-state")
        log = log_text(tab.query_one("#deploy-log", LogView))
        assert "endpoint haj-cancer-id: InService" in log and "is InService." in log
        assert any("Deployed: haj-cancer-id" in m for m in notifications(pilot))

        tab.query_one("#deploy-log").focus()
        await pilot.press("u")
        await wait_for(pilot, lambda: "Delete the endpoint" in screen_text(pilot.app))
        await pilot.press("y")
        await wait_for(pilot, lambda: tab.record is None and not tab.busy, what="undeploy")
        assert "not deployed" in label_text(tab, "#deploy-state")
        assert "Removed 1 resource(s)." in log_text(tab.query_one("#deploy-log", LogView))


async def test_deploy_tab_a_failed_deploy_is_logged_and_the_tab_usable(
    cancer: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(options: Any, on_event: Any = None) -> dict[str, Any]:
        raise DeployError("AccessDenied: not authorized to create the role")

    monkeypatch.setattr(cancer, "deploy", fail)
    async with open_tab(cancer, "deploy") as (pilot, tab):
        await wait_for(pilot, lambda: tab.planned is not None)
        await pilot.press("d")
        await wait_for(pilot, lambda: "billed until you undeploy" in screen_text(pilot.app))
        await pilot.press("y")
        log = tab.query_one("#deploy-log", LogView)
        await wait_for(pilot, lambda: "AccessDenied" in log_text(log) and not tab.busy)
        assert not tab.query_one("#deploy-run", Button).disabled
        assert any("AccessDenied" in m for m in notifications(pilot))


async def test_the_footer_is_rebuilt_only_when_the_keys_it_shows_change(
    cancer: FakeProject,
) -> None:
    from textual.widgets._footer import FooterKey

    from haj_tui.widgets.footer import HajFooter

    async with open_tab(cancer, "serve") as (pilot, tab):
        footer = pilot.app.screen.query_one(HajFooter)
        await wait_for(pilot, lambda: len(footer.query(FooterKey)) > 0, 10, "the footer")
        shown = list(footer.query(FooterKey))
        for _ in range(5):  # what every poll of a tab does
            tab.refresh_bindings()
            await pilot.pause()
        assert list(footer.query(FooterKey)) == shown  # the same widgets: nothing rebuilt
        keys = {key.key for key in shown}
        await pilot.press("5")  # the Runs tab: other keys
        await wait_for(
            pilot, lambda: {key.key for key in footer.query(FooterKey)} != keys, 10, "new keys"
        )
