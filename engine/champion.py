"""Crown the champion: the best finished run by a metric among the runs scored on the same
data version (engine.runs.data_scope), or a run the user names, or the previous champion
(rollback); each crowning recorded with its history.

The store is the truth. For scripts and containers the champion is also reachable at a stable
path, models/champion.joblib: a relative symlink to the run's file (swapped atomically, so
crowning costs no copy of a possibly large model), described by models/champion.json. The
server reads the champion from the store and checks the file's sha256 before loading it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from typing import Any

from engine.errors import DataError, Hint, NoChampion, UsageError
from engine.fsutil import atomic_write_text, sha256_file
from engine.metrics import check_metric
from engine.project import Project
from engine.results import CrownResult, RunnerUp
from engine.runs import DataScope, custom_metrics, data_scope, stale_champion
from engine.store import TIE_RULE, Run, Store

NOISY_METRICS = ("acc", "precision", "recall", "f1")  # shares of test rows: binomial noise


def crown(
    project: Project, metric: str | None = None, *, data: str | None = None, any_data: bool = False
) -> CrownResult:
    """Crown the best run by `metric` (default: the project's metric) among the runs scored on
    one data version (default: the current one; `data` another, `any_data` all of them); ties
    are broken by TIE_RULE and said, as is a margin within the noise. Returns what happened."""
    config = project.read_config()
    prediction = config["project"]["prediction"]
    custom = custom_metrics(project, prediction)  # model.py's metrics rank too
    chosen = check_metric(metric or config["training"]["metric"], prediction, custom)
    if not project.db_path.exists():
        raise NoChampion("no runs yet", Hint("train", project.name))
    with Store(project.db_path) as store:
        store.reap_orphans()
        scope = data_scope(project, store, config, data, any_data)
        version = None if scope.every else scope.version
        best = []
        if scope.every or version is not None:
            best = store.best_runs(
                chosen.name,
                higher_is_better=chosen.higher_is_better,
                prediction=prediction,
                limit=3,
                data_version=version,
            )
        if not best:
            raise _nothing_to_crown(project, store, scope, prediction, chosen.name)
        run_id, _model, value = best[0]
        run = store.run(run_id)
        assert run is not None
        pair = {run.id, run.refit_of}  # a refit and its source are one model, not rivals
        rivals = [RunnerUp(*row) for row in best[1:] if row[0] not in pair]
        runner_up = rivals[0] if rivals else None
        source = store.run(run.refit_of) if run.refit_of else None
        twin = source is not None and source.metrics.get(chosen.name) == value
        # the champion itself, and its source when it is a refit, are not rivals tied with it
        ties = store.count_scoring(
            chosen.name, value, prediction=prediction, data_version=version
        ) - (2 if twin else 1)
        crowned = _crown_run(project, store, run, chosen.name, value, "evaluate", scope)
    margin = abs(value - runner_up.value) if runner_up else None
    noise, basis = noise_of(run, chosen.name)
    return replace(
        crowned,
        higher_is_better=chosen.higher_is_better,
        runner_up=runner_up,
        margin=margin,
        data_version=version,
        ties=ties,
        noise=noise,
        caveat=_caveat(run, chosen.name, value, ties, runner_up, margin, noise, basis),
    )


def crown_run(
    project: Project, ref: str, metric: str | None = None, reason: str = "chosen"
) -> CrownResult:
    """Crown the run `ref` (its id, or MODEL-# as the leaderboard labels it), whatever its
    score: the user's choice. `metric` (default: the project's) is the score recorded with it."""
    config = project.read_config()
    prediction = config["project"]["prediction"]
    custom = custom_metrics(project, prediction)  # model.py's metrics rank too
    chosen = check_metric(metric or config["training"]["metric"], prediction, custom)
    if not project.db_path.exists():
        raise NoChampion("no runs yet", Hint("train", project.name))
    with Store(project.db_path) as store:
        store.reap_orphans()
        run = store.find_run(ref)
        if run is None:
            raise UsageError(f"no run {ref!r}: give a run id or MODEL-# from the leaderboard")
        _check_crownable(run, prediction, chosen.name)
        scope = data_scope(project, store, config)
        result = _crown_run(
            project, store, run, chosen.name, run.metrics[chosen.name], reason, scope
        )
    return replace(result, higher_is_better=chosen.higher_is_better)


def rollback(project: Project, metric: str | None = None) -> CrownResult:
    """Crown the champion before the current one (from the champion history), scored by the
    metric it was crowned by (or `metric`). Twice in a row swaps back, as `cd -` does."""
    config = project.read_config()
    prediction = config["project"]["prediction"]
    if not project.db_path.exists():
        raise NoChampion("no champion to roll back from", Hint("crown", project.name))
    with Store(project.db_path) as store:
        current = store.champion()
        if current is None:
            raise NoChampion("no champion to roll back from", Hint("crown", project.name))
        previous = next(
            (
                event
                for event in store.champion_history()
                if event.run_id is not None and event.run_id != current.run_id
            ),
            None,
        )
        run = store.run(previous.run_id) if previous and previous.run_id else None
        if previous is None or run is None:
            raise NoChampion(f"no previous champion: {current.model} is the only one crowned")
        if run.prediction != prediction:
            raise NoChampion(
                f"the previous champion {run.label} is a {run.prediction} run; "
                f"this project does {prediction}"
            )
    metric = metric or previous.metric or config["training"]["metric"]
    return crown_run(project, run.id, metric, reason="rollback")


def noise_of(run: Run, metric: str) -> tuple[float | None, str]:
    """How much `run`'s score on `metric` could move by chance, and on what basis: its CV std
    (a cross-validated run), else one standard error of a share of its test rows (accuracy,
    precision, recall, F1; Agresti-Coull, so a perfect score on few rows is not certain);
    (None, "") when neither is known (a regression error without CV)."""
    std = run.metrics_std.get(metric)
    if std is not None:
        return std, f"the CV std over {run.cv_folds} folds"
    n, score = run.test_rows, run.metrics.get(metric)
    if metric in NOISY_METRICS and n and score is not None:
        share = (score * n + 2) / (n + 4)
        return math.sqrt(share * (1 - share) / (n + 4)), f"one standard error on {n} test rows"
    return None, ""


def _caveat(
    run: Run,
    metric: str,
    value: float,
    ties: int,
    runner_up: RunnerUp | None,
    margin: float | None,
    noise: float | None,
    basis: str,
) -> str | None:
    """The sentence `evaluate` adds when the choice is not clear: a tie (margin 0), or a margin
    within the noise of the score."""
    if ties > 0:
        return (
            f"{ties + 1} runs tie at {metric} = {value:.4f}: {run.label} wins by the tie rule "
            f"({TIE_RULE})"
        )
    if runner_up is not None and margin is not None and noise is not None and margin < noise:
        return (
            f"the margin to {runner_up.model} ({margin:.4f}) is within the noise ({basis}: "
            f"{noise:.4f}): the two may be equally good"
        )
    return None


def _check_crownable(run: Run, prediction: str, metric: str) -> None:
    if run.status != "finished":
        raise UsageError(f"run {run.label} ({run.id}) is {run.status}: only a finished run")
    if run.prediction != prediction:
        raise UsageError(
            f"run {run.label} is a {run.prediction} run; this project does {prediction}"
        )
    if metric not in run.metrics:
        raise UsageError(f"run {run.label} has no {metric}: give another metric")


def _crown_run(
    project: Project,
    store: Store,
    run: Run,
    metric: str,
    value: float,
    reason: str,
    scope: DataScope,
) -> CrownResult:
    """Check the run's model file against its sha256, point champion.joblib at it and record
    the crowning (a running server follows the store's champion)."""
    if not run.model_path:
        raise DataError(f"run {run.label} ({run.id}) has no model file")
    source = project.path / run.model_path
    if not source.exists():
        raise DataError(f"the model file of run {run.id} is missing: {source}")
    if sha256_file(source) != run.model_sha256:
        raise DataError(f"the model file of run {run.id} does not match its recorded sha256")
    previous = store.champion()
    _publish(project, source, run.to_dict(), metric, value)
    champion = store.crown(run.id, metric, value, reason=reason)
    return CrownResult(
        champion=champion,
        run=run,
        metric=metric,
        higher_is_better=True,
        value=value,
        previous=previous,
        path=str(project.champion_path),
        reason=reason,
        data_version=run.data_version,
        stale=stale_champion(run, scope),
        inputs=processed_inputs_note(project, store, run),
    )


def processed_inputs_note(project: Project, store: Store, run: Run) -> str | None:
    """The sentence saying a model takes the processed columns instead of the data's own rows
    (engine.intake), and why; None when it takes raw rows."""
    from engine import intake

    version = store.data_version(run.data_version) if run.data_version else None
    if version is None:
        return None
    taken = intake.load(project.path / version.path)
    if taken is None:
        return (
            f"this model takes the processed columns of {version.id}, not raw rows: that data "
            "was processed before haj kept the processing with the model (process and train "
            "again to serve raw rows)"
        )
    if taken.accepts_raw:
        return None
    return (
        f"this model takes the processed columns of {version.id}, not raw rows: {taken.reason} "
        "(give processor.py a Processor class: see the README)"
    )


def _nothing_to_crown(
    project: Project, store: Store, scope: DataScope, prediction: str, metric: str
) -> NoChampion:
    """Why no run can be crowned in this scope, and how many runs other data versions hold."""
    hint = Hint("train", project.name)
    counts = store.run_counts_by_data_version(prediction)
    others = sum(n for version, n in counts.items() if not scope.includes(version))
    elsewhere = f" ({others} run(s) are on other data versions)" if others else ""
    if scope.every or not counts:  # no run of this prediction type at all: say that first
        return NoChampion(f"no finished {prediction} run has {metric}", hint)
    if scope.version is None:
        return NoChampion(
            f"no run on the current data yet: {scope.current_raw} is not processed with the "
            f"current processor.py, target and prediction type{elsewhere}",
            hint,
        )
    return NoChampion(
        f"no finished {prediction} run on {scope.version} has {metric}{elsewhere}", hint
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
