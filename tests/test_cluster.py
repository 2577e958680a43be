"""Training on a Dask cluster (engine.cluster, engine.cluster_train): a real local cluster on
127.0.0.1, started with `haj cluster start` (a scheduler and two worker processes), shared by
the module's tests (one xdist group) and stopped with `haj cluster stop`.

- seeded models give the same runs on the cluster as locally, with --cv too (folds as tasks);
- a worker killed mid-fit fails that run; the others finish;
- workers missing a package, or with another version, are refused before any task is sent;
- SIGTERM to `haj train` leaves no task running on the cluster;
- an address nobody answers fails in one line, within 5 s;
- with the local backend, dask is never imported."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAST_CLASSIFIERS, ROOT, Result, run_haj
from tests.support.procs import free_port, stop_pid, wait_for_log
from tests.support.training import runs_by_label

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a local cluster of two single-threaded worker processes."""
    ws = tmp_path_factory.mktemp("cluster-ws")
    started = run_haj(ws, "cluster", "start", "--workers", "2", "--port", "0", "--json")
    assert started.code == 0, started.text
    record = json.loads(started.out)
    try:
        assert record["address"].startswith("tcp://127.0.0.1:")
        yield record["address"]
    finally:
        stopped = run_haj(ws, "cluster", "stop")
        stop_pid(record["pid"])  # in case stop failed
        assert stopped.code == 0, stopped.text
        assert not (ws / ".haj-cluster.json").exists()


def train_process(home: Path, *args: str) -> subprocess.Popen[str]:
    """`haj train cancer ARGS` as a real process (to signal)."""
    env = {**os.environ, "HAJ_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "cancer", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def on_cluster(address: str, fn: Callable[..., Any]) -> Any:
    """`fn(dask_scheduler)` on the scheduler, and `fn`'s answer."""
    from distributed import Client

    with Client(address, timeout=5, set_as_default=False) as client:
        return client.run_on_scheduler(fn)


def busy(address: str) -> dict[str, Any]:
    """What the cluster still does: the scheduler's tasks, and the threads running a task on
    each worker."""
    from distributed import Client

    with Client(address, timeout=5, set_as_default=False) as client:
        tasks = client.run_on_scheduler(
            lambda dask_scheduler: sorted(map(str, dask_scheduler.tasks))
        )
        executing = client.run(lambda dask_worker: dask_worker.state.executing_count)
    return {"tasks": tasks, "executing": sum(executing.values())}


def wait_idle(address: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        now = busy(address)
        if not now["executing"] and not [t for t in now["tasks"] if t.startswith("haj-")]:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"the cluster still works on haj's tasks: {now}")
        time.sleep(0.2)


def wait_workers(address: str, count: int = 2) -> None:
    from distributed import Client

    with Client(address, timeout=5, set_as_default=False) as client:
        client.wait_for_workers(count, timeout=60)


def bundle_files(project: Path, run_id: str) -> list[str]:
    models = project / "models"
    return sorted(str(p.relative_to(models / run_id)) for p in (models / run_id).rglob("*"))


# ---- the same runs ------------------------------------------------------------------------------
def test_training_on_the_cluster_gives_the_local_runs(
    haj: Callable[..., Result], trained_home: Path, cluster: str
) -> None:
    project = trained_home / "cancer"
    result = haj("train", "cancer", "-m", *FAST_CLASSIFIERS, "--cluster", cluster)
    assert result.code == 0, result.text
    runs = runs_by_label(haj)
    for model in FAST_CLASSIFIERS:  # the trained workspace has trained each once, locally
        local, remote = runs[f"{model}-1"], runs[f"{model}-2"]
        assert remote["status"] == "finished", remote
        assert remote["metrics"] == local["metrics"], model
        assert remote["data_version"] == local["data_version"]
        # written by haj's own process: the bundle as recorded, with its other files
        path = project / remote["model_path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == remote["model_sha256"]
        assert bundle_files(project, remote["id"]) == bundle_files(project, local["id"])
    log = (project / "logs" / "train.log").read_text()
    assert f"on the Dask cluster {cluster} (2 workers, 2 threads" in log
    assert re.search(r"\(knn-2\) proc-0001\] fitting on tcp://127\.0\.0\.1:\d+ \(pid \d+\)", log)
    assert not list((project / "models").glob(".*.tmp"))

    # --cv: every fold a task of its own; the same means, spreads and test scores as locally
    two = ["logistic_regression", "decision_tree"]
    assert haj("train", "cancer", "-m", *two, "--cv", "3").code == 0
    result = haj("train", "cancer", "-m", *two, "--cv", "3", "--cluster", cluster)
    assert result.code == 0, result.text
    runs = runs_by_label(haj)
    for model in two:
        local, remote = runs[f"{model}-3"], runs[f"{model}-4"]
        assert remote["cv_folds"] == local["cv_folds"] == 3
        for key in ("metrics", "metrics_std", "test_metrics", "notes"):
            assert remote[key] == local[key], (model, key)
    crowned = haj("evaluate", "cancer", "--run", "decision_tree-4")  # its bundle loads
    assert crowned.code == 0, crowned.text
    wait_idle(cluster)


def test_a_tuning_study_on_the_cluster_gives_the_local_trials(
    haj: Callable[..., Result], trained_home: Path, cluster: str
) -> None:
    """The same seeded sampler, one trial at a time: the same parameters and fold scores."""
    studies = {}
    for study, where in (("here", []), ("there", ["--cluster", cluster])):
        args = ["-m", "decision_tree", "--trials", "3", "--cv", "3", "--jobs", "1"]
        result = haj("tune", "cancer", *args, "--study", study, "--json", *where)
        assert result.code == 0, result.text
        studies[study] = json.loads(result.out)
    assert studies["there"]["jobs"] == 1
    keep = ("trial", "status", "value", "std", "folds", "params")
    here = [{k: t[k] for k in keep} for t in studies["here"]["trials"]]
    there = [{k: t[k] for k in keep} for t in studies["there"]["trials"]]
    assert there == here and len(here) == 3
    log = (trained_home / "cancer" / "logs" / "train.log").read_text()
    assert f"the folds run on the Dask cluster {cluster} (2 workers" in log
    wait_idle(cluster)


# ---- a worker dies ------------------------------------------------------------------------------
def test_a_worker_killed_mid_fit_fails_that_run_and_the_rest_finish(
    haj: Callable[..., Result], trained_home: Path, slow_cancer: Path, cluster: str
) -> None:
    wait_workers(cluster)
    child = train_process(trained_home, "-m", "slow_a", "knn", "gaussian_nb", "--cluster", cluster)
    try:
        log = wait_for_log(slow_cancer, "(slow_a-1) proc-0001] fitting on", timeout=60)
        pid = int(re.search(r"\(slow_a-1\) proc-0001\] fitting on \S+ \(pid (\d+)\)", log)[1])
        os.kill(pid, signal.SIGKILL)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, out + err
    runs = runs_by_label(haj)
    assert runs["slow_a-1"]["status"] == "failed"
    assert f"(pid {pid}) died while running it" in runs["slow_a-1"]["error"]
    assert runs["knn-2"]["status"] == runs["gaussian_nb-2"]["status"] == "finished", runs
    assert "2 finished, 1 failed" in out
    assert "left the cluster" in (slow_cancer / "logs" / "train.log").read_text()
    wait_idle(cluster)  # the scheduler ran slow_a again elsewhere: haj stopped it


# ---- the workers' packages ----------------------------------------------------------------------
def test_workers_without_the_projects_packages_are_refused_before_any_task(
    haj: Callable[..., Result], trained_home: Path, cluster: str
) -> None:
    project = trained_home / "cancer"
    (project / "requirements.txt").write_text("haj-no-such-package==1.0\n")
    # the project's virtualenv holds another orjson than the workers'
    site = project / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    dist = site / "site-packages" / "orjson-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: orjson\nVersion: 0.0.1\n")
    transitions = on_cluster(cluster, lambda dask_scheduler: dask_scheduler.transition_counter)
    before = len(runs_by_label(haj))

    result = haj("train", "cancer", "-m", "knn", "--cluster", cluster)
    assert result.code == 14, result.text
    [line] = result.err.strip().splitlines()
    assert line.startswith(f"haj: error: the Dask workers at {cluster} differ from this ")
    assert "haj-no-such-package not installed on 2 workers" in line
    assert "orjson 0.0.1 here" in line
    assert len(runs_by_label(haj)) == before  # no run recorded
    after = on_cluster(cluster, lambda dask_scheduler: dask_scheduler.transition_counter)
    assert after == transitions  # not one task (nor any data) reached the cluster

    check = haj("cluster", "check", cluster, "--project", "cancer")
    assert check.code == 14, check.text
    assert "haj-no-such-package" in check.out and "0.0.1" in check.out
    check = haj("cluster", "check", cluster, "--json")  # haj's own stack alone: all the same
    assert check.code == 0, check.text
    report = json.loads(check.out)
    assert report["ok"] and len(report["workers"]) == 2
    assert all(w["threads"] == 1 and w["memory"] > 0 and w["pid"] for w in report["workers"])


# ---- Ctrl-C -------------------------------------------------------------------------------------
def test_sigterm_leaves_no_task_running_on_the_cluster(
    haj: Callable[..., Result], trained_home: Path, slow_cancer: Path, cluster: str
) -> None:
    wait_workers(cluster)
    child = train_process(trained_home, "-m", "slow_a", "slow_b", "--cluster", cluster)
    try:
        wait_for_log(
            slow_cancer, "(slow_a-1) proc-0001] fitting on", "(slow_b-1) proc-0001] fitting on"
        )
        assert busy(cluster)["executing"] == 2
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, out + err
    assert err.strip().splitlines() == [
        "haj: error: train cancelled; unfinished work was recorded as cancelled"
    ]
    wait_idle(cluster, timeout=3)  # the slow fits were interrupted, not left to run
    runs = runs_by_label(haj)
    assert runs["slow_a-1"]["status"] == runs["slow_b-1"]["status"] == "cancelled"


# ---- nobody there -------------------------------------------------------------------------------
def test_an_address_nobody_answers_fails_in_one_line_within_5s(trained_home: Path) -> None:
    refused = f"tcp://127.0.0.1:{free_port()}"
    with socket.socket() as silent:  # accepts connections (the kernel does), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        quiet = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        for address, said in (
            (refused, f"cannot reach the Dask scheduler at {refused}: connection refused"),
            (quiet, f"no answer from the Dask scheduler at {quiet} within 3 s"),
        ):
            started = time.monotonic()
            result = run_haj(trained_home, "train", "cancer", "--cluster", address)
            took = time.monotonic() - started
            assert result.code == 14, result.text
            assert took < 5, took
            [line] = result.err.strip().splitlines()
            assert line.startswith(f"haj: error: {said}"), line


# ---- the local backend --------------------------------------------------------------------------
def test_the_local_backend_imports_nothing_of_dask(trained_home: Path) -> None:
    """Local training (in this interpreter, one worker) and the CLI's parser load no dask."""
    project = trained_home / "cancer"
    code = (
        "import sys\n"
        "import engine.cli; engine.cli.build_parser()\n"
        "from engine import events, training\n"
        "from engine.project import Project\n"
        f"project = Project(name='cancer', path=__import__('pathlib').Path({str(project)!r}))\n"
        "result = training.train_in_process(project, ['gaussian_nb'], events.ignore)\n"
        "assert result['runs'][0]['status'] == 'finished', result\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---- addresses, config and the comparison (no cluster) ------------------------------------------
@pytest.mark.unit
def test_addresses_are_normalized_and_config_is_validated(
    haj: Callable[..., Result], home: Path
) -> None:
    from engine.cluster import normalize
    from engine.errors import UsageError

    assert normalize("10.0.0.5") == "tcp://10.0.0.5:8786"
    assert normalize("sched:9000") == "tcp://sched:9000"
    assert normalize(" tls://sched.example.com:8786 ") == "tls://sched.example.com:8786"
    assert normalize("tcp://[::1]:8786") == "tcp://[::1]:8786"
    for bad in ("", "http://sched:8786", "tcp://sched:99999", "tcp://:8786"):
        with pytest.raises(UsageError):
            normalize(bad)
    assert haj("init", "p", "-p", "classification").code == 0
    ok = haj("config", "p", "--set", "training.backend=dask", "--set", "training.scheduler=h:87")
    assert ok.code == 0, ok.text
    bad = haj("config", "p", "--set", "training.backend=spark")
    assert bad.code != 0 and 'training.backend must be "local" or "dask"' in bad.err
    bad = haj("config", "p", "--set", "training.scheduler=not an address")
    assert bad.code != 0 and "training.scheduler must be a Dask scheduler address" in bad.err


@pytest.mark.unit
def test_what_differs_is_said_in_one_line() -> None:
    from engine.cluster import PackageRow, differences_text

    a, b = "tcp://10.0.0.7:1", "tcp://10.0.0.8:1"
    rows = [
        PackageRow("numpy", "2.4.6", {a: "2.4.6", b: "2.4.6"}),
        PackageRow("python", "3.11.7", {a: "3.11.2", b: "3.11.9"}),  # the minor version counts
        PackageRow("scikit-learn", "1.9.1", {a: "1.8.0", b: "1.9.1"}),
        PackageRow("xgboost", "2.1.3", {a: None, b: None}),
        PackageRow("haj", "0.1.0", {a: None, b: "0.1.0"}),
    ]
    assert [row.ok for row in rows] == [True, True, False, False, False]
    assert differences_text(rows) == (
        f"scikit-learn 1.9.1 here, 1.8.0 on {a}; xgboost not installed on 2 workers; "
        f"haj's engine not installed on {a}"
    )
