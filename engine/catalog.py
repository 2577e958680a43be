"""The built-in models per prediction type, plus the extra candidates a project's model.py adds.

Names are plain data (so the CLI can list them without importing scikit-learn); `build()` makes the
estimator. Every estimator is later wrapped in the same preprocessing pipeline (engine.features).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from engine.project import Project

CLASSIFIERS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model:LogisticRegression(max_iter=2000)",
    "ridge_classifier": "sklearn.linear_model:RidgeClassifier()",
    "knn": "sklearn.neighbors:KNeighborsClassifier()",
    "svc": "sklearn.svm:SVC(probability=True, random_state=RS)",
    "decision_tree": "sklearn.tree:DecisionTreeClassifier(random_state=RS)",
    "random_forest": "sklearn.ensemble:RandomForestClassifier(n_estimators=200, random_state=RS)",
    "extra_trees": "sklearn.ensemble:ExtraTreesClassifier(n_estimators=200, random_state=RS)",
    "gradient_boosting": "sklearn.ensemble:GradientBoostingClassifier(random_state=RS)",
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier(random_state=RS)",
    "adaboost": "sklearn.ensemble:AdaBoostClassifier(random_state=RS)",
    "gaussian_nb": "sklearn.naive_bayes:GaussianNB()",
}

REGRESSORS: dict[str, str] = {
    "linear_regression": "sklearn.linear_model:LinearRegression()",
    "ridge": "sklearn.linear_model:Ridge()",
    "lasso": "sklearn.linear_model:Lasso(max_iter=5000, random_state=RS)",
    "elastic_net": "sklearn.linear_model:ElasticNet(max_iter=5000, random_state=RS)",
    "knn": "sklearn.neighbors:KNeighborsRegressor()",
    "svr": "sklearn.svm:SVR()",
    "decision_tree": "sklearn.tree:DecisionTreeRegressor(random_state=RS)",
    "random_forest": "sklearn.ensemble:RandomForestRegressor(n_estimators=200, random_state=RS)",
    "extra_trees": "sklearn.ensemble:ExtraTreesRegressor(n_estimators=200, random_state=RS)",
    "gradient_boosting": "sklearn.ensemble:GradientBoostingRegressor(random_state=RS)",
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingRegressor(random_state=RS)",
}


# The same kind of model in the other prediction type, for commands that train both (`haj demo`).
COUNTERPARTS: dict[str, str] = {
    "logistic_regression": "linear_regression",
    "ridge_classifier": "ridge",
    "svc": "svr",
}
COUNTERPARTS.update({v: k for k, v in COUNTERPARTS.items()})


def for_prediction(prediction: str, names: list[str]) -> list[str]:
    """`names` (from either catalog) as the models of `prediction`: svc -> svr, etc.

    Names with no counterpart are left out; a name in neither catalog is a UsageError.
    """
    both = set(CLASSIFIERS) | set(REGRESSORS)
    unknown = [n for n in names if n not in both]
    if unknown:
        raise UsageError(
            f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
            f"choose from {', '.join(sorted(both))}"
        )
    own = builtin_names(prediction)
    mapped = [n if n in own else COUNTERPARTS.get(n, "") for n in names]
    return list(dict.fromkeys(n for n in mapped if n in own))


def builtin_names(prediction: str) -> list[str]:
    return list(CLASSIFIERS if prediction == "classification" else REGRESSORS)


def build(prediction: str, name: str, random_state: int) -> Any:
    """A fresh, unfitted estimator of the built-in catalog."""
    spec = (CLASSIFIERS if prediction == "classification" else REGRESSORS)[name]
    module_name, call = spec.split(":")
    class_name, _, args = call.partition("(")
    module = importlib.import_module(module_name)
    namespace = {class_name: getattr(module, class_name), "RS": random_state}
    return eval(f"{class_name}({args}", namespace)  # specs are the constants above


def load_project_models(model_file: Path, prediction: str) -> dict[str, Any]:
    """The extra estimators from a project's model.py (`models() -> dict[str, estimator]`).

    A name of the built-in catalog of `prediction` is a ConfigError: it would silently replace
    the built-in model (and make the runs of both one leaderboard line).
    """
    module = _project_module(model_file)
    if module is None:
        return {}
    factory: Callable[[], Any] | None = getattr(module, "models", None)
    if factory is None:
        return {}
    try:
        extra = factory()
    except Exception as exc:
        raise ConfigError(f"model.py: models() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
        raise ConfigError("model.py: models() must return a dict of name -> estimator")
    clashes = [name for name in extra if name in builtin_names(prediction)]
    if clashes:
        names = ", ".join(map(repr, clashes))
        what = (
            f"the name of a built-in {prediction} model: rename it"
            if len(clashes) == 1
            else f"names of built-in {prediction} models: rename them"
        )
        raise ConfigError(f"model.py: models() returns {names}, {what}")
    for name, estimator in extra.items():
        if not hasattr(estimator, "fit") or not hasattr(estimator, "predict"):
            raise ConfigError(f"model.py: {name!r} is not an estimator (needs fit and predict)")
    return extra


_loaded: dict[Path, tuple[bytes, Any]] = {}


def _project_module(model_file: Path) -> Any:
    """model.py executed as a module (None when there is none), once per content of the file:
    load_project_models and project_metrics share it, so training runs it once."""
    try:
        code = model_file.read_bytes()
    except FileNotFoundError:
        return None
    key, stamp = model_file.resolve(), code
    cached = _loaded.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    spec = importlib.util.spec_from_file_location("haj_project_model", model_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"model.py failed to load: {type(exc).__name__}: {exc}") from None
    _loaded[key] = (stamp, module)
    return module


def project_metrics(model_file: Path) -> dict[str, Any] | None:
    """model.py's custom metrics: {"function": metrics, "higher_is_better": {name: bool}}, or
    None when it defines no `metrics(y_true, y_pred, y_score) -> dict[str, float]`.

    `HIGHER_IS_BETTER = {"name": False}` (module level) gives a metric's direction; a name it
    does not list is higher-is-better. The function travels to joblib's workers with the task
    (cloudpickle stores it by value: model.py is not importable by name there)."""
    module = _project_module(model_file)
    function = getattr(module, "metrics", None) if module is not None else None
    if function is None:
        return None
    if not callable(function):
        raise ConfigError("model.py: metrics must be a function (y_true, y_pred, y_score)")
    directions = getattr(module, "HIGHER_IS_BETTER", None) or {}
    if not isinstance(directions, dict) or not all(
        isinstance(k, str) and isinstance(v, bool) for k, v in directions.items()
    ):
        raise ConfigError('model.py: HIGHER_IS_BETTER must be a dict like {"name": True}')
    return {"function": function, "higher_is_better": dict(directions)}


def project_model_names(project: Project) -> list[str]:
    """The names model.py adds, read by a runner with the project's own interpreter.

    A subprocess, not an import here: model.py may need packages only the project's virtualenv
    has, and importing scikit-learn would hold a UI's interpreter (GIL) for seconds.
    Raises ConfigError when model.py fails to load.
    """
    from engine import runner_client

    return list(runner_client.run(project, "models")["extra"])


def select(prediction: str, extra: dict[str, Any], wanted: list[str] | None) -> list[str]:
    """The model names to train: all by default, else the named ones (validated)."""
    available = builtin_names(prediction) + list(extra)  # load_project_models refused clashes
    if not wanted:
        return available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise UsageError(
            f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {prediction}: choose from {', '.join(available)}"
        )
    return list(dict.fromkeys(wanted))
