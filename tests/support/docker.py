"""The Docker tests' helpers: a connected client or a skip saying how to start an engine, and the
trained 'cancer' project's image (built once; see conftest's `built` fixture)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import call_haj

BASE_IMAGE = os.environ.get("HAJ_BASE_IMAGE", "haj-base:bookworm")
START_DOCKERD = "scripts/start-dockerd.sh"


def docker_or_skip() -> Any:
    """A connected docker client, or skip saying why (CI starts an engine; see .ci/run)."""
    try:
        import docker

        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        pytest.skip(
            f"no Docker engine reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')}): "
            f'{str(exc)[:120]}; start one with `eval "$({START_DOCKERD})"`'
        )
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        pytest.skip(f"the base image {BASE_IMAGE} is missing ({START_DOCKERD} builds it)")
    return client


@dataclass
class Built:
    home: Path
    name: str
    image: str
    record: dict[str, Any]
    seconds: float
    output: str


def build_image(home: Path, trained: Path) -> Built:
    """Copy the trained 'cancer' project into `home` and `haj build` it with a wheelhouse."""
    shutil.copytree(trained / "cancer", home / "cancer", symlinks=True)
    started = time.monotonic()
    result = call_haj(home, "build", "cancer", "--base-image", BASE_IMAGE, "--wheelhouse")
    seconds = time.monotonic() - started
    assert result.code == 0, result.text[-3000:]
    from engine.store import Store

    with Store(home / "cancer" / "haj.db") as store:
        record = store.get_record("image")
    assert record
    return Built(home, "cancer", record["image"], record, seconds, result.text)


def project_id(project_dir: Path) -> str:
    import tomllib

    return tomllib.loads((project_dir / "config.toml").read_text())["project"]["id"]
