"""Start, detach, find and stop a project's server process.

The server always runs as its own process (`python -m engine.serving` with the project's
interpreter, so the project's own dependencies are importable when the model is unpickled). A
detached server is recorded in the project's store (`server` record: pid, host, port, workers,
started_at, url, log) so `haj status`, `haj stop` and the TUI find it. Reading it never writes:
`live_server` answers None for a record whose process is gone, and the record is removed only by
an explicit write (`prune_stale_server`, called by `stop` and before a new server starts).

Public API (used by the CLI and the TUI): start_detached, stop, server_status, live_server,
prune_stale_server, serve_foreground, fetch_stats.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import Hint, ServingError
from engine.procs import reap_child, running, server_process_alive, start_in_background, terminate
from engine.project import Project

_ENGINE_PARENT = str(Path(__file__).resolve().parent.parent.parent)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def check_port(host: str, port: int) -> None:
    """Raise ServingError if `port` on `host` cannot be bound (binding as uvicorn does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except PermissionError:
            raise ServingError(
                f"port {port} on {host} needs privileges", Hint("choose-port")
            ) from None
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
                raise ServingError(
                    f"port {port} on {host} is in use", Hint("choose-port")
                ) from None
            raise ServingError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def ensure_servable(project: Project) -> Any:
    """The champion reference, after checking its file against the store (no unpickling)."""
    from engine.serving.model import locate_champion, verified_bytes

    ref = locate_champion(project.path)
    verified_bytes(ref)
    return ref


def server_command(project: Project, host: str, port: int, workers: int) -> list[str]:
    from engine.runner_client import project_python

    return [
        project_python(project),
        "-m",
        "engine.serving",
        "--project-dir",
        str(project.path),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH", "")) if p)
    for key in ("HAJ_PROJECT_DIR", "PORT", "HAJ_WORKERS"):
        env.pop(key, None)  # the command line says which project and port
    return env


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def url_of(host: str, port: int) -> str:
    client = _client_host(host)
    return f"http://[{client}]:{port}" if ":" in client else f"http://{client}:{port}"


def live_server(project: Project) -> dict[str, Any] | None:
    """The server's record if its process is alive, else None. A pure read: a stale record (its
    process died) is reported as no server and left in place for prune_stale_server."""
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        record = store.get_record("server")
    if record is None or not server_process_alive(int(record.get("pid") or 0)):
        return None
    return record


def prune_stale_server(project: Project) -> bool:
    """Remove the server record if its process is gone; True if one was removed. The explicit
    cleanup that reads leave to writers (`haj stop`, starting a server)."""
    if not project.db_path.exists():
        return False
    from engine.store import Store

    with Store(project.db_path) as store:
        record = store.get_record("server")
        if record is None or server_process_alive(int(record.get("pid") or 0)):
            return False
        store.delete_record("server")
        return True


def server_status(project: Project) -> dict[str, Any] | None:
    """The detached server's record if it is alive, else None (the same pure read as
    live_server)."""
    return live_server(project)


def _check_args(workers: int) -> None:
    if workers < 1:
        raise ServingError("the number of workers must be at least 1")


def serve_foreground(
    project: Project,
    host: str,
    port: int,
    workers: int = 1,
    announce: Callable[[Any, str], None] | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; errors before the start are ServingError / NoChampion.

    `announce(champion_ref, url)` is called once every check has passed, just before the start.
    The server runs in its own session, so a signal meant for haj (Ctrl-C, SIGTERM from a
    supervisor) reaches it exactly once, forwarded, and it shuts down cleanly (its prediction
    log flushed). While it runs it is recorded like a detached one, so `haj status`, `haj stop`
    and the app see it, and a rename waits for it.
    """

    _check_args(workers)
    _refuse_if_served(project)
    ref = ensure_servable(project)
    check_port(host, port)
    url = url_of(host, port)
    if announce is not None:
        announce(ref, url)
    child = subprocess.Popen(
        server_command(project, host, port, workers),
        cwd=project.path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _record(project, child.pid, host, port, workers, ref, log=None, foreground=True)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward)
    code: int | None = None
    try:
        try:
            code = child.wait()
        except KeyboardInterrupt:
            forward(signal.SIGINT, None)
            try:
                code = child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            _terminate(child.pid)
        _forget(project, child.pid)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM, 130):
        raise ServingError(f"the server stopped with exit code {code}")


def _refuse_if_served(project: Project) -> None:
    """Before a start: refuse if a server runs; else clear a dead one's record."""
    prune_stale_server(project)
    running = server_status(project)
    if running is not None:
        raise ServingError(
            f"{project.name} is already served at {running.get('url')} (pid {running.get('pid')})",
            Hint("stop-server", project.name),
        )


def _forget(project: Project, pid: int) -> None:
    """Drop the server record if it is still the one of `pid`."""
    from engine.store import Store

    with Store(project.db_path) as store:
        current = store.get_record("server")
        if current is not None and int(current.get("pid", 0)) == pid:
            store.delete_record("server")


def start_detached(
    project: Project, host: str = "127.0.0.1", port: int = 8000, workers: int = 1
) -> dict[str, Any]:
    """Start the server in the background, wait until it is ready, record and return it."""
    import httpx

    from engine.store import now_iso

    _check_args(workers)
    _refuse_if_served(project)
    ref = ensure_servable(project)
    check_port(host, port)
    project.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = project.logs_dir / "server.log"
    url = url_of(host, port)
    with httpx.Client(timeout=1.0) as client:

        def answering(child: subprocess.Popen[bytes]) -> int | None:
            try:
                return child.pid if client.get(f"{url}/readyz").status_code == 200 else None
            except httpx.HTTPError:
                return None

        pid = start_in_background(
            server_command(project, host, port, workers),
            cwd=project.path,
            env=_env(),
            log_path=log_path,
            header=f"---- {now_iso()} starting on {host}:{port} ----",
            ready=answering,
            what="the server",
            timeout=START_TIMEOUT,
            error=ServingError,
        )
    return _record(project, pid, host, port, workers, ref, log=str(log_path))


def _record(
    project: Project,
    pid: int,
    host: str,
    port: int,
    workers: int,
    ref: Any,
    log: str | None,
    foreground: bool = False,
) -> dict[str, Any]:
    """Record the running server in the project (what status, stop and the app look up)."""
    from engine.store import Store, now_iso

    record = {
        "pid": pid,
        "host": host,
        "port": port,
        "workers": workers,
        "started_at": now_iso(),
        "url": url_of(host, port),
        "log": log,  # None: the terminal of a foreground server
        "run_id": ref.run_id,
        "model": ref.model,
        "foreground": foreground,
    }
    with Store(project.db_path) as store:
        store.set_record("server", record)
    return record


def stop(project: Project, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the detached server (SIGTERM, then SIGKILL after `timeout`); False if none ran.
    A stale record (its process is gone) is removed here."""
    record = server_status(project)
    if record is None:
        prune_stale_server(project)
        return False
    pid = int(record["pid"])
    _terminate(pid, timeout)
    reap_child(pid)  # a server this process started must not linger as a zombie
    if not running(pid):  # gone, or a zombie whose parent is another process
        _forget(project, pid)
    return True


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    try:
        terminate(pid, timeout)
    except PermissionError:
        raise ServingError(f"cannot stop pid {pid}: it belongs to another user") from None


def fetch_stats(record: dict[str, Any], timeout: float = 1.0) -> dict[str, Any]:
    """Live figures of a running server for the TUI: health, counts and latency."""
    import httpx

    url = record.get("url") or url_of(str(record.get("host", "127.0.0.1")), int(record["port"]))
    try:
        with httpx.Client(timeout=timeout) as client:
            health = client.get(f"{url}/health")
            counts = client.get(f"{url}/predictions_count")
            latency = client.get(f"{url}/latency")
            history = client.get(f"{url}/history")
    except httpx.HTTPError as exc:
        raise ServingError(f"the server at {url} does not answer: {type(exc).__name__}") from None
    return {
        "url": url,
        "ready": health.status_code == 200,
        "health": health.json()
        if health.headers.get("content-type", "").startswith("application/json")
        else {},
        "counts": counts.json(),
        "latency": latency.json(),
        # a server from before /history answers 404: no history then
        "history": history.json().get("points", []) if history.status_code == 200 else [],
    }
