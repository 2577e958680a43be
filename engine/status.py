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


def live_server(project: Project) -> dict[str, Any] | None:
    """The detached server's record if its process is alive; a stale record is removed."""
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        record = store.get_record("server")
        if record is None:
            return None
        if not pid_alive(int(record.get("pid", 0))):
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
        "server": None,
    }
    if project.db_path.exists():
        with Store(project.db_path) as store:
            store.reap_orphans()
            summary = store.summary()
            latest_raw = store.latest_data_version("raw")
            latest_processed = store.latest_data_version("processed")
        status["data"] = {
            "raw_versions": summary["raw_versions"],
            "processed_versions": summary["processed_versions"],
            "latest_raw": latest_raw.to_dict() if latest_raw else None,
            "latest_processed": latest_processed.to_dict() if latest_processed else None,
        }
        status["runs"] = summary["runs_by_status"]
        status["champion"] = summary["champion"]
    status["server"] = live_server(project)
    return status
