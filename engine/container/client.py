"""Reaching the Docker engine: one place that turns "no engine" into a message that says what to do.

The docker SDK reads DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) like the docker CLI.
The engine is first asked with a short timeout (PING_TIMEOUT): one that accepts connections but
never answers is reported in seconds instead of hanging haj; the long timeouts are for the calls
that need them (builds and pushes).
"""

from __future__ import annotations

import os
from typing import Any

from engine.errors import ContainerError, Hint, one_line

PING_TIMEOUT = 5
DEFAULT_TIMEOUT = 60  # listing, starting and stopping
LONG_TIMEOUT = 600  # builds and pushes


def docker_client(timeout: int = DEFAULT_TIMEOUT) -> Any:
    """A connected docker.DockerClient, or ContainerError explaining how to get one."""
    try:
        import docker
    except ImportError:  # pragma: no cover - docker is a dependency of haj
        raise ContainerError("the docker Python package is missing: pip install docker") from None
    where = os.environ.get("DOCKER_HOST") or "the default socket (/var/run/docker.sock)"
    client = None
    try:
        client = docker.from_env(timeout=PING_TIMEOUT)  # asks the engine its API version
        client.ping()
    except Exception as exc:
        if client is not None:
            client.close()
        reason = f"it did not answer within {PING_TIMEOUT} s" if _timed_out(exc) else _short(exc)
        raise ContainerError(
            f"no Docker engine reachable at {where} ({reason})", Hint("start-docker")
        ) from None
    client.api.timeout = timeout
    return client


def api_error(exc: Exception) -> str:
    """A docker APIError's message without the HTTP noise."""
    explanation = getattr(exc, "explanation", None)
    return one_line(str(explanation or exc).strip(), 300)


def _timed_out(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TimeoutError) or "timed out" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _short(exc: Exception) -> str:
    """Why the engine could not be reached, in words: the operating system's reason at the root
    of the SDK's wrapped errors ("no such file or directory", "connection refused"), not their
    repr (`('Connection aborted.', FileNotFoundError(2, ...))`)."""
    root = _root_os_error(exc)
    if root is not None:
        return str(root.strerror).lower()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return one_line(text, 160)


def _root_os_error(exc: BaseException) -> OSError | None:
    """The deepest OSError with a reason among the causes (and the exception arguments, where
    urllib3 keeps it) of `exc`."""
    found: OSError | None = None
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo and len(seen) < 20:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            found = current
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found
