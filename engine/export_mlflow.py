"""Copy runs to an MLflow tracking server: `haj export NAME --mlflow URI`.

One MLflow run per haj run, found again by its `haj.run_id` tag in the experiment, so exporting
twice adds nothing: a second export logs only what the server lacks (a new tag, the champion's
mark, an artifact an interrupted export did not upload) and says `unchanged` otherwise.

What a run carries over (`record_of` is the mapping, in one place):

- params: the run's stored params, as text: `str(value)` as MLflow's own autologging writes them
  (`None`, `True`, `1.0`), lists and dicts as JSON;
- metrics: each metric as haj ranks it (`acc`: a cross-validated run's fold mean, else its
  score on the test split), `<metric>_std` (the folds' std, cross-validated runs) and
  `test_<metric>` (the score on the held-out test split; for a run without CV the same number);
- tags: the store's run tags (`haj tag` and those haj sets at training), and haj.run_id,
  haj.project, haj.model, haj.label, haj.data_version, haj.session, haj.cv_folds, haj.test_rows,
  haj.refit_of, haj.model_sha256, haj.note.<metric>; the champion carries `haj.champion=true`
  (with haj.champion_metric and haj.crowned_at), taken off a run that is no longer champion;
- artifacts: the model bundle (`haj/<run>.joblib`, only once its sha256 matches the store's),
  the run's own artifact files (`haj/artifacts/`), and `model/`: the fitted pipeline as an
  MLflow scikit-learn model (cloudpickle), so `mlflow models serve -m runs:/<id>/model` serves
  it. That model takes the processed features (the bundle's feature names, in its signature);
  turning raw rows into them stays haj's (the bundle holds that processing).

Why the MLflow client (the `mlflow-skinny` package, haj's `mlflow` extra) and not the REST API
by hand: the client carries MLflow's authentication (MLFLOW_TRACKING_TOKEN, username and
password, Databricks), its retries, and artifact uploads to wherever the server keeps them
(proxied through the server, or straight to S3, GCS or Azure when the server does not proxy),
and it writes the sklearn model's MLmodel file the way MLflow reads it. The full `mlflow`
package would downgrade pyarrow in haj's environment; `mlflow-skinny` adds packages and changes
none. The client is imported only here, inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import events
from engine.errors import (
    DataError,
    DependencyError,
    HajError,
    Hint,
    TransientError,
    UsageError,
    is_transient,
    one_line,
)

if TYPE_CHECKING:
    from engine.project import Project
    from engine.store import Champion, Run

INSTALL = "pip install 'haj[mlflow]' (or pip install mlflow-skinny)"
CHAMPION_TAGS = ("haj.champion", "haj.champion_metric", "haj.crowned_at")
BUNDLE_DIR = "haj"  # the model bundle, in the MLflow run's artifacts
FILES_DIR = "haj/artifacts"  # the run's own artifact files
MODEL_DIR = "model"  # the MLflow sklearn model: runs:/<id>/model
# MLflow's limits (mlflow.utils.validation): longer values are cut, with a note
MAX_PARAM = 6000
MAX_TAG = 8000
MAX_KEY = 250
_BATCH = 100  # params and tags per log-batch request (MLflow's MAX_PARAMS_TAGS_PER_BATCH)
_BAD_KEY = re.compile(r"[^/\w.\- :]")  # MLflow accepts letters, digits, _ - . / : and space
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


@dataclass
class Record:
    """What one haj run becomes in MLflow (before comparing with what the server has)."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportedRun:
    run_id: str
    label: str
    model: str
    data_version: str | None
    mlflow_run_id: str
    action: str  # created | updated | unchanged
    champion: bool
    logged: dict[str, int]  # what this export sent: {"params": n, "metrics": n, "tags": n}
    artifacts: list[str]  # the artifact paths this export uploaded
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportResult:
    project: str
    tracking_uri: str  # without a password
    experiment: str
    experiment_id: str
    experiment_url: str | None  # the experiment in MLflow's UI (http(s) servers)
    scope: str  # which runs, in words: "on proc-0002 (the current data)", "chosen by name"
    runs: list[ExportedRun]
    champion: str | None  # the champion's label, when it is marked in MLflow
    unmarked: list[str]  # MLflow runs whose champion mark this export took off
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for run in self.runs:
            counts[run.action] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts}


# ---- the mapping ---------------------------------------------------------------------------------
def param_text(value: Any) -> str:
    """A param as MLflow keeps it: text (lists and dicts as JSON, the rest as str())."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def mlflow_key(key: str) -> str:
    """`key` as MLflow accepts it: other characters become '_', at most 250 characters, and no
    path that would resolve to another name (`a//b`, `./a`)."""
    clean = _BAD_KEY.sub("_", key)[:MAX_KEY] or "_"
    normal = posixpath.normpath(clean)
    if normal != clean or normal == "." or normal.startswith(("..", "/")):
        clean = clean.replace("/", "_")
    return clean


def record_of(
    project: str, run: Run, tags: dict[str, str], champion: Champion | None = None
) -> Record:
    """The params, metrics and tags of `run` as they go to MLflow (see the module's docstring)."""
    notes: list[str] = []

    def put(target: dict[str, str], key: str, value: str, limit: int, what: str) -> None:
        name = mlflow_key(key)
        if name != key:
            notes.append(f"{what} {key!r} is exported as {name!r} (MLflow does not take the name)")
        if len(value) > limit:
            notes.append(f"{what} {key!r} is cut to {limit} characters (MLflow's limit)")
            value = value[: limit - 1] + "…"
        target[name] = value

    params: dict[str, str] = {}
    for key, value in run.params.items():
        put(params, key, param_text(value), MAX_PARAM, "param")
    metrics: dict[str, float] = {}
    test = run.test_metrics or ({} if run.cv_folds else run.metrics)
    named = [
        *run.metrics.items(),
        *((f"{k}_std", v) for k, v in run.metrics_std.items()),
        *((f"test_{k}", v) for k, v in test.items()),
    ]
    for key, value in named:
        if value is None or not math.isfinite(value):
            notes.append(f"metric {key} is {value}: not exported")
            continue
        metrics[mlflow_key(key)] = float(value)
    out: dict[str, str] = {}
    for key, value in tags.items():
        put(out, key, str(value), MAX_TAG, "tag")
    own = {
        "haj.run_id": run.id,
        "haj.project": project,
        "haj.model": run.model,
        "haj.label": run.label,
        "haj.data_version": run.data_version,
        "haj.session": run.session,
        "haj.cv_folds": run.cv_folds,
        "haj.test_rows": run.test_rows,
        "haj.refit_of": run.refit_of,
        "haj.model_sha256": run.model_sha256,
        **{f"haj.note.{k}": v for k, v in run.notes.items()},
    }
    if "user" in tags:
        own["mlflow.user"] = tags["user"]  # who trained it, in MLflow's User column
    if champion is not None and champion.run_id == run.id:
        own.update(champion_tags(champion))
    for key, value in own.items():
        if value is not None:
            put(out, key, str(value), MAX_TAG, "tag")
    return Record(params, metrics, out, notes)


def champion_tags(champion: Champion) -> dict[str, str]:
    return {
        "haj.champion": "true",
        "haj.champion_metric": champion.metric,
        "haj.crowned_at": champion.crowned_at,
    }


# ---- which runs --------------------------------------------------------------------------------
@dataclass
class _Selection:
    runs: list[Run]
    tags: dict[str, dict[str, str]]
    artifacts: dict[str, list[dict[str, Any]]]
    champion: Champion | None
    project_runs: set[str]  # every run id of the project: its runs already in MLflow
    scope: str


def _select(
    project: Project, refs: list[str] | None, data: str | None, any_data: bool
) -> _Selection:
    """The runs to export: those named, else the finished runs of one data version (default:
    the current one; `any_data`: all) and the champion, oldest first."""
    from engine.data import open_store
    from engine.runs import data_scope

    if refs and (data or any_data):
        raise UsageError("--runs names the runs to export: --data and --any-data do not apply")
    with open_store(project) as store:
        every = store.runs()
        champion = store.champion()
        if refs:
            chosen, scope = _named(store, refs, project.name), "chosen by name"
        else:
            found = data_scope(project, store, project.read_config(), data, any_data)
            scope = found.describe()
            chosen = [r for r in every if r.status == "finished" and found.includes(r.data_version)]
            if champion and all(r.id != champion.run_id for r in chosen):
                chosen += [r for r in every if r.id == champion.run_id and r.status == "finished"]
                scope += ", and the champion"
            if not chosen:
                others = sum(1 for r in every if r.status == "finished")
                more = f" ({others} finished on other data versions: --any-data)" if others else ""
                raise DataError(
                    f"nothing to export: no finished run {found.describe()}{more}",
                    Hint("train", project.name),
                )
        chosen.sort(key=lambda r: r.started_at)
        ids = [r.id for r in chosen]
        return _Selection(
            runs=chosen,
            tags=store.tags(ids),
            artifacts={run_id: store.artifacts(run_id) for run_id in ids},
            champion=champion,
            project_runs={r.id for r in every},
            scope=scope,
        )


def _named(store: Any, refs: list[str], name: str) -> list[Run]:
    chosen: dict[str, Run] = {}
    for ref in refs:
        run = store.find_run(ref)
        if run is None:
            raise UsageError(f"no run {ref!r} (see `haj runs {name} --any-data`)")
        if run.status != "finished":
            raise UsageError(
                f"run {run.label} ({run.id}) is {run.status}: only finished runs are exported"
            )
        chosen.setdefault(run.id, run)
    return list(chosen.values())


# ---- the export --------------------------------------------------------------------------------
def export(
    project: Project,
    uri: str,
    *,
    runs: list[str] | None = None,
    experiment: str | None = None,
    data: str | None = None,
    any_data: bool = False,
    on_event: events.Callback = events.ignore,
) -> ExportResult:
    """Copy runs to the MLflow tracking server at `uri`, into `experiment` (default: the
    project's name; created when missing). See the module's docstring for what goes over."""
    from urllib.parse import urlsplit

    from engine.data import redact_url

    if not uri.strip():
        raise UsageError("no MLflow tracking server: give --mlflow URI (or MLFLOW_TRACKING_URI)")
    try:
        urlsplit(uri).port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise UsageError(f"--mlflow {uri.split('@')[-1]!r} is not a valid URI: {exc}") from None
    shown = redact_url(uri)
    chosen = _select(project, runs, data, any_data)
    client = _client(uri)
    _reachable(uri, shown)
    name = experiment or project.name
    with _mlflow_errors(shown):
        experiment_id = _experiment(client, name, project.name)
        url = _experiment_url(uri, experiment_id)
        on_event(
            events.Log(
                f"exporting {runs_text(len(chosen.runs))} of {project.name} {chosen.scope} to "
                f"{shown}, experiment {name!r}"
            )
        )
        known = _haj_runs(client, experiment_id)
        requirements = _requirements(project)
        exported = []
        for run in chosen.runs:
            record = record_of(project.name, run, chosen.tags.get(run.id, {}), chosen.champion)
            done = _export_run(
                client,
                experiment_id,
                project,
                run,
                record,
                known.get(run.id),
                chosen.artifacts.get(run.id, []),
                requirements,
            )
            exported.append(done)
            on_event(events.Log(_line(done), "warning" if done.notes else "info"))
        ids = {r.run_id for r in exported}
        others = {k: v for k, v in known.items() if k in chosen.project_runs and k not in ids}
        unmarked, marked = _mark_champion(client, others, chosen.champion)
    champion_label = next((r.label for r in exported if r.champion), None) or marked
    notes = []
    if chosen.champion is not None and champion_label is None:
        notes.append(
            f"the champion (run {chosen.champion.run_id}) is not in MLflow yet: export it with "
            "--runs to mark it"
        )
    return ExportResult(
        project=project.name,
        tracking_uri=shown,
        experiment=name,
        experiment_id=experiment_id,
        experiment_url=url,
        scope=chosen.scope,
        runs=exported,
        champion=champion_label,
        unmarked=unmarked,
        notes=notes,
    )


def runs_text(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _line(done: ExportedRun) -> str:
    crown = "  ♛ champion" if done.champion else ""
    sent = ", ".join(f"{n} {what}" for what, n in done.logged.items() if n)
    files = f", {len(done.artifacts)} artifacts" if done.artifacts else ""
    detail = f" ({sent}{files})" if sent or files else ""
    text = f"  {done.action:<9} {done.label} -> MLflow run {done.mlflow_run_id}{crown}{detail}"
    return "\n".join([text, *(f"    note: {note}" for note in done.notes)])


def _client(uri: str) -> Any:
    """MLflow's client for `uri`, or DependencyError saying how to install it. MLflow's own
    usage telemetry and its "View run at" lines on stdout are turned off unless set."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "mlflow"
        broken = "" if missing.split(".")[0] == "mlflow" else f" ({missing} is missing)"
        raise DependencyError(
            f"exporting to MLflow needs MLflow's client, which is not installed{broken}: {INSTALL}"
        ) from None
    return MlflowClient(tracking_uri=uri)


def _reachable(uri: str, shown: str) -> None:
    """TransientError at once when nothing listens at an http(s) server's address. Why: MLflow's
    client retries a failed connection 7 times with a doubling backoff, four minutes in all
    (made for servers that rate-limit). Not checked through a proxy: the client goes that way."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=10).close()
    except ValueError:  # a port out of range: MLflow's client says it
        return
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise TransientError(f"cannot reach the MLflow tracking server at {shown}: {why}") from None


@contextlib.contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's exceptions as one-line HajErrors: an unreachable server (or its 5xx) is a
    TransientError, anything else the server refuses a HajError with its message."""
    try:
        yield
    except HajError:
        raise
    except Exception as exc:
        if not _from_mlflow(exc):
            raise
        text = one_line(str(exc), 400)
        chain = [exc, exc.__cause__, exc.__context__]
        code = getattr(exc, "error_code", "")
        if any(c is not None and is_transient(c) for c in chain) or code in (
            "TEMPORARILY_UNAVAILABLE",
            "REQUEST_LIMIT_EXCEEDED",
        ):
            reason = _ERRNO.search(str(exc))  # "[Errno 111] Connection refused" says it all
            why = reason.group(1).strip() if reason else text
            raise TransientError(
                f"cannot reach the MLflow tracking server at {uri}: {why}"
            ) from None
        raise HajError(f"the MLflow tracking server at {uri} refused the export: {text}") from None


def _from_mlflow(exc: BaseException) -> bool:
    """An exception of MLflow's client or of the HTTP stack under it (requests, urllib3)."""
    module = type(exc).__module__.split(".")[0]
    return module in ("mlflow", "requests", "urllib3")


def _experiment(client: Any, name: str, project: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return str(client.create_experiment(name, tags={"haj.project": project}))
    if found.lifecycle_stage == "deleted":
        raise UsageError(
            f"the MLflow experiment {name!r} is deleted: restore it in MLflow "
            "(`mlflow experiments restore`), or export to another with --experiment NAME"
        )
    return str(found.experiment_id)


def _experiment_url(uri: str, experiment_id: str) -> str | None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}/#/experiments/{experiment_id}"


def _haj_runs(client: Any, experiment_id: str) -> dict[str, Any]:
    """haj run id -> the MLflow run exported from it (the oldest, should there be two), from the
    experiment's active runs that carry a haj.run_id tag."""
    found: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string="tags.`haj.run_id` LIKE '%'",
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        for mlrun in page:
            found.setdefault(mlrun.data.tags["haj.run_id"], mlrun)
        token = page.token
        if not token:
            return found


def _export_run(
    client: Any,
    experiment_id: str,
    project: Project,
    run: Run,
    record: Record,
    existing: Any,
    files: list[dict[str, Any]],
    requirements: list[str],
) -> ExportedRun:
    from mlflow.entities import Metric, Param, RunTag

    notes = list(record.notes)
    if existing is None:
        created = client.create_run(
            experiment_id,
            start_time=_ms(run.started_at),
            tags={"haj.run_id": run.id},
            run_name=run.label,
        )
        mlflow_id, status, action = created.info.run_id, created.info.status, "created"
        have_params: dict[str, str] = {}
        have_metrics: dict[str, float] = {}
        have_tags: dict[str, str] = {"haj.run_id": run.id}
        uploaded: set[str] = set()
    else:
        mlflow_id, status, action = existing.info.run_id, existing.info.status, "unchanged"
        have_params = dict(existing.data.params)
        have_metrics = dict(existing.data.metrics)
        have_tags = dict(existing.data.tags)
        uploaded = _artifact_paths(client, mlflow_id)
    params = {k: v for k, v in record.params.items() if k not in have_params}
    for key in sorted(k for k, v in record.params.items() if have_params.get(k, v) != v):
        notes.append(f"param {key} differs in MLflow, which keeps a param's first value")
    metrics = {k: v for k, v in record.metrics.items() if have_metrics.get(k) != v}
    tags = {k: v for k, v in record.tags.items() if have_tags.get(k) != v}
    stale = [k for k in CHAMPION_TAGS if k in have_tags and k not in record.tags]
    stamp = _ms(run.finished_at or run.started_at)
    entities = (
        [Param(k, v) for k, v in params.items()],
        [Metric(k, v, stamp, 0) for k, v in metrics.items()],
        [RunTag(k, v) for k, v in tags.items()],
    )
    for start in range(0, max(map(len, entities)), _BATCH):
        p, m, t = (part[start : start + _BATCH] for part in entities)
        client.log_batch(mlflow_id, metrics=m, params=p, tags=t)
    for key in stale:
        client.delete_tag(mlflow_id, key)
    artifacts = _upload(client, mlflow_id, project, run, files, uploaded, requirements, notes)
    if status != "FINISHED":
        client.set_terminated(mlflow_id, "FINISHED", end_time=stamp)
    if existing is not None and (params or metrics or tags or stale or artifacts):
        action = "updated"
    return ExportedRun(
        run_id=run.id,
        label=run.label,
        model=run.model,
        data_version=run.data_version,
        mlflow_run_id=mlflow_id,
        action=action,
        champion=record.tags.get("haj.champion") == "true",
        logged={"params": len(params), "metrics": len(metrics), "tags": len(tags)},
        artifacts=artifacts,
        notes=notes,
    )


def _mark_champion(
    client: Any, runs: dict[str, Any], champion: Champion | None
) -> tuple[list[str], str | None]:
    """Keep the champion's mark in step on this project's runs already in MLflow that this
    export did not send: off those no longer champion, on the champion. Returns the MLflow runs
    unmarked and the label of the champion marked (None when it is not in MLflow)."""
    unmarked: list[str] = []
    marked = None
    for haj_id, mlrun in runs.items():
        tags = mlrun.data.tags
        mlflow_id = mlrun.info.run_id
        if champion is not None and haj_id == champion.run_id:
            wanted = champion_tags(champion)
            for key, value in wanted.items():
                if tags.get(key) != value:
                    client.set_tag(mlflow_id, key, value)
            marked = tags.get("haj.label", haj_id)
        elif any(key in tags for key in CHAMPION_TAGS):
            for key in CHAMPION_TAGS:
                if key in tags:
                    client.delete_tag(mlflow_id, key)
            unmarked.append(mlflow_id)
    return unmarked, marked


# ---- artifacts ---------------------------------------------------------------------------------
def _artifact_paths(client: Any, mlflow_id: str) -> set[str]:
    """The artifact paths a run already has (the top level, haj/ and haj/artifacts/)."""
    paths: set[str] = set()
    for folder in (None, BUNDLE_DIR, FILES_DIR):
        if folder is None or folder in paths:
            paths.update(info.path for info in client.list_artifacts(mlflow_id, folder))
    return paths


def _upload(
    client: Any,
    mlflow_id: str,
    project: Project,
    run: Run,
    files: list[dict[str, Any]],
    uploaded: set[str],
    requirements: list[str],
    notes: list[str],
) -> list[str]:
    """Upload what the MLflow run lacks: the bundle, the sklearn model, the run's files."""
    sent: list[str] = []
    with tempfile.TemporaryDirectory(prefix="haj-export-") as tmp:
        if run.model_path:
            bundle = project.path / run.model_path
            target = f"{BUNDLE_DIR}/{bundle.name}"
            if target not in uploaded or MODEL_DIR not in uploaded:
                data = _verified(bundle, run.model_sha256, notes)
                if data is not None and target not in uploaded:
                    copy = Path(tmp) / bundle.name
                    copy.write_bytes(data)
                    client.log_artifact(mlflow_id, str(copy), BUNDLE_DIR)
                    sent.append(target)
                if data is not None and MODEL_DIR not in uploaded:
                    folder = Path(tmp) / MODEL_DIR
                    made = _sklearn_model(data, folder, run, project.name, requirements, notes)
                    if made:
                        client.log_artifacts(mlflow_id, str(folder), MODEL_DIR)
                        sent.append(MODEL_DIR)
        for item in files:
            path = project.path / item["path"]
            target = f"{FILES_DIR}/{path.name}"
            if target in uploaded:
                continue
            if path.is_file():
                client.log_artifact(mlflow_id, str(path), FILES_DIR)
            elif path.is_dir():
                client.log_artifacts(mlflow_id, str(path), target)
            else:
                notes.append(f"artifact {item['name']} is missing: {item['path']}")
                continue
            sent.append(target)
    return sent


def _verified(path: Path, sha256: str | None, notes: list[str]) -> bytes | None:
    """The model file's bytes when they hash to the recorded sha256 (else a note and None):
    only the model haj trained leaves, and only those bytes are unpickled."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        notes.append(f"model file not exported: {exc.strerror or exc}: {path}")
        return None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        notes.append(
            f"model file not exported: {path.name} does not hash to the sha256 recorded at "
            "training (changed since)"
        )
        return None
    return data


def _requirements(project: Project) -> list[str]:
    """What the MLflow model needs: this scikit-learn, numpy, pandas and cloudpickle, and the
    project's requirements.txt (a model.py estimator from xgboost, say)."""
    from importlib import metadata

    from engine import deps

    pinned = []
    for name in ("scikit-learn", "numpy", "pandas", "cloudpickle"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            pinned.append(f"{name}=={metadata.version(name)}")
    return pinned + [r for r in deps.requirements(project) if not r.startswith("-")]


def _sklearn_model(
    data: bytes,
    folder: Path,
    run: Run,
    project: str,
    requirements: list[str],
    notes: list[str],
) -> bool:
    """Save the bundle's pipeline as an MLflow sklearn model in `folder` (cloudpickle, with a
    signature of the bundle's features); False, with a note, when it cannot be."""
    import io
    import logging

    try:
        import joblib
        import mlflow.sklearn
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        bundle = joblib.load(io.BytesIO(data))
        signature = ModelSignature(
            inputs=Schema(
                [
                    ColSpec("double" if f["kind"] == "numeric" else "string", f["name"])
                    for f in bundle["features"]
                ]
            )
        )
        quiet = logging.getLogger("mlflow.sklearn")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its warning that a pickle runs code when loaded
        try:
            mlflow.sklearn.save_model(
                bundle["pipeline"],
                str(folder),
                serialization_format="cloudpickle",
                signature=signature,
                pip_requirements=requirements,
                metadata={"haj.run_id": run.id, "haj.project": project},
            )
        finally:
            quiet.setLevel(level)
    except Exception as exc:  # unpickling user code, or a pipeline MLflow cannot save
        notes.append(f"no MLflow model (the bundle is exported): {type(exc).__name__}: {exc}")
        return False
    return True


def _ms(stamp: str) -> int:
    """An ISO time from the store as milliseconds since the epoch (MLflow's times)."""
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)
