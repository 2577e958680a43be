"""The help screen (F1 or ?): every key of the app, read from the live bindings."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown

KEYS = """\
| Where | Key | Does |
|---|---|---|
| everywhere | ctrl+p | command palette: every action by name |
| everywhere | f1 or ? | this help |
| everywhere | ctrl+q | quit (asks about unsaved changes) |
| Projects | type | filter the table |
| Projects | ↑ ↓ enter | choose and open a project |
| Projects | ctrl+n | new project |
| Projects | f2 | rename the selected project |
| Projects | delete | delete the selected project (asks first) |
| Projects | escape | clear the filter |
| Project | 1 … 8 | show a tab: Config, Code, Data, Train, Runs, Serve, Container, Deploy |
| Project | escape | back to Projects (asks about unsaved changes) |
| Project | r / p | retrieve / process data |
| Project | t | train models |
| Project | c | crown the champion |
| Project | s | start or stop the server |
| Project | b / d | build the container image / deploy |
| Project | ctrl+s | save the form or file being edited |
| Config | ctrl+s | save the config (title renames the project) |
| Config | enter in the package field | add and install the dependency |
| Code | ctrl+o | open the file in $VISUAL / $EDITOR / vim |
| Code | ctrl+z / ctrl+y | undo / redo |
| dialogs | enter / escape | confirm / cancel |

Letter keys act only when no text field has the focus: press **tab** or click
outside the field first. The mouse works everywhere: click tabs, rows and buttons.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,question_mark,q", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help"):
            yield Label("haj — keys", classes="dialog-title")
            yield Markdown(KEYS, id="help-keys")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
