"""Pilot tests of the Container and Deploy tabs, against real components: the Docker engine
(build with a live log, start, stop; skipped, saying why, without one), moto's server for the
deployment, the engine's build settings in the dry-run plan. What the tabs show with given engine
answers: test_tui_tabs_fake.py. Every wait is on a condition, never a bare sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, Select

from engine.api import Workspace
from engine.store import Store
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from haj_tui.tabs.container import ContainerTab
from haj_tui.tabs.deploy import DeployTab
from haj_tui.widgets.log_view import LogView
from tests.support.aws import FAKE_AWS
from tests.support.docker import Built, project_id
from tests.support.procs import free_port
from tests.tui_support import no_cursor_blink, screen_text, show_tab, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)


@asynccontextmanager
async def open_tab(root: Path, tab: str, name: str = "cancer") -> AsyncIterator[tuple[Pilot, Any]]:
    app = HajApp(Workspace(root))
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project(name)))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, tab)
        widget = screen.tab(tab)
        assert widget is not None
        yield pilot, widget


def label_text(tab: Any, selector: str) -> str:
    return str(tab.query_one(selector, Label).render())


@pytest.fixture
def built_home(deployable: Built) -> Built:
    """A fresh copy of the project of conftest's session image (`built`)."""
    return deployable


async def test_container_tab_without_docker_says_how_to_start_one(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    async with open_tab(trained_home, "container") as (pilot, tab):
        assert isinstance(tab, ContainerTab)
        await wait_for(pilot, lambda: tab.docker_problem is not None, 20, "the docker check")
        assert "no Docker engine" in label_text(tab, "#container-state")
        await wait_for(
            pilot,
            lambda: "start a Docker engine" in screen_text(pilot.app),
            what="how to start an engine, in the build log",
        )
        assert "no Docker engine reachable at unix:///nonexistent" in screen_text(pilot.app)
        assert tab.query_one("#container-toggle", Button).disabled


@pytest.mark.docker
async def test_container_tab_builds_with_a_live_log_then_starts_and_stops(
    built_home: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_tab(built_home.home, "container") as (pilot, tab):
        assert isinstance(tab, ContainerTab)
        images = tab.query_one("#container-images", DataTable)
        await wait_for(pilot, lambda: images.row_count >= 1, 30, "the image list")
        assert "stopped" in label_text(tab, "#container-state")

        tab.query_one("#container-base", Input).value = built_home.record["base_image"]
        tab.query_one("#container-network", Select).value = "host"
        tab.query_one("#container-port", Input).value = str(free_port())
        images.focus()  # out of the fields: a letter typed in a field is text, not a key
        await pilot.pause()
        before = tab.project.last_build()
        await pilot.press("b")  # the screen-wide key: builds from this tab
        # a cached build may be over before a loaded machine looks: wait for its record
        await wait_for(
            pilot,
            lambda: not tab.building and tab.project.last_build() != before,
            300,
            "the build to end",
        )
        log = tab.query_one("#container-log", LogView)
        text = "\n".join(line.text for line in log.lines)
        assert "Using cache" in text and "Successfully tagged haj/cancer:" in text
        try:
            tab.query_one("#container-images").focus()
            await pilot.press("k")
            await wait_for(pilot, lambda: tab.running_container() is not None, 120, "the container")
            assert "running" in label_text(tab, "#container-state")
            await pilot.press("l")
            await wait_for(
                pilot,
                lambda: any("Uvicorn running" in line.text for line in log.lines),
                20,
                "the container log",
            )
        finally:
            await pilot.press("k")
            await wait_for(pilot, lambda: tab.running_container() is None and not tab.switching, 60)
            tab.project.stop_container()  # by label, in case the key did not reach the tab
        assert "stopped" in label_text(tab, "#container-state")


@pytest.mark.docker
async def test_deploy_tab_plans_deploys_and_undeploys(
    built_home: Built,
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    from engine.deploy import registry

    httpx.post(f"{moto_url}/moto-api/reset", timeout=10)
    for key, value in {**FAKE_AWS, "HAJ_AWS_ENDPOINT_URL": moto_url}.items():
        monkeypatch.setenv(key, value)
    # the real push to a registry is tested in test_deploy.py; here it would only add a minute
    pushed: list[str] = []
    monkeypatch.setattr(
        registry, "push", lambda local, uri, auth_config=None, on_event=None: pushed.append(uri)
    )
    async with open_tab(built_home.home, "deploy") as (pilot, tab):
        assert isinstance(tab, DeployTab)
        await wait_for(
            pilot, lambda: "ecr repository" in screen_text(pilot.app), 20, "the dry-run plan"
        )
        assert "not deployed" in label_text(tab, "#deploy-state")

        tab.query_one("#deploy-registry", Input).value = "127.0.0.1:5999"
        await pilot.press("d")
        await wait_for(pilot, lambda: "Deploy" in screen_text(pilot.app), 5, "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: tab.record and not tab.busy, 120, "the deployment")
        assert tab.record.status == "InService"
        assert pushed == [tab.record.image_uri]
        assert "InService" in label_text(tab, "#deploy-state")
        log = "\n".join(line.text for line in tab.query_one("#deploy-log", LogView).lines)
        endpoint = f"haj-cancer-{project_id(built_home.home / 'cancer')[:8]}"
        assert f"endpoint {endpoint}: InService" in log
        assert str(tab.record.endpoint_name) in screen_text(pilot.app)

        tab.query_one("#deploy-log").focus()
        await pilot.press("u")
        await wait_for(pilot, lambda: "Undeploy" in screen_text(pilot.app), 5, "the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: tab.record is None and not tab.busy, 60, "undeploy")
        assert "not deployed" in label_text(tab, "#deploy-state")


async def test_deploy_tab_plans_the_build_the_engine_would_make(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A champion with no image yet: the plan builds as build_settings() says (HAJ_BASE_IMAGE's
    defaults without a build, then the last build's settings), whatever the Container tab's
    fields say (they start from the same answer)."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("HAJ_BASE_IMAGE", "from-the-environment:1")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    async with open_tab(trained_home, "deploy") as (pilot, tab):
        assert isinstance(tab, DeployTab)
        await wait_for(pilot, lambda: tab.planned is not None, 20, "the dry-run plan")
        defaults = {"base_image": "from-the-environment:1", "wheelhouse": True, "network": "host"}
        assert tab.planned.plan.build == defaults

        last = {"run_id": "an-older-champion", "base_image": "last-base:3", "wheelhouse": False}
        with Store(trained_home / "cancer" / "haj.db") as store:
            store.set_record("image", {**last, "network": "bridge", "image": "haj/cancer:old"})
        screen = pilot.app.screen
        screen.action_show_tab("container")
        await wait_for(pilot, lambda: screen.tab("container") is not None)
        container = screen.tab("container")
        assert isinstance(container, ContainerTab)
        await wait_for(pilot, lambda: container.docker_problem is not None, 20, "its first load")
        assert container.query_one("#container-base", Input).value == "last-base:3"
        assert container.query_one("#container-network", Select).value == "bridge"
        container.query_one("#container-base", Input).value = "chosen-here:2"  # not the deploy's

        shown = tab.planned
        screen.action_show_tab("deploy")  # shown again: planned afresh
        await wait_for(pilot, lambda: tab.planned is not shown, 20, "the new plan")
        build = {"base_image": "last-base:3", "wheelhouse": False, "network": "bridge"}
        assert tab.planned.plan.build == build
        assert tab.project.build_settings().to_dict() == build
