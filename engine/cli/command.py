"""The shape of a `haj` command, after DVC's dvc/cli/command.py.

Each command is a small class: `__init__` opens the workspace (and the project the command
names) once, through `engine.api`; `run()` does the work and returns the exit code. A command
with `--json` computes its answer in `result()`; `run()` prints it with `output.write_json` (the
one way `--json` is printed) or hands it to `show()` for the terminal.

Nothing heavy is imported here: `engine.api` and rich are loaded when a command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine import events
    from engine.api import ProjectAPI, Workspace


def _say_waiting(text: str) -> None:
    """What a command prints while another one holds the project (on stderr: stdout may be
    JSON)."""
    import sys

    sys.stderr.write(f"haj: {text}\n")
    sys.stderr.flush()


class Command:
    """A command over the workspace (`--home`, else $HAJ_HOME, else ~/ml_projects)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from engine.api import Workspace

        self.args = args
        self.workspace: Workspace = Workspace.open(
            getattr(args, "home", None),
            wait=not getattr(args, "no_wait", False),
            on_wait=_say_waiting,
        )

    @property
    def json(self) -> bool:
        """`--json` was asked for: stdout carries the JSON answer and nothing else."""
        return bool(getattr(self.args, "json", False))

    @property
    def console(self) -> Any:
        from engine.cli import output

        return output.console()

    def on_event(self, verbose: bool = True) -> events.Callback:
        """Where a long verb's events go: nowhere under `--json`, else printed as they come."""
        from engine import events
        from engine.cli import output

        return events.ignore if self.json else output.event_printer(verbose)

    def run(self) -> int:
        from engine.cli import output

        result = self.result()
        if self.json:
            output.write_json(result)
            return 0
        return int(self.show(result) or 0)

    def result(self) -> Any:
        """What the command answers (printed as is under `--json`)."""
        raise NotImplementedError

    def show(self, result: Any) -> int | None:
        """Print `result` for a person; the exit code, when not 0."""
        raise NotImplementedError


class ProjectCommand(Command):
    """A command on the project named by the `name` argument, opened once here."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.project: ProjectAPI = self.workspace.project(args.name)
