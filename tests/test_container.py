"""`haj build` and `haj container`: the build context (no Docker needed), clear errors, how a
build's log is read (a recorded build stream), and a real image built once per session
(wheelhouse, the local base image) then run, called and stopped.

The Docker tests need an engine started by scripts/start-dockerd.sh (no bridge: containers run
with host networking, the server on 127.0.0.1); they skip, saying why, when none answers.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fs_snapshot import changes, snapshot
from tests.support import call_haj, run_haj
from tests.support.docker import BASE_IMAGE, Built, docker_or_skip, project_id
from tests.support.procs import free_port
from tests.support.serving import sample_record

IMAGE_BUDGET = 600 * 1000 * 1000  # the target: under 600 MB


# ---- the build context (no Docker) ---------------------------------------------------------------
def test_context_holds_code_champion_and_pinned_requirements(trained_home: Path) -> None:
    import sklearn

    from engine.container.context import write_context
    from engine.fsutil import sha256_file
    from engine.workspace import get_project

    project = get_project(trained_home, "cancer")
    project.set_secret("HAJ_API_KEY", "s3cret-value")
    context = write_context(project)
    root = context.path
    assert root == project.path / "build" / "context"
    dockerfile = (root / "Dockerfile").read_text()
    for needle in (
        "ARG BASE_IMAGE=python:3.11-slim",
        "python3 -m venv /opt/venv",
        "USER 10001",
        "HEALTHCHECK",
        "/health",
        "EXPOSE 8080",
        'ENTRYPOINT ["python", "-m", "engine.serving", "--host", "0.0.0.0"]',
        'CMD ["serve"]',
    ):
        assert needle in dockerfile, needle
    # dependencies come before the code: a new champion rebuilds only the last layers
    assert dockerfile.index("requirements.txt") < dockerfile.index("COPY project/")
    requirements = (root / "requirements.txt").read_text()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    for absent in ("textual", "boto3", "docker"):
        assert absent not in requirements
    champion = json.loads((root / "project" / "models" / "champion.json").read_text())
    assert sha256_file(root / "project" / "models" / "champion.joblib") == champion["sha256"]
    # COPY keeps modes and the server runs as a user that owns nothing: all must be readable
    assert all(p.stat().st_mode & 0o004 for p in root.rglob("*")), "unreadable file in context"
    assert (root / "haj" / "engine" / "serving" / "__main__.py").exists()
    assert not (root / "haj" / "engine" / "cli").exists()
    files = {p.relative_to(root).as_posix() for p in root.rglob("*")}
    assert not any(".env" in f or "haj.db" in f or "/data/" in f for f in files), files
    assert not any("__pycache__" in f for f in files)
    assert "s3cret-value" not in "".join(
        p.read_text(errors="ignore") for p in root.rglob("*") if p.is_file()
    )
    info = json.loads((root / "build-info.json").read_text())
    assert info["champion"]["run_id"] == champion["run_id"]


def test_build_refuses_a_tampered_champion(trained_home: Path) -> None:
    project_dir = trained_home / "cancer"
    with open(project_dir / "models" / "champion.joblib", "ab") as handle:
        handle.write(b"tampered")
    result = call_haj(trained_home, "build", "cancer", env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.code == 11
    assert "does not match the sha256" in result.err
    assert "Traceback" not in result.text


def test_build_without_champion_says_so(haj: Any) -> None:
    assert haj("init", "fresh", "--example", "iris").code == 0
    result = haj("build", "fresh")
    assert result.code == 8
    assert result.err.startswith("haj: error: project 'fresh' has no champion")
    assert "Traceback" not in result.text


def test_no_docker_engine_says_how_to_start_one(trained_home: Path) -> None:
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    for args in (["build", "cancer"], ["container", "status", "cancer"]):
        result = call_haj(trained_home, *args, env=env)
        assert result.code == 11, result.text
        assert "no Docker engine reachable at unix:///nonexistent/docker.sock" in result.err
        assert "DOCKER_HOST" in result.err and "Traceback" not in result.text
        assert len(result.err.strip().splitlines()) == 1


def test_plain_build_context_has_no_wheels(trained_home: Path) -> None:
    from engine.container.context import write_context
    from engine.workspace import get_project

    context = write_context(get_project(trained_home, "cancer"))
    assert not (context.path / "wheels").exists()
    assert "--no-index" not in (context.path / "Dockerfile").read_text()


def test_an_invalid_tag_is_one_line_and_writes_nothing(trained_home: Path) -> None:
    before = snapshot(trained_home)
    for tag, why in (
        ("UPPER/bc", "repository names must be lowercase"),
        ("haj/bc:-x", "the tag after ':'"),
        ("haj//bc", "the name must be '/'-separated parts"),
    ):
        result = call_haj(trained_home, "build", "cancer", "--tag", tag)
        assert result.code == 2, result.text
        assert result.err.startswith(f"haj: error: invalid image tag {tag!r}: {why}"), result.err
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.text
    assert changes(before, snapshot(trained_home)) == {"added": [], "removed": [], "modified": []}


def test_the_project_id_is_made_at_init_kept_by_a_rename_and_given_to_older_projects(
    haj: Any, home: Path
) -> None:
    import tomllib

    from engine.workspace import get_project

    assert haj("init", "churn", "-p", "classification").code == 0
    uid = project_id(home / "churn")
    assert haj("init", "other", "-p", "regression").code == 0
    assert len(uid) == 32 and project_id(home / "other") != uid
    assert haj("config", "churn", "-t", "attrition").code == 0
    assert project_id(home / "attrition") == uid  # the id lives in config.toml
    # a project made before ids existed gets one, once, written into its config.toml
    config = home / "other" / "config.toml"
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(line for line in lines if not line.startswith("id =")))
    project = get_project(home, "other")
    before = config.read_text()
    read = project.uid  # a read never writes: a dry run changes nothing
    assert config.read_text() == before
    made = project.ensure_uid()  # what build, container start and deploy call first
    assert tomllib.loads(config.read_text())["project"]["id"] == made == read == project.uid
    assert "# unique and stable" in config.read_text()


@contextmanager
def engine_that_never_answers(path: Path) -> Iterator[str]:
    """A unix socket that accepts connections and never answers (a hung Docker engine)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        done.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_an_engine_that_never_answers_is_reported_in_seconds(
    trained_home: Path, tmp_path: Path
) -> None:
    with engine_that_never_answers(tmp_path / "hung.sock") as url:
        started = time.monotonic()
        result = call_haj(trained_home, "container", "status", "cancer", env={"DOCKER_HOST": url})
        seconds = time.monotonic() - started
    assert result.code == 11, result.text
    assert result.err.startswith(f"haj: error: no Docker engine reachable at {url}")
    assert "(it did not answer within 5 s)" in result.err and "Traceback" not in result.text
    assert len(result.err.strip().splitlines()) == 1
    assert seconds < 20, f"took {seconds:.0f}s"


# ---- a real Docker engine ------------------------------------------------------------------------
@pytest.mark.docker
def test_image_is_small_labelled_and_non_root(built: Built) -> None:
    client = docker_or_skip()
    image = client.images.get(built.image)
    size = int(image.attrs["Size"])
    print(f"\nimage {built.image}: {size / 1e6:.0f} MB, first build {built.seconds:.0f}s")
    assert size < IMAGE_BUDGET, f"{size / 1e6:.0f} MB"
    config = image.attrs["Config"]
    assert config["User"] == "10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert image.labels["haj.project"] == "cancer"
    assert image.labels["haj.project-id"] == project_id(built.home / "cancer")
    champion = json.loads((built.home / "cancer" / "models" / "champion.json").read_text())
    assert image.labels["haj.run-id"] == champion["run_id"]
    assert f"haj/cancer:{champion['run_id']}" in image.tags and "haj/cancer:latest" in image.tags
    assert "[1/" in built.output and "Built haj/cancer" in built.output  # steps were streamed
    # sizes in decimal MB, as Docker prints them (580MB), not MiB
    assert f"({size / 1e6:.0f} MB, champion" in built.output, built.output[-500:]
    listed = run_haj(built.home, "container", "images", "cancer").out
    assert f"{size / 1e6:.0f} MB" in listed
    assert f"({size / 1e6:.0f} MB, run" in run_haj(built.home, "status", "cancer").out
    # the wheelhouse build installed offline: every wheel is in the context
    info = json.loads((built.home / "cancer" / "build" / "context" / "build-info.json").read_text())
    assert info["wheelhouse"] and any(w["file"].startswith("scikit_learn") for w in info["wheels"])


@pytest.mark.docker
def test_rebuild_uses_the_layer_cache(built: Built, tmp_path: Path) -> None:
    home = tmp_path / "ws"
    shutil.copytree(built.home / "cancer", home / "cancer", symlinks=True)
    result = call_haj(home, "build", "cancer", "--base-image", BASE_IMAGE, "--wheelhouse")
    assert result.code == 0, result.text[-2000:]
    assert "Using cache" in result.out
    # the dependency stage came from the cache: pip did not install anything again
    assert "Successfully installed" not in result.out, result.out[-2000:]


def time_wait_on(port: int) -> bool:
    """True if 127.0.0.1:PORT cannot be bound without SO_REUSEADDR (a TIME-WAIT connection)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.mark.docker
def test_container_start_predict_status_logs_stop(built: Built) -> None:
    client = docker_or_skip()
    port = free_port()
    home = built.home
    uid = project_id(home / "cancer")
    by_id = {"label": f"haj.project-id={uid}"}
    result = run_haj(home, "container", "start", "cancer", "--network", "host", "--port", str(port))
    try:
        assert result.code == 0, result.text
        url = f"http://127.0.0.1:{port}"
        assert url in result.out
        assert f"waiting for {url}/health: " in result.out  # the wait is shown
        health = httpx.get(f"{url}/health", timeout=5).json()
        assert health["status"] == "ok" and health["model"]
        assert health["run_id"] == built.record["run_id"]  # the last build's image
        # the fitted processing travels in the image's bundle: raw rows are taken there too
        assert health["inputs"] == "raw"
        from engine.store import Store

        with Store(home / "cancer" / "haj.db") as store:
            crowned = store.champion()
        assert crowned and health["crowned_at"] == crowned.crowned_at  # not null in the image
        record = sample_record(home / "cancer")
        answer = httpx.post(f"{url}/predict", json=record, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0] in (0, 1, "0", "1")
        # SageMaker's contract on the same server
        assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
        scored = httpx.post(f"{url}/invocations", json={"instances": [record]}, timeout=10)
        assert scored.status_code == 200 and len(scored.json()["predictions"]) == 1

        containers = client.containers.list(filters=by_id)
        assert len(containers) == 1
        assert containers[0].name == f"haj-cancer-{uid[:8]}"
        assert containers[0].labels["haj.project-path"] == str(home / "cancer")

        status = run_haj(home, "container", "status", "cancer", "--json")
        info = json.loads(status.out)
        assert info["containers"][0]["status"] == "running"
        assert info["containers"][0]["url"] == url
        assert info["image"]["image"] == built.image

        again = run_haj(home, "container", "start", "cancer", "--network", "host")
        assert again.code == 11 and "already runs" in again.err

        logs = run_haj(home, "container", "logs", "cancer", "-n", "50")
        assert logs.code == 0 and "Uvicorn running on http://127.0.0.1" in logs.out

        text = run_haj(home, "status", "cancer").out
        assert "container" in text and url in text
        for _ in range(3):  # requests the server closes: TIME-WAIT connections on its port
            httpx.get(f"{url}/health", headers={"Connection": "close"}, timeout=5)
    finally:
        stopped = run_haj(home, "container", "stop", "cancer")
    assert stopped.code == 0 and "Stopped" in stopped.out
    assert not client.containers.list(all=True, filters=by_id)
    assert "not running" in run_haj(home, "container", "status", "cancer").out

    # at once on the same port: the TIME-WAIT connections do not make it "in use"
    assert time_wait_on(port), "no TIME-WAIT connection on the port: the check below proves nothing"
    restarted = run_haj(
        home, "container", "start", "cancer", "--network", "host", "--port", str(port)
    )
    try:
        assert restarted.code == 0, restarted.text
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        assert run_haj(home, "container", "stop", "cancer").code == 0


@pytest.mark.docker
def test_bridge_network_missing_is_explained(built: Built) -> None:
    client = docker_or_skip()
    if client.networks.list(names=["bridge"]):
        pytest.skip("this engine has a bridge network")
    result = run_haj(built.home, "container", "start", "cancer", "--port", str(free_port()))
    assert result.code == 11
    assert "no bridge network" in result.err and "--network host" in result.err


# ---- how a build's log is read: recorded streams of the docker SDK's build API ----------------
class RecordedEngine:
    """Stands in for a docker client: `api.build(...)` yields a recorded stream (the decoded
    chunks a real engine sends for `client.api.build(decode=True)`), and keeps its arguments."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks
        self.calls: list[dict[str, Any]] = []
        self.api = self

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(kwargs)
        yield from self.chunks


def step(n: int, of: int, text: str) -> dict[str, str]:
    return {"stream": f"Step {n}/{of} : {text}\n"}


def failed_run(command: str, code: int) -> dict[str, Any]:
    message = f"The command '/bin/sh -c {command}' returned a non-zero code: {code}"
    return {"errorDetail": {"code": code, "message": message}, "error": message}


def stream_of_failed_step(*output: str, code: int = 1) -> list[dict[str, Any]]:
    """The chunks of a classic-builder build whose second step (a RUN) prints `output`, fails."""
    return [
        step(1, 2, f"FROM {BASE_IMAGE}"),
        {"stream": " ---> 3f1c0a7d2b9e\n"},
        step(2, 2, "RUN pip install -r /tmp/haj/requirements.txt"),
        {"stream": " ---> Running in 0c9d8e7f6a5b\n"},
        *({"stream": line + "\n"} for line in output),
        failed_run("pip install -r /tmp/haj/requirements.txt", code),
    ]


def read_failed_build(chunks: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    from engine.container.image import _stream_build
    from engine.errors import ContainerError

    seen: list[Any] = []
    engine = RecordedEngine(chunks)
    with pytest.raises(ContainerError) as caught:
        _stream_build(engine, path="/ctx", tag="haj-test/x:1", on_event=seen.append)
    assert engine.calls and engine.calls[0]["tag"] == "haj-test/x:1"  # the arguments reach it
    from engine.cli.hints import render

    return render(caught.value), seen  # as the CLI prints it


def test_failed_build_shows_its_last_log_lines() -> None:
    message, seen = read_failed_build(
        stream_of_failed_step("step output before the failure", code=3)
    )
    assert message.startswith("the image build failed:")
    assert "returned a non-zero code: 3" in message
    assert "step output before the failure" in message
    assert "pip could not reach" not in message
    from engine import events

    progress = [e for e in seen if isinstance(e, events.Progress)]
    assert [(e.done, e.total) for e in progress] == [(1, 2), (2, 2)]  # steps as progress
    lines = [e.line for e in seen if isinstance(e, events.Output)]
    assert "step output before the failure" in lines  # and every line as output


def test_a_successful_build_stream_gives_the_image_id() -> None:
    from engine.container.image import _stream_build

    chunks = [
        step(1, 1, f"FROM {BASE_IMAGE}"),
        {"stream": " ---> 3f1c0a7d2b9e\n"},
        {"aux": {"ID": "sha256:5e2b" + "0" * 60}},
        {"stream": "Successfully built 5e2b00000000\n"},
        {"stream": "Successfully tagged haj-test/x:1\n"},
    ]
    image = _stream_build(RecordedEngine(chunks), path="/ctx", tag="x", on_event=lambda e: None)
    assert image == "5e2b00000000"  # the last word: "Successfully built"
    without = [c for c in chunks if "aux" not in c and "Successfully built" not in str(c)]
    from engine.errors import ContainerError

    with pytest.raises(ContainerError, match="ended without an image"):
        _stream_build(RecordedEngine(without), path="/ctx", tag="x", on_event=lambda e: None)


HINT = (
    "pip could not reach the package index inside the build: use --wheelhouse (wheels "
    "downloaded on the host) or --network host"
)
# pip's own lines when the build has no network (recorded on an engine without a bridge)
PIP_WITHOUT_NETWORK = (
    "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) "
    "after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection."
    "HTTPSConnection object at 0x7f2c1d0e5a90>: Failed to establish a new connection: "
    "[Errno -3] Temporary failure in name resolution')': /simple/scikit-learn/",
    "ERROR: Could not find a version that satisfies the requirement scikit-learn==1.5.2 "
    "(from versions: none)",
    "ERROR: No matching distribution found for scikit-learn==1.5.2",
)


def test_a_build_without_network_inside_hints_at_wheelhouse() -> None:
    """On an engine with no bridge the build's RUN steps have no network: pip cannot resolve the
    index, and the error says what to do instead."""
    message, _ = read_failed_build(stream_of_failed_step(*PIP_WITHOUT_NETWORK))
    assert "Temporary failure in name resolution" in message
    assert message.rstrip().endswith(HINT), message[-600:]


def test_a_certificate_failure_gets_the_same_hint() -> None:
    """pip's TLS failure (an interception proxy) gets the same hint; other failures do not."""
    tls = (
        "Could not fetch URL https://pypi.org/simple/six/: There was a problem confirming the "
        "ssl certificate: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    message, _ = read_failed_build(stream_of_failed_step(tls))
    assert message.endswith(HINT)
    message, _ = read_failed_build(stream_of_failed_step(code=4))
    assert "pip could not reach" not in message and "--wheelhouse" not in message


@pytest.mark.docker
def test_a_failing_step_on_a_real_engine_is_read_the_same_way(tmp_path: Path) -> None:
    """The recorded streams above, checked against what this engine really sends."""
    client = docker_or_skip()
    from engine.container.image import _stream_build
    from engine.errors import ContainerError

    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo 'step output before the failure' && exit 3\n"
    )
    lines: list[Any] = []
    with pytest.raises(ContainerError) as caught:
        _stream_build(client, path=str(tmp_path), tag="haj-test/fails:1", on_event=lines.append)
    message = str(caught.value)
    assert message.startswith("the image build failed:")
    assert "returned a non-zero code: 3" in message
    assert "step output before the failure" in message


@pytest.mark.docker
def test_container_start_reports_a_crashing_server(built: Built, tmp_path: Path) -> None:
    """An image whose server exits at once: start says so with the container's last lines."""
    client = docker_or_skip()
    (tmp_path / "Dockerfile").write_text(
        f"FROM {built.image}\nUSER root\nRUN rm /app/cancer/models/champion.joblib\nUSER 10001\n"
    )
    tag = "haj/cancer:broken"
    image_id = None
    try:
        from engine.container.image import _stream_build

        image_id = _stream_build(client, path=str(tmp_path), tag=tag, on_event=lambda e: None)
        result = run_haj(
            built.home,
            "container",
            "start",
            "cancer",
            "--image",
            tag,
            "--network",
            "host",
            "--port",
            str(free_port()),
            "--timeout",
            "60",
        )
        assert result.code == 11, result.text
        assert "the container stopped before serving" in result.err
        assert "champion" in result.err  # the server's own one-line reason, from its log
        uid = project_id(built.home / "cancer")
        assert not client.containers.list(all=True, filters={"label": f"haj.project-id={uid}"})
    finally:
        if image_id:
            client.images.remove(tag, force=True)


@pytest.mark.docker
def test_sagemaker_contract_serve_on_8080(built: Built) -> None:
    """`docker run IMAGE serve` as SageMaker runs it: GET /ping and POST /invocations on 8080.
    Run with no network at all (its own loopback only) and called from inside the container,
    so nothing binds on the host."""
    client = docker_or_skip()
    record = sample_record(built.home / "cancer")
    probe = (
        "import json, time, urllib.request\n"
        "for _ in range(120):\n"
        "    try:\n"
        "        ping = urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2)\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.5)\n"
        "body = json.dumps({'instances': [" + json.dumps(record) + "]}).encode()\n"
        "request = urllib.request.Request('http://127.0.0.1:8080/invocations', data=body,\n"
        "                                 headers={'Content-Type': 'application/json'})\n"
        "answer = urllib.request.urlopen(request, timeout=10)\n"
        "print(ping.status, answer.status, answer.read().decode())\n"
    )
    container = client.containers.run(
        built.image, ["serve"], detach=True, network_mode="none", labels={"haj.test": "1"}
    )
    try:
        code, output = container.exec_run(["python", "-c", probe])
        text = output.decode()
        assert code == 0, text + container.logs().decode()[-2000:]
        assert text.startswith("200 200") and '"predictions"' in text
        assert container.attrs["Config"]["User"] == "10001"
    finally:
        container.remove(force=True)


@pytest.mark.unit
def test_a_container_removed_while_it_starts_is_a_one_line_error_with_a_fake_container() -> None:
    """A stand-in container (no engine needed to remove one at the right moment): the engine
    forgets it between two health checks."""
    import docker

    from engine.container import runtime
    from engine.errors import ContainerError

    class Removed:
        name = "haj-cancer-12345678"

        def reload(self) -> None:
            raise docker.errors.NotFound("No such container")

    with pytest.raises(ContainerError, match="was removed before it served"):
        runtime._wait_healthy(Removed(), "http://127.0.0.1:9", 5, lambda event: None)
