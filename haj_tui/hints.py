"""The app's phrase for each hint an engine error carries: a key or a tab, not a command."""

from __future__ import annotations

from engine.errors import ACTIONS, HajError, Hint, one_line

PHRASES: dict[str, str] = {
    "init": "press ctrl+n on the Projects screen to create one",
    "retrieve": "press r to retrieve",
    "process": "press p to process",
    "train": "press t to train",
    "crown": "press c to crown the best run",
    "serve": "press s to serve it",
    "stop-server": "press s to stop it",
    "build": "press b to build an image",
    "start-container": "press k on the Container tab (7) to start one",
    "stop-container": "press k on the Container tab (7) to stop it",
    "deploy": "press d to deploy",
    "undeploy": "press u on the Deploy tab (8) to undeploy",
    "set-target": "choose the target on the Config tab (1)",
    "set-url": "set the data source on the Config tab (1)",
    "list-data": "see the Data tab (3)",
    "start-docker": "start a Docker engine (scripts/start-dockerd.sh) or set DOCKER_HOST",
}
assert set(PHRASES) == set(ACTIONS), "every hint action needs an app phrase"


def phrase(hint: Hint) -> str:
    return PHRASES[hint.action].format(project=hint.project or "", detail=hint.detail or "")


def render(error: HajError) -> str:
    """The error as the app shows it in a notification."""
    message = one_line(error.message)
    hint = getattr(error, "hint", None)
    return f"{message}: {phrase(hint)}" if hint else message
