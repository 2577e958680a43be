"""The Code tab: retriever.py, processor.py and model.py in a built-in editor, or in yours.

ctrl+s writes the file atomically (a crash never leaves half a file). Leaving a modified file
(another file, another tab, the screen, quitting) asks first. ctrl+o hands the file to
$VISUAL / $EDITOR / vim with the app suspended, then reloads it, as Posting does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from engine.api import CODE_FILES
from engine.errors import HajError
from haj_tui.widgets.modals import UnsavedModal
from haj_tui.widgets.work import ReportsWorkerErrors

if TYPE_CHECKING:
    from engine.api import ProjectAPI

WHAT_EACH_FILE_DOES = {
    "retriever": "retrieve(config, secrets): fetch the raw data",
    "processor": "process(raw): features + target column",
    "model": "models(): extra candidate estimators",
}


class CodeTab(ReportsWorkerErrors, Horizontal):
    """A file list on the left, the editor on the right."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="code.save"),
        Binding("ctrl+o", "open_in_editor", "$EDITOR", id="code.editor"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.current = CODE_FILES[0]
        self._saved_text = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="code-side"):
            yield Label("Files", classes="section-title")
            yield OptionList(
                *(Option(f"{name}.py", id=name) for name in CODE_FILES), id="code-files"
            )
            yield Static("", id="code-status")
            yield Button("Save  ctrl+s", id="code-save", variant="primary", compact=True)
            yield Button("$EDITOR  ctrl+o", id="code-open-editor", compact=True)
            yield Button("Revert", id="code-revert", compact=True)
            yield Static("", id="code-help", classes="hint")
        yield TextArea.code_editor("", language="python", id="code-editor")

    def on_mount(self) -> None:
        self.query_one("#code-files", OptionList).highlighted = 0
        self.load(self.current)

    def refresh_data(self) -> None:
        """Pick up changes made outside (another editor, git), unless the user is editing."""
        if self.dirty:
            return
        # reloading re-parses the file: only when it changed
        if self._read(self.current) != self._saved_text:
            self.load(self.current)

    def _read(self, which: str) -> str:
        try:
            return self.project.read_code(which)
        except FileNotFoundError:
            return ""

    @property
    def path(self) -> Path:
        return self.project.code_path(self.current)

    @property
    def editor(self) -> TextArea:
        return self.query_one("#code-editor", TextArea)

    @property
    def dirty(self) -> bool:
        return self.editor.text != self._saved_text

    # ---- load / save ---------------------------------------------------------------------
    def load(self, which: str) -> None:
        """Show `which` (retriever, processor, model) as it is on disk."""
        self.current = which
        text = self._read(which)
        self._saved_text = text
        self.editor.load_text(text)
        self.query_one("#code-help", Static).update(WHAT_EACH_FILE_DOES[which])
        files = self.query_one("#code-files", OptionList)
        index = CODE_FILES.index(which)
        if files.highlighted != index:
            with files.prevent(OptionList.OptionHighlighted):
                files.highlighted = index
        self._update_status()

    def _update_status(self) -> None:
        status = self.query_one("#code-status", Static)
        name = f"{self.current}.py"
        status.update(f"● {name} modified" if self.dirty else f"{name} saved")
        status.set_class(self.dirty, "dirty")

    @on(TextArea.Changed, "#code-editor")
    def _changed(self) -> None:
        self._update_status()

    @on(Button.Pressed, "#code-save")
    def action_save(self) -> bool:
        return self.save()

    def save(self) -> bool:
        text = self.editor.text
        try:
            self.project.write_code(self.current, text)
        except OSError as exc:
            self.notify(f"Could not save {self.path.name}: {exc}", severity="error")
            return False
        self._saved_text = text
        self._update_status()
        self.notify(f"Saved {self.path.name}", title="Code")
        return True

    def unsaved_changes(self) -> str | None:
        return f"{self.current}.py" if self.dirty else None

    def discard(self) -> None:
        self.load(self.current)

    @on(Button.Pressed, "#code-revert")
    def _revert(self) -> None:
        self.discard()

    # ---- switching file ------------------------------------------------------------------
    @on(OptionList.OptionHighlighted, "#code-files")
    def _file_chosen(self, event: OptionList.OptionHighlighted) -> None:
        which = event.option.id or self.current
        if which != self.current:
            self._switch_to(which)

    @work(group="code-switch", exclusive=True)
    async def _switch_to(self, which: str) -> None:
        if await self._may_leave():
            self.load(which)
        else:
            files = self.query_one("#code-files", OptionList)
            with files.prevent(OptionList.OptionHighlighted):
                files.highlighted = CODE_FILES.index(self.current)

    async def _may_leave(self) -> bool:
        """Ask about unsaved changes; True when the current file may be left."""
        if not self.dirty:
            return True
        choice = await self.app.push_screen_wait(UnsavedModal(f"{self.current}.py"))
        if choice == "save":
            return self.save()
        if choice == "discard":
            self.discard()
            return True
        return False

    # ---- external editor -----------------------------------------------------------------
    @on(Button.Pressed, "#code-open-editor")
    @work(group="code-editor", exclusive=True)
    async def action_open_in_editor(self) -> None:
        """Suspend the app, run the editor on the file, reload it when the editor exits."""
        if not await self._may_leave():
            return
        try:
            command = self.project.editor_command()
        except HajError as exc:
            self.notify(exc.message, title="Editor", severity="error")
            return
        try:
            with self.app.suspend():
                code = subprocess.call([*command, str(self.path)])
        except SuspendNotSupported:
            self.notify("This terminal cannot hand over to an editor", severity="error")
            return
        self.load(self.current)
        if code != 0:
            self.notify(f"{command[0]} exited with status {code}", severity="warning")
        else:
            self.notify(f"Reloaded {self.path.name}", title="Code")

    def palette_commands(self) -> list[tuple[str, object, str]]:
        commands: list[tuple[str, object, str]] = [
            (f"Code: edit {name}.py", _editing(self, name), WHAT_EACH_FILE_DOES[name])
            for name in CODE_FILES
        ]
        commands.append(
            ("Code: open in $EDITOR (ctrl+o)", self.action_open_in_editor, "Suspend and edit")
        )
        commands.append(("Code: save (ctrl+s)", self.action_save, "Save the file"))
        return commands


def _editing(tab: CodeTab, which: str) -> object:
    def go() -> None:
        screen = tab.screen
        show = getattr(screen, "action_show_tab", None)
        if show is not None:
            show("code")
        if which != tab.current:
            tab._switch_to(which)
        tab.editor.focus()

    return go
