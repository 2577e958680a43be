"""The Dockerfile haj writes into a build context.

Why this shape:
- Two stages. The first creates /opt/venv and installs the pinned requirements (from the wheelhouse
  when there is one); the second copies only the venv, so neither pip's cache nor the wheels end up
  in the image. Test suites, pip and setuptools are removed from the venv: nothing at serving time
  needs them, and they are a quarter of its size. Bytecode is compiled once, after that, on every
  core (the server runs as a user that cannot write it, and imports stay fast).
- Dependencies before code: a new champion or an edited processor.py changes only the last, small
  layers, so a rebuild takes seconds.
- `python3 -m venv` works on python:3.11-slim and on Debian's python3 (whose system pip refuses
  installs, PEP 668), so any Debian-like base with Python 3.11 will do.
- A non-root user; the project directory is read-only to it except logs/ (the prediction log).
- The server binds 0.0.0.0:8080 by default. SageMaker runs `docker run IMAGE serve` and calls
  GET /ping and POST /invocations on 8080: `serve` replaces CMD, the ENTRYPOINT keeps the host,
  and PORT (8080) comes from the environment. `docker run IMAGE serve --host 127.0.0.1` overrides
  the host (the last --host wins), which is how haj runs it with host networking.
"""

from __future__ import annotations

import json

from engine.container import CONTAINER_PORT

APP_UID = 10001


def render(*, wheelhouse: bool, labels: dict[str, str], project_name: str) -> str:
    """The Dockerfile text; the base image is a build argument (BASE_IMAGE)."""
    install = (
        "/opt/venv/bin/pip install --no-compile --no-index --find-links /tmp/haj/wheels "
        "-r /tmp/haj/requirements.txt"
        if wheelhouse
        else "/opt/venv/bin/pip install --no-compile -r /tmp/haj/requirements.txt"
    )
    copy_wheels = "COPY wheels/ /tmp/haj/wheels/\n" if wheelhouse else ""
    label_lines = " \\\n      ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    health = (
        "import os, urllib.request; urllib.request.urlopen("
        "'http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=3)"
    )
    return f"""\
# Written by `haj build {project_name}`: the champion of project {project_name!r}, served over HTTP.
# Edit the project, not this file: haj rewrites it on every build.
ARG BASE_IMAGE=python:3.11-slim

# ---- stage 1: the virtualenv (cached until requirements.txt changes) ----
FROM ${{BASE_IMAGE}} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/haj/requirements.txt
{copy_wheels}RUN {install} \\
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \\
 && find /opt/venv -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {{}} + \\
 && find /opt/venv -type f \\( -name '*.js.map' -o -name '*.css.map' \\) -delete \\
 && (/opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib >/dev/null || true)

# ---- stage 2: the image ----
FROM ${{BASE_IMAGE}}
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONPATH=/opt/haj HAJ_PROJECT_DIR=/app/{project_name} PORT={CONTAINER_PORT}
RUN useradd --system --uid {APP_UID} --home-dir /app --no-create-home --shell /usr/sbin/nologin haj
COPY --from=deps /opt/venv /opt/venv
COPY haj/ /opt/haj/
COPY project/ /app/{project_name}/
RUN mkdir -p /app/{project_name}/logs && chown {APP_UID} /app/{project_name}/logs
LABEL {label_lines}
USER {APP_UID}
WORKDIR /app/{project_name}
EXPOSE {CONTAINER_PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \\
  CMD ["python", "-c", "{health}"]
ENTRYPOINT ["python", "-m", "engine.serving", "--host", "0.0.0.0"]
CMD ["serve"]
"""
