"""Training that tests stop: slow models (from a project's model.py) that fit until a STOP file
appears, `haj train` as a real process to signal, and the runs it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support import ROOT, Result

# The slow models: fit() waits until a STOP file appears next to model.py (or two minutes pass),
# so each test decides when they end and no worker outlives it for long.
SLOW_MODEL_PY = '''
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


def start_training(home: Path, *models: str) -> subprocess.Popen[str]:
    """`haj train cancer -m MODELS` as a real process (to signal or kill)."""
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


def runs_by_label(haj: Callable[..., Result]) -> dict[str, dict]:
    result = haj("runs", "cancer", "--all", "--json")
    assert result.code == 0, result.text
    return {run["label"]: run for run in json.loads(result.out)["runs"]}


def champion(haj: Callable[..., Result]) -> dict:
    return json.loads(haj("status", "cancer", "--json").out)["champion"]
