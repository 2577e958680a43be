"""The application API: the one door the CLI and the app go through.

A `Workspace` hands out `ProjectAPI` objects whose methods are the product's verbs (retrieve,
process, train, leaderboard, crown, serve, build, deploy...). Long verbs take an event callback
(`engine.events`) and, where they can stop half-way, a cancel token (`threading.Event`). What
crosses this door is typed: the dataclasses below, or the engine's own record types re-exported
here. Each has `to_dict()` for `--json`, so scripts see the same keys whichever face printed them.

Both faces compute nothing the other shows: the Server column, the example request, the build
settings and the deploy defaults are computed here once. The app receives a `Workspace` in its
constructor, so its tests can hand it a fake with the same methods.

Heavy modules (pandas, scikit-learn, docker, boto3, httpx) are imported inside the methods that
need them: importing this module is as cheap as `haj list` needs.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import events
from engine.configure import Changes
from engine.container import progress_text
from engine.deploy.plan import Options, Plan
from engine.errors import HajError, ServingError
from engine.metrics import metrics_for
from engine.project import (
    CODE_FILES,
    PREDICTION_TYPES,
    Project,
    default_metric,
    mask,
    validate_config,
)
from engine.results import (
    ContainerRecord,
    ContainerRow,
    ContainerStatus,
    CrownResult,
    DataSummary,
    DeploymentRecord,
    ImageRecord,
    ProjectStatus,
    RunnerUp,
    ServerRecord,
    known_fields,
)
from engine.runs import Leaderboard
from engine.store import Champion, CrownEvent, DataVersion, Run
from engine.workspace import EXAMPLES

__all__ = [
    "CODE_FILES",
    "EXAMPLES",
    "PREDICTION_TYPES",
    "BuildSettings",
    "Champion",
    "Changes",
    "ContainerRecord",
    "ContainerRow",
    "ContainerStatus",
    "CrownEvent",
    "CrownResult",
    "DataSummary",
    "DataVersion",
    "DeployDefaults",
    "DeploymentRecord",
    "ImageRecord",
    "Leaderboard",
    "Options",
    "Plan",
    "ProjectAPI",
    "ProjectRow",
    "ProjectStatus",
    "Run",
    "RunnerUp",
    "ServerRecord",
    "ServerStats",
    "TestReply",
    "Workspace",
    "default_metric",
    "mask",
    "metrics_for",
    "progress_text",
    "validate_config",
]


# ---- records and results -------------------------------------------------------------------------
# (the records the store keeps, crowning's result and a project's status: engine.results)
@dataclass(frozen=True)
class ProjectRow:
    """One project in the workspace listing (`haj list`, the app's Projects table)."""

    name: str
    title: str
    prediction: str
    data_versions: int = 0
    runs: int = 0
    champion: str | None = None
    champion_run: str | None = None
    metric: str | None = None
    score: float | None = None
    server: str | None = None  # host:port of a live server
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServerStats:
    """Live figures of a running server: /health, /predictions_count and /latency."""

    url: str
    ready: bool
    health: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> dict[str, Any]:
        """Latency over the recent requests (p50_ms, p95_ms, p99_ms, mean_ms)."""
        return dict(self.latency.get("window") or {})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TestReply:
    """A real row of the data posted to the server's /predict, and what it answered."""

    index: int
    request: dict[str, Any]
    status: int
    ms: float
    answer: Any

    @property
    def ok(self) -> bool:
        return self.status < 400

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BuildSettings:
    """How an image is built: base image, wheels downloaded on the host, the build's network."""

    base_image: str
    wheelhouse: bool
    network: str  # "bridge" (Docker's default) or "host"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeployDefaults:
    """What a deploy uses when nothing is said: the region (None: none configured), the
    instance type and count."""

    region: str | None
    instance_type: str
    instance_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- the workspace -------------------------------------------------------------------------------
class Workspace:
    """A folder of projects (HAJ_HOME, default ~/ml_projects).

    Commands that write a project take its lock (engine.lock): with `wait` (the default) a
    second one waits and `on_wait` hears once what for; without, it raises ProjectBusy."""

    def __init__(
        self,
        root: Path,
        *,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.wait = wait
        self.on_wait = on_wait

    @classmethod
    def open(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ) -> Workspace:
        """The workspace at `home`, else $HAJ_HOME, else ~/ml_projects."""
        from engine import workspace

        return cls(workspace.home(home), wait=wait, on_wait=on_wait)

    def locked(
        self, path: Path, command: str, cancel: threading.Event | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the lock of the project at `path` while `command` writes it."""
        from engine.lock import project_lock

        return project_lock(path, command, wait=self.wait, on_wait=self.on_wait, cancel=cancel)

    def names(self) -> list[str]:
        from engine import workspace

        return workspace.project_names(self.root)

    def projects(self) -> list[ProjectRow]:
        """Every project, cheaply (no Docker or AWS call; a broken project is a row with an
        error, never an exception)."""
        from engine import workspace

        return [known_fields(ProjectRow, row) for row in workspace.list_projects(self.root)]

    def project(self, name: str) -> ProjectAPI:
        from engine import workspace

        return ProjectAPI(self, workspace.get_project(self.root, name))

    def create(
        self,
        name: str,
        prediction: str,
        *,
        example: str | None = None,
        url: str | None = None,
        target: str | None = None,
        title: str | None = None,
    ) -> ProjectAPI:
        from engine import workspace

        project = workspace.create_project(
            self.root, name, prediction, example=example, url=url, target=target, title=title
        )
        return ProjectAPI(self, project)

    def validate_name(self, name: str) -> str:
        """The name as a project directory would be named, or a UsageError saying why not."""
        from engine.names import validate_name

        return validate_name(name)

    def delete(self, name: str) -> None:
        from engine import workspace

        project = workspace.get_project(self.root, name)
        with self.locked(project.path, "delete"):
            workspace.delete_project(self.root, name)


# ---- one project ---------------------------------------------------------------------------------
class ProjectAPI:
    """One project's verbs. Cheap to make; every method reads the project afresh."""

    def __init__(self, workspace: Workspace, project: Project) -> None:
        self.workspace = workspace
        self.project = project

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def path(self) -> Path:
        return self.project.path

    def __repr__(self) -> str:
        return f"ProjectAPI({self.project.name!r})"

    def _locked(
        self, command: str, cancel: threading.Event | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return self.workspace.locked(self.project.path, command, cancel)

    # ---- config and code ---------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """config.toml as plain values (validated)."""
        return self.project.read_config()

    def secrets(self) -> dict[str, str]:
        """The .env values, masked (the values themselves never leave the engine)."""
        return {key: mask(value) for key, value in self.project.read_secrets().items()}

    def validate_changes(self, changes: Changes) -> None:
        from engine import configure

        configure.validate(self.workspace.root, self.project, changes)

    def apply_changes(
        self, changes: Changes, on_event: events.Callback = events.ignore
    ) -> tuple[ProjectAPI, list[str]]:
        """Apply a config change (rename, type switch, data source, secret, dependencies);
        returns the project as it is now (renamed or not) and what was done, in words."""
        from engine import configure

        with self._locked("config"):
            project, done = configure.apply(self.workspace.root, self.project, changes, on_event)
        return ProjectAPI(self.workspace, project), done

    def metrics(self) -> list[str]:
        """The metrics of the project's prediction type."""
        from engine.metrics import metrics_for

        return list(metrics_for(self.config()["project"]["prediction"]))

    def code_path(self, which: str) -> Path:
        return self.project.code_path(which)

    def read_code(self, which: str) -> str:
        return self.project.code_path(which).read_text(encoding="utf-8")

    def write_code(self, which: str, text: str) -> None:
        from engine.fsutil import atomic_write_text

        atomic_write_text(self.project.code_path(which), text)

    @staticmethod
    def editor_command() -> list[str]:
        """The external editor ($VISUAL, $EDITOR, vim), checked to exist."""
        from engine.editor import checked_editor_command

        return checked_editor_command()

    def requirements(self) -> list[str]:
        from engine import deps

        return deps.requirements(self.project)

    def install(
        self, packages: Sequence[str] = (), on_event: events.Callback = events.ignore
    ) -> list[str]:
        from engine import deps

        with self._locked("install"):
            return deps.install(self.project, packages, on_event)

    # ---- data --------------------------------------------------------------------------------
    def retrieve(
        self, on_event: events.Callback = events.ignore, cancel: threading.Event | None = None
    ) -> dict[str, Any]:
        from engine import data

        with self._locked("retrieve", cancel):
            return data.retrieve(self.project, on_event, cancel)

    def process(
        self,
        version: str | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        from engine import data

        with self._locked("process", cancel):
            return data.process(self.project, version, on_event, cancel)

    def versions(self, kind: str | None = None) -> list[dict[str, Any]]:
        from engine import data

        return data.versions(self.project, kind)

    def preview(self, version_id: str, rows: int = 20) -> dict[str, Any]:
        from engine import data

        return data.preview(self.project, version_id, rows)

    def example_record(self, index: int = 0) -> dict[str, Any]:
        """A real row of the data without the target: the request body every face shows (the
        app's test request, `haj deploy`'s invoke example, the server's /docs)."""
        from engine import data

        return data.sample_record(self.project, index)

    # ---- training and runs -------------------------------------------------------------------
    def models(self, project_models: bool = True) -> list[str]:
        """The models `train` can fit: the catalog of the project's type, then model.py's
        (read by a runner process: project_models=False gives the catalog's alone, at once)."""
        from engine import catalog

        prediction = self.config()["project"]["prediction"]
        builtin = catalog.builtin_names(prediction)
        if not project_models:
            return builtin
        return builtin + catalog.project_model_names(self.project)

    def train(
        self,
        models: list[str] | None = None,
        *,
        data: str | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        from engine import training

        with self._locked("training", cancel):
            return training.train(self.project, models, on_event, cancel, data=data)

    def leaderboard(
        self, metric: str | None = None, limit: int | None = None, include_all: bool = True
    ) -> Leaderboard:
        from engine import runs

        return runs.leaderboard(self.project, metric, limit, include_all)

    def crown(self, metric: str | None = None) -> CrownResult:
        from engine import champion

        with self._locked("crowning"):
            return champion.crown(self.project, metric)

    def champion_history(self) -> list[dict[str, Any]]:
        from engine import champion

        return champion.history(self.project)

    # ---- status ------------------------------------------------------------------------------
    def status(self) -> ProjectStatus:
        """Data, runs, champion, server, container and deployment, from the project alone."""
        from engine import status

        return status.project_status(self.project)

    # ---- serving -----------------------------------------------------------------------------
    def server(self) -> ServerRecord | None:
        """The project's running server, or None (a record whose process died is None)."""
        from engine import status

        record = status.live_server(self.project)
        return known_fields(ServerRecord, record) if record else None

    def serving_address(self) -> str:
        """Where `start_server` serves without overrides: http://host:port from [serving]."""
        from engine.serving.control import url_of

        serving = self.config()["serving"]
        return url_of(str(serving["host"]), int(serving["port"]))

    def start_server(
        self, host: str | None = None, port: int | None = None, workers: int | None = None
    ) -> ServerRecord:
        """Serve the champion in the background ([serving] gives what is not said)."""
        from engine.serving import control

        serving = self.config()["serving"]
        record = control.start_detached(
            self.project,
            host=host or str(serving["host"]),
            port=int(port or serving["port"]),
            workers=int(workers or serving.get("workers", 1)),
        )
        return known_fields(ServerRecord, record)

    def stop_server(self) -> bool:
        """Stop the running server; False when none ran."""
        from engine.serving import control

        return control.stop(self.project)

    def server_stats(self, server: ServerRecord, timeout: float = 1.0) -> ServerStats:
        from engine.serving import control

        return known_fields(ServerStats, control.fetch_stats(server.to_dict(), timeout))

    def test_request(self, server: ServerRecord, index: int = 0) -> TestReply:
        """Post row `index` of the data to the server's /predict and time the answer."""
        import time

        import httpx

        record = self.example_record(index)
        started = time.perf_counter()
        try:
            response = httpx.post(f"{server.url}/predict", json=record, timeout=10)
        except httpx.HTTPError as exc:
            raise ServingError(f"the server at {server.url} did not answer: {exc}") from None
        elapsed = (time.perf_counter() - started) * 1000
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return TestReply(index, record, response.status_code, elapsed, answer)

    # ---- images and containers ---------------------------------------------------------------
    def build_settings(
        self,
        base_image: str | None = None,
        wheelhouse: bool | None = None,
        network: str | None = None,
    ) -> BuildSettings:
        """The settings a build uses: what is said, else as the project's last build was
        made, else haj's defaults for the engine at hand (HAJ_BASE_IMAGE names a local base
        image for an engine without a bridge network, whose builds use the host's network)."""
        from engine.container.image import last_build
        from engine.container.settings import build_defaults

        chosen = build_defaults(
            last_build(self.project), base_image=base_image, wheelhouse=wheelhouse, network=network
        )
        return known_fields(BuildSettings, chosen)

    def build(
        self,
        settings: BuildSettings | None = None,
        *,
        tag: str | None = None,
        on_event: events.Callback = events.ignore,
    ) -> ImageRecord:
        from engine.container import image

        settings = settings or self.build_settings()
        with self._locked("build"):
            return image.build(
                self.project,
                base_image=settings.base_image,
                tag=tag,
                wheelhouse=settings.wheelhouse,
                network=settings.network if settings.network == "host" else None,
                on_event=on_event,
            )

    def last_build(self) -> ImageRecord | None:
        """The record of the project's last build (None if it was never built)."""
        from engine.container import image

        record = image.last_build(self.project)
        return ImageRecord.from_dict(record) if record else None

    def images(self) -> list[dict[str, Any]]:
        from engine.container import image

        return image.images(self.project)

    def start_container(
        self,
        *,
        image: str | None = None,
        port: int = 8080,
        network: str = "bridge",
        timeout: float = 120,
        on_event: events.Callback = events.ignore,
    ) -> ContainerRecord:
        from engine.container import runtime

        return runtime.start(
            self.project,
            image=image,
            port=port,
            network=network,
            timeout=timeout,
            on_event=on_event,
        )

    def stop_container(self, on_event: events.Callback = events.ignore) -> int:
        from engine.container import runtime

        return runtime.stop(self.project, on_event=on_event)

    def container_status(self) -> ContainerStatus:
        from engine.container import runtime

        return runtime.status(self.project)

    def container_logs(self, tail: int = 100, follow: bool = False) -> Iterator[str]:
        from engine.container import runtime

        return runtime.logs(self.project, tail=tail, follow=follow)

    # ---- AWS ---------------------------------------------------------------------------------
    def deploy_defaults(self) -> DeployDefaults:
        from engine.container.settings import default_region
        from engine.deploy.plan import DEFAULT_INSTANCE

        return DeployDefaults(default_region(), DEFAULT_INSTANCE, 1)

    def deploy_options(self, **values: Any) -> Options:
        """Deploy options with haj's defaults for what is not given."""
        from engine.deploy.plan import Options

        return Options(**{k: v for k, v in values.items() if v is not None})

    def deployment(self) -> DeploymentRecord | None:
        """The deployment record (what haj created on AWS), or None."""
        from engine.deploy import records

        record = records.load(self.project)
        return DeploymentRecord.from_dict(record) if record else None

    def deploy_plan(self, options: Options) -> Plan:
        from engine.deploy import sagemaker

        return sagemaker.plan(self.project, options)

    def deploy(
        self, options: Options, on_event: events.Callback = events.ignore
    ) -> DeploymentRecord:
        """Deploy (or move the endpoint to) the current champion; returns its record."""
        from engine.deploy import sagemaker

        with self._locked("deploy"):
            return DeploymentRecord.from_dict(
                sagemaker.deploy(self.project, options, on_event=on_event)
            )

    def undeploy(self, on_event: events.Callback = events.ignore) -> list[str]:
        from engine.deploy import sagemaker

        with self._locked("undeploy"):
            return sagemaker.undeploy(self.project, on_event=on_event)

    def invoke_example(self, record: DeploymentRecord) -> list[str]:
        """The shell lines that call the deployed endpoint with a real row of the data."""
        from engine.deploy import sagemaker

        try:
            example = self.example_record()
        except HajError:
            example = None
        return sagemaker.invoke_hint(record.to_dict(), example)

    # ---- added for the CLI -------------------------------------------------------------------
    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        announce: Any = None,
    ) -> None:
        """Serve the champion in this process until interrupted (`haj run` without --detach);
        [serving] gives what is not said. `announce(champion_ref, url)` is called once the
        server listens."""
        from engine.serving import control

        serving = self.config()["serving"]
        control.serve_foreground(
            self.project,
            host or str(serving["host"]),
            int(port or serving["port"]),
            int(workers or serving.get("workers", 1)),
            announce=announce,
        )
