"""Training that is stopped: Ctrl-C, a killed process, a model that fails. Finished runs stay
recorded, unfinished ones are closed as cancelled or failed, and the previous champion is intact.

The slow models come from the project's model.py: their fit() waits until a STOP file appears
(or two minutes pass), so each test decides when they end and no worker outlives it for long."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Result
from tests.support.procs import descendants, running_pids, wait_for_log
from tests.support.training import champion, runs_by_label, start_training


@pytest.mark.e2e
def test_ctrl_c_keeps_finished_runs_cancels_the_rest_and_the_champion(
    haj: Callable[..., Result], trained_home: Path, slow_cancer: Path
) -> None:
    before = champion(haj)
    champion_bytes = (slow_cancer / "models" / "champion.joblib").read_bytes()
    child = start_training(trained_home, "logistic_regression", "slow_a", "slow_b")
    try:
        wait_for_log(slow_cancer, "(logistic_regression-2) proc-0001] finished", "(slow_a-1)")
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
    assert "cancelled: 2 unfinished run(s) recorded as cancelled" in wait_for_log(slow_cancer, "")
    assert champion(haj) == before
    assert (slow_cancer / "models" / "champion.joblib").read_bytes() == champion_bytes
    assert not list((slow_cancer / "models").glob(".*.tmp"))


@pytest.mark.e2e
def test_killed_training_is_reaped_as_failed_at_the_next_read(
    haj: Callable[..., Result], trained_home: Path, slow_cancer: Path
) -> None:
    """SIGKILL of the CLI and of its runner (a closed terminal, the OOM killer): nobody is
    left to record anything, so the next command that reads the store marks the runs failed."""
    before = champion(haj)
    child = start_training(trained_home, "knn", "slow_a")
    try:
        wait_for_log(slow_cancer, "(knn-2) proc-0001] finished", "(slow_a-1)")
        (runner_pid,) = running_pids(slow_cancer / "haj.db")
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
    (slow_cancer / "STOP").touch()
    for pid in workers:  # orphaned workers of the killed runner would idle for minutes
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert running_pids(slow_cancer / "haj.db") == {runner_pid}  # nothing recorded the kill
    runs = runs_by_label(haj)
    assert runs["knn-2"]["status"] == "finished"
    assert runs["slow_a-1"]["status"] == "failed"
    assert "died" in runs["slow_a-1"]["error"]
    assert running_pids(slow_cancer / "haj.db") == set()
    assert champion(haj) == before


def test_a_failing_model_is_recorded_failed_while_the_others_finish(
    haj: Callable[..., Result], slow_cancer: Path
) -> None:
    config = slow_cancer / "config.toml"  # one worker: no process pool to start on a busy machine
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
