"""A live log of engine events: one line per event, the newest at the bottom."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from engine import events


def describe(event: events.Event) -> Text | None:
    """How an engine event reads in a log; None for events that are not log lines."""
    if isinstance(event, events.Log):
        style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
        return Text(event.message, style=style)
    if isinstance(event, events.Output):
        return Text(event.line, style="dim")
    if isinstance(event, events.RunFinished):
        if event.status == "finished":
            scores = "  ".join(f"{k}={v:.4f}" for k, v in event.metrics.items())
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
    """RichLog that takes engine events (`write_event`) or plain lines (`write_line`)."""

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

    def write_event(self, event: events.Event) -> None:
        text = describe(event)
        if text is not None:
            self.write(text)

    def write_line(self, line: str, style: str = "") -> None:
        self.write(Text(line, style=style))
