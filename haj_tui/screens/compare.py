"""Runs side by side (the Runs tab's C, on the runs marked with space): what `haj runs NAME
--compare` prints, from the same engine answer (engine.compare via ProjectAPI.compare).

Only what tells the runs apart: the parameters that differ (the same ones counted), every metric
with its difference to the first marked run (green when better, red when worse), the data
versions, the code, environment and versions recorded at training (≠ where they differ), and the
user's tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

if TYPE_CHECKING:
    from engine.api import Comparison

DIFFERS = Text("≠ ", style="bold yellow")


def comparison_table(comparison: Comparison) -> Table:
    """The comparison as one table: a column per run, a row per differing field."""
    table = Table(box=None, padding=(0, 2), header_style="bold", show_edge=False)
    table.add_column("", no_wrap=True)
    for label in comparison.labels:
        table.add_column(label, justify="right", no_wrap=True)

    def heading(text: str) -> None:
        table.add_row(Text(text, style="bold underline"))

    def name(text: str, differs: bool) -> Text:
        return Text.assemble(DIFFERS if differs else "  ", text)

    heading(f"parameters that differ ({comparison.same_params} the same, not shown)")
    if not comparison.params:
        table.add_row(Text("  none", style="dim"))
    for row in comparison.params:
        cells = [
            Text("-", style="dim") if absent else str(value)
            for value, absent in zip(row.values, row.absent, strict=True)
        ]
        table.add_row(name(row.name, True), *cells)
    heading(f"metrics (difference to {comparison.labels[0]})")
    for metric in comparison.metrics:
        cells: list[Any] = []
        for i, value in enumerate(metric.texts):
            cell = Text(value)
            if i:
                better = metric.better[i]
                style = "green" if better else "red" if better is False else "dim"
                cell.append(f" {metric.delta_texts[i]}", style=style)
            cells.append(cell)
        table.add_row(name(metric.name, metric.differs), *cells)
    heading("data, code and environment")
    rows = [comparison.data] if comparison.data is not None else []
    for row in [*rows, *comparison.provenance]:
        table.add_row(name(row.name, row.differs), *(_short(v) for v in row.values))
    if comparison.tags:
        heading("tags")
        for row in comparison.tags:
            table.add_row(
                name(row.name, row.differs), *("-" if v is None else str(v) for v in row.values)
            )
    return table


def _short(value: Any) -> str:
    """A sha256 as its first 12 digits; "-" when not recorded."""
    if value is None:
        return "-"
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return text[:12]
    return text


class CompareScreen(ModalScreen[None]):
    """The marked runs side by side; escape (or q) closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    # its own dialog class: app.tcss's .dialog (64 columns) would win over DEFAULT_CSS
    DEFAULT_CSS = """
    CompareScreen .compare-dialog {
        width: 96%;
        height: 92%;
        padding: 0 1;
        border: thick $primary;
        background: $surface;
    }
    CompareScreen #compare-body {
        height: 1fr;
        overflow: auto auto;
        background: $panel;
    }
    CompareScreen #compare-table {
        width: auto;
    }
    CompareScreen #compare-notes {
        color: $warning;
        height: auto;
    }
    """

    def __init__(self, comparison: Comparison) -> None:
        super().__init__(classes="modal")
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        comparison = self.comparison
        with Vertical(classes="compare-dialog"):
            yield Label(f"Compare {', '.join(comparison.labels)}", classes="dialog-title")
            with ScrollableContainer(id="compare-body"):
                yield Static(comparison_table(comparison), id="compare-table")
            notes = []
            if comparison.differences():
                notes.append(f"≠ recorded at training: {', '.join(comparison.differences())}")
            if comparison.unrecorded:
                notes.append(
                    f"{', '.join(comparison.unrecorded)}: trained before haj recorded code and "
                    "environment hashes"
                )
            yield Static("\n".join(notes), id="compare-notes", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#compare-body").focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
