"""Terminal output for the CLI: rich, imported only when a command prints something."""

from __future__ import annotations

import sys
from functools import cache
from typing import Any


@cache
def console() -> Any:
    import os

    from rich.console import Console

    # Piped output is read by scripts and logs: do not squeeze tables into 80 columns.
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    return Console(highlight=False, soft_wrap=False, width=width)


def command_name(argv0: str | None = None) -> str:
    """How the user can run haj again: `haj` when that is on PATH and is this program, else the
    path they typed (`.venv/bin/haj` after the Quick start), else `python -m engine`."""
    import os
    import shutil

    argv0 = argv0 if argv0 is not None else sys.argv[0]
    if os.path.basename(argv0) != "haj":  # python -m engine, or an unusual entry point
        return f"{os.path.basename(sys.executable)} -m engine"
    found = shutil.which("haj")
    try:
        if found and os.path.samefile(found, argv0):
            return "haj"
    except OSError:
        pass
    return argv0


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str | None, columns: list[str], rows: list[list[Any]], **kwargs: Any) -> None:
    from rich.table import Table

    grid = Table(title=title, title_justify="left", header_style="bold", **kwargs)
    for column in columns:
        justify = "right" if column.lower() in _NUMERIC else "left"
        grid.add_column(column, justify=justify, no_wrap=column.lower() in ("name", "run", "id"))
    for row in rows:
        grid.add_row(*[fmt(v) if not isinstance(v, str) else v for v in row])
    console().print(grid)


_NUMERIC = {
    "data",
    "runs",
    "score",
    "rows",
    "columns",
    "size",
    "duration",
    "value",
    "margin",
    "acc",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "rmse",
    "mae",
    "mse",
    "r2",
    "#",
}


def write_json(data: Any) -> None:
    """The one way the CLI prints `--json`: the engine's records (dataclasses with `to_dict()`,
    alone or in lists and dicts) as plain JSON, indented, on stdout."""
    import json

    sys.stdout.write(json.dumps(plain(data), indent=2, default=str) + "\n")


def plain(data: Any) -> Any:
    """`data` with every record that has `to_dict()` replaced by its dict."""
    if hasattr(data, "to_dict") and callable(data.to_dict):
        return plain(data.to_dict())
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(value) for value in data]
    return data


def event_printer(verbose: bool = True) -> Any:
    """A callback printing engine events: log lines plain, child output dimmed."""
    from engine import events

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.Log):
            style = {"error": "red", "warning": "yellow"}.get(event.level, "")
            console().print(event.message, style=style, markup=False, soft_wrap=True)
        elif isinstance(event, events.Output) and verbose and event.line.strip():
            console().print(event.line, style="dim", markup=False, soft_wrap=True)

    return on_event


def _cell_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    while _cell_width(text) > width:
        text = text[: max(0, len(text) - 2)] + "…"
    return text


def fast_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A table drawn like rich's default box, without importing rich.

    Why: `haj list` must answer in under 0.3 s over 50 projects; importing rich and laying a Table
    out costs more than half of that. Text columns are clipped with '…' to fit the terminal.
    """
    import os
    import shutil

    cells = [[fmt(v) if not isinstance(v, str) else v for v in row] for row in rows]
    widths = [
        max([_cell_width(c), *(_cell_width(row[i]) for row in cells)])
        for i, c in enumerate(columns)
    ]
    available = (
        int(os.environ["COLUMNS"])
        if os.environ.get("COLUMNS", "").isdigit()
        else (shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 200)
    )
    while sum(widths) + 3 * len(widths) + 1 > available and max(widths) > 8:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    right = [c.lower() in _NUMERIC for c in columns]

    def line(values: list[str], edge: str, sep: str) -> str:
        parts = []
        for value, width, is_right in zip(values, widths, right, strict=True):
            value = _clip(value, width)
            pad = " " * (width - _cell_width(value))
            parts.append(f" {pad}{value} " if is_right else f" {value}{pad} ")
        return edge + sep.join(parts) + edge

    out = []
    if title:
        out.append(title)
    out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    out.append(line(columns, "┃", "┃"))
    out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    out.extend(line(row, "│", "│") for row in cells)
    out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    sys.stdout.write("\n".join(out) + "\n")
