"""The help screen (F1 or ?): every key of the app, read from the live bindings."""

from __future__ import annotations

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

KEYS: tuple[tuple[str, str, str], ...] = (
    ("everywhere", "ctrl+p", "command palette: every action by name"),
    ("", "f1  ?", "this help"),
    ("", "ctrl+q", "quit (asks about unsaved changes)"),
    ("", "escape", "back, close, cancel"),
    ("Projects", "type", "filter the table (escape clears)"),
    ("", "↑ ↓  enter", "choose and open a project"),
    ("", "ctrl+n", "new project"),
    ("", "f2", "rename the selected project"),
    ("", "delete", "delete the selected project (asks first)"),
    ("Project", "1 … 9", "tabs: Config Code Data Train Runs Serve Monitor Container Deploy"),
    ("", "r  p", "retrieve / process data"),
    ("", "t", "train models"),
    ("", "c", "crown the champion"),
    ("", "s", "start or stop the server"),
    ("", "b  d", "build the container image / deploy"),
    ("", "ctrl+s", "save the form or the file being edited"),
    ("", "ctrl+o", "Code: open the file in $VISUAL / $EDITOR / vim"),
    ("dialogs", "enter  escape", "confirm / cancel"),
)


def tab_keys() -> list[tuple[str, str, str]]:
    """Each tab's own keys, read from its BINDINGS, so this help never drifts from them."""
    from haj_tui.screens.project import TABS, tab_class

    rows: list[tuple[str, str, str]] = []
    for spec in TABS:
        cls = tab_class(spec)
        bindings = [b for b in getattr(cls, "BINDINGS", []) if isinstance(b, Binding) and b.show]
        # a few keys to a row, so every key of every tab fits on a big screen at once
        for n in range(0, len(bindings), KEYS_PER_ROW):
            group = bindings[n : n + KEYS_PER_ROW]
            rows.append(
                (
                    spec.title if n == 0 else "",
                    "  ".join(b.key for b in group),
                    " · ".join(b.description for b in group),
                )
            )
    return rows


KEYS_PER_ROW = 3


NOTE = (
    "Letter keys act when no text field has the focus: press tab, or click outside the "
    "field, first. The mouse works everywhere: tabs, rows, buttons."
)


def keys_table() -> Table:
    table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2, 0, 0))
    table.add_column("Where", style="bold")
    table.add_column("Key", style="bold")
    table.add_column("Does")
    for where, key, does in (*KEYS, *tab_keys()):
        table.add_row(where, key, does)
    return table


CHROME = 5  # the dialog's rows around the keys: its border, title, and Close button


class HelpScreen(ModalScreen[None]):
    """Every key, sized to the screen: all of a small one (the keys scroll), capped and centred
    on a big one (app.tcss, #help)."""

    BINDINGS = [Binding("escape,f1,question_mark,q", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help"):
            yield Label("haj — keys", classes="dialog-title")
            with VerticalScroll(id="help-keys"):
                yield Static(keys_table())
                yield Static(NOTE, classes="hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary", compact=True)

    def on_resize(self) -> None:
        """The keys take what the screen leaves (height: auto alone would push the Close
        button off a small screen)."""
        keys = self.query_one("#help-keys", VerticalScroll)
        keys.styles.max_height = max(3, self.size.height - CHROME)

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
