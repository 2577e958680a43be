"""The New project dialog: name, prediction type, optional example dataset.

The engine decides what a valid name is; its message is shown under the field it is about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.api import EXAMPLES, PREDICTION_TYPES
from engine.errors import HajError, ProjectExists, UsageError

if TYPE_CHECKING:
    from engine.api import Workspace


class NewProjectModal(ModalScreen[str | None]):
    """Returns the new project's name, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(classes="modal")
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="new-project"):
            yield Label("New project", classes="dialog-title")
            yield Label("Name (letters, digits, - and _)", classes="field-label")
            yield Input(placeholder="e.g. churn", id="name")
            yield Static("", id="name-error", classes="field-error")
            yield Label("Prediction type", classes="field-label")
            yield Select(
                [(p, p) for p in PREDICTION_TYPES],
                value=PREDICTION_TYPES[0],
                allow_blank=False,
                id="prediction",
            )
            yield Label("Example dataset (optional, offline)", classes="field-label")
            yield Select(
                self._examples(PREDICTION_TYPES[0]),
                prompt="none: set a data URL in Config",
                id="example",
            )
            yield Static("", id="form-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Create (⏎)", id="create", variant="primary")

    @staticmethod
    def _examples(prediction: str) -> list[tuple[str, str]]:
        return [(name, name) for name, (kind, _) in EXAMPLES.items() if kind == prediction]

    @on(Select.Changed, "#prediction")
    def _prediction_changed(self, event: Select.Changed) -> None:
        self.query_one("#example", Select).set_options(self._examples(str(event.value)))

    def _show(self, widget_id: str, message: str) -> None:
        error = self.query_one(widget_id, Static)
        error.update(message)
        error.set_class(bool(message), "shown")

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        prediction = str(self.query_one("#prediction", Select).value)
        example = self.query_one("#example", Select).selection
        self._show("#name-error", "")
        self._show("#form-error", "")
        try:
            self.workspace.validate_name(name)
            self.workspace.create(name, prediction, example=example)
        except (UsageError, ProjectExists) as exc:
            if isinstance(exc, ProjectExists) or "name" in exc.message:
                self._show("#name-error", exc.message)
                self.query_one("#name", Input).focus()
            else:
                self._show("#form-error", exc.message)
            return
        except HajError as exc:
            self._show("#form-error", exc.message)
            return
        self.dismiss(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
