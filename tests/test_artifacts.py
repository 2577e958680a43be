"""Run artifacts kept at training (engine.artifacts) and model.py's custom metrics.

On real trainings: iris (`haj init x --example iris`, `haj retrieve`, `haj train x -m
logistic_regression random_forest`, in parallel workers, with a model.py that defines
`metrics()`), the session's trained breast_cancer and diabetes projects, and penguins (raw
columns, categorical features). The confusion matrix is checked against scikit-learn's on the
very test rows training held out (training's own `_classes` and `_split`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from engine import artifacts, events, training
from engine.metrics import check_metric, custom_metrics
from engine.store import Store
from engine.workspace import get_project
from tests.support import Result, as_json, call_haj
from tests.support.penguins import train_penguins

pytestmark = pytest.mark.integration  # trained workspaces; the pure checks are marked unit

CUSTOM_METRICS = """

HIGHER_IS_BETTER = {"errors": False}


def metrics(y_true, y_pred, y_score):
    import numpy as np

    return {
        "errors": int((np.asarray(y_true) != np.asarray(y_pred)).sum()),
        "top_proba": float(np.max(y_score, axis=1).mean()),
    }
"""


@pytest.fixture(scope="module")
def iris_home(shared_build: Callable[..., Path]) -> Path:
    """iris trained on logistic_regression and random_forest by parallel workers (the custom
    metric function travels to them), with model.py's metrics(); not crowned."""

    def build(home: Path) -> None:
        for args in (["init", "x", "--example", "iris"], ["retrieve", "x"]):
            result = call_haj(home, *args)
            assert result.code == 0, result.text
        with open(home / "x" / "model.py", "a", encoding="utf-8") as handle:
            handle.write(CUSTOM_METRICS)
        result = call_haj(home, "train", "x", "-m", "logistic_regression", "random_forest")
        assert result.code == 0, result.text

    return shared_build("artifacts-iris", build)


@pytest.fixture
def iris(iris_home: Path, tmp_path: Path) -> Callable[..., Result]:
    """`haj ARGS` on a fresh copy of the trained iris workspace."""
    home = tmp_path / "ws"
    shutil.copytree(iris_home, home, symlinks=True)
    return lambda *args: call_haj(home, *args)


def runs_of(haj: Callable[..., Result], name: str) -> list[dict[str, Any]]:
    return as_json(haj("runs", name, "--json"))["runs"]  # type: ignore[index]


def holdout(home: Path, name: str) -> tuple[Any, Any, list[dict[str, str]]]:
    """(X_test, y_test, spec): the rows training held out, split as training splits."""
    project = get_project(home, name)
    config = project.read_config()
    log = training.TrainLog(project, events.ignore)
    _, X, y, spec = training._training_data(project, config, None, log)
    _, stratify = training._classes(y, config["data"]["target"], config["project"]["prediction"])
    _, _, X_test, y_test = training._split(X, y, config["training"], stratify)
    return X_test, y_test, spec


def kept(home: Path, name: str, run: dict[str, Any]) -> dict[str, Any]:
    found = as_json(call_haj(home, "runs", name, "--show", run["id"], "--json"))
    return found["artifacts"]  # type: ignore[index]


# ---- classification --------------------------------------------------------------------------
def test_the_confusion_matrix_is_scikit_learns_on_the_holdout(iris_home: Path) -> None:
    X_test, y_test, _ = holdout(iris_home, "x")
    runs = runs_of(lambda *a: call_haj(iris_home, *a), "x")
    assert {r["model"] for r in runs} == {"logistic_regression", "random_forest"}
    for run in runs:
        found = kept(iris_home, "x", run)
        pipeline = joblib.load(iris_home / "x" / run["model_path"])["pipeline"]
        y_pred = pipeline.predict(X_test)
        classes = list(pipeline.classes_)
        assert found["confusion"]["labels"] == [c.item() for c in classes]  # the model's order
        assert (
            found["confusion"]["matrix"]
            == confusion_matrix(y_test, y_pred, labels=classes).tolist()
        )
        precision, recall, f1, support = precision_recall_fscore_support(
            y_test, y_pred, labels=classes, zero_division=0
        )
        assert [c["precision"] for c in found["per_class"]] == pytest.approx(precision)
        assert [c["recall"] for c in found["per_class"]] == pytest.approx(recall)
        assert [c["f1"] for c in found["per_class"]] == pytest.approx(f1)
        assert [c["support"] for c in found["per_class"]] == support.tolist()
        assert found["rows"] == len(y_test) == sum(map(sum, found["confusion"]["matrix"]))


def test_artifacts_are_a_file_under_the_runs_folder_listed_in_the_store(iris_home: Path) -> None:
    for run in runs_of(lambda *a: call_haj(iris_home, *a), "x"):
        with Store(iris_home / "x" / "haj.db") as store:
            listed = [a for a in store.artifacts(run["id"]) if a["kind"] == artifacts.KIND]
        assert [a["path"] for a in listed] == [f"models/{run['id']}/artifacts.json"]
        assert (iris_home / "x" / listed[0]["path"]).is_file()
        assert kept(iris_home, "x", run)["files"][0]["name"] == "artifacts.json"


def test_one_vs_rest_curves_give_the_runs_weighted_auc(iris_home: Path) -> None:
    for run in runs_of(lambda *a: call_haj(iris_home, *a), "x"):
        found = kept(iris_home, "x", run)
        assert len(found["roc"]) == len(found["pr"]) == 3  # one per class
        support = {c["label"]: c["support"] for c in found["per_class"]}
        weighted = sum(c["auc"] * support[c["label"]] for c in found["roc"]) / sum(support.values())
        assert weighted == pytest.approx(run["metrics"]["roc_auc"], abs=1e-9)


def test_roc_points_are_monotone_and_their_area_is_the_runs_roc_auc(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    """breast_cancer (binary): one curve, of the positive class, from (0, 0) to (1, 1)."""
    for run in runs_of(haj, "cancer"):
        found = kept(trained_home, "cancer", run)
        (roc,) = found["roc"]
        xs, ys = np.array(roc["x"]), np.array(roc["y"])
        assert len(xs) <= artifacts.MAX_CURVE_POINTS
        assert (np.diff(xs) >= 0).all() and (np.diff(ys) >= 0).all()
        assert (xs[0], ys[0], xs[-1], ys[-1]) == (0, 0, 1, 1)
        assert np.trapezoid(ys, xs) == pytest.approx(run["metrics"]["roc_auc"], abs=1e-3)
        (pr,) = found["pr"]
        assert pr["label"] == roc["label"] == 1 and 0 < pr["ap"] <= 1
        assert len(pr["x"]) <= artifacts.MAX_CURVE_POINTS


@pytest.mark.unit
def test_a_long_curve_is_thinned_keeping_its_ends_order_and_area() -> None:
    rng = np.random.default_rng(0)
    xs = np.sort(rng.random(5000))
    ys = np.sqrt(xs)
    thin_x, thin_y = artifacts.thin(np.r_[0, xs, 1], np.r_[0, ys, 1], 200)
    assert len(thin_x) <= 200
    assert (thin_x[0], thin_y[0], thin_x[-1], thin_y[-1]) == (0, 0, 1, 1)
    assert (np.diff(thin_x) >= 0).all() and (np.diff(thin_y) >= 0).all()
    assert np.trapezoid(thin_y, thin_x) == pytest.approx(2 / 3, abs=0.005)


def test_a_finalized_run_shows_the_artifacts_of_the_run_it_refits(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    assert haj("finalize", "cancer").code == 0
    refit = next(r for r in runs_of(haj, "cancer") if r.get("refit_of"))
    found = kept(trained_home, "cancer", refit)
    assert found["from_run"] == refit["refit_of"]
    assert "confusion" in found


# ---- regression ------------------------------------------------------------------------------
def test_regression_keeps_residuals_and_predicted_against_actual(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    X_test, y_test, _ = holdout(trained_home, "diabetes")
    run = runs_of(haj, "diabetes")[0]
    found = kept(trained_home, "diabetes", run)
    y_pred = joblib.load(trained_home / "diabetes" / run["model_path"])["pipeline"].predict(X_test)
    assert found["residuals"]["mean"] == pytest.approx(float(np.mean(y_test - y_pred)))
    points = found["predicted_vs_actual"]
    assert points["sampled_from"] == len(y_test) and len(points["actual"]) == len(y_test)
    assert points["actual"] == pytest.approx(y_test.tolist())
    assert "confusion" not in found and "roc" not in found


@pytest.mark.unit
def test_predicted_against_actual_is_a_seeded_sample_of_at_most_500() -> None:
    y = np.arange(2000, dtype=float)
    first = artifacts._regression(y, y * 2, seed=0)["predicted_vs_actual"]
    again = artifacts._regression(y, y * 2, seed=0)["predicted_vs_actual"]
    assert len(first["actual"]) == artifacts.MAX_SCATTER_POINTS and first == again
    assert first["predicted"] == [2 * a for a in first["actual"]]


# ---- importances -----------------------------------------------------------------------------
def test_importances_name_the_input_features(tmp_path: Path) -> None:
    """penguins: categorical features (one-hot encoded by the pipeline) come back as one
    feature each, by coef_, feature_importances_ or permutation."""
    project = train_penguins(tmp_path, ("logistic_regression", "random_forest", "knn"))
    methods = {}
    for run in runs_of(lambda *a: call_haj(tmp_path, *a), "penguins"):
        spec = joblib.load(project / run["model_path"])["features"]
        importances = kept(tmp_path, "penguins", run)["importances"]
        names = [f["feature"] for f in importances["features"]]
        assert sorted(names) == sorted(f["name"] for f in spec)
        assert any(f["kind"] == "categorical" for f in spec)
        methods[run["model"]] = importances["method"]
        if importances["method"] == "feature_importances_":  # they sum to 1 over the columns
            assert sum(f["importance"] for f in importances["features"]) == pytest.approx(1)
        values = [f["importance"] for f in importances["features"]]
        assert values == sorted(values, reverse=True)  # most important first
    assert methods == {
        "logistic_regression": "coef_",
        "random_forest": "feature_importances_",
        "knn": "permutation",
    }


def _fitted(estimator: Any) -> tuple[Any, Any, Any, list[dict[str, str]]]:
    """A pipeline of haj's preprocessing around `estimator`, fitted on a small table with a
    number, a category of three values and another number."""
    from engine.features import make_pipeline

    rng = np.random.default_rng(0)
    n = 120
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    X = np.column_stack([size.astype(object), colour.astype(object), rng.normal(size=n)])
    y = ((colour == "red") | (size > 1)).astype(int)
    spec = [
        {"name": "size", "kind": "numeric"},
        {"name": "colour", "kind": "categorical"},
        {"name": "noise", "kind": "numeric"},
    ]
    return make_pipeline(spec, estimator).fit(X, y), X, y, spec


@pytest.mark.unit
def test_one_hot_columns_sum_back_to_their_feature() -> None:
    from sklearn.linear_model import LogisticRegression

    pipeline, X, y, spec = _fitted(LogisticRegression())
    found = artifacts.importances(pipeline, "classification", spec, X, y, seed=0)
    coef = np.abs(pipeline.steps[-1][1].coef_[0])  # size, noise, then blue, green, red
    by_name = {f["feature"]: f["importance"] for f in found["features"]}
    assert by_name == pytest.approx({"size": coef[0], "noise": coef[1], "colour": coef[2:].sum()})
    assert found["method"] == "coef_"


@pytest.mark.unit
def test_permutation_importance_stops_at_its_time_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    pipeline, X, y, spec = _fitted(KNeighborsClassifier())
    found = artifacts.importances(pipeline, "classification", spec, X, y, seed=0)
    assert found["method"] == "permutation" and found["repeats"] == artifacts.MAX_REPEATS
    assert not found["capped"] and found["features"][0]["feature"] in ("colour", "size")
    monkeypatch.setattr(artifacts, "PERMUTATION_CAP", 0.0)
    capped = artifacts.importances(pipeline, "classification", spec, X, y, seed=0)
    assert capped["capped"] and capped["repeats"] == 0
    assert {f["importance"] for f in capped["features"]} == {None}


# ---- custom metrics ----------------------------------------------------------------------------
def test_a_custom_metric_is_recorded_and_crowns_in_its_direction(
    iris: Callable[..., Result],
) -> None:
    runs = runs_of(iris, "x")
    assert all({"errors", "top_proba"} <= set(r["metrics"]) for r in runs)
    for run in runs:  # errors: the off-diagonal of the run's own confusion matrix
        matrix = iris("runs", "x", "--show", run["id"], "--json")
        confusion = json.loads(matrix.out)["artifacts"]["confusion"]["matrix"]
        off = sum(map(sum, confusion)) - sum(confusion[i][i] for i in range(len(confusion)))
        assert run["metrics"]["errors"] == off
    board = as_json(iris("runs", "x", "--metric", "errors", "--json"))
    assert board["higher_is_better"] is False and "errors" in board["metrics"]  # type: ignore[index]
    ranked = [r["metrics"]["errors"] for r in board["runs"]]  # type: ignore[index]
    assert ranked == sorted(ranked)
    crowned = as_json(iris("evaluate", "x", "errors", "--json"))
    assert crowned["metric"] == "errors" and crowned["value"] == min(ranked)  # type: ignore[index]
    unknown = iris("evaluate", "x", "nope")
    assert unknown.code != 0 and "errors, top_proba" in unknown.err


@pytest.mark.unit
def test_custom_metrics_without_a_direction_are_higher_is_better() -> None:
    assert check_metric("top_proba", "classification", {"top_proba": True}).higher_is_better
    assert not check_metric("Errors", "classification", {"errors": False}).higher_is_better
    assert check_metric("acc", "classification", {"acc": False}).higher_is_better  # built-in wins
    with pytest.raises(Exception, match=r"choose from acc, .*, r_custom"):
        check_metric("nope", "classification", {"r_custom": True})


@pytest.mark.unit
def test_what_a_custom_metric_cannot_record_is_a_note() -> None:
    y = np.array([0, 1, 1])
    values, notes = custom_metrics(
        lambda t, p, s: {"good": 1, "acc": 0.5, "bad value": 1.0, "nan": float("nan")}, y, y
    )
    assert values == {"good": 1.0}
    assert set(notes) == {"acc (model.py)", "bad value", "nan"}
    values, notes = custom_metrics(lambda t, p, s: 1 / 0, y, y)
    assert values == {} and "ZeroDivisionError" in notes["metrics()"]


def test_cross_validation_computes_custom_metrics_on_every_fold(
    iris: Callable[..., Result],
) -> None:
    assert iris("train", "x", "-m", "knn", "--cv", "3").code == 0
    (run,) = [r for r in runs_of(iris, "x") if r["model"] == "knn"]
    assert run["cv_folds"] == 3 and "errors" in run["metrics_std"]
    assert "errors" in run["test_metrics"]


# ---- the command line -------------------------------------------------------------------------
def test_runs_show_prints_the_matrix_per_class_scores_and_importances(
    iris: Callable[..., Result],
) -> None:
    shown = iris("runs", "x", "--show", "random_forest-1")
    assert shown.code == 0, shown.text
    out = shown.out
    assert "confusion matrix (rows: truth, columns: predicted)" in out
    assert "On the test split (30 rows)" in out
    assert "per class" in out and "avg precision" in out
    assert "feature importances (feature_importances_)" in out
    assert "petal length (cm)" in out and "█" in out
