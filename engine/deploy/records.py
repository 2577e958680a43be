"""The deployment record: every resource a deployment created, saved after each step.

Why after each step: if a deploy fails or is interrupted half-way, `haj undeploy` still knows what
to remove, so nobody keeps paying for a forgotten endpoint.
"""

from __future__ import annotations

from typing import Any

from engine.project import Project

KIND = "deployment"


def load(project: Project) -> dict[str, Any] | None:
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        return store.get_record(KIND)


def save(project: Project, record: dict[str, Any]) -> None:
    from engine.store import Store

    with Store(project.db_path) as store:
        store.set_record(KIND, record)


def delete(project: Project) -> None:
    if not project.db_path.exists():
        return
    from engine.store import Store

    with Store(project.db_path) as store:
        store.delete_record(KIND)


def describe(record: dict[str, Any] | None) -> str | None:
    """One line for `haj status`; a failed deploy shows its error."""
    if not record:
        return None
    endpoint = record.get("endpoint_name") or "-"
    state = record.get("status") or "?"
    if state == "failed":
        state = f"failed: {record.get('error') or 'no reason recorded'}"
        when = f"failed {str(record.get('failed_at', ''))[:19]}"
        if record.get("deployed_at"):
            when += f"; run {record.get('run_id')} deployed {record['deployed_at'][:19]}"
    else:
        when = f"run {record.get('run_id')}, {str(record.get('deployed_at', ''))[:19]}"
    return (
        f"{record.get('target', 'sagemaker')} endpoint {endpoint} in {record.get('region')} "
        f"({state}; {when}); remove with `haj undeploy`"
    )
