"""Containers: a project's champion as a Docker image, built and run with the docker SDK.

- context.py    the build context: Dockerfile, requirements, haj's engine, the project's files and
                the champion (with its sha256); optionally a wheelhouse for offline builds.
- dockerfile.py the Dockerfile text (multi-stage, cache-friendly, non-root, HEALTHCHECK).
- client.py     reaching the Docker engine, with one clear error when none answers.
- image.py      `build`: streams the build log as events; images of a project.
- runtime.py    start / stop / status / logs of a project's container, found again by its labels.

Nothing here imports docker at module level: `import engine.container` stays cheap for the CLI.
"""

from __future__ import annotations

LABEL_PROJECT = "haj.project"
LABEL_PATH = "haj.project-path"
LABEL_RUN = "haj.run-id"
CONTAINER_PORT = 8080  # SageMaker's contract: the server answers on 8080 inside the container
DEFAULT_BASE_IMAGE = "python:3.11-slim"


def image_repository(project_name: str) -> str:
    """Docker repositories are lowercase; project names may not be."""
    return f"haj/{project_name.lower()}"
