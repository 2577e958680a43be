"""Regenerate screenshots/*.svg: every screen of the real app on the example projects.

    .venv/bin/python scripts/screenshots.py [--out screenshots]

It runs `haj demo` into a temporary workspace (real data, real training), then drives the real
app headless at 100x30 (App.run_test) and saves an SVG of each screen: Projects, New project,
help, command palette, and every tab of the Project screen. The tabs are shown at work: the
Train tab after training (t), the Serve tab with a real server on 127.0.0.1 answering a few
test requests (stopped afterwards), the Deploy tab with its dry-run plan for eu-west-1 (it
calls no AWS). Temp paths in the title bar are shown as ~/ml_projects.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from engine import workspace  # noqa: E402
from engine.api import Workspace  # noqa: E402
from haj_tui.app import HajApp  # noqa: E402
from haj_tui.screens.project import TABS, ProjectScreen  # noqa: E402

SIZE = (100, 30)
MODELS = ["logistic_regression", "decision_tree", "gaussian_nb", "linear_regression", "ridge"]
SHOWN_ROOT = "~/ml_projects"

Step = Callable[[Pilot[Any]], Awaitable[None]]


def make_demo(home: Path) -> None:
    """`haj demo`: breast-cancer and diabetes, retrieved, trained and crowned."""
    env = {**os.environ, "HAJ_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "engine", "demo", "--models", *MODELS],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for background work (data previews, leaderboards) and the repaint."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def shoot(
    home: Path,
    out: Path,
    name: str,
    *steps: Step,
    after: tuple[Step, ...] = (),
    size: tuple[int, int] = SIZE,
) -> None:
    """Run `steps`, save the screen as NAME.svg, then run `after` (clean-up, e.g. stop a server)."""
    os.environ["TEXTUAL_ANIMATIONS"] = "none"
    app = HajApp(Workspace(home))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for step in steps:
            await step(pilot)
            await settle(pilot)
        app.screen.sub_title = SHOWN_ROOT
        for screen in app.screen_stack:
            if isinstance(screen, ProjectScreen):
                screen.sub_title = f"{SHOWN_ROOT}/{screen.project.name}"
            else:
                screen.sub_title = SHOWN_ROOT
        await pilot.pause()
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
        for step in after:
            await step(pilot)
    print(f"  {out / (name + '.svg')}")


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str) -> None:
    for _ in range(1200):  # 60 s
        if condition():
            return
        await pilot.pause(0.05)
    raise SystemExit(f"screenshots: timed out waiting for {what}")


def current_tab(pilot: Pilot[Any]) -> Any:
    screen = pilot.app.screen
    assert isinstance(screen, ProjectScreen)
    return screen.tab(screen.shown_tab)


async def train_all(pilot: Pilot[Any]) -> None:
    tab = current_tab(pilot)
    await until(pilot, lambda: tab._extras, "model.py's models")
    await pilot.press("t")
    await until(pilot, lambda: tab._busy(), "training to start")
    await until(pilot, lambda: not tab._busy(), "training to finish")


async def check_drift(pilot: Pilot[Any]) -> None:
    """The Monitor tab after `m`: a stored drift and quality report of the current data."""
    tab = current_tab(pilot)
    await until(pilot, lambda: tab.overview is not None, "the Monitor tab's overview")
    await pilot.press("m")
    await until(pilot, lambda: tab.result is not None and not tab.checking, "a drift report")


async def serve_and_ask(pilot: Pilot[Any]) -> None:
    tab = current_tab(pilot)
    await pilot.press("s")
    await until(pilot, lambda: tab.stats is not None, "the server")
    for n in range(1, 6):
        await pilot.press("e")
        await until(
            pilot,
            lambda n=n: (
                tab._row == n
                and "HTTP" in str(pilot.app.screen.query_one("#serve-response-box").border_title)
            ),
            "a test answer",
        )
        await pilot.pause(0.2)
    await until(
        pilot,
        lambda: tab.stats is not None and tab.stats.counts.get("requests", 0) >= 5,
        "the counters",
    )
    await pilot.pause(1.2)  # one more poll: the latency history


async def stop_server(pilot: Pilot[Any]) -> None:
    tab = current_tab(pilot)
    await pilot.press("s")
    await until(pilot, lambda: tab.record is None and not tab._switching, "the server to stop")


def serve_on_a_free_port(home: Path) -> None:
    """The Serve tab starts the server on [serving] port: 8000 if free, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8000))
            port = 8000
        except OSError:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    workspace.get_project(home, "breast-cancer").update_config({"serving": {"port": port}})


async def show_run_artifacts(pilot: Pilot[Any]) -> None:
    """The run panel scrolled to the champion's test-split artifacts: the confusion matrix as a
    heat table, the per-class scores and the ROC curve."""
    tab = current_tab(pilot)
    await until(pilot, lambda: tab.board is not None and bool(tab.board.runs), "the leaderboard")
    artifacts = tab.query_one("#runs-artifacts")
    roc = tab.query_one("#runs-roc")
    await until(pilot, lambda: roc.display, "the run's artifacts")
    box = tab.query_one("#runs-detail-box")
    box.scroll_to_widget(artifacts, animate=False, top=True)


def keys(*pressed: str) -> Step:
    async def step(pilot: Pilot[Any]) -> None:
        await pilot.press(*pressed)

    return step


def open_tab(project: str, tab: str) -> Step:
    async def step(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await app.push_screen(ProjectScreen(app.workspace.project(project)))  # type: ignore[attr-defined]
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        screen.action_show_tab(tab)
        for _ in range(200):
            if screen.shown_tab == tab:
                break
            await pilot.pause(0.05)

    return step


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="haj-screenshots-") as tmp:
        home = Path(tmp) / "ml_projects"
        print("training the example projects (haj demo)…")
        make_demo(home)
        print("screens:")
        await shoot(home, out, "projects")
        await shoot(home, out, "new_project", keys("ctrl+n"), keys(*"churn"))
        await shoot(home, out, "help", keys("f1"))
        await shoot(home, out, "palette", keys("ctrl+p"))
        serve_on_a_free_port(home)
        os.environ.setdefault("AWS_REGION", "eu-west-1")  # the Deploy tab's plan calls no AWS
        at_work: dict[str, tuple[Step, ...]] = {
            "train": (train_all,),
            "serve": (serve_and_ask,),
            "monitor": (check_drift,),
        }
        cleanup: dict[str, tuple[Step, ...]] = {"serve": (stop_server,)}
        await shoot(  # wide, as one would read a run's details
            home,
            out,
            "run_detail",
            open_tab("breast-cancer", "runs"),
            show_run_artifacts,
            size=(150, 46),
        )
        for n, spec in enumerate(TABS, start=1):
            await shoot(
                home,
                out,
                f"project_{n}_{spec.id}",
                open_tab("breast-cancer", spec.id),
                *at_work.get(spec.id, ()),
                after=cleanup.get(spec.id, ()),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    asyncio.run(main(parser.parse_args().out))
