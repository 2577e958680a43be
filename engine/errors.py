"""The HajError hierarchy.

Every failure a user can cause is a HajError: the CLI prints its message as one line
(`haj: error: ...`) and exits with its code; the TUI shows it as a notification. Anything else
that escapes is a bug.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TAGS = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def one_line(text: str, limit: int | None = None) -> str:
    """A message as the single line haj promises: the lines of a multi-line message (user code
    may raise those) joined with ' | '; an HTML error page (a proxy's, an AWS endpoint's) becomes
    its title; runs of white space one space; cut at `limit` characters when given."""
    text = str(text)
    lowered = text.lower()
    if "<html" in lowered or "<!doctype" in lowered:
        title = _TITLE.search(text)
        text = " ".join((title.group(1) if title else _TAGS.sub(" ", text)).split())
    else:
        text = " | ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


@dataclass(frozen=True)
class Hint:
    """What the user can do next, said without naming an interface.

    `action` is one of the product's verbs (see ACTIONS); `project` is the project it applies
    to; `detail` an argument (a config field, a metric). The CLI phrases it as a command
    (`haj retrieve churn`), the app as a key or a button ("press r to retrieve").
    """

    action: str
    project: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown hint action {self.action!r}")


# The verbs a hint may name: each face has one phrase for each (engine.cli.hints,
# haj_tui.hints); a test checks that both cover all of them.
ACTIONS = (
    "init",  # create a project
    "retrieve",
    "process",
    "train",
    "crown",
    "serve",
    "stop-server",
    "build",
    "start-container",
    "stop-container",
    "deploy",
    "undeploy",
    "set-target",  # choose the target column
    "set-url",  # choose the data source
    "list-data",  # see the data versions
    "start-docker",  # start a Docker engine
    "choose-port",  # serve on another port
    "use-host-network",  # run the container on the host's network
    "build-offline",  # build with a wheelhouse, or on the host's network
    "set-region",  # say which AWS region
    "choose-workspace",  # use another folder as the workspace
)


def render(error: HajError, phrases: dict[str, str], project: str = "NAME") -> str:
    """An error as one line in a face's words: the message, then its hint phrased from
    `phrases` (the face's sentence for each action, with {project} and {detail} filled)."""
    message = one_line(error.message)
    hint = error.hint
    if hint is None:
        return message
    phrase = phrases[hint.action].format(project=hint.project or project, detail=hint.detail or "")
    return f"{message}: {phrase}"


class HajError(Exception):
    """A user-facing error: one line, no traceback, and optionally what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(HajError):
    """Bad arguments: unknown metric, unknown model, a bad name."""

    exit_code = 2


class StoreError(HajError):
    """The project's registry (haj.db) cannot be read: damaged, or not a database."""

    exit_code = 1


class ProjectBusy(HajError):
    """Another command is writing the project, and the caller chose not to wait."""

    exit_code = 13


class ProjectNotFound(HajError):
    exit_code = 7  # not 3: `haj check` exits 3 for a degraded model, which cron gates on


class Degraded(HajError):
    """`haj check`: the champion scores worse on new data than recorded, beyond the tolerance."""

    exit_code = 3


class ProjectExists(HajError):
    exit_code = 4


class ConfigError(HajError):
    """config.toml or .env cannot be read or has invalid values."""

    exit_code = 5


class DataError(HajError):
    """No data yet, target column missing, unreadable data."""

    exit_code = 6


class TransientError(DataError):
    """A failure worth trying again: the network (refused, reset, timed out) or a server's
    5xx, as opposed to a bug in the user's code. The pipeline retries only these."""


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


class ClusterError(HajError):
    """A Dask cluster cannot take the work: unreachable, no workers, or workers whose packages
    differ from haj's environment (engine.cluster)."""

    exit_code = 14


class Cancelled(HajError):
    """The user stopped long work (Ctrl-C, the TUI's cancel)."""

    exit_code = 130


_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutException",
        "ConnectError", "ReadError", "RemoteProtocolError", "PoolTimeout", "ChunkedEncodingError",
        "IncompleteRead", "RemoteDisconnected", "URLError",
    }
)  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """True for network failures and HTTP 5xx answers, from the standard library, requests or
    httpx (recognised by class name: a retriever may use any of them)."""
    status = getattr(exc, "code", None)  # urllib.error.HTTPError
    response = getattr(exc, "response", None)  # requests / httpx
    if response is not None and isinstance(getattr(response, "status_code", None), int):
        status = response.status_code
    if isinstance(status, int) and type(exc).__name__ in ("HTTPError", "HTTPStatusError"):
        return status >= 500
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)
