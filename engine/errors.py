"""The HajError hierarchy.

Every failure a user can cause is a HajError: the CLI prints its message as one line
(`haj: error: ...`) and exits with its code; the TUI shows it as a notification. Anything else
that escapes is a bug.
"""

from __future__ import annotations


class HajError(Exception):
    """A user-facing error: one line, no traceback."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(HajError):
    """Bad arguments: unknown metric, unknown model, a bad name."""

    exit_code = 2


class ProjectNotFound(HajError):
    exit_code = 3


class ProjectExists(HajError):
    exit_code = 4


class ConfigError(HajError):
    """config.toml or .env cannot be read or has invalid values."""

    exit_code = 5


class DataError(HajError):
    """No data yet, target column missing, unreadable data."""

    exit_code = 6


class TrainingError(HajError):
    exit_code = 7


class NoChampion(HajError):
    exit_code = 8


class DependencyError(HajError):
    """Creating the project's virtualenv or installing into it failed."""

    exit_code = 9


class ServingError(HajError):
    exit_code = 10


class ContainerError(HajError):
    exit_code = 11


class DeployError(HajError):
    exit_code = 12


class Cancelled(HajError):
    """The user stopped long work (Ctrl-C, the TUI's cancel)."""

    exit_code = 130
