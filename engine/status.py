"""A project at a glance, and the liveness of what it runs (a detached server)."""

from __future__ import annotations

import os
from typing import Any

from engine.project import Project


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server_process_alive(pid: int) -> bool:
    """True if `pid` runs and is a haj server: a zombie, or a pid the system gave to another
    program after the server died, counts as dead (so `haj stop` never signals a stranger)."""
    if pid <= 0 or not pid_alive(pid):
        return False
    proc = f"/proc/{pid}"
    if not os.path.isdir("/proc/self"):
        return True  # no procfs (macOS): trust the pid
    try:
        with open(f"{proc}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        with open(f"{proc}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except (OSError, IndexError):
        return False
    return b"engine.serving" in cmdline


def live_server(project: Project) -> dict[str, Any] | None:
    """The detached server's record if its process is alive; a stale record is removed."""
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        record = store.get_record("server")
        if record is None:
            return None
        if not server_process_alive(int(record.get("pid") or 0)):
            store.delete_record("server")
            return None
        return record


def project_status(project: Project) -> dict[str, Any]:
    from engine.store import Store

    config = project.read_config()
    status: dict[str, Any] = {
        "name": project.name,
        "path": str(project.path),
        "title": config["project"]["title"],
        "prediction": config["project"]["prediction"],
        "metric": config["training"]["metric"],
        "data": {"raw": [], "processed": []},
        "runs": {},
        "champion": None,
        "champion_history": [],
        "server": None,
    }
    if project.db_path.exists():
        with Store(project.db_path) as store:
            store.reap_orphans()
            summary = store.summary()
            history = [event.to_dict() for event in store.champion_history()[:10]]
            current_raw = store.current_raw_version()  # what process and train use
            latest_processed = store.latest_data_version("processed")
            records = {k: store.get_record(k) for k in ("image", "container", "deployment")}
        status["data"] = {
            "raw_versions": summary["raw_versions"],
            "processed_versions": summary["processed_versions"],
            "current_raw": current_raw.to_dict() if current_raw else None,
            "latest_processed": latest_processed.to_dict() if latest_processed else None,
        }
        status["runs"] = summary["runs_by_status"]
        status["champion"] = summary["champion"]
        status["champion_history"] = history  # newest first, the last 10 crownings
        _add_container_and_deployment(status, records)
    status["server"] = live_server(project)
    return status


def _add_container_and_deployment(status: dict[str, Any], records: dict[str, Any]) -> None:
    """One line each for `haj status` ("container", "deployment"); the records in full under
    "records" for scripts. From the store only: no call to Docker or AWS, so status stays fast."""
    from engine.container.runtime import describe
    from engine.deploy.records import describe as describe_deployment

    if any(records.values()):
        status["records"] = {k: v for k, v in records.items() if v}
    container = describe(records.get("image"), records.get("container"))
    if container:
        status["container"] = container
    deployment = describe_deployment(records.get("deployment"))
    if deployment:
        status["deployment"] = deployment
