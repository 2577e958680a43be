"""The warm runner (engine.forkserver, engine.warm_runner): runs forked from it behave as runs
in a fresh process (results, environment, lock, cancel, random seeds), and haj falls back to a
fresh process whenever it cannot serve."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import errors, events, runner_client, warm_runner
from engine.api import ProjectAPI, Workspace
from engine.procs import running
from tests.support.training import SLOW_MODEL_PY

pytestmark = pytest.mark.integration


@pytest.fixture
def warm() -> warm_runner.ForkServer:
    """The test session's warm runner (tests/conftest.py keeps one per test process)."""
    warm_runner.keep_warm(start_now=False)
    server = warm_runner._get()
    assert server is not None, "the warm runner did not start"
    return server


def _retrieved_iris(root: Path) -> None:
    Workspace(root).create("iris", "classification", example="iris").retrieve()


@pytest.fixture
def iris(tmp_path: Path, shared_build: Callable[..., Path]) -> ProjectAPI:
    """A retrieved iris project of this test's own (copied from one built once per run)."""
    shutil.copytree(shared_build("warm-iris", _retrieved_iris) / "iris", tmp_path / "iris")
    return Workspace(tmp_path).project("iris")


def test_a_training_forked_from_the_warm_runner_is_recorded_like_a_fresh_ones(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    seen: list[events.Event] = []
    result = project.train(["logistic_regression", "decision_tree"], on_event=seen.append)
    assert [run["status"] for run in result["runs"]] == ["finished", "finished"]
    assert all(run["metrics"]["acc"] > 0.8 for run in result["runs"])
    assert any(isinstance(event, events.RunFinished) for event in seen)
    board = project.leaderboard()
    assert {run["model"] for run in board.runs} == {"logistic_regression", "decision_tree"}
    assert all((project.path / "models" / f"{run['id']}.joblib").exists() for run in board.runs)


def test_the_runner_is_a_child_of_the_warm_runner_in_its_own_session(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    child = warm.start(["models", str(project.path), "{}"], tmp_path, dict(os.environ), ())
    parent = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert parent == warm.process.pid
    assert os.getsid(child.pid) == child.pid  # cancelling signals its whole group
    answer = child.stdout.read()
    assert child.wait(timeout=30) == 0
    assert b'"event": "result"' in answer


def test_the_environment_of_the_caller_reaches_the_run(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = iris
    code = project.code_path("retriever")
    code.write_text(
        code.read_text() + "\n\nimport os as _os\nif _os.environ.get('HAJ_TEST_MARK') != 'seen':\n"
        "    raise RuntimeError('the environment did not arrive')\n"
    )
    monkeypatch.setenv("HAJ_TEST_MARK", "absent")
    with pytest.raises(errors.HajError, match="the environment did not arrive"):
        project.retrieve()
    monkeypatch.setenv("HAJ_TEST_MARK", "seen")
    project.retrieve()


def test_each_run_gets_its_own_numpy_random_state(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    code = project.code_path("retriever")
    out = tmp_path / "draws.txt"
    code.write_text(
        code.read_text() + f"\n\nimport numpy as _np\nwith open({str(out)!r}, 'a') as _f:\n"
        "    _f.write(repr(_np.random.random()) + '\\n')\n"
    )
    project.retrieve()
    project.retrieve()
    first, second = out.read_text().split()
    assert first != second


def test_a_cancel_stops_a_forked_training_and_records_it(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    project.code_path("model").write_text(SLOW_MODEL_PY)
    cancel = threading.Event()
    started = threading.Event()

    def on_event(event: events.Event) -> None:
        if isinstance(event, events.RunStarted):
            started.set()

    threading.Thread(target=lambda: (started.wait(60), cancel.set()), daemon=True).start()
    began = time.monotonic()
    with pytest.raises(errors.Cancelled):
        project.train(["slow_a", "slow_b"], on_event=on_event, cancel=cancel)
    assert time.monotonic() - began < 60
    session = project.last_session()
    assert session is not None and {run.status for run in session.runs} == {"cancelled"}


def test_the_project_lock_is_held_while_the_forked_run_works(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    project.code_path("model").write_text(SLOW_MODEL_PY)
    stop = project.path / "STOP"
    done = threading.Event()
    threading.Thread(target=lambda: (project.train(["slow_a"]), done.set()), daemon=True).start()
    busy = Workspace(tmp_path, wait=False).project("iris")
    deadline = time.monotonic() + 60
    while not ((session := project.last_session()) and session.live):
        assert time.monotonic() < deadline, "the training never started"
        time.sleep(0.1)
    with pytest.raises(errors.ProjectBusy):
        busy.retrieve()
    stop.touch()
    assert done.wait(60)
    busy.retrieve()  # free again once the run is over


def test_a_dead_warm_runner_is_replaced_and_no_run_is_lost(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer
) -> None:
    project = iris
    os.kill(warm.process.pid, signal.SIGKILL)
    warm.process.wait(timeout=10)
    project.retrieve()  # a fresh warm runner serves it
    assert warm_runner._server is not None and warm_runner._server is not warm
    assert running(warm_runner._server.process.pid)


def test_without_keep_warm_no_warm_runner_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm_runner, "_enabled", False)
    monkeypatch.setattr(warm_runner, "_server", None)
    assert warm_runner.start(["models", str(tmp_path), "{}"], tmp_path, {}, ()) is None
    assert warm_runner._server is None


def test_a_project_with_its_own_interpreter_never_forks_from_haj(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = iris
    monkeypatch.setattr(runner_client, "project_python", lambda project: "/bin/false")
    with pytest.raises(errors.HajError):
        project.retrieve()  # /bin/false ran it: not the warm runner
    assert running(warm.process.pid)


def test_a_projects_own_modules_and_the_callers_pythonpath_import_as_in_a_fresh_runner(
    iris: ProjectAPI, tmp_path: Path, warm: warm_runner.ForkServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = iris
    (project.path / "helpers_of_iris.py").write_text("MARK = 'from the project folder'\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "shared_helpers.py").write_text("MARK = 'from PYTHONPATH'\n")
    monkeypatch.setenv("PYTHONPATH", str(elsewhere))
    code = project.code_path("retriever")
    code.write_text(
        code.read_text() + "\n\nimport helpers_of_iris, shared_helpers\n"
        "print(helpers_of_iris.MARK, '/', shared_helpers.MARK)\n"
    )
    said: list[str] = []
    project.retrieve(on_event=lambda event: said.append(str(getattr(event, "line", ""))))
    assert "from the project folder / from PYTHONPATH" in said
