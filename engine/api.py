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
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import events
from engine.batch import PredictResult
from engine.compare import Comparison
from engine.configure import Changes
from engine.container import progress_text
from engine.deploy.plan import Options, Plan
from engine.errors import HajError, ServingError, UsageError
from engine.evaluation import CheckResult, Scored
from engine.feedback import FeedbackResult
from engine.metrics import check_metric, metrics_for
from engine.monitor import MonitorResult
from engine.numbers import (
    MISSING,
    column_format,
    duration_text,
    fit,
    metric_text,
    summary_texts,
)
from engine.pipeline import PipelineResult, StepResult
from engine.project import (
    CODE_FILES,
    PREDICTION_TYPES,
    Project,
    default_metric,
    mask,
    validate_config,
)
from engine.rerun import RerunResult
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
from engine.retrain import Options as RetrainOptions
from engine.retrain import RetrainResult
from engine.runs import Leaderboard, run_kind, score_text
from engine.schedule import ScheduleStatus
from engine.sessions import SessionRun, TrainSession, compact_line, elapsed_since, remaining
from engine.store import Champion, CrownEvent, DataVersion, Run
from engine.tags import Tagged
from engine.watch import Stamp, WorkspaceStamp
from engine.workspace import EXAMPLES

__all__ = [
    "CODE_FILES",
    "EXAMPLES",
    "MISSING",
    "PREDICTION_TYPES",
    "BuildSettings",
    "Champion",
    "Changes",
    "CheckResult",
    "CodeProblem",
    "Comparison",
    "ContainerRecord",
    "ContainerRow",
    "ContainerStatus",
    "CrownEvent",
    "CrownResult",
    "DataSummary",
    "DataVersion",
    "DeployDefaults",
    "DeploymentRecord",
    "FeedbackResult",
    "ImageRecord",
    "Leaderboard",
    "MonitorResult",
    "Options",
    "PipelineResult",
    "Plan",
    "PredictResult",
    "ProjectAPI",
    "ProjectRow",
    "ProjectStatus",
    "RerunResult",
    "RetrainOptions",
    "RetrainResult",
    "Run",
    "RunnerUp",
    "ScheduleStatus",
    "Scored",
    "ServerRecord",
    "ServerStats",
    "SessionRun",
    "Stamp",
    "StepResult",
    "Tagged",
    "TestReply",
    "TrainSession",
    "Workspace",
    "WorkspaceStamp",
    "check_metric",
    "column_format",
    "compact_line",
    "default_metric",
    "duration_text",
    "elapsed_since",
    "fit",
    "mask",
    "metric_text",
    "metrics_for",
    "progress_text",
    "remaining",
    "run_kind",
    "score_text",
    "summary_texts",
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
    schedule: str | None = None  # [pipeline] schedule as written (a cron expression), if any
    pipeline: str | None = None  # the last pipeline run, in a few words ("✓ 12-02 03:00")

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
    # one point a second, kept by the server (so a chart survives the app's restart):
    # [unix time, requests so far, errors so far, p50 ms, p95 ms]
    history: list[list[Any]] = field(default_factory=list)

    @property
    def window(self) -> dict[str, Any]:
        """Latency over the recent requests (p50_ms, p95_ms, p99_ms, mean_ms)."""
        return dict(self.latency.get("window") or {})

    def latency_series(self) -> dict[str, tuple[list[float], list[float]]]:
        """p50 and p95 ms over time, x in seconds before the last point (for a chart)."""
        points = self.history
        if not points:
            return {}
        now = points[-1][0]
        series: dict[str, tuple[list[float], list[float]]] = {}
        for name, column in (("p50 ms", 3), ("p95 ms", 4)):
            kept = [(p[0] - now, p[column]) for p in points if p[column] is not None]
            series[name] = ([x for x, _ in kept], [float(y) for _, y in kept])
        return series

    def rate_series(self) -> dict[str, tuple[list[float], list[float]]]:
        """Scoring requests (and refused ones) per second over time, from the totals."""
        points = self.history
        if len(points) < 2:
            return {}
        now = points[-1][0]
        xs, rates, errors = [], [], []
        for before, after in itertools.pairwise(points):
            seconds = after[0] - before[0]
            if seconds <= 0:
                continue
            xs.append(after[0] - now)
            rates.append(max(0.0, (after[1] - before[1]) / seconds))
            errors.append(max(0.0, (after[2] - before[2]) / seconds))
        return {"requests/s": (xs, rates), "refused/s": (xs, errors)}

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
class CodeProblem:
    """A syntax error in a code file: where (1-based line and column) and what."""

    line: int
    column: int
    message: str

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

    def keep_runner_warm(self) -> None:
        """Start long work (retrieve, process, training, tuning) as forks of a warm runner from
        now on (engine.warm_runner): each starts about a second sooner. For a long-lived
        process such as the app; a one-shot command would pay what it saves."""
        from engine import warm_runner

        warm_runner.keep_warm()

    def names(self) -> list[str]:
        from engine import workspace

        return workspace.project_names(self.root)

    def projects(self) -> list[ProjectRow]:
        """Every project, cheaply (no Docker or AWS call; a broken project is a row with an
        error, never an exception)."""
        from engine import workspace

        return [known_fields(ProjectRow, row) for row in workspace.list_projects(self.root)]

    def stamp(self) -> WorkspaceStamp:
        """The workspace as it stands, cheaply (stat() calls only: engine.watch)."""
        from engine.watch import workspace_stamp

        return workspace_stamp(self.root, self.names())

    def changed_since(self, stamp: WorkspaceStamp | None) -> tuple[WorkspaceStamp, frozenset[str]]:
        """(the stamp now, the projects that changed, appeared or went away since `stamp`):
        what a view polls to refresh within a second of any writer, this process or another."""
        now = self.stamp()
        return now, now.changed(stamp)

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

    # ---- schedules (engine.schedule) -------------------------------------------------------
    def schedules(self, name: str | None = None, *, crontab: bool = True) -> list[ScheduleStatus]:
        """Every project's schedule (or `name`'s): the expression, its next three times, its
        crontab line (the crontab read once, unless `crontab` is False), the workspace's
        scheduler and the last pipeline run."""
        from engine import schedule

        projects = [self.project(name)] if name else [self.project(n) for n in self.names()]
        table, error = schedule.crontab_or_error() if crontab else (None, None)
        return [
            schedule.status(
                self.root, p.name, table=table, table_error=error, last_run=_last_pipeline(p)
            )
            for p in projects
        ]

    def scheduler(self) -> dict[str, Any] | None:
        """The workspace's scheduler (`haj schedule run`): its record while it runs, else None."""
        from engine import schedule

        return schedule.scheduler(self.root)

    def start_scheduler(self) -> dict[str, Any]:
        """Start the workspace's scheduler in the background; its record."""
        from engine import schedule

        return schedule.start_detached(self.root)

    def stop_scheduler(self) -> dict[str, Any] | None:
        """Stop the workspace's scheduler (and the pipeline runs it started); its record, or
        None when none ran."""
        from engine import schedule

        return schedule.stop(self.root)

    # ---- a Dask cluster (engine.cluster) ------------------------------------------------------
    def cluster(self) -> dict[str, Any] | None:
        """The workspace's local Dask cluster (`haj cluster start`): its record while it runs."""
        from engine import cluster

        return cluster.status(self.root)

    def start_cluster(self, workers: int, threads: int = 1, port: int = 8786) -> dict[str, Any]:
        """Start a local Dask cluster on 127.0.0.1 in the background; its record."""
        from engine import cluster

        return cluster.start_detached(self.root, workers, threads, port)

    def stop_cluster(self) -> dict[str, Any] | None:
        """Stop the workspace's local Dask cluster; its record, or None when none ran."""
        from engine import cluster

        return cluster.stop(self.root)

    def run_cluster(
        self,
        workers: int,
        threads: int = 1,
        port: int = 8786,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """Run a local Dask cluster in this process until SIGTERM / SIGINT."""
        from engine import cluster

        cluster.run_local(self.root, workers, threads, port, say=say)

    def check_cluster(self, address: str | None = None, project: str | None = None) -> Any:
        """The cluster's workers (cores, memory) and their packages beside this environment's
        (haj's serving stack, dask; with `project`, its requirements.txt too): a
        cluster.CheckReport. The address: the one given, else the project's [training]
        scheduler, else $HAJ_DASK_SCHEDULER, else the workspace's local cluster."""
        from engine import cluster

        training: dict[str, Any] = {}
        names, paths = cluster.wanted_packages(), []
        if project is not None:
            chosen = self.project(project)
            training = chosen.config()["training"]
            names, paths = cluster.project_packages(chosen.project)
        return cluster.check(cluster.resolve(address, self.root, training), names, paths)

    def run_scheduler(
        self, say: Callable[[str], None] | None = None, log: str | None = None
    ) -> None:
        """Run the scheduler in this process until SIGTERM / SIGINT."""
        from engine import schedule

        schedule.run(self.root, say=say, log=log)


def _last_pipeline(project: ProjectAPI) -> dict[str, Any] | None:
    """The project's newest pipeline run (id, started_at, finished_at, trigger, status,
    summary), or None: none yet, or no pipeline history to read."""
    history = getattr(project, "pipeline_history", None)
    try:
        runs = history(1) if history is not None else []
    except HajError:
        return None
    if not runs:
        return None
    run = runs[0]
    data = run.to_dict() if hasattr(run, "to_dict") else dict(run)
    keys = ("id", "started_at", "finished_at", "trigger", "status", "summary")
    return {key: data.get(key) for key in keys}


# ---- one project ---------------------------------------------------------------------------------
class ProjectAPI:
    """One project's verbs. Cheap to make; every method reads the project afresh."""

    def __init__(self, workspace: Workspace, project: Project) -> None:
        self.workspace = workspace
        self.project = project
        self._columns: dict[str, list[str]] = {}  # a raw version's sha256 -> its columns

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

    # ---- watching ----------------------------------------------------------------------------
    def stamp(self) -> Stamp:
        """The project's files as they stand, cheaply (stat() calls only: engine.watch)."""
        from engine.watch import project_stamp

        return project_stamp(self.project.path)

    def changed_since(self, stamp: Stamp | None) -> tuple[Stamp, frozenset[str]]:
        """(the stamp now, what changed since `stamp`: "store", "config", "code", "log"):
        a view polls it and re-reads only what moved, whoever wrote it."""
        now = self.stamp()
        return now, now.changed(stamp)

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
    def code_problem(text: str, filename: str = "<code>") -> CodeProblem | None:
        """The syntax error a code file's text would raise when run, or None (the editor asks
        before saving one)."""
        try:
            compile(text, filename, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return CodeProblem(int(exc.lineno or 1), int(exc.offset or 1), str(exc.msg))
        except ValueError as exc:  # a NUL byte
            return CodeProblem(1, 1, str(exc))
        return None

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

    def columns(self) -> list[str]:
        """The columns of the current raw version, in order (the target is one of them);
        [] before the first retrieve. Read once per version (a version never changes)."""
        from engine import data

        current = [v for v in self.versions("raw") if v.get("current")]
        if not current:
            return []
        version = current[0]
        cached = self._columns.get(version["sha256"])
        if cached is None:
            path = self.project.path / version["path"]
            reading = version.get("reading") or {}
            if version["format"] == "csv" and isinstance(reading, dict) and reading.get("sep"):
                # the header line alone, read as recorded: no pandas import, no full read
                import csv

                with open(path, encoding=reading.get("encoding", "utf-8"), newline="") as file:
                    cached = next(csv.reader(file, delimiter=reading["sep"]), [])
            else:
                frame = data.load_frame(path, version["format"], version.get("reading"))
                cached = [str(name) for name in frame.columns]
            self._columns[version["sha256"]] = cached
        return list(cached)

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
        cv: int | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
        cluster: str | None = None,
    ) -> dict[str, Any]:
        """Train (with `cv`-fold cross-validation on the training split when given); on the
        Dask cluster at `cluster` when given (else where [training] backend says)."""
        from engine import training

        with self._locked("training", cancel):
            return training.train(
                self.project, models, on_event, cancel, data=data, cv=cv, cluster=cluster
            )

    def last_session(self) -> TrainSession | None:
        """The last training session, whichever process runs or ran it: queued, running and
        finished runs (engine.sessions)."""
        from engine import sessions

        return sessions.last_session(self.project)

    def train_estimates(
        self, models: list[str], data_version: str | None = None
    ) -> dict[str, float]:
        """model -> the seconds it should take, from its recent finished runs."""
        from engine import sessions

        return sessions.estimates(self.project, models, data_version)

    def train_log(self, offset: int | None = None, lines: int = 300) -> tuple[list[str], int]:
        """logs/train.log after byte `offset` (None: its last `lines`), each line with the short
        prefix (compact_line); and the offset to read on from."""
        from engine import sessions

        return sessions.read_log(self.project, offset, lines)

    def leaderboard(
        self,
        metric: str | None = None,
        limit: int | None = None,
        include_all: bool = True,
        *,
        data: str | None = None,
        any_data: bool = False,
        where: str | None = None,
    ) -> Leaderboard:
        """The runs scored on one data version (default: the current one; `data` another,
        `any_data` all), ranked by `metric`; with `where`, only the runs matching that filter
        (engine.run_filter: "model=knn tag.owner=ana acc>0.9")."""
        from engine import runs

        return runs.leaderboard(self.project, metric, limit, include_all, data, any_data, where)

    # ---- finding, comparing, reproducing runs (engine.tags, engine.compare, engine.rerun) ----
    def tag(self, run: str, assignments: Sequence[str] = ()) -> Tagged:
        """Set (key=value) or remove (key=) the user's tags of `run` (an id or MODEL-#); with
        none, read them. haj's automatic keys are refused."""
        from engine import tags

        if not assignments:
            return tags.tag_run(self.project, run, ())
        with self._locked("tagging"):
            return tags.tag_run(self.project, run, tuple(assignments))

    def compare(self, runs: Sequence[str]) -> Comparison:
        """Two or more runs side by side: differing parameters, metric deltas to the first,
        data versions, code and environment hashes, tags."""
        from engine import compare

        return compare.compare(self.project, tuple(runs))

    def rerun(
        self,
        run: str,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> RerunResult:
        """Train `run` again with its data version, parameters, seed and test split; say
        whether its metrics match and, when not, what differs."""
        from engine import rerun

        with self._locked("rerunning", cancel):
            return rerun.rerun(self.project, run, on_event, cancel)

    def crown(
        self, metric: str | None = None, *, data: str | None = None, any_data: bool = False
    ) -> CrownResult:
        """Crown the best run among those scored on one data version (as leaderboard())."""
        from engine import champion

        with self._locked("crowning"):
            return champion.crown(self.project, metric, data=data, any_data=any_data)

    def crown_run(self, run: str, metric: str | None = None) -> CrownResult:
        """Crown the run `run` (an id or MODEL-#), whatever its score."""
        from engine import champion

        with self._locked("crowning"):
            return champion.crown_run(self.project, run, metric)

    def rollback(self, metric: str | None = None) -> CrownResult:
        """Crown the champion before the current one again."""
        from engine import champion

        with self._locked("crowning"):
            return champion.rollback(self.project, metric)

    def finalize(
        self, on_event: events.Callback = events.ignore, cancel: threading.Event | None = None
    ) -> CrownResult:
        """Refit the champion on all rows of its data version, as a new run, and crown it."""
        from engine import finalize

        with self._locked("finalizing", cancel):
            return finalize.finalize(self.project, on_event, cancel)

    def tune(
        self,
        model: str,
        *,
        trials: int | None = None,
        timeout: float | None = None,
        metric: str | None = None,
        cv: int | None = None,
        study: str | None = None,
        jobs: int | None = None,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
        cluster: str | None = None,
    ) -> dict[str, Any]:
        """Tune `model`'s parameters with Optuna (engine.tuning): `trials` more trials of the
        study `study` (new when absent), each scored by `cv`-fold CV of `metric` on the
        training split; the best refit and scored on the holdout as a normal run. `cluster`:
        the Dask scheduler whose workers run the folds (engine.cluster)."""
        from engine import tuning

        tuning.check_options(trials, timeout, cv, jobs, study)  # said before the lock is waited for
        with self._locked("tuning", cancel):
            return tuning.tune(
                self.project,
                model,
                trials=trials,
                timeout=timeout,
                metric=metric,
                cv=cv,
                study=study,
                jobs=jobs,
                on_event=on_event,
                cancel=cancel,
                cluster=cluster,
            )

    def predict(
        self,
        source: str,
        output: Path | None,
        *,
        run: str | None = None,
        keep: list[str] | None = None,
        skip_bad: bool = False,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> PredictResult:
        """Score a file or data version (rows in the data's own shape) into `output` (CSV or
        JSON lines, written atomically; None: stdout), with the champion or run `run`."""
        from engine import batch

        return batch.predict_file(
            self.project,
            source,
            output,
            run=run,
            keep=keep,
            skip_bad=skip_bad,
            on_event=on_event,
            cancel=cancel,
        )

    def predict_stream(
        self,
        lines: Iterable[str],
        write: Callable[[str], None],
        *,
        run: str | None = None,
        keep: list[str] | None = None,
        skip_bad: bool = False,
    ) -> PredictResult:
        """Score JSON lines as they arrive, one output line per input line."""
        from engine import batch

        return batch.predict_stream(
            self.project, lines, write, run=run, keep=keep, skip_bad=skip_bad
        )

    def score(
        self,
        data: str | None = None,
        *,
        runs: list[str] | None = None,
        champion: bool = False,
        top: int | None = None,
    ) -> list[Scored]:
        """Score runs (default: the champion) on labelled data (a data version, default the
        current raw one, or a file); each result is recorded in the store's evaluations."""
        from engine import evaluation

        return evaluation.score(self.project, data, runs, champion, top)

    def check(
        self, data: str | None = None, *, metric: str | None = None, tolerance: float | None = None
    ) -> CheckResult:
        """The champion's score on labelled data against its recorded one."""
        from engine import evaluation

        return evaluation.check(self.project, data, metric, tolerance)

    def monitor(
        self,
        current: str | None = None,
        *,
        since: str | None = None,
        last: int | None = None,
        method: str | None = None,
        save: bool = True,
    ) -> MonitorResult:
        """Drift and quality of current inputs (live, the log, a data version or a file)
        against the champion's training data; stored for `monitor_history`."""
        from engine import monitor

        return monitor.monitor(
            self.project, current, since=since, last=last, method=method, save=save
        )

    def feedback(self, path: str, *, id_col: str, label_col: str) -> FeedbackResult:
        """Join real outcomes to logged predictions by request id: live performance per served
        run (stored with the evaluations) and the target's drift."""
        from engine import feedback

        return feedback.feedback(self.project, path, id_col, label_col)

    def monitor_history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored drift reports' headline figures, oldest first."""
        from engine import monitor

        return monitor.history(self.project, limit)

    def run(self, ref: str) -> Run:
        """One run by id or MODEL-# (UsageError when there is none)."""
        from engine.data import open_store
        from engine.errors import UsageError

        if not self.project.db_path.exists():
            raise UsageError(f"no run {ref!r}: the project has no runs yet")
        with open_store(self.project) as store:
            found = store.find_run(ref)
        if found is None:
            raise UsageError(f"no run {ref!r} (see `haj runs {self.name}`)")
        return found

    def evaluations(self, run: str | None = None) -> list[dict[str, Any]]:
        """Recorded evaluations (of run `run`), newest first."""
        from engine import evaluation

        return evaluation.evaluations(self.project, run)

    def run_artifacts(self, run: str) -> dict[str, Any]:
        """A run's artifacts kept at training (engine.artifacts): the confusion matrix,
        per-class scores and ROC / precision-recall curves, or the residual summary and
        predicted-vs-actual points, and the feature importances; just {"run_id", "files"}
        for a run without them (UsageError when there is no such run)."""
        from engine import artifacts

        return artifacts.of_run(self.project, run)

    def champion_history(self) -> list[dict[str, Any]]:
        from engine import champion

        return champion.history(self.project)

    def retrain(
        self,
        options: RetrainOptions | None = None,
        *,
        dry_run: bool = False,
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> RetrainResult:
        """Gated retraining (engine.retrain): retrieve; when asked to go on, process, train,
        score the best challenger and the champion on the same holdout, crown the challenger
        only if it is better by more than `options.min_improvement`, redeploy. Recorded however
        it ends; `dry_run` says what each step would do and changes nothing. The project's lock
        is held for the whole retrain."""
        from engine import retrain

        options = options or RetrainOptions()
        if dry_run:
            return retrain.plan(self, options)
        options.check()  # a bad option is said before the lock is waited for
        with self._locked("retrain", cancel):
            return retrain.retrain(self, options, on_event, cancel)

    def pipeline_run(
        self,
        steps: list[str] | None = None,
        *,
        force: bool = False,
        trigger: str = "manual",
        on_event: events.Callback = events.ignore,
        cancel: threading.Event | None = None,
    ) -> PipelineResult:
        """Run the project's pipeline ([pipeline] steps, or `steps`), recorded step by step.
        The lock is refused at once when another writer holds it ("already running since
        ..." when it is another pipeline run), never waited for."""
        from engine import pipeline

        with pipeline.exclusive(self.project, cancel):
            return pipeline.run(
                self, steps, force=force, trigger=trigger, on_event=on_event, cancel=cancel
            )

    def pipeline_history(self, limit: int | None = None) -> list[PipelineResult]:
        """Past pipeline runs, newest first."""
        from engine import pipeline

        return pipeline.history(self.project, limit)

    def notifications(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest notifications, sent or not, newest first."""
        from engine import notify

        return notify.recent(self.project, limit)

    def retrain_history(self, limit: int | None = None) -> list[RetrainResult]:
        """The recorded retrains, newest first."""
        from engine import retrain

        return retrain.history(self.project, limit)

    # ---- schedule (engine.schedule) ----------------------------------------------------------
    def set_schedule(self, expr: str) -> tuple[ScheduleStatus, list[str]]:
        """Set `[pipeline] schedule` to a cron expression ("off" clears it); a crontab line
        already installed follows (replaced, or removed with "off"). The schedule as it is now,
        and what was done to the crontab, in words."""
        from engine import cron, schedule

        text = "" if cron.is_off(expr) else cron.check(expr)
        root = self.workspace.root
        table, _ = schedule.crontab_or_error()  # no crontab command: no line to follow
        line = schedule.installed_line(root, self.name, table) if table is not None else None
        with self._locked("schedule"):
            self.project.update_config({"pipeline": {"schedule": text}})
        notes = []
        if line is not None and text:
            schedule.install(root, self.name, text)
            notes.append("its crontab line now runs the new schedule")
        elif line is not None:
            schedule.remove(root, self.name)
            notes.append("its crontab line was removed")
        return self.workspace.schedules(self.name, crontab=table is not None)[0], notes

    @staticmethod
    def preview_schedule(expr: str, count: int = 3) -> tuple[str, str, list[datetime]]:
        """A schedule as it is typed, before it is saved: (the expression as set_schedule
        would store it, in words, its next `count` local times); ("", "", []) for "off" or
        empty. A bad one raises the UsageError set_schedule would, in one line."""
        from engine import cron

        if cron.is_off(expr):
            return "", "", []
        text = cron.check(expr)
        return text, cron.explain(text), cron.next_times(text, count=count)

    def install_schedule(self) -> str:
        """Add (or replace) the project's line in the user's crontab; the line."""
        from engine import schedule

        expr = schedule.configured(self.project.path)
        if not expr:
            raise UsageError(
                f'{self.name} has no schedule: `haj schedule set {self.name} "0 3 * * *"` first'
            )
        return schedule.install(self.workspace.root, self.name, expr)

    def remove_schedule(self) -> str | None:
        """Take the project's line out of the user's crontab; the line, or None if none."""
        from engine import schedule

        return schedule.remove(self.workspace.root, self.name)

    # ---- status ------------------------------------------------------------------------------
    def status(self) -> ProjectStatus:
        """Data, runs, champion, server, container and deployment, from the project alone."""
        from engine import status

        return status.project_status(self.project)

    def diagnose(
        self,
        live: Callable[[], dict[str, Any] | None] | None = None,
        *,
        index_timeout: float | None = None,
    ) -> Any:
        """The project's health (engine.diagnose.Diagnosis): missing values of the current data
        and of live traffic (`live` supplies {"rows": N, "missing": {feature: count}}; by
        default a running server's /diagnostics), step timings, outdated dependencies (the
        package index is given `index_timeout` seconds), the champion's age, predictions per
        day. A read: nothing in the project changes."""
        from engine import diagnose

        timeout = diagnose.INDEX_TIMEOUT if index_timeout is None else index_timeout
        return diagnose.diagnose(self.project, live=live, index_timeout=timeout)

    def report(
        self,
        output: Path | None = None,
        *,
        since: str = "30d",
        write: bool = True,
        index_timeout: float | None = None,
    ) -> Any:
        """A report of the project (engine.report.Written: the file, its pages, the Report's
        data): champion, confusion matrix or residuals, leaderboard, data, drift, trends over
        `since`, diagnostics, the live server. `output` .pdf / .md / .html, by default
        reports/report-<time>.pdf (the last [pipeline] keep_reports kept); `write=False`
        gathers only. A read: nothing else changes."""
        from engine import report

        return report.make(self, output, since=since, write=write, index_timeout=index_timeout)

    def export_mlflow(
        self,
        uri: str,
        *,
        runs: list[str] | None = None,
        experiment: str | None = None,
        data: str | None = None,
        any_data: bool = False,
        on_event: events.Callback = events.ignore,
    ) -> Any:
        """Copy runs to the MLflow tracking server at `uri` (engine.export_mlflow.ExportResult):
        the runs named (ids or MODEL-#), else the finished runs of one data version (default:
        the current one; `any_data`: all) and the champion. Params, metrics, tags, the champion's
        mark and the model; a run already exported (its haj.run_id tag) is not added twice. A
        read: nothing in the project changes. Needs the `mlflow` extra (DependencyError)."""
        from engine import export_mlflow

        return export_mlflow.export(
            self.project,
            uri,
            runs=runs,
            experiment=experiment,
            data=data,
            any_data=any_data,
            on_event=on_event,
        )

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
