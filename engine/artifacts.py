"""Run artifacts: what a run's holdout says beyond its metrics, kept at training.

Computed in the training worker right after scoring (engine.training.fit_and_save), on the test
split the run was scored on, and written as one JSON file under the run's folder,
`models/<run_id>/artifacts.json`, listed in the store (`run_artifacts`, kind "holdout"):

- classification: the confusion matrix (rows: truth, columns: predicted, labels in the model's
  class order: it equals sklearn.metrics.confusion_matrix(y, y_pred, labels=classes_)), per-class
  precision / recall / f1 / support, and ROC and precision-recall curve points (the positive
  class of a binary target; one-vs-rest per class otherwise), at most MAX_CURVE_POINTS each;
- regression: the residual summary (as `haj score` gives it) and predicted-vs-actual points
  (a seeded sample of at most MAX_SCATTER_POINTS);
- feature importances of the INPUT features: the model's `feature_importances_` or `coef_`
  mapped back through haj's preprocessing (a one-hot encoded feature sums the |importance| of
  its columns), else permutation importance on the holdout, within a time budget. `method` says
  which.

Nothing here may fail a run: fit_and_save turns an error into a warning line of the run.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.project import Project

FORMAT = "haj-artifacts/1"
FILE_NAME = "artifacts.json"
KIND = "holdout"  # the store's kind for this file: computed on the run's test split
MAX_CURVE_POINTS = 200
MAX_SCATTER_POINTS = 500
# Permutation importance: up to MAX_REPEATS repeats while the next one fits in
# PERMUTATION_BUDGET seconds (one at least), stopped at PERMUTATION_CAP seconds whatever is left;
# at most PERMUTATION_ROWS rows of the holdout (a seeded sample), predicted PERMUTATION_CELLS
# values at a time.
PERMUTATION_BUDGET = 1.0
PERMUTATION_CAP = 5.0
PERMUTATION_ROWS = 2000
PERMUTATION_CELLS = 2_000_000
MAX_REPEATS = 5


def run_folder(model_path: str | Path, run_id: str) -> Path:
    """models/<run_id>/, beside the run's model file models/<run_id>.joblib."""
    return Path(model_path).parent / run_id


def compute(
    pipeline: Any,
    prediction: str,
    spec: list[dict[str, str]],
    X_test: Any,
    y_test: Any,
    y_pred: Any,
    y_score: Any = None,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Every artifact of a fitted `pipeline` on its holdout (X_test, y_test), from the
    predictions scoring already made (`y_pred`, and `y_score`: predict_proba's columns in the
    model's class order, or None)."""
    import numpy as np

    y_test, y_pred = np.asarray(y_test), np.asarray(y_pred)
    out: dict[str, Any] = {"format": FORMAT, "prediction": prediction, "rows": len(y_test)}
    if prediction == "classification":
        classes = list(getattr(pipeline, "classes_", [])) or None
        out.update(_classification(y_test, y_pred, y_score, classes))
    else:
        out.update(_regression(y_test, y_pred, seed))
    out["importances"] = importances(pipeline, prediction, spec, X_test, y_test, seed, y_pred)
    return _plain(out)


def write(artifacts: dict[str, Any], folder: Path) -> Path:
    """Write artifacts.json into `folder` (created) atomically; returns its path."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(artifacts, handle, separators=(",", ":"), allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def of_run(project: Project, ref: str) -> dict[str, Any]:
    """A run's artifacts (the run's id or MODEL-#): the holdout file's content with "run_id"
    and "files" (every file the store lists for it); a finalized run, which has no test split
    left, shows its source run's holdout file, with "from_run". {"run_id", "files": [...]}
    alone when it has none (trained before haj kept them, or a failed run); "missing" names a
    listed file that is gone."""
    from engine.data import open_store
    from engine.errors import UsageError

    if not project.db_path.exists():
        raise UsageError(f"no run {ref!r}: the project has no runs yet")
    with open_store(project) as store:
        run = store.find_run(ref)
        if run is None:
            raise UsageError(f"no run {ref!r} (see `haj runs {project.name}`)")
        files, source = store.artifacts(run.id), None
        if not any(f["kind"] == KIND for f in files) and run.refit_of:
            source = run.refit_of
            files += [f for f in store.artifacts(source) if f["kind"] == KIND]
    result: dict[str, Any] = {"run_id": run.id, "files": files}
    if source:
        result["from_run"] = source
    for listed in files:
        if listed["kind"] != KIND:
            continue
        path = project.path / listed["path"]
        try:
            result.update(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            result["missing"] = listed["path"]
        except ValueError as exc:
            result["missing"] = f"{listed['path']} (unreadable: {exc})"
    return result


# ---- classification --------------------------------------------------------------------------
def _classification(y: Any, y_pred: Any, y_score: Any, classes: list[Any] | None) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_fscore_support

    from engine.metrics import confusion

    matrix = confusion(y, y_pred, classes)
    labels = matrix["labels"]
    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=0
    )
    out: dict[str, Any] = {
        "confusion": matrix,
        "per_class": [
            {"label": label, "precision": p, "recall": r, "f1": f, "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        ],
    }
    out.update(curves(y, y_score, classes))
    return out


def curves(y: Any, y_score: Any, classes: list[Any] | None) -> dict[str, Any]:
    """{"roc": [...], "pr": [...]} curves, one per class (the positive one of a binary target),
    each {"label", "x", "y", "auc" | "ap", "positives"}; or {"curves_note": why there are none}."""
    import numpy as np
    from sklearn import metrics as skm

    if y_score is None or not classes:
        return {"curves_note": "no ROC or precision-recall curve: the model gives no class "
                "probabilities"}  # fmt: skip
    y_score = np.asarray(y_score)
    if y_score.ndim != 2 or y_score.shape[1] != len(classes):
        return {"curves_note": "no ROC or precision-recall curve: the scores do not match the "
                "classes"}  # fmt: skip
    wanted = [1] if len(classes) == 2 else range(len(classes))
    roc, pr, skipped = [], [], []
    for column in wanted:
        label = _plain(classes[column])
        truth = (y == classes[column]).astype(int)
        positives = int(truth.sum())
        if positives == 0 or positives == len(truth):
            skipped.append(str(label))
            continue
        score = y_score[:, column]
        fpr, tpr, _ = skm.roc_curve(truth, score)
        xs, ys = thin(fpr, tpr, MAX_CURVE_POINTS)
        roc.append({"label": label, "x": xs, "y": ys, "auc": float(skm.auc(fpr, tpr)),
                    "positives": positives})  # fmt: skip
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        xs, ys = thin(recall[::-1], precision[::-1], MAX_CURVE_POINTS)
        pr.append({"label": label, "x": xs, "y": ys,
                   "ap": float(skm.average_precision_score(truth, score)),
                   "positives": positives})  # fmt: skip
    out: dict[str, Any] = {"roc": roc, "pr": pr}
    if skipped:
        out["curves_note"] = (
            f"no curve for {', '.join(skipped)}: the test split has only one side of it"
        )
    return out


def thin(xs: Any, ys: Any, most: int) -> tuple[list[float], list[float]]:
    """At most `most` points of a curve, spread evenly along its length (so corners are kept
    better than by taking every k-th point), the first and last always; order is kept, so a
    monotone curve stays monotone."""
    import numpy as np

    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(xs) <= most:
        return xs.tolist(), ys.tolist()
    steps = np.hypot(np.diff(xs), np.diff(ys))
    along = np.concatenate([[0.0], np.cumsum(steps)])
    if along[-1] == 0:
        keep = np.array([0, len(xs) - 1])
    else:
        targets = np.linspace(0.0, along[-1], most)
        keep = np.unique(np.searchsorted(along, targets).clip(0, len(xs) - 1))
        keep = np.unique(np.concatenate([[0], keep, [len(xs) - 1]]))
    return xs[keep].tolist(), ys[keep].tolist()


# ---- regression ------------------------------------------------------------------------------
def _regression(y: Any, y_pred: Any, seed: int | None) -> dict[str, Any]:
    import numpy as np

    from engine.metrics import residual_summary

    n = len(y)
    rows = np.arange(n)
    if n > MAX_SCATTER_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(n, MAX_SCATTER_POINTS, replace=False))
    return {
        "residuals": residual_summary(y, y_pred),
        "predicted_vs_actual": {
            "actual": np.asarray(y, dtype=np.float64)[rows].tolist(),
            "predicted": np.asarray(y_pred, dtype=np.float64)[rows].tolist(),
            "sampled_from": n,
        },
    }


# ---- importances -----------------------------------------------------------------------------
def importances(
    pipeline: Any,
    prediction: str,
    spec: list[dict[str, str]],
    X: Any,
    y: Any,
    seed: int | None,
    y_pred: Any = None,
) -> dict[str, Any]:
    """{"method", "features": [{"feature", "importance"[, "std"]}] most important first, ...}.

    `feature_importances_` or `coef_` (the mean |coefficient| over classes, on haj's scaled
    and one-hot columns) when the model has them and they map onto the input features; else
    permutation importance: the drop in accuracy (r2 for a regression) when one input
    feature's values are shuffled on the holdout."""
    names = [f["name"] for f in spec]
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    found, method = _model_importances(model)
    if found is not None:
        mapped = _to_inputs(pipeline, found, len(names))
        if mapped is not None:
            return {
                "method": method,
                "features": _ranked(names, mapped),
                "detail": _METHODS[method],
            }
    return _permutation(pipeline, prediction, names, X, y, seed, y_pred)


_METHODS = {
    "feature_importances_": "the model's feature_importances_, summed over each feature's "
    "one-hot columns",
    "coef_": "|coefficients| on the scaled features (mean over classes), summed over each "
    "feature's one-hot columns",
    "permutation": "drop in the score when the feature's values are shuffled on the holdout",
}


def _model_importances(model: Any) -> tuple[Any, str]:
    """(|importance| per transformed column, which attribute) or (None, "")."""
    import numpy as np

    for attribute in ("feature_importances_", "coef_"):
        try:
            values = getattr(model, attribute, None)
            if values is None:
                continue
            values = np.abs(np.asarray(values, dtype=np.float64))
        except Exception:  # a property that refuses (SVC's coef_ without a linear kernel)
            continue
        if values.ndim == 2:
            values = values.mean(axis=0)
        if values.ndim == 1 and np.all(np.isfinite(values)):
            return values, attribute
    return None, ""


_INPUT = re.compile(r"x(\d+)(?:_|$)")


def _to_inputs(pipeline: Any, values: Any, n_inputs: int) -> list[float] | None:
    """Per input feature, the sum of its transformed columns' values; None when the columns
    cannot be traced back (a model.py pipeline of its own, a selection step).

    haj's preprocessing (engine.features.make_pipeline) names its output columns after the
    input's positions: `x3` (a scaled number), `categorical__x3_red` (a one-hot column)."""
    try:
        names = pipeline.steps[0][1].get_feature_names_out()
    except Exception:  # no names to trace: the caller falls back to permutation
        return None
    if len(names) != len(values):
        return None
    totals = [0.0] * n_inputs
    for name, value in zip(names, values, strict=True):
        match = _INPUT.match(str(name).split("__", 1)[-1])
        if match is None or int(match.group(1)) >= n_inputs:
            return None
        totals[int(match.group(1))] += float(value)
    return totals


def _ranked(names: list[str], values: list[float | None], stds: list | None = None) -> list:
    rows = []
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        row: dict[str, Any] = {"feature": name, "importance": value}
        if stds is not None:
            row["std"] = stds[i]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["importance"] is None, -(r["importance"] or 0.0)))


def _permutation(
    pipeline: Any,
    prediction: str,
    names: list[str],
    X: Any,
    y: Any,
    seed: int | None,
    y_pred: Any = None,
) -> dict[str, Any]:
    """Permutation importance within the budget (see the constants). Each repeat shuffles
    every feature once; the shuffled copies are stacked and predicted in a few large calls
    (PERMUTATION_CELLS at most each) rather than one call per feature, which is what a
    model's per-call overhead (knn, svc, boosting) would make slow."""
    import numpy as np

    score = _accuracy if prediction == "classification" else _r2
    rng = np.random.default_rng(seed)
    n = len(y)
    if n > PERMUTATION_ROWS:
        rows = np.sort(rng.choice(n, PERMUTATION_ROWS, replace=False))
        X, y, n, y_pred = X[rows], y[rows], PERMUTATION_ROWS, None
    X = np.asarray(X)
    width = X.shape[1]
    started = time.perf_counter()
    baseline = float(score(y, pipeline.predict(X) if y_pred is None else y_pred))
    per_call = max(1, PERMUTATION_CELLS // max(1, n * width))  # shuffled copies per predict
    drops: list[list[float]] = [[] for _ in range(width)]
    capped = False
    while min(len(d) for d in drops) < MAX_REPEATS:
        took = time.perf_counter()
        for first in range(0, width, per_call):
            if time.perf_counter() - started > PERMUTATION_CAP:
                capped = True
                break
            chunk = range(first, min(width, first + per_call))
            stacked = np.tile(X, (len(chunk), 1))
            for k, j in enumerate(chunk):
                stacked[k * n : (k + 1) * n, j] = X[rng.permutation(n), j]
            predicted = pipeline.predict(stacked)
            for k, j in enumerate(chunk):
                drops[j].append(baseline - float(score(y, predicted[k * n : (k + 1) * n])))
        elapsed = time.perf_counter() - started
        if capped or elapsed + (time.perf_counter() - took) > PERMUTATION_BUDGET:
            break  # one more repeat would pass the budget
    means = [float(np.mean(d)) if d else None for d in drops]
    stds = [float(np.std(d)) if d else None for d in drops]
    return {
        "method": "permutation",
        "features": _ranked(names, means, stds),
        "detail": _METHODS["permutation"],
        "score": "accuracy" if prediction == "classification" else "r2",
        "repeats": min(len(d) for d in drops) if drops else 0,
        "rows": n,
        "seconds": round(time.perf_counter() - started, 3),
        "capped": capped,
    }


def _accuracy(y: Any, y_pred: Any) -> float:
    """sklearn's accuracy_score without its input checks, which would cost more than the
    prediction itself for each of the many shuffles."""
    import numpy as np

    return float(np.mean(np.asarray(y) == np.asarray(y_pred)))


def _r2(y: Any, y_pred: Any) -> float:
    """sklearn's r2_score (one output, no weights) without its input checks."""
    import numpy as np

    y, y_pred = np.asarray(y, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((y - y_pred) ** 2).sum())
    return 1.0 - residual / total if total else 0.0


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
