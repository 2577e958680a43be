"""The app's phrase for each hint an engine error carries: a key or a tab, not a command."""

from __future__ import annotations

from engine import errors
from engine.errors import ACTIONS, HajError

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
    "choose-port": "choose another port on the Config tab (1)",
    "use-host-network": "choose the host network on the Container tab (7)",
    "build-offline": "tick wheelhouse or choose the host network on the Container tab (7)",
    "set-region": "type a region (e.g. eu-west-1) on the Deploy tab (8), or set AWS_REGION",
    "choose-workspace": "choose another folder as the workspace",
}
assert set(PHRASES) == set(ACTIONS), "every hint action needs an app phrase"


def render(error: HajError) -> str:
    """The error as the app shows it in a notification."""
    return errors.render(error, PHRASES, project="this project")
