"""The local backend's workers (engine.local_pool): each run fits in its own worker, so a worker
that dies fails its own run only, and a cancel leaves no worker behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.api import Workspace

pytestmark = pytest.mark.integration

DYING_MODEL_PY = '''
import os
import signal

from sklearn.base import BaseEstimator, ClassifierMixin


class Dies(ClassifierMixin, BaseEstimator):
    """Its worker is killed in the middle of the fit (as the kernel's OOM killer would)."""

    def fit(self, X, y):
        os.kill(os.getpid(), signal.SIGKILL)

    def predict(self, X):
        raise RuntimeError("never fitted")


def models():
    return {"dies": Dies()}
'''


def test_a_worker_killed_mid_fit_fails_its_run_and_the_others_finish(tmp_path: Path) -> None:
    project = Workspace(tmp_path).create("iris", "classification", example="iris")
    project.code_path("model").write_text(DYING_MODEL_PY)
    project.retrieve()
    result = project.train(["logistic_regression", "dies", "decision_tree", "gaussian_nb"])
    outcome = {run["model"]: run for run in result["runs"]}
    assert outcome["dies"]["status"] == "failed"
    assert "worker process fitting it died (killed by signal 9" in outcome["dies"]["error"]
    for model in ("logistic_regression", "decision_tree", "gaussian_nb"):
        assert outcome[model]["status"] == "finished", outcome[model]
        assert outcome[model]["metrics"]["acc"] > 0.8
    board = project.leaderboard()
    assert {run["model"] for run in board.runs if run["status"] == "finished"} == {
        "logistic_regression",
        "decision_tree",
        "gaussian_nb",
    }
    assert not [name for name in os.listdir(project.path / "models") if name.endswith(".tmp")]
