"""Starting and stopping servers as a user does (`haj run`, `--detach`, `haj status`, `haj stop`),
the refusals (no champion, tampered model, port in use), the hot switch to a new champion under
load, and the container mode (no store, only models/champion.*)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from engine.store import Store
from tests.support import ROOT, Result
from tests.support.procs import free_port, stop_pid
from tests.support.serving import sample_records, start_server

pytestmark = pytest.mark.slow


def _record(project_dir: Path) -> dict | None:
    with Store(project_dir / "haj.db") as store:
        return store.get_record("server")


def test_detach_status_stop(trained_home: Path, haj: Callable[..., Result]) -> None:
    port = free_port()
    started = haj("run", "diabetes", "--detach", "--port", str(port))
    try:
        assert started.code == 0, started.text
        assert f"http://127.0.0.1:{port}" in started.out
        record = _record(trained_home / "diabetes")
        assert record and record["port"] == port and record["pid"] > 0 and record["started_at"]
        status = haj("status", "diabetes")
        assert f"http://127.0.0.1:{port} (pid {record['pid']})" in status.out
        assert f"127.0.0.1:{port}" in haj("list").out

        records, _ = sample_records(trained_home / "diabetes", 2)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": records})
        assert answer.status_code == 200
        assert all(isinstance(v, float) for v in answer.json()["predictions"])
        assert "probabilities" not in answer.json()  # a regression

        from engine.serving import control  # the TUI's live counters

        stats = control.fetch_stats(record)
        assert stats["ready"] and stats["health"]["run_id"] == record["run_id"]
        assert stats["counts"]["predictions"] == 2 and stats["latency"]["window"]["requests"] == 1

        again = haj("run", "diabetes", "--detach", "--port", str(free_port()))
        assert again.code != 0 and "already served" in again.err

        stopped = haj("stop", "diabetes")
        assert stopped.code == 0, stopped.text
        assert "Stopped" in stopped.out
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1)
        assert _record(trained_home / "diabetes") is None
        assert "server     not running" in haj("status", "diabetes").out
        not_running = haj("stop", "diabetes")
        assert not_running.code != 0
        assert not_running.err.strip() == "haj: error: no server of diabetes is running"
    finally:
        record = _record(trained_home / "diabetes")
        if record:
            stop_pid(int(record["pid"]))


def test_a_stale_server_record_is_detected_and_cleaned(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store(trained_home / "cancer" / "haj.db") as store:
        store.set_record(
            "server", {"pid": dead.pid, "host": "127.0.0.1", "port": 1, "url": "http://x"}
        )
    assert "server     not running" in haj("status", "cancer").out
    assert "cancer" in haj("list").out and ":1" not in haj("list").out
    assert _record(trained_home / "cancer") is not None  # reads never write
    stopped = haj("stop", "cancer")  # a command that writes cleans the stale record up
    assert stopped.code != 0 and "no server of cancer is running" in stopped.err
    assert _record(trained_home / "cancer") is None
    # a live pid that is not a haj server (pid reuse) is not trusted either, nor signalled
    with Store(trained_home / "cancer" / "haj.db") as store:
        store.set_record("server", {"pid": os.getpid(), "host": "127.0.0.1", "port": 1})
    stopped = haj("stop", "cancer")
    assert stopped.code != 0 and "no server of cancer is running" in stopped.err
    assert _record(trained_home / "cancer") is None


def test_no_champion_is_a_clear_error_naming_evaluate(
    home: Path, haj: Callable[..., Result]
) -> None:
    assert haj("init", "fresh", "--example", "iris").code == 0
    for args in (["run", "fresh"], ["run", "fresh", "--detach", "--port", str(free_port())]):
        result = haj(*args)
        assert result.code != 0
        assert "`haj evaluate fresh`" in result.err
        assert "Traceback" not in result.text


def test_a_tampered_model_file_stops_the_start(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    project = trained_home / "cancer"
    champion = json.loads((project / "models" / "champion.json").read_text())
    model_file = project / champion["source"]
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    result = haj("run", "cancer", "--detach", "--port", str(free_port()))
    assert result.code != 0
    assert "sha256 does not match" in result.err and "Traceback" not in result.text
    assert _record(project) is None
    direct = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.serving",
            "--project-dir",
            str(project),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode != 0
    assert "sha256 does not match" in direct.stderr and "Traceback" not in direct.stderr


def test_a_port_in_use_is_a_clear_error(trained_home: Path, haj: Callable[..., Result]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args in (
            ["run", "cancer", "--port", str(port)],
            ["run", "cancer", "--detach", "--port", str(port)],
        ):
            result = haj(*args)
            assert result.code != 0
            assert result.err.strip() == (
                f"haj: error: port {port} on 127.0.0.1 is in use: choose another with --port"
            )
            assert "Serving" not in result.out  # nothing announced before the checks
    assert _record(trained_home / "cancer") is None


def _foreground(trained_home: Path, port: int) -> subprocess.Popen[str]:
    """`haj run cancer` in the foreground, in its own process group (as a terminal job is)."""
    env = {**os.environ, "HAJ_HOME": str(trained_home), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "cancer", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("the foreground server did not become ready")


@pytest.mark.parametrize(
    "how",
    ["ctrl-c on the terminal (the group)", "SIGINT to haj alone", "SIGTERM to haj alone"],
)
def test_foreground_run_is_recorded_and_stops_cleanly_on_a_signal(
    trained_home: Path, haj: Callable[..., Result], how: str
) -> None:
    port = free_port()
    process = _foreground(trained_home, port)
    try:
        record = _record(trained_home / "cancer")
        assert record is not None and record["port"] == port and record["foreground"]
        server_pid = int(record["pid"])
        status = json.loads(haj("status", "cancer", "--json").out)
        assert status["server"]["url"] == f"http://127.0.0.1:{port}"
        renamed = haj("config", "cancer", "-t", "cancer2")  # not while it serves
        assert renamed.code != 0 and "haj stop cancer" in renamed.err
        started = time.monotonic()
        if how.startswith("ctrl-c"):
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT if "SIGINT" in how else signal.SIGTERM)
        out, err = process.communicate(timeout=20)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err
    assert "Ctrl-C to stop" in out and "Server stopped." in out
    assert "Traceback" not in err
    assert stopped_in < 5, stopped_in
    assert not Path(f"/proc/{server_pid}").exists() or _zombie_or_gone(server_pid)  # no orphan
    assert _record(trained_home / "cancer") is None
    with socket.socket() as probe:  # the port is free again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def test_a_new_champion_is_served_within_2_s_under_load_without_failures(
    trained_home: Path,
) -> None:
    project = trained_home / "cancer"
    server = start_server(project)
    try:
        records, _ = sample_records(project, 1)
        with Store(project / "haj.db") as store:
            old = store.champion()
            assert old is not None
            other = next(
                run
                for run in store.runs(status="finished")
                if run.id != old.run_id and run.model_path
            )
        seen: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    answer = client.post("/predict", json=records[0])
                    run_id = answer.json().get("run_id", "") if answer.status_code == 200 else ""
                    seen.append((time.monotonic(), answer.status_code, run_id))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        with Store(project / "haj.db") as store:
            store.crown(other.id, "acc", other.metrics.get("acc", 0.0), reason="test")
        crowned = time.monotonic()
        switched_at = None
        while time.monotonic() - crowned < 5:
            if httpx.get(f"{server.url}/health").json()["run_id"] == other.id:
                switched_at = time.monotonic()
                break
            time.sleep(0.02)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        # the promise is 2 s; 1 s more for a loaded 2-core machine running four client
        # threads and the server
        assert switched_at is not None and switched_at - crowned < 3.0, switched_at - crowned
        statuses = {status for _, status, _ in seen}
        assert statuses == {200}, statuses
        assert {run for _, _, run in seen} == {old.run_id, other.id}
        assert all(run == other.id for t, _, run in seen if t > switched_at + 0.1)
        assert len(seen) > 50
        health = httpx.get(f"{server.url}/health").json()
        assert health["model_switches"] == 1 and health["model"] == other.model
        latency = httpx.get(f"{server.url}/latency").json()["since_start"]
        assert latency["max_ms"] < 1000, latency  # the switch never stalls a request

        # a tampered file crowned later is refused: the server keeps serving what it has
        with Store(project / "haj.db") as store:
            third = next(
                run
                for run in store.runs(status="finished")
                if run.id not in (old.run_id, other.id) and run.model_path
            )
            tampered = project / str(third.model_path)
            tampered.write_bytes(tampered.read_bytes() + b"\x00")
            store.crown(third.id, "acc", third.metrics.get("acc", 0.0), reason="test")
        deadline = time.monotonic() + 5
        health = httpx.get(f"{server.url}/health").json()
        while not health["switch_error"] and time.monotonic() < deadline:
            time.sleep(0.1)
            health = httpx.get(f"{server.url}/health").json()
        assert "sha256 does not match" in health["switch_error"]
        assert health["run_id"] == other.id
        assert httpx.post(f"{server.url}/predict", json=records[0]).json()["run_id"] == other.id
        # ... and Prometheus can alert on it
        assert "haj_model_switch_failing 1.0" in httpx.get(f"{server.url}/metrics").text

        # the served run crowned again on another metric: /health and /metrics follow
        with Store(project / "haj.db") as store:
            store.crown(other.id, "recall", other.metrics["recall"], reason="test")
        deadline = time.monotonic() + 2
        health = httpx.get(f"{server.url}/health").json()
        while health["metric"] != "recall" and time.monotonic() < deadline:
            time.sleep(0.05)
            health = httpx.get(f"{server.url}/health").json()
        assert (health["metric"], health["score"]) == ("recall", other.metrics["recall"])
        assert health["run_id"] == other.id and health["model_switches"] == 1  # not reloaded
        scrape = httpx.get(f"{server.url}/metrics").text
        assert 'metric="recall"' in scrape and "haj_model_switch_failing 0.0" in scrape
        assert f"haj_model_score {other.metrics['recall']}" in scrape
    finally:
        server.stop()


def test_container_mode_serves_champion_files_without_a_store(
    trained_home: Path, tmp_path: Path
) -> None:
    source = trained_home / "cancer"
    shipped = tmp_path / "opt" / "project"
    (shipped / "models").mkdir(parents=True)
    shutil.copy(source / "config.toml", shipped / "config.toml")
    for name in ("champion.joblib", "champion.json"):
        shutil.copy(source / "models" / name, shipped / "models" / name)
    port = free_port()
    server = start_server(
        None, "serve", env={"HAJ_PROJECT_DIR": str(shipped), "PORT": str(port)}, port=port
    )
    try:
        assert httpx.get(f"{server.url}/ping").status_code == 200
        records, _ = sample_records(source, 2)
        answer = httpx.post(f"{server.url}/invocations", json={"dataframe_records": records})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
        champion = json.loads((source / "models" / "champion.json").read_text())
        assert httpx.get(f"{server.url}/health").json()["run_id"] == champion["run_id"]
    finally:
        server.stop()


@pytest.mark.parametrize("value", ['"big"', "0", "-1"])
def test_a_bad_serving_setting_is_one_line_not_a_traceback(
    trained_home: Path, haj: Callable[..., Result], value: str
) -> None:
    config = trained_home / "cancer" / "config.toml"
    original = config.read_text()
    try:
        config.write_text(original.replace("max_body_mb = 10", f"max_body_mb = {value}"))
        result = haj("run", "cancer", "--port", str(free_port()))
        assert result.code != 0
        assert result.err.strip().splitlines() == [
            f"haj: error: {config}: serving.max_body_mb must be a number above 0 (megabytes)"
        ]
    finally:
        config.write_text(original)
