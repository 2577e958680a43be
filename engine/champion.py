"""Crown the champion: the best finished run by a metric, recorded with its history.

The store is the truth. For scripts and containers the champion is also reachable at a stable
path, models/champion.joblib: a relative symlink to the run's file (swapped atomically, so
crowning costs no copy of a possibly large model), described by models/champion.json. The
server reads the champion from the store and checks the file's sha256 before loading it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from engine.errors import DataError, Hint, NoChampion
from engine.fsutil import atomic_write_text, sha256_file
from engine.metrics import check_metric
from engine.project import Project
from engine.results import CrownResult, RunnerUp
from engine.store import Store


def crown(project: Project, metric: str | None = None) -> CrownResult:
    """Crown the best run by `metric` (default: the project's metric); returns what happened."""
    config = project.read_config()
    prediction = config["project"]["prediction"]
    chosen = check_metric(metric or config["training"]["metric"], prediction)
    if not project.db_path.exists():
        raise NoChampion("no runs yet", Hint("train", project.name))
    with Store(project.db_path) as store:
        store.reap_orphans()
        best = store.best_runs(
            chosen.name, higher_is_better=chosen.higher_is_better, prediction=prediction, limit=2
        )
        if not best:
            raise NoChampion(
                f"no finished {prediction} run has {chosen.name}", Hint("train", project.name)
            )
        run_id, _model, value = best[0]
        run = store.run(run_id)
        assert run is not None and run.model_path
        source = project.path / run.model_path
        if not source.exists():
            raise DataError(f"the model file of run {run_id} is missing: {source}")
        if sha256_file(source) != run.model_sha256:
            raise DataError(f"the model file of run {run_id} does not match its recorded sha256")
        previous = store.champion()
        _publish(project, source, run.to_dict(), chosen.name, value)
        champion = store.crown(run_id, chosen.name, value)
    runner_up = RunnerUp(*best[1]) if len(best) > 1 else None
    return CrownResult(
        champion=champion,
        run=run,
        metric=chosen.name,
        higher_is_better=chosen.higher_is_better,
        value=value,
        runner_up=runner_up,
        margin=abs(value - runner_up.value) if runner_up else None,
        previous=previous,
        path=str(project.champion_path),
    )


def _publish(project: Project, source: Any, run: dict[str, Any], metric: str, value: float) -> None:
    tmp = project.champion_path.with_name(".champion.joblib.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(source, project.champion_path.parent), tmp)
    tmp.replace(project.champion_path)
    info = {
        "run_id": run["id"],
        "model": run["model"],
        "metric": metric,
        "value": value,
        "sha256": run["model_sha256"],
        "data_version": run["data_version"],
        "source": run["model_path"],
    }
    # Derived from the store (rewritten at each crowning): atomic, but not worth an fsync.
    atomic_write_text(
        project.models_dir / "champion.json", json.dumps(info, indent=2) + "\n", sync=False
    )


def current(project: Project) -> dict[str, Any] | None:
    if not project.db_path.exists():
        return None
    with Store(project.db_path) as store:
        champion = store.champion()
        return champion.to_dict() if champion else None


def history(project: Project) -> list[dict[str, Any]]:
    if not project.db_path.exists():
        return []
    with Store(project.db_path) as store:
        return [event.to_dict() for event in store.champion_history()]


def clear(project: Project, reason: str) -> None:
    if project.db_path.exists():
        with Store(project.db_path) as store:
            store.clear_champion(reason)
    project.champion_path.unlink(missing_ok=True)
    (project.models_dir / "champion.json").unlink(missing_ok=True)
