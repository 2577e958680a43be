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

from typing import Any

from engine.units import human_size

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
