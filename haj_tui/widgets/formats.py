"""How figures read on screen, the same in every tab: times, durations, run statuses.

Numbers (a metric's precision, a data column's) are the engine's: engine.api.metric_text,
column_format, summary_texts, fit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from textual.widgets import DataTable

from engine.api import duration_text

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


def seconds(value: float | None) -> str:
    """A duration as every face writes it (engine.api.duration_text)."""
    return duration_text(value)


def columns_that_fit(
    widths: list[int], room: int, priority: list[int] | None = None, required: int = 1
) -> list[int]:
    """The indices (in display order) of the columns to show in `room` cells: the first
    `required` of `priority` (default: display order) always, then the others in that order
    while they fit whole. A DataTable column takes its width plus one cell of padding each
    side. A column is shown entirely or not at all, so no number is cut at a panel's edge;
    everything when the room is not known (a hidden table)."""
    order = list(range(len(widths))) if priority is None else priority
    if room <= 0:
        return list(range(len(widths)))
    chosen: set[int] = set()
    used = 0
    for rank, index in enumerate(order):
        need = widths[index] + 2
        if rank >= required and used + need > room:
            continue
        chosen.add(index)
        used += need
    return sorted(chosen)


def hidden_columns(count: int, see: str = "") -> str:
    """A table's border subtitle for the columns that did not fit ('' when all did), short
    enough for a panel at 80 columns: "6 columns hidden: see the run"."""
    if not count:
        return ""
    said = f"{count} column{'s' * (count != 1)} hidden"
    return f"{said}: see {see}" if see else said


def cell_width(cell: object) -> int:
    from rich.text import Text

    return cell.cell_len if isinstance(cell, Text) else Text(str(cell)).cell_len


def column_width(title: str, cells: Iterable[object]) -> int:
    """A column's width: its widest cell or its title."""
    return max([cell_width(title), *(cell_width(cell) for cell in cells)])


class FittingTable(DataTable):  # type: ignore[type-arg]
    """A DataTable that calls `refit()` after its width changes, so its owner can choose
    again the columns that fit (columns_that_fit).

    Its owner adds each column with the width it measured (`add_column(title, width=...)`):
    a column left to size itself is drawn at its title's width until the table's next idle
    moment, and a frame taken then (a busy machine, a screenshot) shows every number cut."""

    def __init__(self, *args: Any, refit: Callable[[], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.refit = refit
        self._fitted = -1

    def on_resize(self) -> None:
        if self.size.width != self._fitted and self.size.width > 0:
            self._fitted = self.size.width
            if self.refit is not None:
                self.call_after_refresh(self.refit)
