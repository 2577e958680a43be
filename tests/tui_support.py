"""Helpers for the TUI tests: read the screen as a user sees it, wait on conditions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, TextArea


def no_cursor_blink(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A blinking cursor makes screenshots differ from one run to the next (as Harlequin does);
    animations (the tab underline) only make Pilot wait longer."""
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


def screen_text(app: App[object]) -> str:
    """The characters on the terminal right now (the top screen, notifications included)."""
    strips = app.screen._compositor.render_strips()
    toasts = [f"{n.title}: {n.message}" for n in app._notifications]
    return "\n".join([*(strip.text for strip in strips), *toasts])


async def wait_for(
    pilot: Pilot[object],
    condition: Callable[[], object],
    timeout: float = 60.0,  # a loaded CI machine (4 workers on 2 cores, Docker builds)
    what: str = "condition",
) -> None:
    """Let the app run until `condition()` is true; fail with the screen text after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)


async def click(pilot: Pilot[object], selector: str, timeout: float = 60.0) -> None:
    """Click `selector` once it is laid out on the top screen: Pilot clicks a widget not yet
    placed at (0, 0), the header's icon, which opens the command palette."""
    app = pilot.app

    def placed() -> bool:
        found = app.screen.query(selector)
        return bool(found) and found.first().region.area > 0

    await wait_for(pilot, placed, timeout, what=f"{selector} on screen")
    await pilot.click(selector)


def footer(pilot: Pilot[object]) -> str:
    """The bottom line of the terminal: the keys the footer offers."""
    return screen_text(pilot.app).splitlines()[pilot.app.size.height - 1]


async def footer_shows(
    pilot: Pilot[object], *shown: str, hidden: tuple[str, ...] = (), timeout: float = 30.0
) -> None:
    """Wait until the footer is drawn and offers `shown` and not `hidden`: Textual redraws it a
    few frames after the keys change, blank in between (where every key is "not shown")."""

    def offers() -> bool:
        line = footer(pilot)
        return (
            "palette" in line
            and all(k in line for k in shown)
            and not any(k in line for k in hidden)
        )

    await wait_for(pilot, offers, timeout, what=f"the footer with {shown}, without {hidden}")


async def wait_for_text(pilot: Pilot[object], text: str, timeout: float = 60.0) -> None:
    await wait_for(pilot, lambda: text in screen_text(pilot.app), timeout, what=repr(text))


async def show_tab(pilot: Pilot[object], screen: Any, tab: str, timeout: float = 60.0) -> None:
    """Show `tab` of a just-opened ProjectScreen as a user would: once the first tab is on
    screen (a person cannot press a number before it), then wait until `tab` is shown. The key
    is pressed again every 5 s: on a loaded CI machine a switch asked while the first tab is
    still being built can be lost, which no person can do."""
    first = screen.tabs
    await wait_for(
        pilot,
        lambda: any(getattr(w, "is_mounted", False) for w in first.values()),
        timeout,
        "the first tab",
    )
    deadline = time.monotonic() + timeout
    while True:
        screen.action_show_tab(tab)
        asked = time.monotonic()
        while time.monotonic() - asked < 5 and screen.shown_tab != tab:
            await pilot.pause(0.05)
        if screen.shown_tab == tab:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the {tab} tab\n{screen_text(pilot.app)}")


async def wait_settled(pilot: Pilot[object], quiet: float = 0.3, timeout: float = 30.0) -> None:
    """Let the app run until the screen stays the same for `quiet` seconds: deferred work
    (a table choosing the columns that fit its new width, a chart drawn at its size) can take
    several frames on a loaded machine, and a snapshot must not catch it half-way."""
    deadline = time.monotonic() + timeout
    last = screen_text(pilot.app)
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen kept changing\n{last}")
        await pilot.pause(0.05)
        now = screen_text(pilot.app)
        if now != last:
            last, stable_since = now, time.monotonic()


async def workers_done(app: App[object]) -> None:
    """Wait until the app's workers of now have ended. One replaced by a newer worker of its
    exclusive group ends cancelled: that is the app working as meant, not a failure
    (Textual's `wait_for_complete` raises WorkerCancelled for it)."""
    from textual.worker import WorkerCancelled

    for worker in list(app.workers):
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()
