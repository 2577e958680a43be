"""A project at a glance: data, runs, champion, server, container and deployment.

This module aggregates, so it sits above the store, serving, container and deploy (it imports
them; none of them imports it). Process liveness lives in engine.procs, the server record in
engine.serving.control; both are re-exported here for callers that know them by these names.
"""

from __future__ import annotations

from typing import Any

from engine import schedule
from engine.procs import pid_alive, server_process_alive
from engine.project import Project
from engine.results import ProjectStatus
from engine.serving.control import live_server, prune_stale_server

__all__ = [
    "live_server",
    "pid_alive",
    "project_status",
    "prune_stale_records",
    "server_process_alive",
]


def prune_stale_records(project: Project) -> dict[str, int]:
    """Remove what dead processes left behind: the record of a server that is gone, and runs a
    dead trainer left "running" (marked failed). An explicit write, for commands that write
    anyway; reads (`live_server`, `haj list`) only report a dead server as not running.
    Returns how many of each were cleaned: {"server": 0 or 1, "runs": n}."""
    if not project.db_path.exists():
        return {"server": 0, "runs": 0}
    from engine.store import Store

    server = 1 if prune_stale_server(project) else 0
    with Store(project.db_path) as store:
        runs = store.reap_orphans()
    return {"server": server, "runs": runs}


def project_status(project: Project) -> ProjectStatus:
    """What `haj status` shows. A read, with one write kept on purpose: store.reap_orphans()
    marks the runs of a trainer that died as failed, so status never shows them "running". A
    dead server's record is only reported as not running (see prune_stale_records)."""
    from engine.runs import data_scope, stale_champion
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
            champion = store.champion()
            champion_run = store.run(champion.run_id) if champion else None
            notice = stale_champion(champion_run, data_scope(project, store, config))
        status["data"] = {
            "raw_versions": summary["raw_versions"],
            "processed_versions": summary["processed_versions"],
            "current_raw": current_raw.to_dict() if current_raw else None,
            "latest_processed": latest_processed.to_dict() if latest_processed else None,
        }
        status["runs"] = summary["runs_by_status"]
        status["champion"] = summary["champion"]
        if notice:  # the champion was trained on other data than the current
            status["champion_notice"] = notice
        status["champion_history"] = history  # newest first, the last 10 crownings
        if summary.get("last_pipeline"):  # like the schedule: absent before the first run
            status["pipeline"] = summary["last_pipeline"]
        _add_container_and_deployment(status, records)
    status["server"] = live_server(project)
    planned = schedule.brief(project.path)
    if planned:  # like container and deployment: absent when there is none
        status["schedule"] = planned
    return ProjectStatus.from_dict(status)


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
