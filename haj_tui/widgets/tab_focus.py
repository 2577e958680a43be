"""Keep a tab's focus from pulling the Project screen back to it when another tab is shown.

Textual 8.2.8: when a pane is hidden, its focused widget gets a Hide event and blurs; the screen
then focuses one of that widget's `visible_siblings` (a style check that ignores the display:none
pane around them). That focus bubbles up as DescendantFocus, the TabPane turns it into
TabPane.Focused and TabbedContent switches back to the pane being left: the number key that
asked for another tab seems to do nothing.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget


class NoFocusWhileHidden:
    """Mixin for a widget that fills a TabPane: focus inside a hidden pane is dropped."""

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        widget: Widget = self  # type: ignore[assignment]
        pane = widget.parent
        if pane is not None and not pane.display:
            event.stop()  # never reaches the TabPane, so the tabs stay where the user went
            widget.screen.set_focus(None)
