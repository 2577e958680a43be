"""Reaching the Docker engine: one place that turns "no engine" into a message that says what to do.

The docker SDK reads DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) like the docker CLI.
"""

from __future__ import annotations

import os
from typing import Any

from engine.errors import ContainerError

HOW_TO_START = (
    "start one (`sudo systemctl start docker`, or Docker Desktop), "
    "or point DOCKER_HOST at a running engine (e.g. unix:///path/docker.sock)"
)


def docker_client(timeout: int = 120) -> Any:
    """A connected docker.DockerClient, or ContainerError explaining how to get one."""
    try:
        import docker
    except ImportError:  # pragma: no cover - docker is a dependency of haj
        raise ContainerError("the docker Python package is missing: pip install docker") from None
    where = os.environ.get("DOCKER_HOST") or "the default socket (/var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        raise ContainerError(
            f"no Docker engine reachable at {where}: {HOW_TO_START} ({_short(exc)})"
        ) from None
    return client


def api_error(exc: Exception) -> str:
    """A docker APIError's message without the HTTP noise."""
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
