"""How an image is built when the user does not say: one answer for `haj build`, `haj deploy`
and the app's Container and Deploy tabs.

Precedence: what the user says, else the settings of the project's last build (so a rebuild
for a new champion is made like the one before), else haj's defaults for the engine at hand.
`HAJ_BASE_IMAGE` names a local base image (scripts/start-dockerd.sh makes one and prints it):
it is set for an engine that cannot pull images and has no bridge network, so builds then
default to downloading wheels on the host (`--wheelhouse`) and to the host's network.
"""

from __future__ import annotations

import os
from typing import Any

from engine.container import DEFAULT_BASE_IMAGE

NETWORKS = ("bridge", "host")


def build_defaults(
    last_build: dict[str, Any] | None,
    *,
    base_image: str | None = None,
    wheelhouse: bool | None = None,
    network: str | None = None,
) -> dict[str, Any]:
    """{"base_image", "wheelhouse", "network"}: the given values, else the last build's, else
    the defaults (see the module's docstring)."""
    last = last_build or {}
    local = os.environ.get("HAJ_BASE_IMAGE") or None
    if last:
        fallback = {
            "base_image": last.get("base_image") or DEFAULT_BASE_IMAGE,
            "wheelhouse": bool(last.get("wheelhouse")),
            "network": last.get("network") or "bridge",
        }
    else:
        fallback = {
            "base_image": local or DEFAULT_BASE_IMAGE,
            "wheelhouse": bool(local),
            "network": "host" if local else "bridge",
        }
    return {
        "base_image": base_image or fallback["base_image"],
        "wheelhouse": fallback["wheelhouse"] if wheelhouse is None else bool(wheelhouse),
        "network": network or fallback["network"],
    }


def default_region() -> str | None:
    """The AWS region a deploy uses when none is given (AWS_REGION, AWS_DEFAULT_REGION, the
    profile's region), or None when none is configured. Reads configuration only: no call."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return os.environ[variable]
    import boto3

    return boto3.session.Session().region_name or None
