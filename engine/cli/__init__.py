"""The `haj` command line.

Each command group lives in its own module with a `register(subparsers, common)` function;
each command is a small class (engine.cli.command) that reaches the engine through `engine.api`
and imports the heavy parts inside itself (as DVC's commands do), so `import engine.cli` loads
none of textual, scikit-learn, pandas or fastapi.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sqlite3
import sys
from collections.abc import Sequence

from engine import __version__
from engine.errors import HajError

COMMAND_MODULES = (
    "engine.cli.projects",
    "engine.cli.data_cmds",
    "engine.cli.train_cmds",
    "engine.cli.tune_cmds",
    "engine.cli.experiment_cmds",
    "engine.cli.serve_cmds",
    "engine.cli.predict_cmds",
    "engine.cli.operate_cmds",
    "engine.cli.retrain_cmds",
    "engine.cli.monitor_cmds",
    "engine.cli.pipeline_cmds",
    "engine.cli.schedule_cmds",
    "engine.cli.container_cmds",
    "engine.cli.deploy_cmds",
    "engine.cli.diagnose_cmds",
    "engine.cli.cluster_cmds",
    "engine.cli.report_cmds",
    "engine.cli.export_cmds",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line `haj: error: ...` and exit code 2, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"haj: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the workspace (default: $HAJ_HOME, else ~/ml_projects)",
    )
    common.add_argument(
        "--no-wait",
        action="store_true",
        default=argparse.SUPPRESS,
        help="fail at once when another command is writing the project (default: wait)",
    )
    parser = _Parser(
        prog="haj",
        description="haj: a terminal-first ML workflow orchestrator. "
        "Run `haj` alone to open the full-screen app.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"haj {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a command group not built yet
            raise
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return _open_tui(args, parser)
    terminated = _stop_on_sigterm()
    try:
        return int(args.func(args).run() or 0)
    except HajError as exc:
        from engine.cli import hints

        sys.stderr.write(f"haj: error: {hints.render(exc)}\n")
        return 143 if terminated and exc.exit_code == 130 else exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("haj: terminated\n" if terminated else "haj: interrupted\n")
        return 143 if terminated else 130
    except EOFError:  # Ctrl-D at a prompt
        sys.stderr.write("haj: error: no answer (end of input): nothing was changed\n")
        return 1
    except BrokenPipeError:
        return 0
    except sqlite3.DatabaseError as exc:  # damage found past opening (Store reports the rest)
        from pathlib import Path

        from engine.cli import hints
        from engine.store import unreadable

        sys.stderr.write(f"haj: error: {hints.render(unreadable(Path('haj.db'), exc))}\n")
        return 1


def _stop_on_sigterm() -> list[bool]:
    """SIGTERM (a supervisor, `timeout`, `kill`) stops haj the way Ctrl-C does: long work in a
    runner is cancelled and recorded as such, not left running on its own. Returns a flag that
    becomes true once SIGTERM arrived."""
    import signal

    received: list[bool] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append(True)
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (main() called from a thread)
        signal.signal(signal.SIGTERM, interrupt)
    return received


def _open_tui(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        parser.print_help()
        return 0
    try:
        tui = importlib.import_module("haj_tui.app")
    except ModuleNotFoundError:
        parser.print_help()
        return 0
    from engine.api import Workspace

    tui.run(Workspace.open(getattr(args, "home", None)))
    return 0
