"""A live log of engine events: one line per event, the newest at the bottom.

Lines are kept as text and wrapped at the panel's width when shown: a line written while its tab
is hidden (no width yet) is wrapped when the tab comes back, and every line is wrapped again
when the panel's width changes. Training's log lines get a short prefix (`05:31:49 knn-1 ...`,
engine.api.compact_line); logs/train.log keeps the full one.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events as textual_events
from textual.widgets import RichLog

from engine import events
from engine.api import compact_line, metric_text

KEPT_LINES = 2000  # what a log keeps to wrap again (older lines scroll away)


def describe(event: events.Event) -> Text | None:
    """How an engine event reads in a log; None for events that are not log lines."""
    if isinstance(event, events.Log):
        style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
        return Text(compact_line(event.message), style=style)
    if isinstance(event, events.Output):
        return Text(event.line, style="dim")
    if isinstance(event, events.RunFinished):
        if event.status == "finished":
            scores = "  ".join(f"{k}={metric_text(k, v)}" for k, v in event.metrics.items())
            return Text(f"✓ {event.label}  {scores}", style="green")
        return Text(f"✗ {event.label}  {event.error or event.status}", style="red")
    if isinstance(event, events.DataVersionAdded):
        version = event.version
        verb = "new version" if event.created else "unchanged: already have"
        return Text(f"{verb} {version.get('id')}", style="green")
    if isinstance(event, events.Failed):
        return Text(event.message, style="bold red")
    return None


class LogView(RichLog):
    """RichLog that takes engine events (`write_event`) or plain lines (`write_line`), and
    wraps them at the width it has when shown."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        min-height: 4;
        border: round $panel-lighten-2;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id, classes=classes, wrap=True, markup=False, highlight=False, min_width=1
        )
        self._kept: deque[Text] = deque(maxlen=KEPT_LINES)
        self._wrapped_at = 0  # the width the shown lines were wrapped at
        self._pending = False  # lines written while hidden: wrap them when shown

    def write_event(self, event: events.Event) -> None:
        text = describe(event)
        if text is not None:
            self._add(text)

    def write_line(self, line: str, style: str = "") -> None:
        self._add(Text(line, style=style))

    def write_lines(self, lines: list[str], style: str = "") -> None:
        for line in lines:
            self._add(Text(line, style=style))

    @property
    def plain_lines(self) -> list[str]:
        """What the log holds, one entry per line written (before wrapping)."""
        return [text.plain for text in self._kept]

    def _add(self, text: Text) -> None:
        self._kept.append(text)
        width = self.scrollable_content_region.width
        if self._size_known and width <= 0:  # hidden: wrapping now would use a width of 1
            self._pending = True
            return
        if self._size_known:
            self._wrapped_at = width
        self.write(text)

    def clear(self) -> LogView:
        self._kept.clear()
        self._pending = False
        return super().clear()

    def on_resize(self, event: textual_events.Resize) -> None:
        width = self.scrollable_content_region.width
        if not self._size_known or width <= 0:  # RichLog writes its deferred lines itself
            if width > 0:
                self._wrapped_at = width
            return
        if self._pending or width != self._wrapped_at:
            self._rewrap(width)

    def _rewrap(self, width: int) -> None:
        """Every kept line again, wrapped at `width`; the view stays at the end."""
        kept = list(self._kept)
        super().clear()
        self._wrapped_at = width
        self._pending = False
        for text in kept:
            self.write(text, scroll_end=False)
        self.scroll_end(animate=False, immediate=False, x_axis=False)
