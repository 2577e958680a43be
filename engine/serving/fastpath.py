"""Single-row speed: call a trained pipeline without scikit-learn's per-call overhead.

Why: for one row, scikit-learn spends almost all of a predict call validating arrays, routing
metadata and wrapping outputs (hundreds of microseconds for imputer + scaler + logistic
regression) while the arithmetic takes a few. The server is measured on exactly that case.

Two levels, both checked against the real pipeline before they are used:
- `compile_linear`: the numeric imputer -> scaler -> linear model pipelines haj builds, as three
  numpy expressions (tens of microseconds). Used only if it reproduces the pipeline's outputs on
  probe rows (including missing values) to 1e-9; anything else keeps the general path.
- `flat_steps`: any Pipeline (nested ones flattened) called step by step, which skips
  Pipeline's own routing and wrapping but runs every estimator's own code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("haj.serving")

_LINEAR_REGRESSORS = {"LinearRegression", "Ridge", "Lasso", "ElasticNet", "HuberRegressor"}


def flat_steps(pipeline: Any) -> tuple[list[Any], Any] | None:
    """(transformers in order, final estimator) of a Pipeline, nested Pipelines flattened."""
    if not hasattr(pipeline, "steps"):
        return None
    transforms: list[Any] = []
    for _name, step in pipeline.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        inner = flat_steps(step)
        if inner is not None:
            transforms.extend(inner[0])
            if inner[1] is not None and inner[1] != "passthrough":
                transforms.append(inner[1])
        else:
            transforms.append(step)
    return transforms, pipeline.steps[-1][1]


def compile_linear(pipeline: Any, n_features: int, proba: bool) -> Callable[[Any], Any] | None:
    """A numpy function computing predict_proba (proba=True) or predict of an
    impute(median/mean) -> StandardScaler -> linear model pipeline; None if not that shape or
    if it does not reproduce the pipeline's outputs."""
    import numpy as np

    flat = flat_steps(pipeline)
    if flat is None:
        return None
    transforms, final = flat
    names = [type(t).__name__ for t in transforms]
    if names != ["SimpleImputer", "StandardScaler"]:
        return None
    imputer, scaler = transforms
    if getattr(imputer, "indicator_", None) is not None:
        return None
    if getattr(imputer, "strategy", None) not in ("mean", "median", "constant"):
        return None
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        return None
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if fill.shape != (n_features,) or not np.all(np.isfinite(fill)):
        return None  # an all-missing training column is dropped by sklearn: keep its path
    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(n_features)
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(n_features)
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    kind = type(final).__name__
    coef = np.asarray(getattr(final, "coef_", None), dtype=np.float64)
    intercept = np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64)
    # fold the scaler into the weights: ((X - mean) / scale) @ W + b == X @ (W / scale) + b'
    if proba:
        if kind != "LogisticRegression":
            return None
        weights = coef.T / scale[:, None]  # (features, classes or 1)
        bias = intercept - (mean / scale) @ coef.T
        binary = weights.shape[1] == 1

        def fast(X: Any) -> Any:
            if np.isnan(X).any():
                X = np.where(np.isnan(X), fill, X)
            z = X @ weights + bias
            if binary:
                out = np.empty((z.shape[0], 2))
                out[:, 1] = 1.0 / (1.0 + np.exp(-z[:, 0]))
                out[:, 0] = 1.0 - out[:, 1]
                return out
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)

    else:
        if kind not in _LINEAR_REGRESSORS or coef.ndim != 1:
            return None
        weights = coef / scale
        bias = float(intercept - (mean / scale) @ coef)

        def fast(X: Any) -> Any:
            if np.isnan(X).any():
                X = np.where(np.isnan(X), fill, X)
            return X @ weights + bias

    return fast if _agrees(fast, pipeline, n_features, mean, scale, proba) else None


def _agrees(
    fast: Callable[[Any], Any], pipeline: Any, n: int, mean: Any, scale: Any, proba: bool
) -> bool:
    import numpy as np

    rng = np.random.default_rng(0)
    probes = mean + rng.standard_normal((64, n)) * np.where(scale > 0, scale, 1.0) * 2
    probes[rng.random((64, n)) < 0.1] = np.nan
    probes[0] = np.nan
    try:
        expected = pipeline.predict_proba(probes) if proba else pipeline.predict(probes)
        got = fast(probes)
        for i in range(3):  # one row at a time too: the case that matters
            one = fast(probes[i : i + 1])
            if not np.allclose(one, expected[i : i + 1], rtol=1e-9, atol=1e-12):
                return False
    except Exception:
        log.debug("fast path check failed", exc_info=True)
        return False
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        return False
    return not proba or bool(np.array_equal(got.argmax(axis=1), expected.argmax(axis=1)))


def general(pipeline: Any, proba: bool) -> Callable[[Any], Any]:
    """The pipeline's steps called one by one (no Pipeline routing/wrapping per call)."""
    flat = flat_steps(pipeline)
    method = "predict_proba" if proba else "predict"
    if flat is None:
        return getattr(pipeline, method)
    transforms, final = flat
    final_method = getattr(final, method)
    transform_methods = [t.transform for t in transforms]

    def run(X: Any) -> Any:
        for transform in transform_methods:
            X = transform(X)
        return final_method(X)

    return run
