"""`haj build`: the build context, then `docker build` with its log streamed as events.

The log arrives as JSON chunks from the engine; "Step N/M" lines become Progress events, every line
an Output event, and an error chunk a ContainerError carrying the last lines of the log (so the
reason a RUN step failed is on screen, not only "returned a non-zero code").
"""

from __future__ import annotations

import re
import time
from typing import Any

from engine import events
from engine.container import DEFAULT_BASE_IMAGE, LABEL_PROJECT, image_repository
from engine.container.client import api_error, docker_client
from engine.errors import ContainerError
from engine.project import Project

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
TAIL_LINES = 15


def default_tag(project: Project, run_id: str) -> str:
    return f"{image_repository(project.name)}:{run_id}"


def normalize_tag(tag: str) -> str:
    """NAME[:TAG] -> NAME:TAG (`latest` when no tag is given)."""
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last else f"{tag}:latest"


def build(
    project: Project,
    *,
    base_image: str | None = None,
    tag: str | None = None,
    wheelhouse: bool = False,
    network: str | None = None,
    on_event: events.Callback = events.ignore,
) -> dict[str, Any]:
    """Write the context, build the image, tag it NAME:RUN_ID and NAME:latest; record it."""
    from engine.container.context import champion_info, write_context
    from engine.store import Store, now_iso

    champion_info(project)  # a missing or tampered champion is reported before Docker is asked
    client = docker_client(timeout=600)
    base = base_image or DEFAULT_BASE_IMAGE
    context = write_context(project, wheelhouse=wheelhouse, on_event=on_event)
    run_id = str(context.champion["run_id"])
    tags = [normalize_tag(tag)] if tag else [default_tag(project, run_id)]
    latest = f"{image_repository(project.name)}:latest"
    if latest not in tags:
        tags.append(latest)
    on_event(events.Log(f"building {tags[0]} from {base} (champion {run_id})"))
    started = time.monotonic()
    image_id = _stream_build(
        client,
        path=str(context.path),
        tag=tags[0],
        buildargs={"BASE_IMAGE": base},
        network_mode=network,
        on_event=on_event,
    )
    image = client.images.get(image_id)
    for extra in tags[1:]:
        repository, _, name = extra.rpartition(":")
        image.tag(repository, name)
    seconds = time.monotonic() - started
    record = {
        "image": tags[0],
        "tags": tags,
        "id": image.id,
        "size": int(image.attrs.get("Size") or 0),
        "base_image": base,
        "run_id": run_id,
        "model": context.champion.get("model"),
        "model_sha256": context.champion.get("sha256"),
        "wheelhouse": wheelhouse,
        "context": str(context.path),
        "built_at": now_iso(),
        "seconds": round(seconds, 1),
    }
    with Store(project.db_path) as store:
        store.set_record("image", record)
    on_event(events.Log(f"built {tags[0]} in {seconds:.0f}s"))
    return record


def _stream_build(client: Any, *, on_event: events.Callback, **kwargs: Any) -> str:
    import docker

    tail: list[str] = []
    image_id: str | None = None
    try:
        stream = client.api.build(rm=True, forcerm=True, decode=True, **kwargs)
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ContainerError(
                    f"the image build failed: {detail.strip()}\n"
                    + "\n".join(f"  | {line}" for line in tail[-TAIL_LINES:])
                )
            text = chunk.get("stream") or chunk.get("status") or ""
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = chunk["aux"].get("ID", image_id)
            for raw in _ANSI.sub("", text).splitlines():
                line = raw.rstrip()
                if not line:
                    continue
                tail = [*tail[-(TAIL_LINES * 2) :], line]
                step = _STEP.match(line)
                if step:
                    on_event(events.Progress(int(step.group(1)), int(step.group(2)), step.group(3)))
                on_event(events.Output(line, stream="stdout"))
                built = re.match(r"^Successfully built ([0-9a-f]+)$", line)
                if built:
                    image_id = built.group(1)
    except docker.errors.APIError as exc:
        raise ContainerError(f"the image build failed: {api_error(exc)}") from None
    if not image_id:
        raise ContainerError(
            "the image build ended without an image:\n"
            + "\n".join(f"  | {line}" for line in tail[-TAIL_LINES:])
        )
    return image_id


def images(project: Project) -> list[dict[str, Any]]:
    """The project's images (by label), newest first."""
    client = docker_client()
    found = client.images.list(filters={"label": f"{LABEL_PROJECT}={project.name}"})
    rows = []
    for image in found:
        labels = image.labels or {}
        rows.append(
            {
                "id": image.short_id.removeprefix("sha256:"),
                "tags": image.tags,
                "size": int(image.attrs.get("Size") or 0),
                "created": image.attrs.get("Created", ""),
                "run_id": labels.get("haj.run-id"),
                "model": labels.get("haj.model"),
            }
        )
    return sorted(rows, key=lambda r: r["created"], reverse=True)


def remove_images(project: Project) -> int:
    """Remove every image of the project; returns how many."""
    client = docker_client()
    count = 0
    for image in client.images.list(filters={"label": f"{LABEL_PROJECT}={project.name}"}):
        client.images.remove(image.id, force=True)
        count += 1
    return count
