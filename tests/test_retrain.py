"""Gated retraining (`haj retrain`) on a real trained project: the raw penguins table, real
models, its labels flipped in a new data version (the champion degrades, a challenger is
promoted), a challenger worse than the champion (rejected, the champion and a running server
untouched), the dry run, the history, bad input and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fs_snapshot import changes, snapshot
from tests.raw_tables import penguin_rows, to_csv
from tests.support import ROOT, call_haj
from tests.support.penguins import LR_DT, copy_home, train_penguins
from tests.support.procs import free_port
from tests.support.serving import start_server

pytestmark = pytest.mark.integration  # haj's runner trains; the e2e tests say so themselves

TARGET = "Species"

# A real scikit-learn model that is worse than any fitted classifier: it always answers the
# most frequent class (a third of the penguins).
MAJORITY_MODEL_PY = """
from sklearn.dummy import DummyClassifier


def models():
    return {"majority": DummyClassifier(strategy="most_frequent")}
"""


@pytest.fixture(scope="module")
def trained(shared_build: Callable[..., Path]) -> Path:
    return shared_build("penguins-lr-dt", lambda home: train_penguins(home, LR_DT))


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    return copy_home(trained, tmp_path / "home")


def new_source(home: Path, *, flip: bool = False, seed: int = 3) -> None:
    """Give the project's source new content: the same penguins with every label moved to the
    next species (`flip`), or other penguins of the same kind (`seed`)."""
    rows = penguin_rows(seed=seed)
    if flip:
        order = ["Adelie", "Chinstrap", "Gentoo"]
        for row in rows:
            row[TARGET] = order[(order.index(row[TARGET]) + 1) % 3]
    (home / "penguins.csv").write_text(to_csv(rows))


def status(home: Path) -> dict:
    result = call_haj(home, "status", "penguins", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def history(home: Path) -> list[dict]:
    result = call_haj(home, "retrain", "penguins", "--history", "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def retrain(home: Path, *args: str) -> dict:
    result = call_haj(home, "retrain", "penguins", *args, "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


# ---- the decision --------------------------------------------------------------------------------
def test_flipped_labels_degrade_the_champion_and_retrain_promotes_a_challenger(home: Path) -> None:
    first = status(home)["champion"]
    new_source(home, flip=True)
    assert call_haj(home, "retrieve", "penguins").code == 0
    assert call_haj(home, "check", "penguins").code == 3  # the champion degraded

    done = retrain(home, "--when", "degraded", "-m", "logistic_regression")
    assert done["status"] == "finished" and done["decision"] == "promoted", done
    assert [s["name"] for s in done["steps"]] == [
        "retrieve", "check", "process", "train", "score", "crown",
    ]  # fmt: skip
    assert all(s["outcome"] == "done" for s in done["steps"])
    assert done["steps"][1]["detail"].startswith("DEGRADED: ")
    champion, challenger = done["champion"], done["challenger"]
    assert champion["run_id"] == first["run_id"] and champion["score"] < 0.2
    assert challenger["score"] > 0.9 and challenger["label"] == "logistic_regression-2"
    assert done["data_version"] == "proc-0002" and done["holdout_rows"] == 48

    now = status(home)
    assert now["champion"]["run_id"] == challenger["run_id"]
    assert now["champion_history"][0]["reason"] == "retrain"
    assert call_haj(home, "check", "penguins").code == 0  # the new champion holds
    recorded = history(home)
    assert len(recorded) == 1 and recorded[0]["decision"] == "promoted"
    assert recorded[0]["champion"]["score"] == champion["score"]
    assert recorded[0]["challenger"]["score"] == challenger["score"]
    assert [s["name"] for s in recorded[0]["steps"]][-1] == "crown"


def test_the_champion_is_scored_on_the_rows_the_challenger_was_tested_on(home: Path) -> None:
    """The holdout is the new processed version split as training split it: a run trained on
    that version, scored there, gets exactly the test score training recorded."""
    from engine.retrain import champion_score, holdout
    from engine.store import Store
    from engine.workspace import get_project

    new_source(home, seed=5)
    done = retrain(home, "-m", "decision_tree", "logistic_regression")
    project = get_project(home, "penguins")
    config = project.read_config()
    with Store(project.db_path) as store:
        version = store.data_version(done["data_version"])
        runs = [r for r in store.runs() if r.data_version == done["data_version"]]
    assert version is not None and len(runs) == 2
    assert len(holdout(project, config, version)) == done["holdout_rows"] == 48
    for run in runs:
        score, rows = champion_score(project, config, version, run, "acc")
        assert rows == 48 and score == pytest.approx(run.metrics["acc"])


@pytest.mark.e2e
def test_a_worse_challenger_is_rejected_and_nothing_it_serves_changes(home: Path) -> None:
    project = home / "penguins"
    (project / "model.py").write_text(MAJORITY_MODEL_PY)
    new_source(home, seed=4)  # new penguins of the same kind: the champion still does well
    before = status(home)
    champion_file = (project / "models" / "champion.json").read_text()
    server = start_server(project)
    try:
        served = httpx.get(f"{server.url}/health", timeout=5).json()
        assert served["run_id"] == before["champion"]["run_id"]

        done = retrain(home, "-m", "majority", "--redeploy", "server")
        assert done["status"] == "finished" and done["decision"] == "rejected", done
        champion, challenger = done["champion"], done["challenger"]
        assert champion["run_id"] == before["champion"]["run_id"] and champion["score"] > 0.9
        assert challenger["label"] == "majority-1" and challenger["score"] < 0.5
        assert "the champion stays" in done["reason"]
        outcomes = {s["name"]: s["outcome"] for s in done["steps"]}
        assert outcomes["crown"] == "skipped" and outcomes["redeploy"] == "skipped"

        after = status(home)
        assert after["champion"] == before["champion"]
        assert after["champion_history"] == before["champion_history"]
        assert (project / "models" / "champion.json").read_text() == champion_file
        time.sleep(1.5)  # the server polls the store twice a second: give it three chances
        still = httpx.get(f"{server.url}/health", timeout=5).json()
        assert still["run_id"] == served["run_id"] and still["model_switches"] == 0
    finally:
        server.stop()
    recorded = history(home)
    assert recorded[0]["decision"] == "rejected"
    assert recorded[0]["champion"]["score"] == champion["score"]
    assert recorded[0]["challenger"]["score"] == challenger["score"]
    shown = call_haj(home, "retrain", "penguins", "--history")
    assert shown.code == 0 and "rejected" in shown.out and "majority-1" in shown.out


@pytest.mark.e2e
def test_redeploy_server_waits_until_the_running_server_serves_the_new_champion(
    home: Path,
) -> None:
    port = str(free_port())
    started = call_haj(home, "run", "penguins", "--detach", "--port", port)
    assert started.code == 0, started.text
    try:
        new_source(home, flip=True)
        done = retrain(home, "-m", "logistic_regression", "--redeploy", "server")
        assert done["decision"] == "promoted", done
        redeploy = done["steps"][-1]
        assert redeploy["name"] == "redeploy" and redeploy["outcome"] == "done", redeploy
        assert done["challenger"]["run_id"] in redeploy["detail"]
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        assert health["run_id"] == done["challenger"]["run_id"]
    finally:
        assert call_haj(home, "stop", "penguins").code == 0


# ---- stopping early, the dry run, bad input ------------------------------------------------------
def test_nothing_new_stops_after_the_retrieve_and_is_recorded(home: Path) -> None:
    runs = status(home)["runs"]
    result = call_haj(home, "retrain", "penguins")
    assert result.code == 0, result.text
    assert "nothing new: the source returned raw-0001 again" in result.out
    assert status(home)["runs"] == runs
    recorded = history(home)
    assert len(recorded) == 1
    assert recorded[0]["decision"] == "skipped" and recorded[0]["status"] == "finished"
    assert [s["name"] for s in recorded[0]["steps"]] == ["retrieve"]


def test_a_champion_that_holds_stops_a_degraded_retrain(home: Path) -> None:
    new_source(home, seed=4)
    done = retrain(home, "--when", "degraded")
    assert done["decision"] == "skipped" and done["reason"].startswith(
        "the champion logistic_regression-1 holds: "
    )
    assert [s["name"] for s in done["steps"]] == ["retrieve", "check"]


def test_dry_run_says_what_each_step_would_do_and_changes_nothing(home: Path) -> None:
    new_source(home, flip=True)
    before = snapshot(home / "penguins")
    result = call_haj(
        home, "retrain", "penguins", "--dry-run", "--when", "degraded", "-m", "knn",
        "--min-improvement", "0.02", "--redeploy", "server",
    )  # fmt: skip
    assert result.code == 0, result.text
    lines = result.out.splitlines()
    assert lines[0].startswith("Dry run: haj retrain penguins --when degraded would")
    for number, name in enumerate(
        ["retrieve", "check", "process", "train", "score", "crown", "redeploy"], 1
    ):
        assert any(line.lstrip().startswith(f"{number}. {name}") for line in lines), result.out
    assert "train knn" in result.out and "more than 0.02" in result.out
    assert "no server is running" in result.out
    assert changes(before, snapshot(home / "penguins")) == changes(before, before)
    assert history(home) == []


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["-m", "no_such_model"], 2, "unknown model 'no_such_model'"),
        (["--min-improvement", "-0.1"], 2, "--min-improvement must be a number, 0 or more"),
        (["--min-improvement", "nan"], 2, "--min-improvement must be a number, 0 or more"),
        (["--when", "sometimes"], 2, "invalid choice: 'sometimes'"),
        (["--redeploy", "ftp"], 2, "invalid choice: 'ftp'"),
        (["--limit", "3"], 2, "--limit N goes with --history"),
        (["--dry-run", "--history"], 2, "not allowed with argument"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    home: Path, args: list[str], code: int, said: str
) -> None:
    new_source(home, flip=True)  # new data the retrieve would store
    before = snapshot(home)
    result = call_haj(home, "retrain", "penguins", *args)
    assert result.code == code, result.text
    assert said in result.err and result.err.startswith("haj: error: ")
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert changes(before, snapshot(home)) == changes(before, before)


def test_an_unknown_project_is_exit_7(home: Path) -> None:
    result = call_haj(home, "retrain", "nope")
    assert result.code == 7 and result.err.startswith("haj: error: ")


@pytest.mark.unit
def test_the_retrains_table_round_trips(tmp_path: Path) -> None:
    from engine.retrain import Contender, RetrainResult, Step
    from engine.store import Store

    made = RetrainResult(
        id="r1", started_at="2026-01-01T00:00:00.000+00:00", trigger="degraded",
        status="finished", metric="rmse", higher_is_better=False, min_improvement=0.5,
        redeploy="none", decision="rejected", reason="worse",
        champion=Contender("a", "ridge-1", 2.0), challenger=Contender("b", "knn-1", 3.0),
        steps=[Step("retrieve", "done", 0.2, "new raw version raw-0002")],
    )  # fmt: skip
    with Store(tmp_path / "haj.db") as store:
        store.record_retrain(made.to_record())
        (row,) = store.retrains()
    back = RetrainResult.from_record(row)
    assert back.to_dict() == {**made.to_dict(), "finished_at": None}


# ---- cancelling ---------------------------------------------------------------------------------
SLOW_MODEL_PY = """
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

STOP = Path(__file__).resolve().parent / "STOP"


class Slow(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        end = time.monotonic() + 120
        while time.monotonic() < end and not STOP.exists():
            time.sleep(0.05)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def models():
    return {"slow": Slow()}
"""


@pytest.mark.e2e
def test_sigterm_cancels_a_retrain_cleanly_and_records_it(home: Path) -> None:
    project = home / "penguins"
    (project / "model.py").write_text(SLOW_MODEL_PY)
    before = status(home)
    env = {**os.environ, "HAJ_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "engine", "retrain", "penguins", "--when", "always", "-m", "slow"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:  # wait until the slow model is being fitted
            if "(slow-1) proc-0001] started" in line:
                break
        else:
            raise AssertionError(f"training never started: {child.stderr.read()}")  # type: ignore[union-attr]
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
    finally:
        (project / "STOP").touch()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 143, child.stderr.read()  # type: ignore[union-attr]
    (recorded,) = history(home)
    assert recorded["status"] == "cancelled" and recorded["decision"] is None
    assert [(s["name"], s["outcome"]) for s in recorded["steps"]] == [
        ("retrieve", "done"), ("process", "done"), ("train", "cancelled"),
    ]  # fmt: skip
    runs = json.loads(call_haj(home, "runs", "penguins", "--all", "--json").out)["runs"]
    assert {r["label"]: r["status"] for r in runs}["slow-1"] == "cancelled"
    assert status(home)["champion"] == before["champion"]
    assert not (project / ".haj.lock").exists()
