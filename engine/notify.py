"""Notifications: a JSON message to the project's webhook on degradation, drift, promotion and
failure, with a Slack-compatible `text` field (Slack, Mattermost, Teams' and Discord's
Slack-compatible hooks, or any service that takes JSON).

Why it never raises: a notification reports on the pipeline; an unreachable chat service must
neither fail nor slow a retrain. Delivery is tried a few times with a short timeout, and every
message, sent or not, is recorded in haj.db with its attempts and error.
"""

from __future__ import annotations

import time
from typing import Any

from engine.project import Project

EVENTS = ("degraded", "drift", "promoted", "failed")
ATTEMPTS = 3
TIMEOUT = 5.0
BACKOFF = 1.0  # seconds before the second attempt, doubled before the third


def webhook_url(project: Project) -> str | None:
    return project.read_secrets().get("HAJ_NOTIFY_URL") or None


def notify(
    project: Project,
    event: str,
    text: str,
    details: dict[str, Any] | None = None,
    pipeline_id: str | None = None,
    sleep: Any = time.sleep,
) -> dict[str, Any] | None:
    """Send `text` about `event` to the project's webhook, if one is set; returns the delivery
    record ({"status": "sent" | "failed", "attempts", "error"}), None without a webhook."""
    import httpx

    from engine.store import Store, now_iso

    url = webhook_url(project)
    if not url:
        return None
    body = {
        "text": f"[haj] {project.name}: {text}",
        "event": event,
        "project": project.name,
        "time": now_iso(),
        **({"details": details} if details else {}),
    }
    error: str | None = None
    attempts = 0
    for attempts in range(1, ATTEMPTS + 1):
        try:
            answer = httpx.post(url, json=body, timeout=TIMEOUT)
            if answer.status_code < 300:
                error = None
                break
            error = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the hook refuses this message: trying again will not help
        except httpx.HTTPError as exc:
            text = f"{type(exc).__name__}: {exc}".replace(url, "the webhook")  # it is a secret
            error = text.splitlines()[0][:200] or type(exc).__name__
        if attempts < ATTEMPTS:
            sleep(BACKOFF * 2 ** (attempts - 1))
    record = {
        "event": event,
        "text": body["text"],
        "status": "sent" if error is None else "failed",
        "attempts": attempts,
        "error": error,
        "pipeline_id": pipeline_id,
    }
    try:
        with Store(project.db_path) as store:
            store.add_notification(record)
    except Exception:  # recording is best effort too: see the module's docstring
        pass
    return record


def recent(project: Project, limit: int = 20) -> list[dict[str, Any]]:
    """The latest notifications, newest first (sent or not)."""
    from engine.store import Store

    if not project.db_path.exists():
        return []
    with Store(project.db_path) as store:
        return store.notifications(limit)
