"""`haj retrain --redeploy container` on a real Docker engine: the trained 'cancer' project of the
session's image (conftest's `built`, copied per test by `deployable`) runs in a container built by
haj; a retrain whose challenger wins rebuilds the image and restarts the container, which then
serves the new champion; a worse challenger leaves the image and the very same container alone.

Docker tier: an engine started by scripts/start-dockerd.sh (no bridge: the container runs with
host networking, its server on 127.0.0.1); the tests skip, saying why, when none answers. The
rebuild reuses the session image's layer cache and wheelhouse (only the champion's layers are
new), so a promotion costs seconds, not a cold build. The dry run without an engine needs none.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import call_haj
from tests.support.docker import Built, docker_or_skip, project_id
from tests.support.procs import free_port


def flip_labels(home: Path) -> None:
    """Point the project's source at its own raw table with every label flipped (0 <-> 1): the
    champion degrades, and a challenger trained on it wins."""
    (raw,) = (home / "cancer" / "data" / "raw").glob("*.csv")
    with open(raw, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["target"] = {"0": "1", "1": "0"}[row["target"]]
    flipped = home / "cancer-flipped.csv"
    with open(flipped, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert call_haj(home, "config", "cancer", "--url", str(flipped)).code == 0


def retrain(home: Path, *args: str) -> dict[str, Any]:
    result = call_haj(home, "retrain", "cancer", *args, "--json")
    assert result.code == 0, result.text[-3000:]
    return json.loads(result.out)


def image_record(home: Path) -> dict[str, Any]:
    from engine.store import Store

    with Store(home / "cancer" / "haj.db") as store:
        record = store.get_record("image")
    assert record
    return record


@pytest.fixture
def running(deployable: Built) -> Iterator[tuple[Built, Any, str]]:
    """The project copy with its container started by haj (host network, a free port): (the
    project, the container, its URL). Stopped afterwards; the images a test built are removed
    and `haj/cancer:latest` goes back to the session's image."""
    client = docker_or_skip()
    home = deployable.home
    by_id = {"label": f"haj.project-id={project_id(home / 'cancer')}"}
    images_before = {image.id for image in client.images.list(filters=by_id)}
    port = free_port()
    started = call_haj(
        home, "container", "start", "cancer", "--network", "host", "--port", str(port)
    )
    try:
        assert started.code == 0, started.text
        (container,) = client.containers.list(filters=by_id)
        yield deployable, container, f"http://127.0.0.1:{port}"
    finally:
        call_haj(home, "container", "stop", "cancer")
        assert not client.containers.list(all=True, filters=by_id)
        repository, _, _ = deployable.image.rpartition(":")
        client.images.get(deployable.image).tag(repository, "latest")
        for image in client.images.list(filters=by_id):
            if image.id not in images_before:
                client.images.remove(image.id, force=True)


@pytest.mark.docker
def test_a_better_challenger_rebuilds_the_image_and_restarts_the_container(
    running: tuple[Built, Any, str],
) -> None:
    built, before, url = running
    home = built.home
    client = docker_or_skip()
    assert httpx.get(f"{url}/health", timeout=5).json()["run_id"] == built.record["run_id"]
    flip_labels(home)
    planned = call_haj(
        home, "retrain", "cancer", "--dry-run", "-m", "logistic_regression",
        "--redeploy", "container",
    )  # fmt: skip
    assert planned.code == 0, planned.text
    redeploy_line = planned.out.splitlines()[-1]
    assert redeploy_line.lstrip().startswith("6. redeploy  if a new champion is crowned: ")
    assert f"restart the container {before.name} at {url}" in redeploy_line, planned.out
    assert f"from {built.record['base_image']}, wheelhouse" in redeploy_line, planned.out

    done = retrain(home, "-m", "logistic_regression", "--redeploy", "container")
    assert done["status"] == "finished" and done["decision"] == "promoted", done
    new_run = done["challenger"]["run_id"]
    assert new_run != built.record["run_id"] and done["champion"]["score"] < 0.1
    redeploy = done["steps"][-1]
    assert redeploy["name"] == "redeploy" and redeploy["outcome"] == "done", redeploy
    assert f"built haj/cancer:{new_run}" in redeploy["detail"], redeploy
    assert url in redeploy["detail"] and new_run in redeploy["detail"], redeploy

    rebuilt = image_record(home)  # built as the last build was: the same base, the wheelhouse
    assert rebuilt["run_id"] == new_run and rebuilt["image"] == f"haj/cancer:{new_run}"
    assert rebuilt["base_image"] == built.record["base_image"] and rebuilt["wheelhouse"]
    by_id = {"label": f"haj.project-id={project_id(home / 'cancer')}"}
    (after,) = client.containers.list(filters=by_id)
    assert after.id != before.id  # restarted: a new container...
    assert after.image.id == rebuilt["id"] and after.labels["haj.url"] == url  # ...same port
    assert after.attrs["HostConfig"]["NetworkMode"] == "host"  # ...and network
    health = httpx.get(f"{url}/health", timeout=5).json()
    assert health["run_id"] == new_run  # the container serves the new champion
    status = json.loads(call_haj(home, "status", "cancer", "--json").out)
    assert status["champion"]["run_id"] == new_run
    (recorded,) = json.loads(call_haj(home, "retrain", "cancer", "--history", "--json").out)
    assert recorded["steps"][-1] == redeploy


@pytest.mark.docker
def test_a_worse_challenger_leaves_the_image_and_the_container_alone(
    running: tuple[Built, Any, str],
) -> None:
    built, before, url = running
    home = built.home
    client = docker_or_skip()
    served = httpx.get(f"{url}/health", timeout=5).json()
    image_before = image_record(home)
    context = home / "cancer" / "build" / "context" / "build-info.json"
    context_before = context.read_text()

    # the same data, gaussian_nb (0.93) against the champion logistic_regression (0.98)
    done = retrain(home, "--when", "always", "-m", "gaussian_nb", "--redeploy", "container")
    assert done["status"] == "finished" and done["decision"] == "rejected", done
    assert done["champion"]["run_id"] == built.record["run_id"]
    outcomes = {s["name"]: (s["outcome"], s["detail"]) for s in done["steps"]}
    assert outcomes["crown"][0] == "skipped"
    assert outcomes["redeploy"] == (
        "skipped", "the champion did not change: nothing to redeploy",
    )  # fmt: skip

    by_id = {"label": f"haj.project-id={project_id(home / 'cancer')}"}
    (after,) = client.containers.list(filters=by_id)
    assert after.id == before.id  # not restarted...
    assert after.attrs["State"]["StartedAt"] == before.attrs["State"]["StartedAt"]
    assert image_record(home) == image_before  # ...nor rebuilt
    assert context.read_text() == context_before
    assert httpx.get(f"{url}/health", timeout=5).json()["run_id"] == served["run_id"]


def test_the_dry_run_without_a_docker_engine_says_so_and_what_it_would_build(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAJ_BASE_IMAGE", raising=False)  # haj's own defaults, not a local base
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    planned = call_haj(
        trained_home, "retrain", "cancer", "--dry-run", "--redeploy", "container", env=env
    )
    assert planned.code == 0, planned.text
    assert (
        planned.out.splitlines()[-1]
        .lstrip()
        .startswith(
            "6. redeploy  if a new champion is crowned: build its image (from python:3.11-slim, "
            "haj build's defaults) and restart the project's container if one runs; Docker cannot "
            "say now whether one does: no Docker engine reachable at unix:///nonexistent/docker.sock"
        )
    ), planned.out
    assert "Traceback" not in planned.text
