"""`haj build`: the build context, then `docker build` with its log streamed as events.

The log arrives as JSON chunks from the engine; "Step N/M" lines become Progress events, every line
an Output event, and an error chunk a ContainerError carrying the last lines of the log (so the
reason a RUN step failed is on screen, not only "returned a non-zero code").

A project's images carry its id (the `haj.project-id` label) and are found by it; the last build
is recorded in the project's store (`image` record: tag, id, size, settings), and that record, not
a `:latest` tag another workspace may have moved, says which image is the project's.
"""

from __future__ import annotations

import re
import time
from typing import Any

from engine import events
from engine.container import DEFAULT_BASE_IMAGE, LABEL_PROJECT_ID, image_repository
from engine.container.client import LONG_TIMEOUT, api_error, docker_client
from engine.errors import ContainerError, Hint, UsageError
from engine.project import Project
from engine.results import ImageRecord

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
TAIL_LINES = 15

# Docker's reference grammar, NAME[:TAG], as the docker SDK checks it: lowercase path components
# (separated by '.', '_', '__' or dashes), an optional :PORT after the first (a registry), and a
# tag of at most 128 letters, digits, '_', '.', '-' that does not start with '.' or '-'.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^{_COMPONENT}(?::[0-9]+)?(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?$"
)

# pip failing to reach the package index from inside the build (no network, no DNS, a proxy or
# TLS interception): the one hint that applies
_PIP_NETWORK = re.compile(
    r"Temporary failure in name resolution|Name or service not known|"
    r"Failed to establish a new connection|NewConnectionError|ConnectTimeoutError|"
    r"Network is unreachable|Connection refused|CERTIFICATE_VERIFY_FAILED|SSLError|ProxyError",
    re.IGNORECASE,
)
PIP_UNREACHABLE = "pip could not reach the package index inside the build"


def default_tag(project: Project, run_id: str) -> str:
    return f"{image_repository(project.name)}:{run_id}"


def normalize_tag(tag: str) -> str:
    """NAME[:TAG] -> NAME:TAG (`latest` when no tag is given), or UsageError if Docker would
    refuse it."""
    check_tag(tag)
    last = tag.rsplit("/", 1)[-1]
    return tag if ":" in last else f"{tag}:latest"


def check_tag(tag: str) -> None:
    """UsageError, saying what is wrong, unless Docker accepts `tag` as NAME[:TAG]."""
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    if _REFERENCE.match(tag) and len(name) <= 255:
        return
    if name != name.lower():
        why = "repository names must be lowercase"
    elif len(name) > 255:
        why = "the name is longer than 255 characters"
    elif _REFERENCE.match(name):
        why = (
            "the tag after ':' must be at most 128 letters, digits, '_', '.' or '-', not "
            "starting with '.' or '-'"
        )
    else:
        why = (
            "the name must be '/'-separated parts of lowercase letters and digits joined by "
            "'.', '_', '__' or '-' (a registry HOST[:PORT]/ may come first)"
        )
    raise UsageError(f"invalid image tag {tag!r}: {why}, e.g. haj/churn:v2")


def last_build(project: Project) -> dict[str, Any] | None:
    """The record of the project's last build (None if it was never built)."""
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        return store.get_record("image")


def project_image(project: Project, reference: str, client: Any = None) -> Any | None:
    """The local image `reference` if it exists and is this project's (by its id label)."""
    import docker

    client = client or docker_client()
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None
    return image if (image.labels or {}).get(LABEL_PROJECT_ID) == project.uid else None


def build(
    project: Project,
    *,
    base_image: str | None = None,
    tag: str | None = None,
    wheelhouse: bool = False,
    network: str | None = None,
    on_event: events.Callback = events.ignore,
) -> ImageRecord:
    """Write the context, build the image, tag it NAME:RUN_ID (and NAME:latest, a convenience
    only); record it as the project's last build."""
    from engine.container.context import champion_info, write_context
    from engine.store import Store, now_iso

    network = None if network == "bridge" else network  # Docker's default network
    tags = [normalize_tag(tag)] if tag else []  # a bad tag is refused before anything is written
    champion_info(project)  # a missing or tampered champion is reported before Docker is asked
    client = docker_client(timeout=LONG_TIMEOUT)
    project.ensure_uid()  # the image is labelled with the id: record it before it names anything
    base = base_image or DEFAULT_BASE_IMAGE
    context = write_context(
        project, wheelhouse=wheelhouse, base_image=base, network=network, on_event=on_event
    )
    run_id = str(context.champion["run_id"])
    tags = tags or [default_tag(project, run_id)]
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
        "network": network,
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
    return ImageRecord.from_dict(record)


def _stream_build(client: Any, *, on_event: events.Callback, **kwargs: Any) -> str:
    import docker

    tail: list[str] = []
    image_id: str | None = None
    unreachable_index = False
    try:
        stream = client.api.build(rm=True, forcerm=True, decode=True, **kwargs)
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise ContainerError(
                    f"the image build failed: {detail.strip()}\n"
                    + "\n".join(f"  | {line}" for line in tail[-TAIL_LINES:])
                    + (f"\n{PIP_UNREACHABLE}" if unreachable_index else ""),
                    Hint("build-offline") if unreachable_index else None,
                )
            text = chunk.get("stream") or chunk.get("status") or ""
            if "aux" in chunk and isinstance(chunk["aux"], dict):
                image_id = chunk["aux"].get("ID", image_id)
            for raw in _ANSI.sub("", text).splitlines():
                line = raw.rstrip()
                if not line:
                    continue
                tail = [*tail[-(TAIL_LINES * 2) :], line]
                unreachable_index = unreachable_index or bool(_PIP_NETWORK.search(line))
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


def _project_filter(project: Project) -> dict[str, Any]:
    return {"label": f"{LABEL_PROJECT_ID}={project.uid}"}


def images(project: Project) -> list[dict[str, Any]]:
    """The project's images (by its id label), newest first."""
    client = docker_client()
    found = client.images.list(filters=_project_filter(project))
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
    for image in client.images.list(filters=_project_filter(project)):
        client.images.remove(image.id, force=True)
        count += 1
    return count
