"""Snapshot tests of the Data, Train, Runs and Serve tabs at 100x30, and the Runs tab at 80x24.

The workspace is built by the engine's own in-process functions (what the runner executes) on
the breast_cancer example, with the clock, run ids and timers made deterministic, so every figure on
screen is real (real data, real metrics of real fits) and the same on every run. Times are
shown in UTC. Update with `pytest tests/test_tui_tabs_snapshots.py --snapshot-update` and look
at the SVGs before accepting them.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from engine import champion, data, events, store, training, workspace
from engine.api import Workspace
from haj_tui.app import HajApp
from haj_tui.screens.project import ProjectScreen
from tests.tui_support import no_cursor_blink, show_tab, wait_for, wait_settled, workers_done

SIZE = (100, 30)
SMALL = (80, 24)  # the smallest terminal the app is made for: no number cut
MODELS = ["logistic_regression", "decision_tree", "gaussian_nb"]


class _Clock:
    """Stands in for the `time` module in engine.training: each perf_counter() is 0.125 s on."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def perf_counter(self) -> float:
        return next(self._ticks) * 0.125


@pytest.fixture(scope="module")
def frozen_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """breast_cancer retrieved, processed, trained on three models and crowned, deterministically.

    (Not iris: its three fast models tie, which would not show the bars or the ranking.)"""
    root = tmp_path_factory.mktemp("snapshots") / "ws"
    ids = (f"run{n:09d}" for n in itertools.count(1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "now_iso", lambda: "2026-01-15T09:30:00.000+00:00")
        patch.setattr(store, "new_run_id", lambda: next(ids))
        patch.setattr(workspace, "new_project_id", lambda: "5eed" * 8)  # names in the plan
        patch.setattr(training, "time", _Clock())
        project = workspace.create_project(
            root, "cancer", "classification", example="breast_cancer"
        )
        project.update_config({"training": {"n_jobs": 1}})  # fits in this process, in order
        data.retrieve_in_process(project, events.ignore)
        data.process_in_process(project, None, events.ignore)
        training.train_in_process(project, MODELS, events.ignore)
        champion.crown(project)
    # the Train tab shows logs/train.log: its clock times, frozen too
    log = project.logs_dir / "train.log"
    log.write_text(re.sub(r"^\[\S+ \S+ ", "[2026-01-15 09:30:00 ", log.read_text(), flags=re.M))
    yield root


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    no_cursor_blink(monkeypatch)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def teardown_module() -> None:
    time.tzset()  # back to the environment's zone once TZ is restored


def on_tab(root: Path, tab: str, ready: Any = None) -> Any:
    """run_before: open the project on `tab`, wait for its workers and `ready`, mask the path."""

    async def run_before(pilot: Pilot) -> None:
        await pilot.app.push_screen(ProjectScreen(Workspace(root).project("cancer")))
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        await show_tab(pilot, screen, tab)
        widget = screen.tab(tab)
        await workers_done(pilot.app)
        if ready is not None:
            await wait_for(pilot, lambda: ready(widget), 60, f"the {tab} tab")
        screen.sub_title = "~/ml_projects/cancer"  # the temp dir differs on every run
        await wait_settled(pilot)

    return run_before


def test_data_tab_snapshot(snap_compare: Any, frozen_ws: Path) -> None:
    def ready(tab: Any) -> bool:
        return tab.query_one("#data-summary").row_count == 31

    assert snap_compare(
        HajApp(Workspace(frozen_ws)),
        terminal_size=SIZE,
        run_before=on_tab(frozen_ws, "data", ready),
    )


def test_train_tab_snapshot(snap_compare: Any, frozen_ws: Path) -> None:
    def ready(tab: Any) -> bool:
        return tab.query_one("#train-models").option_count == 12

    assert snap_compare(
        HajApp(Workspace(frozen_ws)),
        terminal_size=SIZE,
        run_before=on_tab(frozen_ws, "train", ready),
    )


def test_runs_tab_snapshot(snap_compare: Any, frozen_ws: Path) -> None:
    assert snap_compare(
        HajApp(Workspace(frozen_ws)), terminal_size=SIZE, run_before=on_tab(frozen_ws, "runs")
    )


def test_runs_tab_80x24_snapshot(snap_compare: Any, frozen_ws: Path) -> None:
    """The run, its sorting metric and its status stay whole; other columns give way."""
    assert snap_compare(
        HajApp(Workspace(frozen_ws)), terminal_size=SMALL, run_before=on_tab(frozen_ws, "runs")
    )


def test_serve_tab_snapshot(snap_compare: Any, frozen_ws: Path) -> None:
    assert snap_compare(
        HajApp(Workspace(frozen_ws)), terminal_size=SIZE, run_before=on_tab(frozen_ws, "serve")
    )


def test_container_tab_snapshot(
    snap_compare: Any, frozen_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an engine (the same picture on every machine): the tab says how to start one."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("HAJ_BASE_IMAGE", raising=False)

    def ready(tab: Any) -> bool:
        return tab.docker_problem is not None

    assert snap_compare(
        HajApp(Workspace(frozen_ws)),
        terminal_size=SIZE,
        run_before=on_tab(frozen_ws, "container", ready),
    )


def test_deploy_tab_snapshot(
    snap_compare: Any, frozen_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dry-run plan for the champion (it calls no AWS)."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.delenv("HAJ_AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("HAJ_BASE_IMAGE", raising=False)

    def ready(tab: Any) -> bool:
        return "run000000001" in str(tab.query_one("#deploy-plan-box").border_title or "")

    assert snap_compare(
        HajApp(Workspace(frozen_ws)),
        terminal_size=SIZE,
        run_before=on_tab(frozen_ws, "deploy", ready),
    )
