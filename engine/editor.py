"""Which external editor to run: shared by `haj impl` and the TUI's Code tab."""

from __future__ import annotations

import os
import shlex
import shutil

from engine.errors import HajError


def editor_command() -> list[str]:
    """$VISUAL, else $EDITOR, else vim, split like a shell would."""
    for variable in ("VISUAL", "EDITOR"):
        value = os.environ.get(variable, "").strip()
        if value:
            return shlex.split(value)
    return ["vim"]


def checked_editor_command() -> list[str]:
    """editor_command(), or a HajError when its program is not installed."""
    command = editor_command()
    if shutil.which(command[0]) is None:
        raise HajError(f"editor {command[0]!r} not found: set $EDITOR (e.g. export EDITOR=nano)")
    return command
