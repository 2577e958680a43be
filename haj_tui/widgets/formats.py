"""How figures read on screen, the same in every tab: sizes, times, numbers, run statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

STATUS_STYLE = {
    "queued": "dim",
    "running": "yellow",
    "finished": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}


def short_time(iso: str | None) -> str:
    """An ISO timestamp (the store keeps UTC) in local time, to the minute."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def number(value: Any) -> str:
    """A table figure: 4 significant digits for floats, blank when missing."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"
