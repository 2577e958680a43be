"""The whole loop through the `haj` command, as a user runs it, checked on disk and in haj.db:
init -> retrieve -> (process) -> train -> runs -> evaluate -> list / status."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fs_snapshot import snapshot
from tests.support import Result, as_json, call_haj, on_terminal, run_haj

LOG_LINE = re.compile(
    r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?P<project>[\w-]+) \((?P<label>[\w-]+)\) "
    r"(?P<data>(proc|raw)-\d{4})\] (?P<message>.+)$"
)
CLASSIFICATION_METRICS = {"acc", "precision", "recall", "f1", "roc_auc"}
REGRESSION_METRICS = {"rmse", "mae", "mse", "r2"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_classification_loop_from_scratch(haj: Callable[..., Result], home: Path) -> None:
    # init: the type comes from the example; every template file lands on disk
    result = haj("init", "wine", "--example", "wine")
    assert result.code == 0, result.text
    assert "Created classification project wine" in result.out
    project = home / "wine"
    for name in (
        "config.toml",
        ".env",
        ".gitignore",
        "requirements.txt",
        "retriever.py",
        "processor.py",
        "model.py",
        "README.md",
    ):
        assert (project / name).is_file(), name
    for folder in ("data/raw", "data/processed", "models", "logs"):
        assert (project / folder).is_dir(), folder
    assert (project / ".env").stat().st_mode & 0o777 == 0o600
    assert ".env" in (project / ".gitignore").read_text().splitlines()
    config = (project / "config.toml").read_text()
    assert 'url = "example:wine"' in config and 'prediction = "classification"' in config
    assert "{{" not in config and "{{" not in (project / "README.md").read_text()

    # retrieve twice: one version, stored once, content-addressed
    first = haj("retrieve", "wine")
    assert first.code == 0, first.text
    assert "new raw version raw-0001" in first.out
    again = haj("retrieve", "wine")
    assert again.code == 0 and "unchanged: same content as raw-0001" in again.out
    (raw,) = as_json(haj("data", "wine", "--json"))  # type: ignore[misc]
    stored = project / raw["path"]
    assert stored.parent == project / "data" / "raw" and stored.suffix == ".csv"
    assert sorted(p.name for p in stored.parent.iterdir()) == [
        stored.name,
        stored.with_suffix(".meta.json").name,  # how long retrieving took
    ]
    assert raw["sha256"] == sha256(stored) and raw["bytes"] == stored.stat().st_size
    assert (raw["id"], raw["rows"], raw["columns"]) == ("raw-0001", 178, 14)
    assert raw["source"] == "example:wine" and raw["created_at"]

    # One worker: starting parallel workers costs seconds on a busy 2-core machine, and the
    # parallel path is exercised by the trained fixtures and tests/test_interrupts.py.
    config_path = project / "config.toml"
    config_path.write_text(config_path.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))

    # train without processing first: train processes the current raw version itself
    models = ["logistic_regression", "gaussian_nb", "decision_tree"]
    trained = haj("train", "wine", "-m", *models)
    assert trained.code == 0, trained.text
    assert "no processed data for raw-0001 yet: processing it first" in trained.out
    assert "3 finished on proc-0001" in trained.out
    versions = as_json(haj("data", "wine", "--json"))
    processed = [v for v in versions if v["kind"] == "processed"]  # type: ignore[union-attr]
    assert [(v["id"], v["parent"]) for v in processed] == [("proc-0001", "raw-0001")]
    assert (project / processed[0]["path"]).is_file()

    # logs/train.log: every line is [DATETIME PROJECT (MODEL-#) DATA_VERSION] ...
    log_lines = (project / "logs" / "train.log").read_text().splitlines()
    parsed = [LOG_LINE.match(line) for line in log_lines]
    assert all(parsed), [line for line, m in zip(log_lines, parsed, strict=True) if not m]
    labels = {m["label"] for m in parsed if m}
    assert labels == {
        "process",
        "session",
        "logistic_regression-1",
        "gaussian_nb-1",
        "decision_tree-1",
    }
    assert {m["project"] for m in parsed if m} == {"wine"}
    # the processing train did first is in the log, on the raw version, before the training
    processing = [m for m in parsed if m and m["label"] == "process"]
    assert {m["data"] for m in processing} == {"raw-0001"}
    assert "processing raw-0001 (178 rows x 14 columns)" in [m["message"] for m in processing]
    training_lines = log_lines[len(processing) :]
    # the split follows config.toml: test_size 0.2 of wine's 178 rows
    assert (
        "training 3 model(s) on proc-0001 (142 train / 36 test rows, 13 features)"
        in (training_lines[0])
    )
    assert sum("queued (run " in line for line in training_lines) == 3
    finished_lines = [m for m in parsed if m and m["message"].startswith("finished in")]
    assert len(finished_lines) == 3 and all("acc=" in m["message"] for m in finished_lines)
    for line in log_lines:  # the same lines went to the terminal
        assert line in trained.out

    # the leaderboard: every metric, params, model file + sha256, best acc first
    board = as_json(haj("runs", "wine", "--json"))
    runs = board["runs"]  # type: ignore[index]
    assert board["metric"] == "acc" and board["higher_is_better"] is True  # type: ignore[index]
    assert sorted(r["model"] for r in runs) == sorted(models)
    accs = [r["metrics"]["acc"] for r in runs]
    assert accs == sorted(accs, reverse=True)
    for run in runs:
        assert run["status"] == "finished" and run["data_version"] == "proc-0001"
        assert set(run["metrics"]) == CLASSIFICATION_METRICS  # 3 classes: one-vs-rest AUC
        assert run["params"] and run["duration_seconds"] > 0 and run["fit_seconds"] > 0
        assert run["label"] == f"{run['model']}-1"
        assert sha256(project / run["model_path"]) == run["model_sha256"]

    # evaluate: the champion, its score, the margin to the runner-up, a stable path
    crowned = haj("evaluate", "wine")
    assert crowned.code == 0, crowned.text
    best, second = runs[0], runs[1]
    assert f"Champion of wine: {best['model']}" in crowned.out
    assert f"acc = {best['metrics']['acc']:.4f}" in crowned.out
    margin = best["metrics"]["acc"] - second["metrics"]["acc"]
    assert f"margin to runner-up {second['model']}" in crowned.out
    assert f"{margin:.4f}" in crowned.out
    champion_file = project / "models" / "champion.joblib"
    assert sha256(champion_file) == best["model_sha256"]
    info = json.loads((project / "models" / "champion.json").read_text())
    assert info["run_id"] == best["id"] and info["metric"] == "acc"

    # list and status show it all
    (row,) = as_json(haj("list", "--json"))  # type: ignore[misc]
    assert row["name"] == "wine" and row["title"] == "Wine"
    assert row["prediction"] == "classification"
    assert (row["data_versions"], row["runs"]) == (1, 3)
    assert (row["champion"], row["metric"]) == (best["model"], "acc")
    assert row["score"] == pytest.approx(best["metrics"]["acc"])
    table = haj("list")
    assert table.code == 0
    wine_line = next(line for line in table.out.splitlines() if " wine " in line)
    assert best["model"] in wine_line and f"acc={best['metrics']['acc']:.4f}" in wine_line
    status = as_json(haj("status", "wine", "--json"))
    assert status["runs"] == {"finished": 3}  # type: ignore[index]
    assert status["champion"]["run_id"] == best["id"]  # type: ignore[index]
    assert status["data"]["current_raw"]["id"] == "raw-0001"  # type: ignore[index]
    text = haj("status", "wine").out
    assert "3 finished" in text and best["model"] in text and "1 raw, 1 processed" in text


def test_regression_leaderboard_is_sorted_lower_is_better(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    board = as_json(haj("runs", "diabetes", "--json"))
    assert board["metric"] == "rmse" and board["higher_is_better"] is False  # type: ignore[index]
    rmses = [r["metrics"]["rmse"] for r in board["runs"]]  # type: ignore[index]
    assert len(rmses) == 4 and rmses == sorted(rmses)
    assert all(set(r["metrics"]) == REGRESSION_METRICS for r in board["runs"])  # type: ignore[index]
    by_r2 = as_json(haj("runs", "diabetes", "--metric", "r2", "--limit", "2", "--json"))
    r2 = [r["metrics"]["r2"] for r in by_r2["runs"]]  # type: ignore[index]
    assert len(r2) == 2 and r2 == sorted(r2, reverse=True)
    assert r2[0] == max(r["metrics"]["r2"] for r in board["runs"])  # type: ignore[index]
    table = haj("runs", "diabetes")
    assert "by rmse, best first (lower is better)" in table.out and "♛" in table.out


def test_crowning_by_another_metric_keeps_history_and_moves_the_stable_path(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    project = trained_home / "diabetes"
    runs = as_json(haj("runs", "diabetes", "--metric", "mae", "--json"))["runs"]  # type: ignore[index]
    before = as_json(haj("status", "diabetes", "--json"))["champion"]  # type: ignore[index]
    assert before["metric"] == "rmse"
    result = as_json(haj("evaluate", "diabetes", "mae", "--json"))
    best, second = runs[0], runs[1]
    assert result["run"]["id"] == best["id"] and result["metric"] == "mae"  # type: ignore[index]
    assert result["higher_is_better"] is False  # type: ignore[index]
    assert result["margin"] == pytest.approx(second["metrics"]["mae"] - best["metrics"]["mae"])  # type: ignore[index]
    assert result["previous"]["run_id"] == before["run_id"]  # type: ignore[index]
    assert result["path"] == str(project / "models" / "champion.joblib")  # type: ignore[index]
    assert sha256(project / "models" / "champion.joblib") == best["model_sha256"]

    history = as_json(haj("status", "diabetes", "--json"))["champion_history"]  # type: ignore[index]
    assert [(h["run_id"], h["metric"]) for h in history] == [
        (best["id"], "mae"),
        (before["run_id"], "rmse"),
    ]
    assert history[0]["previous_run_id"] == before["run_id"] and history[0]["crowned_at"]

    import joblib

    bundle = joblib.load(project / "models" / "champion.joblib")
    assert bundle["run_id"] == best["id"] and bundle["target"] == "target"
    X = [[0.01] * len(bundle["features"])]
    assert len(bundle["pipeline"].predict(X)) == 1


def test_list_of_the_trained_workspace(haj: Callable[..., Result], trained_home: Path) -> None:
    rows = {r["name"]: r for r in as_json(haj("list", "--json"))}  # type: ignore[union-attr]
    assert set(rows) == {"cancer", "diabetes"}
    assert rows["diabetes"]["prediction"] == "regression" and rows["diabetes"]["metric"] == "rmse"
    assert rows["cancer"]["runs"] == 4 and rows["cancer"]["data_versions"] == 1
    table = haj("list").out
    header = next(line for line in table.splitlines() if "Name" in line)
    for column in ("Name", "Title", "Type", "Data", "Runs", "Champion", "Score"):
        assert column in header


def test_workspace_is_home_option_then_haj_home_then_ml_projects(tmp_path: Path) -> None:
    explicit, env_home, user = tmp_path / "explicit", tmp_path / "env", tmp_path / "user"
    user.mkdir()
    assert call_haj(env_home, "--home", str(explicit), "init", "a", "-p", "regression").code == 0
    assert call_haj(env_home, "init", "b", "-p", "regression").code == 0
    assert (
        call_haj(
            env_home, "init", "c", "-p", "regression", env={"HAJ_HOME": "", "HOME": str(user)}
        ).code
        == 0
    )
    assert (explicit / "a" / "config.toml").is_file()
    assert (env_home / "b" / "config.toml").is_file()
    assert (user / "ml_projects" / "c" / "config.toml").is_file()
    listed = call_haj(env_home, "list", "--home", str(explicit), "--json")
    assert [r["name"] for r in json.loads(listed.out)] == ["a"]


@pytest.mark.e2e
def test_version_and_bare_haj_without_a_terminal(home: Path) -> None:
    """The real entry point (`python -m engine`), its exit code and a stdin that is no terminal."""
    version = run_haj(home, "--version")
    assert version.code == 0 and re.fullmatch(r"haj \d+\.\d+\.\d+\n", version.out)
    bare = run_haj(home)
    assert bare.code == 0 and "usage: haj" in bare.out and "retrieve" in bare.out


def test_delete_with_yes_removes_the_project(haj: Callable[..., Result], home: Path) -> None:
    assert haj("init", "gone", "-p", "regression").code == 0
    result = haj("delete", "gone", "--yes")
    assert result.code == 0 and "Deleted gone" in result.out
    assert list(home.iterdir()) == []


# ---- on a real terminal (a pseudo-terminal) -----------------------------------------------------
@pytest.mark.e2e
def test_init_without_prediction_asks_on_a_terminal(home: Path) -> None:
    code, screen = on_terminal(
        home,
        ["init", "asked"],
        [
            ("Prediction type [classification/regression]:", "banana"),
            ("Please answer classification or regression.", "reg"),
        ],
    )
    assert code == 0, screen
    assert "Created regression project" in screen  # the rest may wrap on an 80-column terminal
    assert 'prediction = "regression"' in (home / "asked" / "config.toml").read_text()


@pytest.mark.e2e
def test_delete_asks_for_confirmation_on_a_terminal(home: Path) -> None:
    assert call_haj(home, "init", "keep", "-p", "classification").code == 0
    code, screen = on_terminal(home, ["delete", "keep"], [("[y/N]", "n")])
    assert code == 1 and "Nothing deleted." in screen
    assert (home / "keep" / "config.toml").is_file()
    code, screen = on_terminal(home, ["delete", "keep"], [("[y/N]", "y")])
    assert code == 0 and "Deleted keep" in screen
    assert not (home / "keep").exists()


@pytest.mark.e2e
def test_api_key_prompt_on_a_terminal_does_not_echo(home: Path) -> None:
    secret = "pty-secret-31337"
    assert call_haj(home, "init", "keyed", "-p", "classification").code == 0
    code, screen = on_terminal(
        home, ["config", "keyed", "--api-key"], [("API key (input hidden):", secret)]
    )
    assert code == 0, screen
    assert "HAJ_API_KEY saved to .env" in screen
    assert secret not in screen
    assert secret in (home / "keyed" / ".env").read_text()


def test_impl_opens_the_file_in_the_editor(haj: Callable[..., Result], home: Path) -> None:
    assert haj("init", "p", "-p", "regression").code == 0
    editor = f'{sys.executable} -c \'import sys; open(sys.argv[1], "a").write("# edited\\n")\''
    result = haj("impl", "p", "processor", env={"VISUAL": "", "EDITOR": editor})
    assert result.code == 0, result.text
    assert (home / "p" / "processor.py").read_text().endswith("# edited\n")
    visual = haj("impl", "p", "model", env={"VISUAL": editor, "EDITOR": "/nonexistent"})
    assert visual.code == 0, visual.text
    assert (home / "p" / "model.py").read_text().endswith("# edited\n")


WRAPPED_MODEL_PY = '''
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class Wrapped(ClassifierMixin, BaseEstimator):
    """An estimator class of the user's own, defined only in model.py."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        self.inner_ = LogisticRegression(C=self.C, max_iter=1000).fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict(self, X):
        return self.inner_.predict(X)


def models():
    return {"wrapped": Wrapped(C=0.5)}
'''


def test_an_estimator_class_from_model_py_is_saved_and_loads_without_model_py(
    haj: Callable[..., Result], trained_home: Path, tmp_path: Path
) -> None:
    """Regression: pickle cannot name a class of model.py (loaded from a file), so such runs
    failed with "Can't pickle <class 'haj_project_model.Wrapped'>"."""
    (trained_home / "cancer" / "model.py").write_text(WRAPPED_MODEL_PY)
    result = haj("train", "cancer", "-m", "wrapped")
    assert result.code == 0, result.text
    (run,) = [
        r for r in as_json(haj("runs", "cancer", "--json"))["runs"] if r["model"] == "wrapped"
    ]  # type: ignore[index]
    assert run["status"] == "finished", run["error"]
    assert run["params"] == {"C": 0.5}
    model_file = trained_home / "cancer" / run["model_path"]
    code = (
        "import joblib, sys\n"
        f"bundle = joblib.load({str(model_file)!r})\n"
        "print(bundle['model'], len(bundle['pipeline'].predict([[0.0] * 30])))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["wrapped", "1"]


BROKEN_MODEL_PY = """
from sklearn.base import BaseEstimator, ClassifierMixin


class Broken(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("this estimator always fails" + ", really" * 30)

    def predict(self, X):
        raise RuntimeError("never fitted")


def models():
    return {"broken": Broken()}
"""


def test_runs_tells_about_failed_runs_and_records_when_each_really_started(
    haj: Callable[..., Result], home: Path
) -> None:
    assert haj("init", "flowers", "--example", "iris").code == 0
    config = home / "flowers" / "config.toml"
    config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    (home / "flowers" / "model.py").write_text(BROKEN_MODEL_PY)
    assert haj("retrieve", "flowers").code == 0
    assert haj("train", "flowers", "-m", "broken").code == 1

    # every run failed: the leaderboard says so and where to look, instead of "no runs yet"
    empty = haj("runs", "flowers")
    assert empty.code == 0, empty.text
    assert "No runs yet" not in empty.out
    assert "1 run(s) exist: 1 failed" in empty.out
    assert "See them and their errors with `haj runs flowers --all`" in empty.out
    listed = haj("runs", "flowers", "--all")
    assert listed.code == 0 and "Error" in listed.out and "failed" in listed.out
    assert "RuntimeError: this estimator always fails, really, really" in listed.out
    assert ", really" * 30 not in listed.out and "…" in listed.out  # shortened

    # one worker: each model starts when the previous one is done, and its run says so
    models = ["decision_tree", "gaussian_nb", "knn"]
    trained = haj("train", "flowers", "-m", *models)
    assert trained.code == 0, trained.text
    assert trained.out.count("queued (run ") == 3 and "started (run" not in trained.out
    runs = [r for r in as_json(haj("runs", "flowers", "--json"))["runs"] if r["model"] in models]  # type: ignore[index]
    runs.sort(key=lambda r: r["started_at"])
    assert sorted(r["model"] for r in runs) == sorted(models)
    for before, after in itertools.pairwise(runs):
        ended = datetime.fromisoformat(before["started_at"]) + timedelta(
            seconds=before["duration_seconds"] - 0.002  # stamps are to the millisecond
        )
        assert datetime.fromisoformat(after["started_at"]) >= ended, (before, after)


CLASHING_MODEL_PY = """
from sklearn.neighbors import KNeighborsClassifier


def models():
    return {"knn": KNeighborsClassifier(n_neighbors=1), "knn3": KNeighborsClassifier(n_neighbors=3)}
"""


def test_a_model_py_name_of_a_built_in_model_is_an_error(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    listed = haj("models", "cancer")
    assert listed.code == 0, listed.text
    assert "Built-in classification models: logistic_regression," in listed.out
    assert "From model.py: balanced_logistic_regression" in listed.out
    (trained_home / "cancer" / "model.py").write_text(CLASHING_MODEL_PY)
    before = snapshot(trained_home)
    expected = (
        "haj: error: model.py: models() returns 'knn', the name of a built-in classification "
        "model: rename it"
    )
    for args in (["train", "cancer", "-m", "knn"], ["models", "cancer"]):
        result = haj(*args)
        assert result.code != 0 and result.err.strip() == expected, (args, result.text)
    assert snapshot(trained_home) == before


def test_a_metric_a_model_cannot_give_is_explained_not_left_blank(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    """RidgeClassifier gives no class probabilities: its run records why roc_auc is missing, and
    `haj runs` says so under the table (a blank cell alone says nothing)."""
    trained = haj("train", "cancer", "-m", "ridge_classifier")
    assert trained.code == 0, trained.text
    board = as_json(haj("runs", "cancer", "--json"))
    (ridge,) = [r for r in board["runs"] if r["model"] == "ridge_classifier"]
    assert "roc_auc" not in ridge["metrics"] and "acc" in ridge["metrics"]
    assert ridge["notes"] == {
        "roc_auc": "roc_auc not computed: the model gives no class probabilities"
    }
    assert "_haj_notes" not in ridge["params"]  # kept inside params in the store, not shown
    shown = haj("runs", "cancer").out
    assert f"{ridge['label']}: roc_auc not computed: the model gives no class probabilities" in (
        " ".join(shown.split())
    )


def test_hints_name_the_haj_the_user_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the Quick start only .venv/bin/haj exists: the demo's hint says that path; `haj`
    only when PATH finds this very program."""
    from engine.cli.output import command_name

    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    program = venv_bin / "haj"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert command_name(str(program)) == str(program)
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert command_name(str(program)) == "haj"
    assert command_name("/x/engine/__main__.py").endswith(" -m engine")
