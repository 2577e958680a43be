"""Modal dialogs: confirm, save/discard/cancel, a one-field prompt, and the error panel."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from engine.errors import HajError


class ConfirmModal(ModalScreen[bool]):
    """Yes/no. Returns True only when the user confirms (y, or the confirm button)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, message: str, confirm: str = "Delete") -> None:
        super().__init__(classes="modal")
        self._title = title
        self._message = message
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._message, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel")
                yield Button(f"{self._confirm} (y)", id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class UnsavedModal(ModalScreen[str]):
    """Unsaved changes: returns "save", "discard" or "cancel"."""

    BINDINGS = [
        Binding("s", "choose('save')", "Save"),
        Binding("d", "choose('discard')", "Discard"),
        Binding("escape,c", "choose('cancel')", "Cancel"),
    ]

    def __init__(self, what: str) -> None:
        super().__init__(classes="modal")
        self._what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Unsaved changes", classes="dialog-title")
            yield Static(f"{self._what} has unsaved changes.", classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (c)", id="cancel")
                yield Button("Discard (d)", id="discard", variant="error")
                yield Button("Save (s)", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class PromptModal(ModalScreen[str | None]):
    """One text field. `check(value)` raises HajError to refuse a value: its message is shown
    under the field and the dialog stays open. Returns the accepted value, None on cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        label: str,
        value: str = "",
        check: Callable[[str], object] | None = None,
        confirm: str = "OK",
    ) -> None:
        super().__init__(classes="modal")
        self._title = title
        self._label = label
        self._value = value
        self._check = check
        self._confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Label(self._label, classes="field-label")
            yield Input(self._value, id="value", select_on_focus=True)
            yield Static("", id="value-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", id="cancel")
                yield Button(f"{self._confirm} (⏎)", id="ok", variant="primary")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        value = self.query_one("#value", Input).value.strip()
        if self._check is not None:
            try:
                self._check(value)
            except HajError as exc:
                error = self.query_one("#value-error", Static)
                error.update(exc.message)
                error.add_class("shown")
                return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ErrorModal(ModalScreen[None]):
    """The error panel: an unexpected error (a bug) with its traceback, the app keeps running."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, title: str, details: str) -> None:
        super().__init__(classes="modal")
        self._title = title
        self._details = details

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog"):
            yield Label(self._title, classes="dialog-title")
            with VerticalScroll(classes="error-details"):
                yield Static(self._details, markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)
