"""Shared fixtures and the test tiers.

Tiers (markers, given automatically; an explicit marker on a test or module wins):
  unit         no subprocess, no server, no training: `pytest -m unit` (seconds)
  integration  the `haj` CLI in-process, trained workspaces, training (which runs haj's runner)
  e2e          real processes: `python -m engine` under signals and pseudo-terminals, servers,
               tmux, pip installs into project virtualenvs, moto, Docker
  docker       also needs a reachable Docker engine (scripts/start-dockerd.sh); always e2e

A test's tier follows from its module (MODULE_TIERS) or from the fixtures it uses (a trained
workspace or the `haj` fixture: integration; moto, a registry, a built image: e2e); anything else
is unit, and a unit test that starts a subprocess fails saying it needs a marker.

Fixtures: a temporary workspace (`home`), the `haj` command in-process (`haj`), trained example
projects (built once per session, across xdist workers, copied per test), moto's server, a local
docker-registry and the trained project's image (each once per session, in one xdist group)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    FAST_CLASSIFIERS,
    FAST_REGRESSORS,
    Result,
    build_trained,
    call_haj,
)
from tests.support.aws import FAKE_AWS, MOTO_SERVER, run_moto
from tests.support.docker import Built, build_image, docker_or_skip
from tests.support.procs import free_port, stop_process, wait_http
from tests.support.training import SLOW_MODEL_PY

TIERS = ("unit", "integration", "e2e")
# whole modules whose tests are one tier (their own markers may still move single tests)
MODULE_TIERS = {
    "test_import_hygiene": "e2e",  # fresh interpreters, by design
    "test_deps": "e2e",  # pip installs into project virtualenvs
    "test_serving": "e2e",  # a real server process
    "test_raw_serving": "e2e",  # a real server process on raw rows
    "test_monitor_live": "e2e",  # a real server process, its live drift
    "test_export_mlflow": "e2e",  # a real `mlflow server` (skipped without one)
    "test_serving_control": "e2e",  # `haj run`, servers, signals
    "test_tui_tmux": "e2e",  # the app in tmux
    "test_tui_container_deploy": "e2e",  # Docker and moto from the app
    "test_tui_app": "integration",
    "test_tui_tabs": "integration",
    "test_tui_snapshots": "integration",
    "test_tui_tabs_snapshots": "integration",
    "test_tui_tabs_fake": "integration",  # the whole app, on the fake engine
    "test_tui_keys": "integration",  # the whole app, on the fake engine
    "test_tui_live": "integration",  # the whole app, on the fake engine
    "test_tui_runs_filter": "integration",  # the whole app, on the fake engine
    "test_tui_run_detail": "integration",  # the whole app, on the fake engine
    "test_tui_monitor": "integration",  # the Monitor tab on a trained project
    "test_tui_pipeline_view": "integration",  # the Pipeline view runs a real pipeline
    "test_cluster": "e2e",  # a real local Dask cluster (processes on 127.0.0.1)
    "test_schedule": "integration",  # a stand-in `crontab` program (its unit and e2e tests say so)
}
INTEGRATION_FIXTURES = {"haj", "trained_home", "trained_cache"}
E2E_FIXTURES = {"built", "moto_url", "aws_env", "registry", "deployable", "stock_moto"}
# one xdist worker runs everything that shares moto, the registry or Docker ("docker"), tmux
# ("tmux"), or a module's one server process (test_serving's module-scoped server)
DOCKER_GROUP_FIXTURES = E2E_FIXTURES
MODULE_GROUPS = {
    "test_tui_tmux": "tmux",
    "test_serving": "serving",
    "test_raw_serving": "raw",
    "test_monitor_live": "monitor-live",
    "test_cluster": "cluster",  # one local Dask cluster for the module
}


def _module_name(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    return module.__name__.rsplit(".", 1)[-1] if module is not None else ""


def _tier_of(item: pytest.Item) -> str:
    for tier in TIERS:
        if item.get_closest_marker(tier) is not None:
            return tier
    if item.get_closest_marker("docker") is not None:
        return "e2e"
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & E2E_FIXTURES:
        return "e2e"
    module = _module_name(item)
    if module in MODULE_TIERS:
        return MODULE_TIERS[module]
    if fixtures & INTEGRATION_FIXTURES:
        return "integration"
    return "unit"


def pytest_configure(config: pytest.Config) -> None:
    """Runs started by tests fork from one warm runner per test process, as they do in the
    app (engine.warm_runner): a test's training starts at once instead of importing
    scikit-learn again. `haj` run as a real process still starts a fresh runner, as a one-shot
    command does."""
    from engine import warm_runner

    warm_runner.keep_warm(start_now=False)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks it schedules by
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))
        module = _module_name(item)
        if item.get_closest_marker("docker") is not None or (
            set(getattr(item, "fixturenames", ())) & DOCKER_GROUP_FIXTURES
        ):
            item.add_marker(pytest.mark.xdist_group("docker"))
        elif module in MODULE_GROUPS:
            item.add_marker(pytest.mark.xdist_group(MODULE_GROUPS[module]))


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit test that starts a subprocess is in the wrong tier: say so instead of running."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        raise AssertionError(
            f"a unit test started a subprocess ({args!r}): mark it "
            "@pytest.mark.integration or @pytest.mark.e2e (see tests/conftest.py)"
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


# ---- workspaces and the `haj` command ------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    monkeypatch.setenv("HAJ_HOME", str(workspace))
    return workspace


@pytest.fixture
def haj(home: Path) -> Callable[..., Result]:
    """`haj ARGS` in-process on `home` (tests.support.call_haj): code, out, err."""

    def call(*args: str, **kwargs: object) -> Result:
        return call_haj(home, *args, **kwargs)  # type: ignore[arg-type]

    return call


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run sees (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def trained_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Workspaces holding 'cancer' (classification) and 'diabetes' (regression), trained on the
    fast models and crowned: built once per run (the first xdist worker builds, the rest wait)."""
    shared = _shared_dir(tmp_path_factory)
    target = shared / "trained"
    cache = {"classification": target / "classification", "regression": target / "regression"}
    with _locked(shared / "trained.lock"):
        if not (target / "complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            build_trained(cache["classification"], "cancer", "breast_cancer", FAST_CLASSIFIERS)
            build_trained(cache["regression"], "diabetes", "diabetes", FAST_REGRESSORS)
            (target / "complete").touch()
    return cache


@pytest.fixture(scope="session")
def shared_build(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`shared_build(key, build)`: the directory `build(directory)` filled, built once per run
    for every xdist worker (the first to ask builds under a file lock, the others wait), so a
    trained workspace several modules start from is trained once, not once per worker and
    module. Tests read it or copy it; they never change it."""
    shared = _shared_dir(tmp_path_factory)

    def get(key: str, build: Callable[[Path], object]) -> Path:
        target = shared / f"built-{key}"
        done = shared / f"built-{key}.complete"
        with _locked(shared / f"built-{key}.lock"):
            if not done.exists():
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                build(target)
                done.touch()
        return target

    return get


@pytest.fixture
def trained_home(home: Path, trained_cache: dict[str, Path]) -> Path:
    """A workspace holding 'cancer' (classification) and 'diabetes' (regression), trained and
    crowned, copied fresh for each test."""
    for ws in trained_cache.values():
        for project in ws.iterdir():
            shutil.copytree(project, home / project.name, symlinks=True)
    return home


@pytest.fixture
def slow_cancer(trained_home: Path) -> Iterator[Path]:
    """trained_home's 'cancer' with slow models in model.py (tests.support.training) and parallel
    workers, as by default (the trained workspace uses one); every slow fit ends with the test."""
    project = trained_home / "cancer"
    (project / "model.py").write_text(SLOW_MODEL_PY)
    config = project / "config.toml"
    config.write_text(config.read_text().replace("n_jobs = 1", "n_jobs = -1", 1))
    yield project
    (project / "STOP").touch()  # release any slow fit still running in a worker


# ---- AWS (moto), a registry and Docker: one of each per run --------------------------------------
@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server (patched: see tests/support/aws.py) on a free 127.0.0.1 port."""
    yield from run_moto(["-c", MOTO_SERVER], tmp_path_factory.mktemp("moto") / "moto.log")


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake credentials and the moto endpoint for this process and `haj` subprocesses; moto's
    state is reset so each test starts from an empty account."""
    httpx.post(f"{moto_url}/moto-api/reset", timeout=10)
    env = {**FAKE_AWS, "HAJ_AWS_ENDPOINT_URL": moto_url}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def stock_moto(tmp_path: Path) -> Iterator[str]:
    """moto's server as shipped: its SageMaker has no UpdateEndpoint (a 500 HTML page)."""
    yield from run_moto(["-m", "moto.server"], tmp_path / "moto-stock.log")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Debian docker-registry on 127.0.0.1 (dockerd allows 127.0.0.0/8 without TLS)."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = root / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", process, log)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, trained_cache: dict[str, Path]) -> Built:
    """The trained 'cancer' project's image (wheelhouse, the local base image), built once per
    run; `home` holds the project it was built from (do not change it: copy it)."""
    docker_or_skip()
    shared = _shared_dir(tmp_path_factory)
    home, saved = shared / "container-ws", shared / "container-ws.json"
    with _locked(shared / "container-ws.lock"):
        if not saved.exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            made = build_image(home, trained_cache["classification"])
            fields = {**made.__dict__, "home": str(made.home)}
            saved.write_text(json.dumps(fields))
    fields = json.loads(saved.read_text())
    return Built(**{**fields, "home": Path(fields["home"])})


@pytest.fixture
def deployable(built: Built, tmp_path: Path) -> Built:
    """A fresh workspace copy of the built 'cancer' project (image already built)."""
    home = tmp_path / "ws"
    home.mkdir()
    shutil.copytree(built.home / "cancer", home / "cancer", symlinks=True)
    return Built(home, "cancer", built.image, built.record, built.seconds, "")
