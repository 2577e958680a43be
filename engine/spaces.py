"""Built-in search spaces for `haj tune`: the parameters worth tuning for each catalog model.

A space is a function `(trial, prediction) -> dict` that asks an Optuna trial for values
(`trial.suggest_float` / `suggest_int` / `suggest_categorical`) and returns them as keyword
arguments for the estimator's `set_params`. Ranges are the usual ones of scikit-learn's own
examples and of the common tuning guides: logarithmic for rates and regularisation strengths,
bounded so that one trial costs about what the catalog's default model costs (at most a few
times more). A project's model.py may define `search_space(name, trial) -> dict` for its own
models (or to replace a built-in space); engine.tuning asks it first.

Plain functions over a duck-typed trial: importing this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Space = Callable[[Any, str], dict[str, Any]]


def _logistic_regression(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-3, 1e2, log=True),
        "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
    }


def _alpha(low: float, high: float) -> Space:
    def space(trial: Any, prediction: str) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", low, high, log=True)}

    return space


def _linear_regression(trial: Any, prediction: str) -> dict[str, Any]:
    return {"fit_intercept": trial.suggest_categorical("fit_intercept", [True, False])}


def _elastic_net(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True),
        "l1_ratio": trial.suggest_float("l1_ratio", 0.05, 1.0),
    }


def _knn(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 1, 50, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
        "p": trial.suggest_categorical("p", [1, 2]),
    }


def _svm(trial: Any, prediction: str) -> dict[str, Any]:
    params = {
        "C": trial.suggest_float("C", 1e-2, 1e3, log=True),
        "gamma": trial.suggest_float("gamma", 1e-4, 1.0, log=True),
    }
    if prediction == "regression":
        params["epsilon"] = trial.suggest_float("epsilon", 1e-3, 1.0, log=True)
    return params


def _criterion(trial: Any, prediction: str) -> str:
    if prediction == "classification":
        return trial.suggest_categorical("criterion", ["gini", "entropy"])
    return trial.suggest_categorical("criterion", ["squared_error", "friedman_mse"])


def _decision_tree(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 32, log=True),
        "min_samples_split": trial.suggest_int("min_samples_split", 2, 40, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 40, log=True),
        "criterion": _criterion(trial, prediction),
    }


def _forest(trial: Any, prediction: str) -> dict[str, Any]:
    """Random forest and extra trees."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "max_depth": trial.suggest_int("max_depth", 4, 32, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
    }


def _gradient_boosting(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 6),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
    }


def _hist_gradient_boosting(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_iter": trial.suggest_int("max_iter", 50, 500, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 200, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
    }


def _adaboost(trial: Any, prediction: str) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 25, 400, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 2.0, log=True),
    }


def _gaussian_nb(trial: Any, prediction: str) -> dict[str, Any]:
    return {"var_smoothing": trial.suggest_float("var_smoothing", 1e-12, 1e-3, log=True)}


# name -> space, for the catalog names of both prediction types (engine.catalog)
SPACES: dict[str, Space] = {
    "logistic_regression": _logistic_regression,
    "ridge_classifier": _alpha(1e-3, 1e3),
    "linear_regression": _linear_regression,
    "ridge": _alpha(1e-3, 1e3),
    "lasso": _alpha(1e-4, 10.0),
    "elastic_net": _elastic_net,
    "knn": _knn,
    "svc": _svm,
    "svr": _svm,
    "decision_tree": _decision_tree,
    "random_forest": _forest,
    "extra_trees": _forest,
    "gradient_boosting": _gradient_boosting,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "adaboost": _adaboost,
    "gaussian_nb": _gaussian_nb,
}


def builtin(name: str) -> Space | None:
    """The built-in space of catalog model `name`, or None."""
    return SPACES.get(name)
