"""Containers: a project's champion as a Docker image, built and run with the docker SDK.

- context.py    the build context: Dockerfile, requirements, haj's engine, the project's files and
                the champion (with its sha256); optionally a wheelhouse for offline builds.
- dockerfile.py the Dockerfile text (multi-stage, cache-friendly, non-root, HEALTHCHECK).
- client.py     reaching the Docker engine, with one clear error when none answers.
- image.py      `build`: streams the build log as events; images of a project.
- runtime.py    start / stop / status / logs of a project's container, found again by its labels.

Images and containers are found by the project's id (the `haj.project-id` label, from
`[project] id` in config.toml), never by its name: two workspaces may hold projects of the same
name. Nothing here imports docker at module level: `import engine.container` stays cheap for the
CLI.
"""

from __future__ import annotations

import re
from typing import Any

LABEL_PROJECT = "haj.project"
LABEL_PROJECT_ID = "haj.project-id"
LABEL_PATH = "haj.project-path"
LABEL_RUN = "haj.run-id"
CONTAINER_PORT = 8080  # SageMaker's contract: the server answers on 8080 inside the container
DEFAULT_BASE_IMAGE = "python:3.11-slim"

# Progress events of Docker and AWS work, told apart by how their label starts:
PUSHING = "pushing"  # done/total are bytes
WAITING = "waiting for"  # done is the seconds waited so far, total the timeout
# any other label is a step of a build: done/total are steps


def image_repository(project_name: str) -> str:
    """Docker repositories are lowercase; project names may not be."""
    return f"haj/{project_name.lower()}"


def human_size(size: int | float | None) -> str:
    """Bytes in decimal units, as Docker prints them (580 MB is 580 x 10^6 bytes)."""
    if not size:
        return "-" if size is None else "0 B"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if round(value) < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{value:.0f} B"
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"


def elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"


def progress_text(event: Any) -> str:
    """One line for a Progress event (the CLI's plain output and the app's status line)."""
    if event.label.startswith(PUSHING):
        if not event.total:  # no layer has started to upload yet
            return event.label
        return f"{event.label}: {human_size(event.done)} of {human_size(event.total)}"
    if event.label.startswith(WAITING):
        return f"{event.label}: {elapsed(event.done)} elapsed"
    return f"[{event.done}/{event.total}] {event.label}"


_TAGS = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def one_line(text: str, limit: int = 300) -> str:
    """An error text from a server as one short line: an HTML error page becomes its title,
    whitespace runs one space, and anything past `limit` characters is cut."""
    text = str(text)
    if "<html" in text.lower() or "<!doctype" in text.lower():
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAGS.sub(" ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
