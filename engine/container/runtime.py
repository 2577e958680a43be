"""Running a project's image: start (and wait for /health), stop, status, logs.

Containers carry labels with the project's id, name and path, and are found again by the id from
any shell (never by the name: two workspaces may hold projects of the same name; and never a
container haj did not start). The container is named haj-NAME-ID8 (the id's first 8 digits).
`start` runs the image of the project's last build unless told another. Two network modes:
- bridge (Docker's default): the container's 8080 is published on 127.0.0.1:PORT of the host.
- host (`--network host`, for engines without a bridge): the container shares the host's network,
  so the server itself binds 127.0.0.1:PORT.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from engine import events
from engine.container import (
    CONTAINER_PORT,
    LABEL_PATH,
    LABEL_PROJECT,
    LABEL_PROJECT_ID,
    WAITING,
    human_size,
)
from engine.container.client import api_error, docker_client
from engine.errors import ContainerError, Hint, UsageError
from engine.project import Project
from engine.results import ContainerRecord, ContainerRow, ContainerStatus, ImageRecord

DEFAULT_PORT = 8080
NETWORKS = ("bridge", "host")


def container_name(project: Project) -> str:
    return f"haj-{project.name.lower()}-{project.uid[:8]}"


def _containers(client: Any, project: Project) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT_ID}={project.uid}"})


def _check_port(port: int) -> None:
    """The port must be free on 127.0.0.1, checked as the server (or docker-proxy) binds it: a
    connection in TIME-WAIT, left by the last requests to a stopped container, does not count."""
    from engine.errors import ServingError
    from engine.serving.control import check_port

    try:
        check_port("127.0.0.1", port)
    except ServingError as exc:
        raise ContainerError(exc.message) from None


def _image_to_run(client: Any, project: Project, image: str | None) -> tuple[str, str]:
    """(what to show, what to run): `image` if given, else the image of the last build."""
    import docker

    from engine.container.image import last_build, project_image

    if image:
        try:
            found = client.images.get(image)
        except docker.errors.ImageNotFound:
            raise ContainerError(f"no image {image}", Hint("build", project.name)) from None
        return image, found.id
    built = last_build(project)
    if not built:
        raise ContainerError(f"{project.name!r} has no image yet", Hint("build", project.name))
    found = project_image(project, built["image"], client)
    if found is None:
        raise ContainerError(
            f"the image of {project.name}'s last build ({built['image']}) is gone, or is not "
            "this project's any more",
            Hint("build", project.name),
        )
    return built["image"], found.id


def start(
    project: Project,
    *,
    image: str | None = None,
    port: int = DEFAULT_PORT,
    network: str = "bridge",
    timeout: float = 120,
    on_event: events.Callback = events.ignore,
) -> ContainerRecord:
    """Run the image detached, wait until /health answers, record and return the container."""
    import docker

    if network not in NETWORKS:
        raise UsageError(f"the network must be one of {', '.join(NETWORKS)}")
    client = docker_client()
    image, image_id = _image_to_run(client, project, image)
    _clear_old_containers(client, project)
    _check_port(port)
    project.ensure_uid()  # the container is named and labelled with it
    url = f"http://127.0.0.1:{port}"
    options = _run_options(client, project, port, network, url)
    on_event(events.Log(f"starting {image} ({network} network) on {url}"))
    try:
        container = client.containers.run(image_id, **options)
    except docker.errors.APIError as exc:
        message = api_error(exc)
        if network == "bridge" and "network" in message.lower():
            message += " (this engine may have no bridge network: try --network host)"
        raise ContainerError(f"could not start {image}: {message}") from None
    try:
        _wait_healthy(container, url, timeout, on_event)
    except BaseException:
        _remove_quietly(container)
        raise
    record = _record_container(project, container, image, url, port, network)
    on_event(events.Log(f"{project.name} serves at {url} (container {container.name})"))
    return ContainerRecord.from_dict(record)


def _clear_old_containers(client: Any, project: Project) -> None:
    """Refuse while one of the project's containers runs (one server per project, and the port
    would clash); remove stopped ones, since the new container takes their name."""
    for old in _containers(client, project):
        if old.status == "running":
            url = old.labels.get("haj.url", "")
            raise ContainerError(
                f"a container of {project.name!r} already runs ({old.name}, {url})",
                Hint("stop-container", project.name),
            )
        old.remove(force=True)


def _run_options(
    client: Any, project: Project, port: int, network: str, url: str
) -> dict[str, Any]:
    """containers.run's options: the labels that find the container again from any shell, and
    the network wiring: on the host network the server binds 127.0.0.1:PORT itself; on the
    bridge the container's 8080 is published on 127.0.0.1:PORT only (never on all interfaces)."""
    labels = {
        LABEL_PROJECT: project.name,
        LABEL_PROJECT_ID: project.uid,
        LABEL_PATH: str(project.path),
        "haj.url": url,
    }
    options: dict[str, Any] = {
        "detach": True,
        "name": container_name(project),
        "labels": labels,
    }
    if network == "host":
        options.update(
            network_mode="host",
            environment={"PORT": str(port)},
            command=["serve", "--host", "127.0.0.1"],
        )
        return options
    if not client.networks.list(names=["bridge"]):
        raise ContainerError(
            "this Docker engine has no bridge network (started with --bridge=none?)",
            Hint("use-host-network"),
        )
    options.update(
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
        command=["serve"],
    )
    return options


def _record_container(
    project: Project, container: Any, image: str, url: str, port: int, network: str
) -> dict[str, Any]:
    """Record the started container in the store: what `haj status` shows without asking
    Docker."""
    from engine.store import Store, now_iso

    record = {
        "id": container.id,
        "name": container.name,
        "image": image,
        "url": url,
        "port": port,
        "network": network,
        "started_at": now_iso(),
    }
    with Store(project.db_path) as store:
        store.set_record("container", record)
    return record


def _wait_healthy(container: Any, url: str, timeout: float, on_event: events.Callback) -> None:
    import docker
    import httpx

    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        waited = time.monotonic() - started
        on_event(events.Progress(int(waited), int(timeout), f"{WAITING} {url}/health"))
        try:
            container.reload()
        except docker.errors.NotFound:
            raise ContainerError(
                f"the container {container.name} was removed before it served (by `docker rm` "
                "or another haj stopping this project's container)"
            ) from None
        if container.status in ("exited", "dead"):
            raise ContainerError(
                f"the container stopped before serving (exit code "
                f"{container.attrs.get('State', {}).get('ExitCode')}):\n"
                + _indented_tail(container)
            )
        try:
            response = httpx.get(f"{url}/health", timeout=2)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ContainerError(
        f"the container did not answer {url}/health within {timeout:.0f}s:\n"
        + _indented_tail(container)
    )


def _indented_tail(container: Any, lines: int = 12) -> str:
    """The container's last log lines, for an error message; "(no logs)" when the engine cannot
    give them (the container is gone, or the engine stopped answering)."""
    import docker
    import requests

    try:
        text = container.logs(tail=lines).decode("utf-8", "replace")
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return "  | (no logs)"
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:]) or "  | (no logs)"


def _remove_quietly(container: Any) -> None:
    """Remove a container that failed to start, while another error is being raised: a
    failure to remove it (already gone, engine unreachable) must not hide that error."""
    import docker
    import requests

    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        container.remove(force=True)


def stop(project: Project, *, on_event: events.Callback = events.ignore) -> int:
    """Stop and remove the project's containers; returns how many were running."""
    from engine.store import Store

    client = docker_client()
    running = 0
    for container in _containers(client, project):
        if container.status == "running":
            running += 1
            on_event(events.Log(f"stopping {container.name}"))
            container.stop(timeout=10)
        container.remove(force=True)
    if project.db_path.exists():
        with Store(project.db_path) as store:
            store.delete_record("container")
    return running


def status(project: Project) -> ContainerStatus:
    """The project's containers (state, health, url) and its last built image."""
    from engine.store import Store

    client = docker_client()
    rows = []
    for container in _containers(client, project):
        state = container.attrs.get("State", {})
        rows.append(
            ContainerRow(
                id=container.short_id,
                name=container.name,
                image=(container.image.tags or [container.image.short_id])[0]
                if container.image
                else "",
                status=container.status,
                health=state.get("Health", {}).get("Status", ""),
                url=container.labels.get("haj.url", ""),
                started_at=state.get("StartedAt", ""),
            )
        )
    image = None
    if project.db_path.exists():
        with Store(project.db_path) as store:
            image = store.get_record("image")
    return ContainerStatus(rows, ImageRecord.from_dict(image) if image else None)


def logs(project: Project, *, tail: int = 100, follow: bool = False) -> Iterator[str]:
    """The container's log lines (stdout and stderr); `follow` streams until it stops."""
    client = docker_client()
    found = _containers(client, project)
    if not found:
        raise ContainerError(
            f"no container of {project.name!r}", Hint("start-container", project.name)
        )
    container = found[0]
    if not follow:
        yield from container.logs(tail=tail).decode("utf-8", "replace").splitlines()
        return
    buffer = b""
    for chunk in container.logs(tail=tail, stream=True, follow=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode("utf-8", "replace")
    if buffer:
        yield buffer.decode("utf-8", "replace")


def describe(image: dict[str, Any] | None, container: dict[str, Any] | None) -> str | None:
    """One line for `haj status` from the recorded image and container (no Docker call)."""
    parts = []
    if container:
        parts.append(
            f"{container['name']} started {container['started_at'][:19]} at "
            f"{container['url']} ({container['image']})"
        )
    if image:
        parts.append(
            f"image {image['image']} ({human_size(image['size'])}, run "
            f"{image['run_id']}, built {image['built_at'][:19]})"
        )
    return "; ".join(parts) or None
