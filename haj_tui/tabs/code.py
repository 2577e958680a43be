"""The Code tab: retriever.py, processor.py and model.py in a built-in editor, or in yours.

ctrl+s writes the file atomically (a crash never leaves half a file), after two checks: a
syntax error is shown with its line and saved only when asked ("Save anyway"), and a file
changed on disk since it was loaded (another editor, git) is overwritten only when asked.
Leaving a modified file (another file, another tab, the screen, quitting) asks first. ctrl+o
hands the file to $VISUAL / $EDITOR / vim with the app suspended, then reloads it, as Posting
does, with the cursor where it was. escape leaves the editor for the file list (and, pressed
again, the project). Long lines wrap at the editor's width; the border shows line and column.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from engine.api import CODE_FILES
from engine.errors import HajError
from haj_tui.widgets.modals import ConfirmModal, UnsavedModal
from haj_tui.widgets.work import ReportsWorkerErrors

if TYPE_CHECKING:
    from engine.api import ProjectAPI

WHAT_EACH_FILE_DOES = {
    "retriever": "retrieve(config, secrets): fetch the raw data",
    "processor": "process(raw): features + target column",
    "model": "models(): extra candidate estimators",
}


WIDE = 100  # columns: the border warns past this


class CodeEditor(TextArea):
    """Textual's code editor, but escape is the app's (leave the field, as everywhere) rather
    than a move to the next widget."""

    async def _on_key(self, event: events.Key) -> None:
        """Textual calls each class's _on_key in the MRO, this one first."""
        if event.key == "escape":
            # TextArea's own handler (next in the MRO) is skipped; the key still bubbles to
            # the Project screen, whose escape leaves the field
            event.prevent_default()


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
        editor = CodeEditor.code_editor("", language="python", id="code-editor", soft_wrap=True)
        editor.border_subtitle = "esc: leave the editor"
        yield editor

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
        self._moved()

    def _update_status(self) -> None:
        status = self.query_one("#code-status", Static)
        name = f"{self.current}.py"
        status.update(f"● {name} modified" if self.dirty else f"{name} saved")
        status.set_class(self.dirty, "dirty")

    @on(TextArea.Changed, "#code-editor")
    def _changed(self) -> None:
        self._update_status()

    @on(TextArea.SelectionChanged, "#code-editor")
    def _moved(self) -> None:
        row, column = self.editor.cursor_location
        where = f"Ln {row + 1}, Col {column + 1}"
        if column + 1 > WIDE:
            where += f" (past {WIDE})"
        self.editor.border_title = where

    @on(Button.Pressed, "#code-save")
    def action_save(self) -> None:
        """ctrl+s: check the syntax and the file on disk, asking when either is a surprise."""
        self._save_checked()

    @work(group="code-save", exclusive=True)
    async def _save_checked(self) -> bool:
        name = f"{self.current}.py"
        problem = self.project.code_problem(self.editor.text, name)
        if problem is not None:
            self.go_to_line(problem.line, problem.column)
            self._show_problem(f"line {problem.line}: {problem.message}")
            asked = ConfirmModal(
                "Syntax error",
                f"{name}, line {problem.line}, column {problem.column}: {problem.message}.\n"
                "It will fail when haj runs it. Save anyway?",
                confirm="Save anyway",
            )
            if not await self.app.push_screen_wait(asked):
                self.editor.focus()
                return False
        if self._changed_on_disk():
            asked = ConfirmModal(
                "Changed on disk",
                f"{name} was changed outside the app since it was loaded. Overwrite it with "
                "the text here? (Revert loads the file from disk instead.)",
                confirm="Overwrite",
            )
            if not await self.app.push_screen_wait(asked):
                return False
        return self.save()

    def _changed_on_disk(self) -> bool:
        return self._read(self.current) != self._saved_text

    def go_to_line(self, line: int, column: int = 1) -> None:
        """Put the cursor on a 1-based line and column, in view."""
        editor = self.editor
        row = max(0, min(line - 1, editor.document.line_count - 1))
        editor.cursor_location = (row, max(0, column - 1))
        editor.scroll_cursor_visible(center=True)

    def _show_problem(self, text: str) -> None:
        status = self.query_one("#code-status", Static)
        status.update(f"✗ {self.current}.py {text}")
        status.set_class(True, "dirty")

    def save(self) -> bool:
        """Write the text as it is (the unsaved-changes dialog's Save: said, not asked)."""
        text = self.editor.text
        name = self.path.name
        try:
            self.project.write_code(self.current, text)
        except OSError as exc:
            self.notify(f"Could not save {name}: {exc}", severity="error")
            return False
        self._saved_text = text
        self._update_status()
        problem = self.project.code_problem(text, name)
        if problem is not None:
            self._show_problem(f"saved; line {problem.line}: {problem.message}")
            self.notify(
                f"Saved {name} with a syntax error at line {problem.line}: {problem.message}",
                title="Code",
                severity="warning",
            )
        else:
            self.notify(f"Saved {name}", title="Code")
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

    @on(OptionList.OptionSelected, "#code-files")
    def _file_opened(self) -> None:
        """enter on a file: into the editor (escape comes back)."""
        self.editor.focus()

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
        cursor = self.editor.cursor_location
        scroll = self.editor.scroll_offset
        try:
            with self.app.suspend():
                code = subprocess.call([*command, str(self.path)])
        except SuspendNotSupported:
            self.notify("This terminal cannot hand over to an editor", severity="error")
            return
        self.load(self.current)
        self._restore(cursor, scroll)
        if code != 0:
            self.notify(f"{command[0]} exited with status {code}", severity="warning")
        else:
            self.notify(f"Reloaded {self.path.name}", title="Code")

    def _restore(self, cursor: tuple[int, int], scroll: object) -> None:
        """Back from the external editor: the cursor where it was (on the file's last line
        if the file got shorter), and the view scrolled as it was."""
        editor = self.editor
        row = min(cursor[0], editor.document.line_count - 1)
        column = min(cursor[1], len(editor.document.get_line(row)))
        editor.cursor_location = (row, column)
        editor.scroll_to(*scroll, animate=False)  # type: ignore[misc]
        editor.focus()

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
