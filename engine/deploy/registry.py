"""Pushing an image with the docker SDK.

ECR's login is a 12-hour token from `ecr get-authorization-token`; it is passed to the engine with
the push request (X-Registry-Auth) and never written to ~/.docker/config.json or anywhere else.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from engine import events
from engine.container import PUSHING
from engine.container.client import LONG_TIMEOUT, api_error, docker_client
from engine.deploy.aws import LINE
from engine.errors import DeployError, Hint, one_line

PROGRESS_EVERY = 0.5


def is_done(status: str) -> bool:
    """A layer's push is over: sent, already there, or mounted from another repository."""
    return status in ("Pushed", "Layer already exists") or status.startswith("Mounted from")


def ecr_auth(ecr_client: Any) -> dict[str, str]:
    """The docker auth_config for ECR from a short-lived token (kept in memory only)."""
    from engine.deploy.aws import call

    answer = call("getting an ECR login token", ecr_client.get_authorization_token)
    data = answer["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    return {"username": user, "password": password, "serveraddress": data["proxyEndpoint"]}


def push(
    local_image: str,
    image_uri: str,
    *,
    auth_config: dict[str, str] | None = None,
    on_event: events.Callback = events.ignore,
) -> str:
    """Tag `local_image` as `image_uri` and push it; returns the pushed digest (or '').

    Progress: bytes sent of the layers' sizes known so far (a layer's size is known once its
    upload starts), with the count of layers done in the label; at most every PROGRESS_EVERY
    seconds, and whenever a layer is done."""
    import docker

    client = docker_client(timeout=LONG_TIMEOUT)
    try:
        image = client.images.get(local_image)
    except docker.errors.ImageNotFound:
        raise DeployError(f"no local image {local_image}", Hint("build")) from None
    repository, _, tag = image_uri.rpartition(":")
    image.tag(repository, tag)
    on_event(events.Log(f"pushing {image_uri}"))
    digest = ""
    layers: dict[str, _Layer] = {}
    reported = 0.0
    try:
        for chunk in client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth_config
        ):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise DeployError(f"pushing {image_uri} failed: {one_line(detail, LINE)}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if not (chunk.get("id") and chunk.get("status")):
                continue
            layer = layers.setdefault(chunk["id"], _Layer())
            finished = not layer.done and is_done(chunk["status"])
            layer.update(chunk)
            now = time.monotonic()
            if finished or now - reported >= PROGRESS_EVERY:
                reported = now
                done = sum(item.done for item in layers.values())
                on_event(
                    events.Progress(
                        sum(item.sent for item in layers.values()),
                        sum(item.size for item in layers.values()),
                        f"{PUSHING} {image_uri} ({done}/{len(layers)} layers)",
                    )
                )
    except docker.errors.APIError as exc:
        raise DeployError(f"pushing {image_uri} failed: {api_error(exc)}") from None
    on_event(events.Log(f"pushed {image_uri} {digest}".rstrip()))
    return digest


class _Layer:
    """One layer of a push, from the engine's status chunks."""

    def __init__(self) -> None:
        self.done = False
        self.sent = 0
        self.size = 0

    def update(self, chunk: dict[str, Any]) -> None:
        detail = chunk.get("progressDetail") or {}
        if chunk["status"] == "Pushing":
            self.sent = int(detail.get("current") or self.sent)
            self.size = max(self.size, int(detail.get("total") or 0), self.sent)
        elif is_done(chunk["status"]):
            self.done = True
            self.sent = self.size
