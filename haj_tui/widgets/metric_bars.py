"""A horizontal bar chart of one metric across models, drawn with block characters.

Hand-drawn rather than plotted: a handful of labelled bars reads better in a 40-column panel
than a plot with axes, renders identically in snapshots, and needs no plotting library.
Bars start at zero (a truncated axis would exaggerate small differences); the best is marked.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    marked: bool = False  # drawn with a star: the champion


def bar_text(fraction: float, width: int) -> str:
    """A bar `fraction` (0..1) of `width` cells long, to an eighth of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


class MetricBars(Widget):
    """Bars of `value` per label; `higher_is_better` decides which one is the best."""

    DEFAULT_CSS = """
    MetricBars {
        height: auto;
        min-height: 1;
    }
    MetricBars > .metric-bars--bar {
        color: $primary;
    }
    MetricBars > .metric-bars--best {
        color: $success;
    }
    """
    COMPONENT_CLASSES = {"metric-bars--bar", "metric-bars--best"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._bars: list[Bar] = []
        self._higher_is_better = True
        self._empty = "No finished runs yet."

    def set_bars(self, bars: list[Bar], higher_is_better: bool, empty: str = "") -> None:
        self._bars = list(bars)
        self._higher_is_better = higher_is_better
        if empty:
            self._empty = empty
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self._bars))

    def render(self) -> Text:
        if not self._bars:
            return Text(self._empty, style="italic")
        values = [bar.value for bar in self._bars]
        best = max(values) if self._higher_is_better else min(values)
        low = min(0.0, min(values))
        high = max(values)
        span = (high - low) or 1.0
        label_width = min(max(len(bar.label) for bar in self._bars), 22)
        numbers = [f"{v:.4f}" if abs(v) < 1e4 else f"{v:.4g}" for v in values]
        number_width = max(len(n) for n in numbers)
        room = max(4, self.size.width - label_width - number_width - 5)
        bar_style = self.get_component_rich_style("metric-bars--bar")
        best_style = self.get_component_rich_style("metric-bars--best")
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (bar, number) in enumerate(zip(self._bars, numbers, strict=True)):
            if index:
                text.append("\n")
            label = bar.label if len(bar.label) <= label_width else bar.label[: label_width - 1]
            text.append(f"{label:<{label_width}} ")
            style = best_style if bar.value == best else bar_style
            drawn = bar_text((bar.value - low) / span, room)
            text.append(f"{drawn:<{room}}", style=style)
            text.append(f" {number:>{number_width}}")
            text.append(" ★" if bar.marked else "  ", style="bold")
        return text
