"""One writer at a time per project: a second command waits and says for what, or with
--no-wait fails at once; a killed holder never blocks the project; two real `haj train` on one
project both finish with every model file in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import Cancelled, ProjectBusy
from engine.lock import project_lock, read_holder
from tests.support import Result, as_json
from tests.support.training import start_training


def hold_in_thread(path: Path, command: str) -> tuple[threading.Event, threading.Thread]:
    """Hold the project's lock in another thread until the returned event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with project_lock(path, command):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(5)
    return release, thread


def test_a_second_writer_without_waiting_is_told_who_holds_the_project(tmp_path: Path) -> None:
    release, thread = hold_in_thread(tmp_path, "training")
    try:
        with pytest.raises(ProjectBusy) as busy, project_lock(tmp_path, "retrieve", wait=False):
            pass
        message = str(busy.value)
        assert message.startswith(f"{tmp_path.name} is busy: the training started at ")
        assert f"by pid {os.getpid()}" in message
    finally:
        release.set()
        thread.join()


def test_a_second_writer_waits_says_so_once_and_goes_on_when_the_first_ends(
    tmp_path: Path,
) -> None:
    release, thread = hold_in_thread(tmp_path, "training")
    told: list[str] = []
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    with project_lock(tmp_path, "crowning", on_wait=told.append):
        waited = time.monotonic() - started
        assert read_holder(tmp_path).command == "crowning"  # type: ignore[union-attr]
    thread.join()
    assert waited >= 0.4
    assert len(told) == 1 and told[0].startswith("waiting for the training started at ")


def test_waiting_can_be_cancelled(tmp_path: Path) -> None:
    release, thread = hold_in_thread(tmp_path, "training")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    try:
        with (
            pytest.raises(Cancelled, match="stopped waiting for the training"),
            project_lock(tmp_path, "retrieve", cancel=cancel),
        ):
            pass
    finally:
        release.set()
        thread.join()


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    with project_lock(tmp_path, "config"), project_lock(tmp_path, "rename", wait=False):
        pass
    with project_lock(tmp_path, "retrieve", wait=False):  # and released after both
        pass


@pytest.mark.integration
def test_a_killed_holder_never_blocks_the_project(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from engine.lock import project_lock\n"
            "with project_lock(Path(sys.argv[1]), 'training'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectBusy), project_lock(tmp_path, "retrieve", wait=False):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with project_lock(tmp_path, "retrieve", wait=False):  # at once: the kernel let go
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.e2e
def test_two_trainings_at_once_both_finish_and_no_model_file_is_lost(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    """Reproduced before the lock: 'FileNotFoundError ... .joblib.XXXX.tmp', 10 finished, 2
    failed. Now the second waits for the first, says so, then trains."""
    models = ("logistic_regression", "knn", "decision_tree", "gaussian_nb")
    first = start_training(trained_home, *models)
    deadline = time.monotonic() + 30
    while read_holder(trained_home / "cancer") is None or not _locked(trained_home / "cancer"):
        assert time.monotonic() < deadline, "the first training never took the lock"
        time.sleep(0.05)
    refused = haj("retrieve", "cancer", "--no-wait")
    assert refused.code == 13, refused.text
    assert len(refused.err.strip().splitlines()) == 1  # one line, no traceback
    assert "haj: error: cancer is busy: the training started at " in refused.err
    second = start_training(trained_home, *models)
    _, err1 = first.communicate(timeout=180)
    _, err2 = second.communicate(timeout=180)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "haj: waiting for the training started at " in err2
    board = as_json(haj("runs", "cancer", "--all", "--json"))
    statuses = [r["status"] for r in board["runs"]]
    assert statuses.count("finished") == len(statuses), statuses
    for run in board["runs"]:
        assert (trained_home / "cancer" / run["model_path"]).exists(), run["model_path"]
    assert not list((trained_home / "cancer" / "models").glob(".*.tmp"))


def _locked(path: Path) -> bool:
    try:
        with project_lock(path, "probe", wait=False):
            return False
    except ProjectBusy:
        return True


def test_the_lock_file_exists_only_while_held_and_follows_a_rename(tmp_path: Path) -> None:
    project = tmp_path / "churn"
    project.mkdir()
    with project_lock(project, "retrieve"):
        assert (project / ".haj.lock").exists()
    assert not (project / ".haj.lock").exists()  # a command leaves nothing on disk
    with project_lock(project, "rename"):
        project.rename(tmp_path / "attrition")
    assert not (tmp_path / "attrition" / ".haj.lock").exists()
