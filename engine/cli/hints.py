"""The CLI's phrase for each hint an engine error carries: a command the user can run."""

from __future__ import annotations

from engine import errors
from engine.errors import ACTIONS, HajError

PHRASES: dict[str, str] = {
    "init": "create one with `haj init NAME`",
    "retrieve": "run `haj retrieve {project}` first",
    "process": "run `haj process {project}` first",
    "train": "train first with `haj train {project}`",
    "crown": "crown one with `haj evaluate {project}`",
    "serve": "serve it with `haj run {project}`",
    "stop-server": "stop it with `haj stop {project}`",
    "build": "build one with `haj build {project}`",
    "start-container": "start one with `haj container start {project}`",
    "stop-container": "stop it with `haj container stop {project}`",
    "deploy": "deploy it with `haj deploy {project}`",
    "undeploy": "remove it with `haj undeploy {project}`",
    "set-target": "set it with `haj config {project} --target COLUMN`",
    "set-url": "set it with `haj config {project} --url URL`",
    "list-data": "see `haj data {project}`",
    "start-docker": "start one with scripts/start-dockerd.sh, or point DOCKER_HOST at one",
    "choose-port": "choose another with --port",
    "use-host-network": "use --network host",
    "build-offline": "use --wheelhouse (wheels downloaded on the host) or --network host",
    "set-region": "pass --region, e.g. eu-west-1, or set AWS_REGION",
    "choose-workspace": "choose another --home",
}
assert set(PHRASES) == set(ACTIONS), "every hint action needs a CLI phrase"


def render(error: HajError) -> str:
    """The error as the one line the CLI prints after `haj: error: `."""
    return errors.render(error, PHRASES, project="NAME")
