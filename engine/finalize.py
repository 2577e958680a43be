"""`haj finalize`: refit the champion's pipeline on every row of its data version and crown it.

Why: a champion was fitted on the training split only; once it is chosen, the held-out rows
have done their job and the model may as well learn from them. The refit is a new run linked to
its source (runs.refit_of), with its own model file (sha256 recorded, so serving verifies it).
It cannot be scored (no row is left out), so its metrics are its source's, copied and labelled
"finalized" wherever runs are shown.

`finalize()` is the API side (it holds the project's lock through engine.api): it checks the
champion, runs `engine.runner finalize` (the fit runs in the runner, with the project's own
interpreter, as training does) and crowns the new run.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from engine import events
from engine.errors import DataError, Hint, NoChampion, UsageError
from engine.project import Project
from engine.results import CrownResult


def finalize(
    project: Project,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> CrownResult:
    """Refit the champion on all rows of its data version (in the runner) and crown the refit
    by the metric the champion was crowned by."""
    from engine import champion as champions
    from engine import runner_client
    from engine.store import Store

    project.read_config()
    if not project.db_path.exists():
        raise NoChampion("no champion to finalize", Hint("train", project.name))
    with Store(project.db_path) as store:
        current = store.champion()
        source = store.run(current.run_id) if current else None
    if current is None or source is None:
        raise NoChampion("no champion to finalize", Hint("crown", project.name))
    if source.refit_of:
        raise UsageError(
            f"the champion {source.label} is already finalized (refit of run {source.refit_of} "
            f"on all rows of {source.data_version})"
        )
    if not source.data_version:
        raise DataError(f"the champion {source.label} has no recorded data version to refit on")
    payload = runner_client.run(project, "finalize", {"run_id": source.id}, on_event, cancel)
    return champions.crown_run(project, payload["run_id"], current.metric, reason="finalize")


def finalize_in_process(project: Project, source_id: str, emit: events.Callback) -> dict[str, Any]:
    """Inside the runner: refit run `source_id`'s pipeline (a clone of the fitted one: same
    preprocessing, same estimator parameters) on every row of its data version, save the bundle
    and record the new run; returns {"run_id", "source", "data_version", "rows"}."""
    from engine.fsutil import sha256_file
    from engine.store import Store, now_iso
    from engine.training import TrainLog, _training_data

    config = project.read_config()
    with Store(project.db_path) as store:
        source = store.run(source_id)
    if source is None or not source.model_path:
        raise DataError(f"run {source_id} has no model file to refit")
    path = project.path / source.model_path
    if not path.exists() or sha256_file(path) != source.model_sha256:
        raise DataError(
            f"the model file of run {source.id} is missing or does not match its sha256"
        )
    log = TrainLog(project, emit)
    version, X, y, spec = _training_data(project, config, source.data_version, log)
    pipeline, bundle = _unfitted(path, spec, version.id)
    session = uuid.uuid4().hex[:12]
    log.start()
    with Store(project.db_path) as store:
        (run,) = store.start_runs(
            session=session,
            models=[(source.model, source.params)],
            prediction=source.prediction,
            data_version=version.id,
            pid=os.getpid(),
            refit_of=source.id,
        )
        log(run.label, version.id, f"refitting {source.label} on all {len(y)} rows of {version.id}")
        try:
            started = time.perf_counter()
            started_at = now_iso()
            pipeline.fit(X, y)
            fit_seconds = time.perf_counter() - started
            target = project.models_dir / f"{run.id}.joblib"
            _save(bundle, pipeline, run.id, source, target)
        except KeyboardInterrupt:
            store.close_unfinished(session, "cancelled", "cancelled by the user")
            log.close()
            raise
        except Exception as exc:  # user models may raise anything: recorded, then said
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            store.finish_run(run.id, status="failed", error=message)
            log(run.label, version.id, f"failed: {message}", level="error")
            log.close()
            raise DataError(f"finalize failed: {message}") from None
        store.finish_run(
            run.id,
            status="finished",
            metrics=source.metrics,
            metrics_std=source.metrics_std,
            test_metrics=source.test_metrics,
            cv_folds=source.cv_folds,
            test_rows=source.test_rows,
            notes=source.notes or None,
            fit_seconds=fit_seconds,
            duration_seconds=time.perf_counter() - started,
            model_path=str(target.relative_to(project.path)),
            model_sha256=sha256_file(target),
            started_at=started_at,
        )
    log(
        run.label,
        version.id,
        f"finalized in {fit_seconds:.2f}s: a refit of {source.label} on all rows; its metrics "
        f"are {source.label}'s (no test set is left)",
    )
    log.close()
    return {"run_id": run.id, "source": source.id, "data_version": version.id, "rows": len(y)}


def _unfitted(path: Path, spec: list[dict[str, str]], version_id: str) -> tuple[Any, dict]:
    """(an unfitted clone of the bundle's pipeline, the bundle), after checking the data still
    gives the features the pipeline was trained on."""
    import joblib
    from sklearn.base import clone

    bundle = joblib.load(path)
    if bundle.get("features") != spec:
        raise DataError(
            f"{version_id} no longer gives the features the champion was trained on: "
            "train and crown again instead"
        )
    return clone(bundle["pipeline"]), bundle


def _save(bundle: dict[str, Any], pipeline: Any, run_id: str, source: Any, target: Path) -> None:
    """The source's bundle with the refitted pipeline, the new run id and the link to the source:
    the server reads it as any other model."""
    from datetime import datetime

    from engine.training import _save_bundle

    refit = {
        **bundle,
        "pipeline": pipeline,
        "run_id": run_id,
        "refit_of": source.id,
        "trained_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    _save_bundle(refit, target)
