"""K-fold cross-validation of one model on the training split (`haj train --cv K`).

Why: one test split of a small data set cannot tell good models apart (seven models at 1.0000
on 69 rows). Each fold is fitted and scored by the functions training fits and scores every
model with (engine.training passes its `_fit`, which wraps the estimator in
engine.features.make_pipeline, and its `_score`); a run then ranks by the folds' mean, and their
standard deviation says how much that mean can be trusted. The test split is not touched, so its
score stays a held-out check.

Called inside a training worker (engine.training.fit_and_save); imports sklearn only there, and
nothing of engine.training (which imports this module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import DataError, UsageError

MIN_FOLDS = 2


def check_folds(folds: int | None) -> None:
    """A usage error for a fold count that cannot be (said before any runner starts)."""
    if folds is not None and (isinstance(folds, bool) or int(folds) < MIN_FOLDS):
        raise UsageError(f"--cv needs at least {MIN_FOLDS} folds (got {folds})")


def check_rows(folds: int | None, y_train: Any) -> None:
    """A data error when the training split has fewer rows than folds (said before any run is
    recorded, not as the failure of every model)."""
    if folds and len(y_train) < folds:
        raise DataError(
            f"--cv {folds} needs at least {folds} training rows; the training split has "
            f"{len(y_train)}: use fewer folds"
        )


def splitter(folds: int, y: Any, prediction: str, random_state: Any) -> Any:
    """Stratified folds for a classification whose every class has `folds` rows, else plain
    shuffled folds; the same folds for every model of a session (same random_state)."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold

    if prediction == "classification":
        _, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if counts.min() >= folds:
            return StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return KFold(n_splits=folds, shuffle=True, random_state=random_state)


Fit = Callable[[dict[str, Any], Any, Any, float], tuple[Any, float]]
Score = Callable[[Any, str, Any, Any], tuple[dict[str, float], dict[str, str]]]


def cross_validate(
    task: dict[str, Any],
    X: Any,
    y: Any,
    folds: int,
    random_state: Any,
    fit: Fit,
    score: Score,
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """(mean, std, notes) of every metric over `folds` folds of (X, y), each fold fitted with
    `fit(task, X, y, started)` and scored with `score(pipeline, prediction, X, y)` (training's
    own). A metric some fold could not compute (roc_auc on a fold missing a class) is left out,
    and why is in notes."""
    import time

    scores: list[dict[str, float]] = []
    notes: dict[str, str] = {}
    prediction = task["prediction"]
    # the folds' (scores, notes) when a cluster's tasks computed them (engine.cluster_train:
    # an exception where the model failed on one); else each fold is fitted here, in order
    done = (task.get("cv") or {}).get("done")
    for index, (rows, held) in enumerate(splitter(folds, y, prediction, random_state).split(X, y)):
        if done is not None:
            if isinstance(done[index], BaseException):
                raise done[index]
            fold, fold_notes = done[index]
        else:
            pipeline, _ = fit(task, _rows(X, rows), _rows(y, rows), time.perf_counter())
            fold, fold_notes = score(pipeline, prediction, _rows(X, held), _rows(y, held))
        scores.append(fold)
        for metric, why in fold_notes.items():
            notes.setdefault(metric, f"{why} (in a cross-validation fold)")
    return summarize(scores, notes)


def summarize(
    scores: list[dict[str, float]], notes: dict[str, str]
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """(mean, std, notes) of the folds' `scores` (one dict of metrics per fold, at least one):
    a metric missing from some fold is left out, and why is added to `notes` (in place)."""
    import numpy as np

    common = [m for m in scores[0] if all(m in fold for fold in scores)]
    for metric in {m for fold in scores for m in fold} - set(common):
        notes.setdefault(metric, f"{metric} not computed: not defined on every fold")
    means = {m: float(np.mean([fold[m] for fold in scores])) for m in common}
    stds = {m: float(np.std([fold[m] for fold in scores])) for m in common}
    return means, stds, notes


def fold(
    task: dict[str, Any], X: Any, y: Any, index: int, fit: Fit, score: Score
) -> tuple[dict[str, float], dict[str, str]]:
    """The `index`-th fold of task["cv"], fitted and scored as cross_validate does it: what a
    cluster runs as one task (engine.cluster_train)."""
    import time

    cv, prediction = task["cv"], task["prediction"]
    splits = splitter(cv["folds"], y, prediction, cv.get("random_state")).split(X, y)
    for number, (rows, held) in enumerate(splits):
        if number == index:
            pipeline, _ = fit(task, _rows(X, rows), _rows(y, rows), time.perf_counter())
            return score(pipeline, prediction, _rows(X, held), _rows(y, held))
    raise IndexError(f"no fold {index} of {cv['folds']}")


def _rows(values: Any, index: Any) -> Any:
    return values.iloc[index] if hasattr(values, "iloc") else values[index]
