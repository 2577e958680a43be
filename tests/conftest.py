"""Shared fixtures: a temporary workspace, the `haj` CLI run as a user runs it, and trained
example projects (trained once per session, copied per test, since real training takes seconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAST_CLASSIFIERS = ["logistic_regression", "decision_tree", "gaussian_nb", "knn"]
FAST_REGRESSORS = ["linear_regression", "ridge", "decision_tree", "knn"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    monkeypatch.setenv("HAJ_HOME", str(workspace))
    return workspace


def run_haj(
    home: Path,
    *args: str,
    input: str | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> Result:
    """Run `haj ARGS` in a subprocess, as a user would (no terminal attached)."""
    full_env = {
        **os.environ,
        "HAJ_HOME": str(home),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def haj(home: Path) -> Callable[..., Result]:
    def call(*args: str, **kwargs: object) -> Result:
        return run_haj(home, *args, **kwargs)  # type: ignore[arg-type]

    return call


def _build_trained(base: Path, name: str, example: str, models: list[str]) -> Path:
    ws = base / name
    ws.mkdir()
    for args in (
        ["init", name, "--example", example],
        ["retrieve", name],
        ["train", name, "-m", *models],
        ["evaluate", name],
    ):
        result = run_haj(ws, *args)
        assert result.code == 0, result.text
        if args[0] == "init":
            # One worker: a process pool costs seconds to start on a busy 2-core machine, more
            # than these small models take. tests/test_interrupts.py covers parallel training.
            config = ws / name / "config.toml"
            config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    return ws


@pytest.fixture(scope="session")
def trained_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trained")
    return {
        "classification": _build_trained(base, "cancer", "breast_cancer", FAST_CLASSIFIERS),
        "regression": _build_trained(base, "diabetes", "diabetes", FAST_REGRESSORS),
    }


@pytest.fixture
def trained_home(home: Path, trained_cache: dict[str, Path]) -> Path:
    """A workspace holding 'cancer' (classification) and 'diabetes' (regression), trained and
    crowned, copied fresh for each test."""
    for ws in trained_cache.values():
        for project in ws.iterdir():
            shutil.copytree(project, home / project.name, symlinks=True)
    return home
