"""The app's charts: axes, labels and a scale, drawn with plotext (textual-plotext).

One approach everywhere: `textual-plotext` wraps plotext (a pure-Python terminal plotting
library) in a Textual widget, `PlotextPlot`, that re-plots at the widget's size and follows the
app's theme. The widgets here set the data and the axes; the engine computes the figures (a
score's text is `engine.api.metric_text`, as in the tables).

- `ScoreChart`: one horizontal bar per label (scores per model). The scale runs from the worst
  value to the best, not from zero, so close scores stay apart; the best bar is the longest in
  either direction (for rmse the lowest value has the longest bar), the axis is labelled with
  the worst and best values and the title says which way is better.
- `TimeChart`: lines over time (seconds on the x axis), e.g. latency and requests per second on
  the Serve tab: `set_series({"p95 ms": (times, values), ...}, title=..., unit=...)`. It keeps
  no history itself: the caller hands it the points (a server's history survives a restart only
  if it comes from the engine). `xlabel` names the x axis when it is not seconds.
- `ThresholdChart`: one horizontal bar per label from zero, with a threshold marked by a
  vertical line; bars past it are drawn in the error colour (per-feature drift on the Monitor
  tab: the caller puts every figure on a scale where longer means more drift).
- `XYChart`: curves or points on two labelled axes, with y = x as an optional reference: a
  run's ROC and precision-recall curves and predicted-vs-actual points (the Runs tab's run
  panel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import RenderResult
from textual.color import Color
from textual_plotext import PlotextPlot

from engine.api import fit


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    marked: bool = False  # drawn with a star: the champion


def bar_lengths(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Each value's bar on a 0..1 scale from just below the worst value to the best: the best
    is 1, the worst a sliver (0.1), whichever direction is better."""
    if not values:
        return []
    worst = min(values) if higher_is_better else max(values)
    best = max(values) if higher_is_better else min(values)
    span = abs(best - worst)
    if span == 0:
        return [1.0 for _ in values]
    return [0.1 + 0.9 * abs(value - worst) / span for value in values]


class _Chart(PlotextPlot):
    """A PlotextPlot that says something when it has nothing to draw."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.empty = "Nothing to show yet."

    def _theme_rgb(self, variable: str, default: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(variable, default)
        return Color.parse(value).rgb

    def _has_data(self) -> bool:
        return False

    def render(self) -> RenderResult:
        if not self._has_data() or self.size.width < 12 or self.size.height < 4:
            return Text(self.empty, style="italic")
        self._draw()
        return super().render()

    def _draw(self) -> None:
        raise NotImplementedError


class ScoreChart(_Chart):
    """Scores per label as horizontal bars, best on top (see the module)."""

    DEFAULT_CSS = """
    ScoreChart {
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.bars: list[Bar] = []
        self.metric = ""
        self.higher_is_better = True
        self.value_text: Callable[[float], str] = lambda value: f"{value:g}"
        self.empty = "No finished runs yet."

    def set_bars(
        self,
        bars: Sequence[Bar],
        *,
        metric: str,
        higher_is_better: bool,
        value_text: Callable[[float], str] | None = None,
        empty: str = "",
    ) -> None:
        """The bars, best first; `value_text` writes a value as the tables do."""
        sign = -1 if higher_is_better else 1
        self.bars = sorted(bars, key=lambda bar: sign * bar.value)
        self.metric = metric
        self.higher_is_better = higher_is_better
        if value_text is not None:
            self.value_text = value_text
        if empty:
            self.empty = empty
        self.border_subtitle = f"{metric}: {self.direction}"
        self.refresh()

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def _has_data(self) -> bool:
        return bool(self.bars)

    def _label(self, bar: Bar, width: int) -> str:
        label = bar.label if len(bar.label) <= width else bar.label[: width - 1] + "…"
        return f"★ {label}" if bar.marked else label

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = self.bars[: max(1, self.size.height - 4)]  # one row a bar, under the title
        values = [bar.value for bar in shown]
        lengths = bar_lengths(values, self.higher_is_better)
        label_width = max(6, min(20, self.size.width // 2 - 2))
        labels = [self._label(bar, label_width) for bar in shown]
        # plotext draws the first bar at the bottom: hand them over worst first
        primary = self._theme_rgb("primary", "#0178D4")
        success = self._theme_rgb("success", "#4EBF71")
        best = [length if i == 0 else 0.0 for i, length in enumerate(lengths)]
        rest = [0.0 if i == 0 else length for i, length in enumerate(lengths)]
        plt.bar(labels[::-1], rest[::-1], orientation="horizontal", width=0.4, color=primary)
        plt.bar(labels[::-1], best[::-1], orientation="horizontal", width=0.4, color=success)
        worst_value, best_value = values[-1], values[0]
        room = max(5, (self.size.width - label_width - 6) // 2)
        if len(shown) > 1 and worst_value != best_value:
            plt.xticks(
                [0.1, 1.0],
                [fit(self.value_text(worst_value), room), fit(self.value_text(best_value), room)],
            )
        else:
            plt.xticks([1.0], [fit(self.value_text(best_value), room)])
        plt.xlim(0, 1.0)
        # no plot title: plotext drops a label wider than the plot; the border says the
        # direction (set_bars), the axis which way is better
        plt.xlabel("better →")


class TimeChart(_Chart):
    """Named series over time: seconds ago (or since start) on x, the unit on y."""

    DEFAULT_CSS = """
    TimeChart {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.title = ""
        self.unit = ""
        self.xlabel = "seconds"
        self.empty = "No figures yet."

    def set_series(
        self,
        series: dict[str, tuple[Sequence[float], Sequence[float]]],
        *,
        title: str = "",
        unit: str = "",
        empty: str = "",
        xlabel: str = "seconds",
    ) -> None:
        self.series = {name: (list(xs), list(ys)) for name, (xs, ys) in series.items()}
        self.title = title
        self.unit = unit
        self.xlabel = xlabel
        if empty:
            self.empty = empty
        self.refresh()

    def _has_data(self) -> bool:
        return any(len(xs) > 1 for xs, _ in self.series.values())

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for name, (xs, ys) in self.series.items():
            plt.plot(xs, ys, label=name, marker="braille")
        if self.title:
            plt.title(self.title)
        plt.xlabel(self.xlabel)
        if self.unit:
            plt.ylabel(self.unit)


class ThresholdChart(_Chart):
    """Bars from zero, one per label in the order given (top first), and a threshold drawn as a
    vertical line; a bar marked (past the threshold) is drawn in the error colour. The caller
    chooses a scale where a longer bar means more of what the threshold guards against, and
    the axis' ticks (`ticks`: value -> text, the threshold's among them)."""

    DEFAULT_CSS = """
    ThresholdChart {
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.bars: list[Bar] = []
        self.threshold = 0.0
        self.ticks: dict[float, str] = {}
        self.xlabel = ""
        self.empty = "Nothing to show yet."

    def set_bars(
        self,
        bars: Sequence[Bar],
        *,
        threshold: float,
        ticks: dict[float, str] | None = None,
        xlabel: str = "",
        empty: str = "",
    ) -> None:
        self.bars = list(bars)
        self.threshold = threshold
        self.ticks = dict(ticks or {})
        self.xlabel = xlabel
        if empty:
            self.empty = empty
        self.refresh()

    def _has_data(self) -> bool:
        return bool(self.bars)

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        shown = self.bars[: max(1, self.size.height - 3)]  # one row a bar, over the axis
        label_width = max(6, min(22, self.size.width // 3))
        labels = [
            bar.label if len(bar.label) <= label_width else bar.label[: label_width - 1] + "…"
            for bar in shown
        ]
        top = max([self.threshold * 1.5, *(bar.value for bar in shown)]) * 1.05
        flagged = [bar.value if bar.marked else 0.0 for bar in shown]
        fine = [0.0 if bar.marked else bar.value for bar in shown]
        # plotext draws the first bar at the bottom: hand them over last first
        plt.bar(labels[::-1], fine[::-1], orientation="horizontal", width=0.4,
                color=self._theme_rgb("primary", "#0178D4"))  # fmt: skip
        plt.bar(labels[::-1], flagged[::-1], orientation="horizontal", width=0.4,
                color=self._theme_rgb("error", "#BA3C5B"))  # fmt: skip
        plt.vline(self.threshold, self._theme_rgb("warning", "#FFA62B"))
        plt.xlim(0, top)
        width = max(1, self.size.width - label_width - 4)  # the plot's columns, about
        ticks = self._ticks_that_fit(top, width)
        if ticks:
            plt.xticks(ticks, [self.ticks[value] for value in ticks])
        if self.xlabel:
            plt.xlabel(self.xlabel)

    def _ticks_that_fit(self, top: float, width: int) -> list[float]:
        """The ticks whose labels do not overlap (plotext would drop one at random), the
        threshold's first."""
        kept: list[tuple[float, float, float]] = []  # value, first and last column
        for value in sorted(self.ticks, key=lambda v: (v != self.threshold, v)):
            middle = value / top * width if top else 0.0
            half = len(self.ticks[value]) / 2
            span = (middle - half - 1, middle + half + 1)
            if all(span[1] <= first or span[0] >= last for _, first, last in kept):
                kept.append((value, *span))
        return sorted(value for value, _, _ in kept)


class XYChart(_Chart):
    """Curves or points on two labelled axes: ROC and precision-recall curves (a line per
    class), predicted against actual (points). `set_series({"name": (xs, ys)}, xlabel=...,
    ylabel=..., points=False, diagonal=False, limits=None)`: `diagonal` draws y = x as a
    reference (chance on a ROC curve, a perfect prediction on predicted-vs-actual); `limits`
    fixes both axes (0..1 for rates), else they span the data. A legend only for two series
    or more (the border names a single one)."""

    DEFAULT_CSS = """
    XYChart {
        height: 14;
        min-height: 6;
    }
    """

    COLORS = ("primary", "success", "warning", "error", "accent", "secondary")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.xlabel = ""
        self.ylabel = ""
        self.points = False
        self.diagonal = False
        self.limits: tuple[float, float] | None = None
        self.empty = "Nothing to draw."

    def set_series(
        self,
        series: dict[str, tuple[Sequence[float], Sequence[float]]],
        *,
        xlabel: str = "",
        ylabel: str = "",
        points: bool = False,
        diagonal: bool = False,
        limits: tuple[float, float] | None = None,
        empty: str = "",
    ) -> None:
        self.series = {name: (list(xs), list(ys)) for name, (xs, ys) in series.items()}
        self.xlabel, self.ylabel = xlabel, ylabel
        self.points, self.diagonal, self.limits = points, diagonal, limits
        if empty:
            self.empty = empty
        self.refresh()

    def _has_data(self) -> bool:
        return any(xs for xs, _ in self.series.values())

    def _span(self) -> tuple[float, float]:
        if self.limits is not None:
            return self.limits
        values = [v for xs, ys in self.series.values() for v in (*xs, *ys)]
        low, high = min(values), max(values)
        pad = (high - low) * 0.02 or 1.0
        return low - pad, high + pad

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        low, high = self._span()
        if self.diagonal:
            muted = self._theme_rgb("foreground-darken-2", "#777777")
            plt.plot([low, high], [low, high], color=muted, marker="braille")
        legend = len(self.series) > 1
        for i, (name, (xs, ys)) in enumerate(self.series.items()):
            variable = self.COLORS[i % len(self.COLORS)]
            color = self._theme_rgb(variable, "#0178D4")
            label = name if legend else None
            if self.points:
                plt.scatter(xs, ys, label=label, color=color, marker="braille")
            else:
                plt.plot(xs, ys, label=label, color=color, marker="braille")
        plt.xlim(low, high)
        plt.ylim(low, high)
        if self.xlabel:
            plt.xlabel(self.xlabel)
        if self.ylabel:
            plt.ylabel(self.ylabel)
