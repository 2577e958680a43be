"""Metric names, their direction and their prediction type.

The table is plain data so the CLI can validate `haj evaluate NAME f1` without importing sklearn;
`compute()` imports sklearn only when a model is actually scored.
"""

from __future__ import annotations

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


def metrics_for(prediction: str) -> list[str]:
    return [m.name for m in METRICS.values() if m.prediction == prediction]


def check_metric(name: str, prediction: str) -> Metric:
    """Return the Metric, or raise UsageError naming the valid ones for this prediction type."""
    key = ALIASES.get(name.lower(), name.lower())
    metric = METRICS.get(key)
    valid = ", ".join(metrics_for(prediction))
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
    prediction: str, y_true: Any, y_pred: Any, y_score: Any = None, classes: list[Any] | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, notes): compute()'s metrics, and for a metric left out, why (metric -> reason),
    so a run can record why it has no roc_auc instead of silently lacking it."""
    import numpy as np
    from sklearn import metrics as skm

    if prediction == "regression":
        mse = float(skm.mean_squared_error(y_true, y_pred))
        return {
            "rmse": float(np.sqrt(mse)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "mse": mse,
            "r2": float(skm.r2_score(y_true, y_pred)),
        }, {}
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
    return result, notes
