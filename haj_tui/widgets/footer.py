"""The footer: Textual's, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen
from textual.widgets import Footer


class HajFooter(Footer):
    """Textual's Footer rebuilds every key widget whenever a screen refreshes its bindings,
    and the tabs do that each time they read their state (a poll a second), so an idle app
    spent more CPU restyling an unchanged footer than on anything else. This one compares
    the keys first and rebuilds only when what it would show differs."""

    _shown: tuple[Any, ...] | None = None

    @staticmethod
    def _keys(screen: Screen[Any]) -> tuple[Any, ...]:
        return tuple(
            (binding.key, binding.description, binding.action, binding.show, enabled, tooltip)
            for _node, binding, enabled, tooltip in screen.active_bindings.values()
        )

    def bindings_changed(self, screen: Screen[Any]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            keys = self._keys(screen)
            if self._bindings_ready and keys == self._shown:
                return
            self._shown = keys
        super().bindings_changed(screen)
