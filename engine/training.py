"""Train all or selected models of a project, in parallel, recording each run as it finishes.

`train()` is the API (CLI, TUI): it starts `engine.runner train` and relays its events.
`train_in_process()` runs inside that runner: it picks the data version, splits once, fans the
models out with joblib, or as a Dask cluster's tasks (engine.cluster_train), and records each
result in its own transaction the moment it arrives. Ctrl-C / cancel marks the unfinished runs
cancelled; a killed runner leaves them 'running' with its pid, and the store reaps them as
failed.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import events
from engine.errors import DataError
from engine.numbers import metric_text
from engine.project import Project
from engine.sessions import STARTED, log_line


def train(
    project: Project,
    models: list[str] | None = None,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
    data: str | None = None,
    cv: int | None = None,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Train on `data` (a raw or processed version id; default: the current raw version), with
    `cv`-fold cross-validation on the training split when given; returns {"session",
    "data_version", "runs": [...]} with each run's outcome. `cluster`: a Dask scheduler's
    address for this training (else `[training] backend` and `scheduler` say where it runs)."""
    from engine import runner_client
    from engine.cluster import configured_address, normalize, probe
    from engine.data import select_version
    from engine.validation import check_folds

    config = project.read_config()
    check_folds(cv)
    select_version(project, data)  # no data, or no such version: said at once, not by a runner
    address = (
        normalize(cluster)
        if cluster
        else configured_address(config["training"], project.path.parent)
    )
    if address:
        probe(address)  # a scheduler nobody answers: one line within 3 s, before any runner
    options = {"models": models or [], "data": data, "cv": cv, "cluster": address}
    return runner_client.run(project, "train", options, on_event, cancel)


class TrainLog:
    """`[DATETIME PROJECT (MODEL-#) DATA_VERSION] message` lines to logs/train.log and events.

    Lines are shown at once but reach the file only from start() on (held until then): a train
    that stops on a user error before any model starts changes nothing on disk.
    """

    def __init__(self, project: Project, emit: events.Callback) -> None:
        self._path = project.logs_dir / "train.log"
        self._file: Any = None
        self._held: list[str] = []
        self._project = project.name
        self._emit = emit

    def __call__(
        self, label: str, data_version: str | None, message: str, level: str = "info"
    ) -> None:
        line = log_line(self._project, label, data_version, message)
        if self._file is None:
            self._held.append(line)
        else:
            self._file.write(line + "\n")
            self._file.flush()
        self._emit(events.Log(line, level=level))

    def relay(self, label: str, data_version: str) -> events.Callback:
        """A callback for other work's events (processing): its log lines become lines here."""

        def on_event(event: events.Event) -> None:
            if isinstance(event, events.Log):
                self(label, data_version, event.message, event.level)
            else:
                self._emit(event)

        return on_event

    def start(self) -> None:
        """Write the held lines and every later one to logs/train.log."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115
        self._file.writelines(line + "\n" for line in self._held)
        self._file.flush()
        self._held = []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _params_of(estimator: Any) -> dict[str, Any]:
    params = estimator.get_params(deep=False)
    return {
        k: v if isinstance(v, bool | int | float | str | type(None)) else repr(v)
        for k, v in params.items()
    }


def train_in_process(
    project: Project,
    wanted: list[str] | None,
    emit: events.Callback,
    data: str | None = None,
    cv: int | None = None,
    redo: dict[str, Any] | None = None,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Train the `wanted` models (default: all) on `data` inside the runner; returns
    {"session", "data_version", "runs": [...]}. Everything that can fail on the user's data or
    config fails before the first run is recorded. `redo` (haj rerun, engine.rerun): the
    seed, test split, parameters and tags of the run trained again."""
    from engine import catalog, tags, validation

    config = project.read_config()
    prediction = config["project"]["prediction"]
    training = config["training"]
    training.update((redo or {}).get("training", {}))
    extra = catalog.load_project_models(project.code_path("model"), prediction)
    names = catalog.select(prediction, extra, wanted)  # an unknown name fails before any write

    log = TrainLog(project, emit)
    version, X, y, spec = _training_data(project, config, data, log)
    classes, stratify = _classes(y, config["data"]["target"], prediction)
    if classes is not None and stratify is None:
        log("session", version.id, _unstratified(y, config["data"]["target"]), "warning")
    split = _split(X, y, training, stratify)
    validation.check_rows(cv, split[1])
    estimators = {
        name: extra[name]
        if name in extra
        else catalog.build(prediction, name, training["random_state"])
        for name in names
    }
    if redo:
        from engine.rerun import restore_params

        restore_params(estimators, redo.get("params") or {})
    project.models_dir.mkdir(parents=True, exist_ok=True)
    _remove_partial_models(project)
    common = session_task(
        project,
        config,
        version,
        spec,
        classes,
        split,
        custom_metrics=catalog.project_metrics(project.code_path("model")),  # or None
        cv=cv,
    )
    session = uuid.uuid4().hex[:12]
    common["tags"] = {**tags.session_tags(project, config, session), **(redo or {}).get("tags", {})}
    log.start()
    outcomes = _run_session(
        project, session, estimators, common, split, training, log, emit, cluster=cluster
    )
    finished = sum(1 for o in outcomes if o["status"] == "finished")
    log("session", version.id, f"done: {finished} finished, {len(outcomes) - finished} failed")
    log.close()
    return {
        "session": session,
        "data_version": version.id,
        "runs": [
            {
                key: o.get(key)
                for key in ("run_id", "model", "status", "metrics", "error", "duration_seconds")
            }
            for o in outcomes
        ],
    }


def _training_data(
    project: Project, config: dict[str, Any], data: str | None, log: TrainLog
) -> tuple[Any, Any, Any, list[dict[str, str]]]:
    """(processed version, X, y, feature spec). A raw version is processed first with the
    current processor.py and target (or a processed version made that way is reused), so a
    model never trains on data its recipe no longer describes. Rows without a target are
    dropped; a regression target must be numeric."""
    import numpy as np

    from engine.data import load_frame, process_version, select_version
    from engine.features import feature_spec, to_matrix
    from engine.store import DataVersion

    target = config["data"]["target"]
    version = select_version(project, data)
    if version.kind == "raw":
        processed = process_version(
            project, config, version.id, log.relay("process", version.id), reuse=True
        )
        version = DataVersion(**processed["version"])
    frame = load_frame(project.path / version.path, version.format)
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is not in {version.id}")
    frame = frame[frame[target].notna()]
    X_frame = frame.drop(columns=[target])
    y = frame[target].to_numpy()
    if config["project"]["prediction"] == "regression":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"target {target!r} is not numeric: is this a classification project?"
            ) from None
    spec = feature_spec(X_frame)
    return version, to_matrix(X_frame, spec), y, spec


def _classes(y: Any, target: str, prediction: str) -> tuple[list[Any] | None, Any]:
    """(class labels, what to stratify the split by) of a classification target; (None, None)
    for a regression. A target with one class, or with so many that it looks continuous, is a
    user error said before training, not a failure of every model."""
    import numpy as np

    if prediction != "classification":
        return None, None
    values, counts = np.unique(y.astype(str) if y.dtype == object else y, return_counts=True)
    if len(values) < 2:
        raise DataError(f"target {target!r} has a single class: nothing to classify")
    if len(values) > max(50, len(y) // 2):
        raise DataError(
            f"target {target!r} has {len(values)} distinct values: is this a regression project?"
        )
    # stratified only when every class can appear on both sides of the split
    return values.tolist(), y if counts.min() >= 2 else None


def _unstratified(y: Any, target: str) -> str:
    """Why the test split is not stratified: the classes with a single row, named."""
    import numpy as np

    values, counts = np.unique(y.astype(str) if y.dtype == object else y, return_counts=True)
    lonely = [str(v) for v, c in zip(values, counts, strict=True) if c < 2]
    shown = ", ".join(repr(v) for v in lonely[:5]) + (", ..." if len(lonely) > 5 else "")
    return (
        f"{target!r} has {len(lonely)} class(es) with a single row ({shown}): the test split "
        "cannot keep the class proportions (not stratified), and a class seen once cannot be "
        "learned; collect more rows of it or drop it in processor.py"
    )


def _intake_of(project: Project, version: Any) -> dict[str, Any] | None:
    """What the models trained on `version` accept at serving time (engine.intake): the
    fitted processing and the raw columns, or None for data processed before haj kept it."""
    from engine import intake

    taken = intake.load(project.path / version.path)
    if taken is None:
        return None
    return {**taken.meta(), "processor": taken.processor}


def _split(X: Any, y: Any, training: dict[str, Any], stratify: Any) -> tuple[Any, Any, Any, Any]:
    """(X_train, y_train, X_test, y_test), fit_and_save's order: one split shared by every
    model, so their scores compare."""
    from sklearn.model_selection import train_test_split

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X,
            y,
            test_size=training["test_size"],
            random_state=training["random_state"],
            stratify=stratify,
        )
    except ValueError as exc:
        raise DataError(f"cannot split the data: {exc}") from None
    return X_train, y_train, X_test, y_test


def _remove_partial_models(project: Project) -> None:
    """Delete the temporary files of bundles whose writing was interrupted (a killed worker).
    Training holds the project's lock (engine.lock), so no other session is writing here: a
    .tmp file is this session's or a dead one's."""
    for stale in project.models_dir.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _run_session(
    project: Project,
    session: str,
    estimators: dict[str, Any],
    common: dict[str, Any],
    split: tuple[Any, Any, Any, Any],
    training: dict[str, Any],
    log: TrainLog,
    emit: events.Callback,
    cluster: str | None = None,
) -> list[dict[str, Any]]:
    """Record the runs, fan the models out and record each result the moment it arrives (in its
    own transaction): with joblib's worker processes, or as the tasks of a Dask cluster
    (engine.cluster_train) when `[training] backend = "dask"` or `cluster` (a scheduler's
    address) says so; the cluster is reached and its workers' packages checked before any run
    is recorded. Ctrl-C records the unfinished runs as cancelled and stops the workers (or
    cancels the cluster's tasks); returns the results in the order they finished."""
    from engine import local_pool, tags
    from engine.cluster import configured_address
    from engine.store import Store

    address = cluster or configured_address(training, project.path.parent)
    remote = _connect_cluster(project, address) if address else None
    version_id = common["data_version"]
    X_train, X_test = split[0], split[2]
    try:
        with Store(project.db_path) as store:
            store.reap_orphans()
            runs = store.start_runs(
                session=session,
                models=[(name, _params_of(estimator)) for name, estimator in estimators.items()],
                prediction=common["prediction"],
                data_version=version_id,
                pid=os.getpid(),
            )
            tags.record(store, project, session, [run.id for run in runs], common.get("tags"))
            by_id = {run.id: run for run in runs}
            n_jobs = training["n_jobs"]
            cores = os.cpu_count() or 1
            workers = min(len(runs), cores if n_jobs < 0 else n_jobs)
            where = f"with {workers} worker(s)" if remote is None else f"on {remote.describe()}"
            log(
                "session",
                version_id,
                f"training {len(runs)} model(s) on {version_id} "
                f"({len(X_train)} train / {len(X_test)} test rows, {len(common['spec'])} "
                f"features) {where}",
            )
            if remote is None:
                emit(events.TrainBackend("local", workers=workers, threads=workers))
            else:
                emit(remote.backend_event())
                log("session", version_id, remote.workers_line())
            for run in runs:
                emit(
                    events.RunQueued(
                        run_id=run.id, model=run.model, label=run.label, data_version=version_id
                    )
                )
                log(run.label, version_id, f"queued (run {run.id})")
            emit(events.Progress(done=0, total=len(runs), label="training"))
            tasks = {run.id: _task(project, run, estimators, common) for run in runs}
            if remote is None:
                happenings = local_pool.fits(runs, tasks, split, workers, fit_and_save)
            else:
                from engine.sessions import estimates

                expected = estimates(project, list(estimators), version_id)
                happenings = remote.fits(session, runs, tasks, common, split, expected)
            outcomes: list[dict[str, Any]] = []
            try:
                for kind, subject, detail in happenings:
                    if kind == "started":  # RunStarted and a `started` line (engine.sessions)
                        emit(
                            events.RunStarted(
                                run_id=subject.id,
                                model=subject.model,
                                label=subject.label,
                                data_version=version_id,
                            )
                        )
                        log(subject.label, version_id, STARTED)
                        if detail:
                            log(subject.label, version_id, detail)
                    elif kind == "workers":  # the cluster's workers changed
                        log("session", version_id, subject, level="warning")
                        emit(detail)
                    else:
                        run = by_id[subject["run_id"]]
                        _record_result(project, store, run, subject, version_id, log)
                        outcomes.append(subject)
                        _emit_finished(emit, run, subject)
                        emit(events.Progress(done=len(outcomes), total=len(runs), label="training"))
            except KeyboardInterrupt:
                count = store.close_unfinished(session, "cancelled", "cancelled by the user")
                log(
                    "session",
                    version_id,
                    f"cancelled: {count} unfinished run(s) recorded as cancelled",
                    level="warning",
                )
                if remote is None:
                    local_pool.stop_workers()
                else:
                    remote.cancel()
                log.close()
                raise
            finally:
                _remove_partial_models(project)
    finally:
        if remote is not None:
            remote.close()
    return outcomes


def _connect_cluster(project: Project, address: str) -> Any:
    """The Dask backend for one session (engine.cluster_train), its workers checked."""
    from engine.cluster_train import ClusterTraining, Functions

    return ClusterTraining.connect(address, project, Functions(fit_and_save, _fit, _score))


def session_task(
    project: Project,
    config: dict[str, Any],
    version: Any,
    spec: Any,
    classes: list[Any] | None,
    split: tuple[Any, ...],
    custom_metrics: Any,
    cv: int | None = None,
) -> dict[str, Any]:
    """What every fit of a training session (or of a tune's refit) carries to fit_and_save and
    into its bundle: the features, the target's classes, where the data came from, and the
    reference profile every drift report compares with."""
    from engine.features import value_domain
    from engine.profile import reference_profile

    prediction = config["project"]["prediction"]
    random_state = config["training"]["random_state"]
    return {
        "spec": spec,
        "prediction": prediction,
        "target": config["data"]["target"],
        "classes": classes,
        "data_version": version.id,
        "project": project.name,
        "intake": _intake_of(project, version),
        "domain": value_domain(split[0], spec),
        "profile": reference_profile(
            split[0],
            spec,
            target=split[1],
            target_kind="categorical" if prediction == "classification" else "numeric",
            seed=random_state,
        ),
        "cv": {"folds": cv, "random_state": random_state} if cv else None,
        "custom_metrics": custom_metrics,
        "random_state": random_state,  # seeds the artifacts' samples
    }


def _task(project: Project, run: Any, estimators: dict[str, Any], common: dict[str, Any]) -> dict:
    """What one worker needs to fit, score and save one run's model."""
    return {
        **common,
        "run_id": run.id,
        "model": run.model,
        "estimator": estimators[run.model],
        "model_path": str(project.models_dir / f"{run.id}.joblib"),
    }


def _record_result(
    project: Project, store: Any, run: Any, result: dict[str, Any], version_id: str, log: TrainLog
) -> None:
    """One finished (or failed) model: its run row, metrics and notes in one transaction, and
    its line in logs/train.log."""
    model_rel = (
        str(Path(result["model_path"]).relative_to(project.path))
        if result.get("model_path")
        else None
    )
    store.finish_run(
        run.id,
        status=result["status"],
        metrics=result.get("metrics"),
        error=result.get("error"),
        fit_seconds=result.get("fit_seconds"),
        duration_seconds=result.get("duration_seconds"),
        model_path=model_rel,
        model_sha256=result.get("sha256"),
        started_at=result.get("started_at"),
        notes=result.get("notes") or None,
        metrics_std=result.get("metrics_std"),
        test_metrics=result.get("test_metrics"),
        cv_folds=result.get("cv_folds"),
        test_rows=result.get("test_rows"),
    )
    _record_artifacts(project, store, run, result)
    if result["status"] == "finished":
        std = result.get("metrics_std") or {}
        scores = " ".join(
            f"{k}={metric_text(k, v, std.get(k))}".replace(" ± ", "±")
            for k, v in result["metrics"].items()
        )
        if result.get("cv_folds"):
            scores += f" (mean±std of {result['cv_folds']} CV folds)"
        log(run.label, version_id, f"finished in {result['duration_seconds']:.2f}s: {scores}")
    else:
        log(run.label, version_id, f"failed: {result['error']}", level="error")
    for line in result.get("warnings") or []:
        log(run.label, version_id, f"warning: {line}", level="warning")


def _record_artifacts(project: Project, store: Any, run: Any, result: dict[str, Any]) -> None:
    """A finished run's artifact files (engine.artifacts) listed in the store, and the
    directions of model.py's metrics it recorded (merged into the project's record of them,
    which the leaderboard and crowning read)."""
    from engine.metrics import CUSTOM_RECORD

    for name, kind, path in result.get("artifacts") or []:
        store.add_artifact(run.id, name, kind, str(Path(path).relative_to(project.path)))
    if result.get("custom_metrics"):
        known = store.get_record(CUSTOM_RECORD) or {}
        known[run.prediction] = {**known.get(run.prediction, {}), **result["custom_metrics"]}
        store.set_record(CUSTOM_RECORD, known)


def _emit_finished(emit: events.Callback, run: Any, result: dict[str, Any]) -> None:
    emit(
        events.RunFinished(
            run_id=run.id,
            model=run.model,
            label=run.label,
            status=result["status"],
            metrics=result.get("metrics") or {},
            duration_seconds=result.get("duration_seconds"),
            error=result.get("error"),
        )
    )


def fit_and_save(
    task: dict[str, Any], X_train: Any, y_train: Any, X_test: Any, y_test: Any
) -> dict[str, Any]:
    """Fit one model in a worker, score it on the test split and save its bundle (atomically).

    Never raises: a failure comes back as a 'failed' result with its error, so the others go on.
    A metric that could not be computed (roc_auc without class probabilities, or with a class
    missing from the test split) is left out, and why is in the result's "notes". With
    task["cv"], the model is first cross-validated on the training split (engine.validation):
    its metrics are then the folds' means, with their std and the test scores beside them.
    """
    from engine import store
    from engine.fsutil import sha256_file

    started = time.perf_counter()
    # When this worker really began: the run was recorded when it was queued.
    base = {"run_id": task["run_id"], "model": task["model"], "started_at": store.now_iso()}
    # Warnings (a ConvergenceWarning...) come back as the run's lines, one each: printed by the
    # worker they would reach the log as two stderr lines, the second the warning's source line.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipeline, fit_seconds = _fit(task, X_train, y_train, started)
            custom = task.get("custom_metrics")
            metrics, notes, *predicted = _predict_and_score(
                pipeline, task["prediction"], X_test, y_test, custom
            )
            selection = _cross_validated(task, X_train, y_train, metrics, notes)
            path = Path(task["model_path"])
            _save_bundle(_bundle(task, pipeline, metrics, _profile(task, pipeline, X_test)), path)
            sha256 = sha256_file(path)
            kept, unkept = _artifacts(task, pipeline, metrics, (X_test, y_test, *predicted))
        except Exception as exc:  # user models may raise anything: see the docstring
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            return {
                **base,
                "status": "failed",
                "error": message,
                "duration_seconds": time.perf_counter() - started,
                "warnings": _warning_lines(caught),
            }
    base["warnings"] = _warning_lines(caught) + unkept
    return {
        **base,
        **kept,
        "status": "finished",
        "metrics": metrics,
        "notes": notes,
        "fit_seconds": fit_seconds,
        "duration_seconds": time.perf_counter() - started,
        "model_path": str(path),
        "sha256": sha256,
        "test_rows": len(y_test),
        **selection,
    }


def _warning_lines(caught: list[Any], most: int = 5) -> list[str]:
    """The distinct warnings of a fit, one line each (`ConvergenceWarning: ...`), at most
    `most` of them."""
    lines: list[str] = []
    for warning in caught:
        text = str(warning.message).strip().splitlines()
        line = f"{warning.category.__name__}: {text[0] if text else ''}"[:300]
        if line not in lines:
            lines.append(line)
    if len(lines) > most:
        lines = [*lines[:most], f"... and {len(lines) - most} more warning(s)"]
    return lines


def _cross_validated(
    task: dict[str, Any],
    X_train: Any,
    y_train: Any,
    metrics: dict[str, float],
    notes: dict[str, str],
) -> dict[str, Any]:
    """With task["cv"]: cross-validate on the training split and make the folds' means the
    run's metrics (in place), the test scores kept as "test_metrics"; else nothing."""
    cv = task.get("cv")
    if not cv:
        return {}
    from functools import partial

    from engine.validation import cross_validate

    score = partial(_score, custom=task.get("custom_metrics"))  # model.py's metrics too
    means, stds, cv_notes = cross_validate(
        task, X_train, y_train, cv["folds"], cv.get("random_state"), _fit, score
    )
    test = dict(metrics)
    metrics.clear()
    metrics.update(means)
    for metric, why in cv_notes.items():
        notes.setdefault(metric, why)
    return {"metrics_std": stds, "test_metrics": test, "cv_folds": cv["folds"]}


def _fit(task: dict[str, Any], X_train: Any, y_train: Any, started: float) -> tuple[Any, float]:
    """The model wrapped in haj's preprocessing pipeline, fitted; and the seconds it took."""
    from sklearn.base import clone

    from engine.features import make_pipeline

    pipeline = make_pipeline(task["spec"], clone(task["estimator"]))
    pipeline.fit(X_train, y_train)
    return pipeline, time.perf_counter() - started


def _score(
    pipeline: Any, prediction: str, X_test: Any, y_test: Any, custom: Any = None
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, notes) on the test split; notes say why a metric is missing. `custom`:
    model.py's metrics() (catalog.project_metrics), whose metrics are recorded too."""
    return _predict_and_score(pipeline, prediction, X_test, y_test, custom)[:2]


def _predict_and_score(
    pipeline: Any, prediction: str, X_test: Any, y_test: Any, custom: Any = None
) -> tuple[dict[str, float], dict[str, str], Any, Any]:
    """_score's (metrics, notes), and the predictions they came from: (y_pred, y_score)."""
    from engine.metrics import evaluate

    y_pred = pipeline.predict(X_test)
    y_score, note = None, None
    if prediction == "classification":
        y_score, note = class_scores(pipeline, X_test)
    metrics, notes = evaluate(
        prediction,
        y_test,
        y_pred,
        y_score,
        classes=list(getattr(pipeline, "classes_", [])) or None,
        custom=custom["function"] if custom else None,
    )
    if note and "roc_auc" not in metrics:
        notes.setdefault("roc_auc", note)
    return metrics, notes, y_pred, y_score


def _artifacts(
    task: dict[str, Any],
    pipeline: Any,
    metrics: dict[str, float],
    holdout: tuple[Any, Any, Any, Any],
) -> tuple[dict[str, Any], list[str]]:
    """The run's artifacts (engine.artifacts) on its `holdout` (X_test, y_test, y_pred,
    y_score), written under its folder: ({"artifacts": [(name, kind, path)], "custom_metrics":
    {name: higher is better}}, warning lines). Never raises: a run is not failed by what only
    describes it."""
    from engine import artifacts
    from engine.metrics import METRICS

    out: dict[str, Any] = {}
    custom = task.get("custom_metrics")
    if custom:
        directions = custom["higher_is_better"]
        out["custom_metrics"] = {m: directions.get(m, True) for m in metrics if m not in METRICS}
    try:
        found = artifacts.compute(
            pipeline, task["prediction"], task["spec"], *holdout, seed=task.get("random_state")
        )
        path = artifacts.write(found, artifacts.run_folder(task["model_path"], task["run_id"]))
    except Exception as exc:  # see the docstring
        return out, [f"artifacts not kept: {type(exc).__name__}: {exc}".splitlines()[0][:300]]
    out["artifacts"] = [(artifacts.FILE_NAME, artifacts.KIND, str(path))]
    return out, []


def class_scores(pipeline: Any, X: Any) -> tuple[Any, str | None]:
    """(class probabilities, None), or (None, why there are none): a model without
    predict_proba (RidgeClassifier, SVC without probability=True), or one whose predict_proba
    refuses these inputs. Only those failures are expected; anything else is a bug and raises."""
    import numpy as np

    if not hasattr(pipeline, "predict_proba"):
        return None, "roc_auc not computed: the model gives no class probabilities"
    try:
        return np.asarray(pipeline.predict_proba(X)), None
    except (AttributeError, NotImplementedError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return None, f"roc_auc not computed: predict_proba failed ({reason})"


def _profile(task: dict[str, Any], pipeline: Any, X_test: Any) -> dict[str, Any] | None:
    """The session's reference profile with this model's own predictions on the holdout (what
    prediction drift compares live predictions with)."""
    from engine.profile import with_predictions

    profile = task.get("profile")
    if profile is None:
        return None
    kind = "categorical" if task["prediction"] == "classification" else "numeric"
    return with_predictions(profile, pipeline.predict(X_test), kind)


def _bundle(
    task: dict[str, Any],
    pipeline: Any,
    metrics: dict[str, float],
    profile: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a model file holds: the fitted pipeline and everything the server needs to take raw
    feature values by name (features, target, classes), plus where it came from."""
    import sklearn

    from engine.features import BUNDLE_FORMAT

    return {
        "format": BUNDLE_FORMAT,
        "pipeline": pipeline,
        "features": task["spec"],
        "target": task["target"],
        "prediction": task["prediction"],
        "classes": [
            c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])
        ]
        or None,
        "model": task["model"],
        "run_id": task["run_id"],
        "project": task["project"],
        "data_version": task["data_version"],
        "intake": task.get("intake"),  # the processing to apply to raw rows (engine.intake)
        "domain": task.get("domain"),  # what training saw per feature: unseen values are flagged
        "profile": profile,  # the reference for drift (engine.profile), inside the bundle
        "metrics": metrics,
        "sklearn_version": sklearn.__version__,
        "trained_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _save_bundle(bundle: dict[str, Any], path: Path) -> None:
    """Write the bundle to a temporary file beside `path`, then rename it into place: a killed
    worker leaves a .tmp file (removed by the next train), never a half-written model."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    _dump_bundle(bundle, tmp)
    os.replace(tmp, path)


def _dump_bundle(bundle: dict[str, Any], path: str) -> None:
    """joblib.dump, or cloudpickle when the estimator's class was defined in model.py.

    Why: model.py is loaded from a file, not imported by name, so pickle cannot refer to its
    classes ("Can't pickle <class 'haj_project_model.X'>"); cloudpickle stores such a class by
    value, and joblib.load reads the result without model.py (the server needs no project code).
    """
    import pickle

    import joblib

    try:
        joblib.dump(bundle, path, compress=3)
    except (pickle.PicklingError, AttributeError, TypeError):
        try:
            import cloudpickle  # a dependency of joblib >= 1.5
        except ImportError:  # older joblib vendors it
            from joblib.externals import cloudpickle  # type: ignore[no-redef]

        with open(path, "wb") as handle:
            cloudpickle.dump(bundle, handle, protocol=pickle.HIGHEST_PROTOCOL)
