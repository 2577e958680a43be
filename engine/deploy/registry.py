"""Pushing an image with the docker SDK.

ECR's login is a 12-hour token from `ecr get-authorization-token`; it is passed to the engine with
the push request (X-Registry-Auth) and never written to ~/.docker/config.json or anywhere else.
"""

from __future__ import annotations

import base64
from typing import Any

from engine import events
from engine.container.client import api_error, docker_client
from engine.errors import DeployError

_DONE = ("Pushed", "Layer already exists")


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
    """Tag `local_image` as `image_uri` and push it; returns the pushed digest (or '')."""
    import docker

    client = docker_client(timeout=600)
    try:
        image = client.images.get(local_image)
    except docker.errors.ImageNotFound:
        raise DeployError(f"no local image {local_image}: build it with `haj build`") from None
    repository, _, tag = image_uri.rpartition(":")
    image.tag(repository, tag)
    on_event(events.Log(f"pushing {image_uri}"))
    digest = ""
    layers: dict[str, str] = {}
    try:
        for chunk in client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth_config
        ):
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise DeployError(f"pushing {image_uri} failed: {detail}")
            if chunk.get("id") and chunk.get("status"):
                before = layers.get(chunk["id"])
                layers[chunk["id"]] = chunk["status"]
                if chunk["status"] != before and chunk["status"] in (
                    "Pushed",
                    "Layer already exists",
                ):
                    done = sum(s in ("Pushed", "Layer already exists") for s in layers.values())
                    on_event(events.Progress(done, len(layers), "layers pushed"))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
    except docker.errors.APIError as exc:
        raise DeployError(f"pushing {image_uri} failed: {api_error(exc)}") from None
    on_event(events.Log(f"pushed {image_uri} {digest}".rstrip()))
    return digest
