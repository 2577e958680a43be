"""Training that is stopped: Ctrl-C, a killed process, a model that fails. Finished runs stay
recorded, unfinished ones are closed as cancelled or failed, and the previous champion is intact.

The slow models come from the project's model.py: their fit() waits until a STOP file appears
(or two minutes pass), so each test decides when they end and no worker outlives it for long."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Result

MODEL_PY = '''
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

STOP = Path(__file__).resolve().parent / "STOP"


class Slow(ClassifierMixin, BaseEstimator):
    """Fits until the test creates STOP."""

    def __init__(self, seconds=120.0):
        self.seconds = seconds

    def fit(self, X, y):
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and not STOP.exists():
            time.sleep(0.05)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class Broken(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("this estimator always fails")

    def predict(self, X):
        raise RuntimeError("never fitted")


def models():
    return {"slow_a": Slow(), "slow_b": Slow(), "broken": Broken()}
'''


@pytest.fixture
def cancer(trained_home: Path) -> Iterator[Path]:
    project = trained_home / "cancer"
    (project / "model.py").write_text(MODEL_PY)
    config = project / "config.toml"  # parallel workers, as by default (the fixture uses one)
    config.write_text(config.read_text().replace("n_jobs = 1", "n_jobs = -1", 1))
    yield project
    (project / "STOP").touch()  # release any slow fit still running in a worker


def start_training(home: Path, *models: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HAJ_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "cancer", "-m", *models],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def wait_for_log(project: Path, *fragments: str, timeout: float = 120) -> str:
    """Wait until every fragment is in logs/train.log (polling the real file)."""
    log = project / "logs" / "train.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if all(fragment in text for fragment in fragments):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{fragments} not in train.log within {timeout}s:\n{text}")


def runs_by_label(haj: Callable[..., Result]) -> dict[str, dict]:
    result = haj("runs", "cancer", "--all", "--json")
    assert result.code == 0, result.text
    return {run["label"]: run for run in json.loads(result.out)["runs"]}


def champion(haj: Callable[..., Result]) -> dict:
    return json.loads(haj("status", "cancer", "--json").out)["champion"]


def test_ctrl_c_keeps_finished_runs_cancels_the_rest_and_the_champion(
    haj: Callable[..., Result], trained_home: Path, cancer: Path
) -> None:
    before = champion(haj)
    champion_bytes = (cancer / "models" / "champion.joblib").read_bytes()
    child = start_training(trained_home, "logistic_regression", "slow_a", "slow_b")
    try:
        wait_for_log(cancer, "(logistic_regression-2) proc-0001] finished", "(slow_a-1)")
        child.send_signal(signal.SIGINT)  # what Ctrl-C sends to the foreground process
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, out + err
    assert err.strip().splitlines() == [
        "haj: error: train cancelled; unfinished work was recorded as cancelled"
    ]
    runs = runs_by_label(haj)
    assert runs["logistic_regression-2"]["status"] == "finished"
    assert runs["logistic_regression-2"]["metrics"]["acc"] > 0.9
    assert runs["slow_a-1"]["status"] == "cancelled"
    assert runs["slow_b-1"]["status"] == "cancelled"
    assert runs["slow_a-1"]["finished_at"] and runs["slow_a-1"]["error"]
    assert "cancelled: 2 unfinished run(s) recorded as cancelled" in wait_for_log(cancer, "")
    assert champion(haj) == before
    assert (cancer / "models" / "champion.joblib").read_bytes() == champion_bytes
    assert not list((cancer / "models").glob(".*.tmp"))


def running_pids(db: Path) -> set[int]:
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT pid FROM runs WHERE status = 'running'").fetchall()
    finally:
        connection.close()
    return {row[0] for row in rows}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (its loky workers and their resource tracker), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(b")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def test_killed_training_is_reaped_as_failed_at_the_next_read(
    haj: Callable[..., Result], trained_home: Path, cancer: Path
) -> None:
    """SIGKILL of the CLI and of its runner (a closed terminal, the OOM killer): nobody is
    left to record anything, so the next command that reads the store marks the runs failed."""
    before = champion(haj)
    child = start_training(trained_home, "knn", "slow_a")
    try:
        wait_for_log(cancer, "(knn-2) proc-0001] finished", "(slow_a-1)")
        (runner_pid,) = running_pids(cancer / "haj.db")
        assert runner_pid != child.pid
        workers = descendants(runner_pid)
        child.kill()
        child.wait(timeout=30)
        os.kill(runner_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.exists(f"/proc/{runner_pid}"):
            time.sleep(0.05)  # the runner is not our child: wait for init to reap it
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    (cancer / "STOP").touch()
    for pid in workers:  # orphaned workers of the killed runner would idle for minutes
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert running_pids(cancer / "haj.db") == {runner_pid}  # nothing recorded the kill
    runs = runs_by_label(haj)
    assert runs["knn-2"]["status"] == "finished"
    assert runs["slow_a-1"]["status"] == "failed"
    assert "died" in runs["slow_a-1"]["error"]
    assert running_pids(cancer / "haj.db") == set()
    assert champion(haj) == before


def test_a_failing_model_is_recorded_failed_while_the_others_finish(
    haj: Callable[..., Result], cancer: Path
) -> None:
    config = cancer / "config.toml"  # one worker: no process pool to start on a busy machine
    config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    result = haj("train", "cancer", "-m", "broken", "knn", "gaussian_nb")
    assert result.code == 0, result.text
    assert "(broken-1) proc-0001] failed: RuntimeError: this estimator always fails" in result.out
    assert "2 finished, 1 failed on proc-0001" in result.out
    runs = runs_by_label(haj)
    assert runs["broken-1"]["status"] == "failed"
    assert runs["broken-1"]["error"] == "RuntimeError: this estimator always fails"
    assert runs["broken-1"]["model_path"] is None
    assert runs["knn-2"]["status"] == runs["gaussian_nb-2"]["status"] == "finished"
    assert haj("runs", "cancer", "--json").code == 0
    only_failed = haj("train", "cancer", "-m", "broken")
    assert only_failed.code == 1  # nothing finished: a script can tell
