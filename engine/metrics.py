"""Metric names, their direction and their prediction type.

The table is plain data so the CLI can validate `haj evaluate NAME f1` without importing sklearn;
`compute()` imports sklearn only when a model is actually scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import UsageError


@dataclass(frozen=True)
class Metric:
    name: str
    prediction: str
    higher_is_better: bool
    label: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc", "classification", True, "accuracy"),
        Metric("precision", "classification", True, "precision (weighted)"),
        Metric("recall", "classification", True, "recall (weighted)"),
        Metric("f1", "classification", True, "F1 (weighted)"),
        Metric("roc_auc", "classification", True, "ROC AUC (one-vs-rest for multiclass)"),
        Metric("rmse", "regression", False, "root mean squared error"),
        Metric("mae", "regression", False, "mean absolute error"),
        Metric("mse", "regression", False, "mean squared error"),
        Metric("r2", "regression", True, "coefficient of determination"),
    )
}

ALIASES = {"accuracy": "acc", "f1_score": "f1", "auc": "roc_auc"}

# A project's custom metrics (model.py's `metrics()`), as training recorded them: the store
# record of this kind holds {prediction: {name: higher_is_better}}, so the leaderboard and
# crowning know a custom metric and its direction without running model.py.
CUSTOM_RECORD = "custom_metrics"
CUSTOM_LABEL = "custom (model.py metrics())"
_CUSTOM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def metrics_for(prediction: str) -> list[str]:
    return [m.name for m in METRICS.values() if m.prediction == prediction]


def check_metric(name: str, prediction: str, custom: dict[str, bool] | None = None) -> Metric:
    """Return the Metric, or raise UsageError naming the valid ones for this prediction type.

    `custom`: the project's custom metrics (name -> higher is better, as training recorded
    them), valid too; a built-in name always means the built-in metric."""
    key = ALIASES.get(name.lower(), name.lower())
    metric = METRICS.get(key)
    if metric is None and custom:
        found = name if name in custom else next((c for c in custom if c.lower() == key), None)
        if found is not None:
            return Metric(found, prediction, bool(custom[found]), CUSTOM_LABEL)
    valid = ", ".join([*metrics_for(prediction), *(custom or {})])
    if metric is None:
        raise UsageError(f"unknown metric {name!r}: for {prediction} choose from {valid}")
    if metric.prediction != prediction:
        raise UsageError(
            f"metric {key!r} is for {metric.prediction}, but this project does {prediction}: "
            f"choose from {valid}"
        )
    return metric


def compute(
    prediction: str, y_true: Any, y_pred: Any, y_score: Any = None, classes: list[Any] | None = None
) -> dict[str, float]:
    """Every metric of the prediction type; roc_auc only where it is defined.

    `classes` is the model's class order (the columns of y_score), so string labels work too.
    """
    return evaluate(prediction, y_true, y_pred, y_score, classes)[0]


def evaluate(
    prediction: str,
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    classes: list[Any] | None = None,
    custom: Callable[..., Any] | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, notes): compute()'s metrics, and for a metric left out, why (metric -> reason),
    so a run can record why it has no roc_auc instead of silently lacking it. `custom`: model.py's
    `metrics(y_true, y_pred, y_score)`, whose metrics are added (custom_metrics)."""
    import numpy as np
    from sklearn import metrics as skm

    if prediction == "regression":
        mse = float(skm.mean_squared_error(y_true, y_pred))
        result = {
            "rmse": float(np.sqrt(mse)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "mse": mse,
            "r2": float(skm.r2_score(y_true, y_pred)),
        }
        return _with_custom(result, {}, custom, y_true, y_pred, None)
    result = {
        "acc": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(
            skm.precision_score(y_true, y_pred, average="weighted", zero_division=0)
        ),
        "recall": float(skm.recall_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, average="weighted", zero_division=0)),
    }
    notes: dict[str, str] = {}
    if y_score is not None:
        try:
            if y_score.ndim == 2 and y_score.shape[1] == 2:
                positive = classes[1] if classes else 1
                truth = (np.asarray(y_true) == positive).astype(int)
                result["roc_auc"] = float(skm.roc_auc_score(truth, y_score[:, 1]))
            elif y_score.ndim == 2:
                result["roc_auc"] = float(
                    skm.roc_auc_score(
                        y_true, y_score, multi_class="ovr", average="weighted", labels=classes
                    )
                )
        except ValueError as exc:
            # e.g. a class missing from the test split: AUC is undefined, so it is left out
            reason = str(exc).splitlines()[0][:300] if str(exc) else "undefined"
            notes["roc_auc"] = f"roc_auc not computed: {reason}"
    return _with_custom(result, notes, custom, y_true, y_pred, y_score)


def _with_custom(
    result: dict[str, float],
    notes: dict[str, str],
    custom: Callable[..., Any] | None,
    y_true: Any,
    y_pred: Any,
    y_score: Any,
) -> tuple[dict[str, float], dict[str, str]]:
    if custom is not None:
        values, why = custom_metrics(custom, y_true, y_pred, y_score)
        result.update(values)
        notes.update(why)
    return result, notes


def custom_metrics(
    function: Callable[..., Any], y_true: Any, y_pred: Any, y_score: Any = None
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, notes) of model.py's `metrics(y_true, y_pred, y_score) -> dict[str, float]`
    (y_score: predict_proba's columns in the model's class order, or None: a regression, or a
    model without probabilities). What cannot be recorded is a note, never a failed run: the
    function raising, a name that is not a plain word (letters, digits, `_ . -`) or is a
    built-in metric's, a value that is not a finite number."""
    try:
        answer = function(y_true, y_pred, y_score)
    except Exception as exc:  # the user's code may raise anything: said as a note
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return {}, {"metrics()": f"model.py metrics() failed: {reason}"}
    if not isinstance(answer, Mapping):
        return {}, {"metrics()": "model.py metrics() must return a dict of name -> number, "
                    f"not {type(answer).__name__}"}  # fmt: skip
    values: dict[str, float] = {}
    notes: dict[str, str] = {}
    for name, value in answer.items():
        shown = str(name)[:64]
        if not isinstance(name, str) or not _CUSTOM_NAME.fullmatch(name):
            notes[shown] = (
                f"model.py metrics(): {shown!r} is not a metric name "
                "(a letter, then letters, digits, _ . -)"
            )
            continue
        if name.lower() in METRICS or name.lower() in ALIASES:
            notes[f"{name} (model.py)"] = (
                f"model.py metrics(): {name!r} is a built-in metric's name: rename it"
            )
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            notes[name] = f"{name} not recorded: model.py metrics() gave {value!r}"[:300]
            continue
        values[name] = number
    return values, notes


def confusion(y_true: Any, y_pred: Any, classes: list[Any] | None) -> dict[str, Any]:
    """{"labels": [...], "matrix": rows = true label, columns = predicted label}: the labels in
    the model's class order (`classes`), then any other label seen, so the matrix is
    sklearn.metrics.confusion_matrix(y_true, y_pred, labels=classes) when all are known."""
    from sklearn.metrics import confusion_matrix

    labels = list(classes or [])
    for value in list(y_true) + list(y_pred):
        if value not in labels:
            labels.append(value)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "labels": [v.item() if hasattr(v, "item") else v for v in labels],
        "matrix": matrix.tolist(),
    }


def residual_summary(y_true: Any, y_pred: Any) -> dict[str, float]:
    """The residuals (truth - prediction) of a regression in a few figures: mean, std, the
    5/25/50/75/95 % quantiles and the largest absolute one."""
    import numpy as np

    residuals = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    quantiles = np.quantile(residuals, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "mean": float(residuals.mean()),
        "std": float(residuals.std()),
        "p05": float(quantiles[0]),
        "p25": float(quantiles[1]),
        "median": float(quantiles[2]),
        "p75": float(quantiles[3]),
        "p95": float(quantiles[4]),
        "max_abs": float(np.abs(residuals).max()),
    }
