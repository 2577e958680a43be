"""The typed records and results that cross the engine API (engine.api re-exports them).

Records the store keeps as JSON (a server, an image, a container, a deployment) stay dicts inside
the engine: the store, `haj status` and undeploy read and write them as such. At the API they
become the dataclasses below, built with `from_dict`: the fields the faces read are typed, and
the whole record is kept in `raw` (not shown, not compared), so `to_dict()` gives back exactly
the record that was written, keys the fields do not name included. Results made in one place
(crowning, a project's status, the containers' state) are built as these types where they are
made.

A leaf: this module imports only the store's own record types (which import nothing heavy), so
every layer can build these types and `import engine.api` stays cheap.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from engine.store import Champion, CrownEvent, DataVersion, Run

__all__ = [
    "ContainerRecord",
    "ContainerRow",
    "ContainerStatus",
    "CrownResult",
    "DataSummary",
    "DeploymentRecord",
    "ImageRecord",
    "ProjectStatus",
    "RunnerUp",
    "ServerRecord",
    "known_fields",
]

T = TypeVar("T")


def known_fields(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass from a dict: the keys it has fields for taken, the rest left out."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


class _RawRecord:
    """A record typed over the dict it came from: `to_dict()` is that dict (a copy), so what a
    script reads from `--json` is what the engine recorded; built without one (a fake, a test),
    it is the typed fields."""

    raw: dict[str, Any]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in fields(cls)} - {"raw"}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names}, raw=copy.deepcopy(data))

    def to_dict(self) -> dict[str, Any]:
        if self.raw:
            return copy.deepcopy(self.raw)
        return {k: v for k, v in asdict(self).items() if k != "raw"}  # type: ignore[call-overload]

    def get(self, key: str, default: Any = None) -> Any:
        """A key of the record, typed field or not (as dict.get)."""
        return self.to_dict().get(key, default)


# ---- serving -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServerRecord:
    """A running prediction server, as recorded in the project (detached or foreground)."""

    pid: int
    host: str
    port: int
    url: str
    workers: int = 1
    started_at: str = ""
    run_id: str | None = None
    model: str | None = None
    log: str | None = None  # None: the terminal of a foreground server
    foreground: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- crowning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunnerUp:
    """The second best finished run by the crowning metric."""

    run_id: str
    model: str
    value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CrownResult:
    """What crowning did: the new champion and its run, the metric and score, the runner-up and
    the margin to it, the champion it replaced, and the stable path of the champion's model.

    `reason`: evaluate (the best run), chosen (a named run), rollback, finalize. `data_version`:
    the version whose runs were compared (None: all). `ties`: how many other runs scored exactly
    the same; `noise`: how much the score could move by chance (CV std or one standard error on
    the test rows); `caveat`: the sentence saying the choice is a tie or within the noise;
    `stale`: the sentence saying the champion is not trained on the current data; `inputs`: the
    sentence saying the model takes the processed columns, not the data's own rows (and why)."""

    champion: Champion
    run: Run
    metric: str
    higher_is_better: bool
    value: float
    runner_up: RunnerUp | None = None
    margin: float | None = None
    previous: Champion | None = None
    path: str = ""
    reason: str = "evaluate"
    data_version: str | None = None
    ties: int = 0
    noise: float | None = None
    caveat: str | None = None
    stale: str | None = None
    inputs: str | None = None  # the sentence saying the model takes processed columns, if so

    @property
    def replaced(self) -> bool:
        """A champion was replaced by another run (not crowned again)."""
        return self.previous is not None and self.previous.run_id != self.run.id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- images and containers -----------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRecord(_RawRecord):
    """The project's last build (the store's `image` record)."""

    image: str = ""  # the first tag, NAME:RUN_ID unless one was given
    tags: list[str] = field(default_factory=list)
    id: str = ""
    size: int = 0
    base_image: str | None = None
    network: str | None = None  # None: Docker's default (bridge)
    run_id: str | None = None
    model: str | None = None
    model_sha256: str | None = None
    wheelhouse: bool = False
    context: str | None = None
    built_at: str = ""
    seconds: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ContainerRecord(_RawRecord):
    """A container haj started (the store's `container` record)."""

    id: str = ""
    name: str = ""
    image: str = ""
    url: str = ""
    port: int = 0
    network: str = "bridge"
    started_at: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ContainerRow:
    """One of the project's containers as Docker reports it."""

    id: str
    name: str
    image: str
    status: str  # running, exited, created...
    health: str = ""  # healthy, starting, unhealthy, "" (no health check)
    url: str = ""
    started_at: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ContainerStatus:
    """The project's containers (from Docker) and its last built image (from the store)."""

    containers: list[ContainerRow] = field(default_factory=list)
    image: ImageRecord | None = None

    def running(self) -> ContainerRow | None:
        """The running container, if one runs."""
        return next((row for row in self.containers if row.running), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "containers": [row.to_dict() for row in self.containers],
            "image": self.image.to_dict() if self.image else None,
        }


# ---- deployment ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeploymentRecord(_RawRecord):
    """What a deploy created on AWS (the store's `deployment` record): the endpoint, its state,
    and every resource undeploy removes."""

    target: str = "sagemaker"
    project: str = ""
    region: str | None = None
    account: str | None = None
    status: str | None = None  # deploying, InService, failed, undeploy incomplete...
    endpoint_name: str | None = None
    run_id: str | None = None
    model: str | None = None
    image_uri: str | None = None
    s3_uri: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    deployed_at: str | None = None
    failed_at: str | None = None
    error: str | None = None
    models: list[str] = field(default_factory=list)
    endpoint_configs: list[str] = field(default_factory=list)
    pushed_images: list[str] = field(default_factory=list)
    s3_objects: list[str] = field(default_factory=list)
    bucket: str | None = None
    ecr_repository: str | None = None
    role_arn: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# ---- a project at a glance -----------------------------------------------------------------------
@dataclass(frozen=True)
class DataSummary:
    """How many data versions there are, the current raw one and the latest processed one."""

    raw_versions: int = 0
    processed_versions: int = 0
    current_raw: DataVersion | None = None
    latest_processed: DataVersion | None = None


@dataclass(frozen=True)
class ProjectStatus(_RawRecord):
    """What `haj status` shows: data, runs, champion (and its last crownings), the live server,
    and one line each for the container and the deployment (from the store: no Docker or AWS
    call), with their records."""

    name: str = ""
    path: str = ""
    title: str = ""
    prediction: str = ""
    metric: str = ""
    data: DataSummary = field(default_factory=DataSummary)
    runs: dict[str, int] = field(default_factory=dict)  # status -> count
    champion: Champion | None = None
    champion_history: list[CrownEvent] = field(default_factory=list)  # newest first
    server: ServerRecord | None = None
    container: str | None = None  # one line, or None: nothing built or started
    deployment: str | None = None  # one line, or None: nothing deployed
    image_record: ImageRecord | None = None
    container_record: ContainerRecord | None = None
    deployment_record: DeploymentRecord | None = None
    champion_notice: str | None = None  # the champion was trained on other data than the current
    # [pipeline] schedule: {schedule, explain, next (three local ISO times), scheduler, error},
    # None when the project has none (engine.schedule.brief)
    schedule: dict[str, Any] | None = None
    # the last pipeline run: {started_at, trigger, status, summary}, None before the first
    pipeline: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectStatus:
        """From engine.status's dict (the `--json` shape), its parts typed."""
        summary = data.get("data") or {}
        current_raw = summary.get("current_raw")
        latest = summary.get("latest_processed")
        records = data.get("records") or {}
        image, container, deployment = (
            records.get(k) for k in ("image", "container", "deployment")
        )
        return cls(
            name=data["name"],
            path=data["path"],
            title=data["title"],
            prediction=data["prediction"],
            metric=data["metric"],
            data=DataSummary(
                raw_versions=int(summary.get("raw_versions", 0)),
                processed_versions=int(summary.get("processed_versions", 0)),
                current_raw=DataVersion(**current_raw) if current_raw else None,
                latest_processed=DataVersion(**latest) if latest else None,
            ),
            runs=dict(data.get("runs") or {}),
            champion=Champion(**data["champion"]) if data.get("champion") else None,
            champion_history=[CrownEvent(**e) for e in data.get("champion_history") or []],
            server=known_fields(ServerRecord, data["server"]) if data.get("server") else None,
            container=data.get("container"),
            deployment=data.get("deployment"),
            image_record=ImageRecord.from_dict(image) if image else None,
            container_record=ContainerRecord.from_dict(container) if container else None,
            deployment_record=DeploymentRecord.from_dict(deployment) if deployment else None,
            champion_notice=data.get("champion_notice"),
            schedule=copy.deepcopy(data.get("schedule")),
            pipeline=copy.deepcopy(data.get("pipeline")),
            raw=copy.deepcopy(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """The dict engine.status made (exactly); built without one, the same shape."""
        if self.raw:
            return copy.deepcopy(self.raw)
        status: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "title": self.title,
            "prediction": self.prediction,
            "metric": self.metric,
            "data": asdict(self.data),
            "runs": dict(self.runs),
            "champion": self.champion.to_dict() if self.champion else None,
            "champion_history": [event.to_dict() for event in self.champion_history],
            "server": self.server.to_dict() if self.server else None,
        }
        records = {
            kind: record.to_dict()
            for kind, record in (
                ("image", self.image_record),
                ("container", self.container_record),
                ("deployment", self.deployment_record),
            )
            if record
        }
        if records:
            status["records"] = records
        if self.container:
            status["container"] = self.container
        if self.deployment:
            status["deployment"] = self.deployment
        if self.champion_notice:
            status["champion_notice"] = self.champion_notice
        if self.schedule:
            status["schedule"] = copy.deepcopy(self.schedule)
        if self.pipeline:
            status["pipeline"] = copy.deepcopy(self.pipeline)
        return status
