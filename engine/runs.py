"""The leaderboard: runs sorted by a metric in its direction."""

from __future__ import annotations

from typing import Any

from engine.metrics import check_metric, metrics_for
from engine.project import Project


def leaderboard(
    project: Project,
    metric: str | None = None,
    limit: int | None = None,
    include_all: bool = True,
) -> dict[str, Any]:
    from engine.errors import UsageError
    from engine.store import Store

    if limit is not None and limit < 1:
        raise UsageError("--limit must be a positive number")
    config = project.read_config()
    prediction = config["project"]["prediction"]
    chosen = check_metric(metric or config["training"]["metric"], prediction)
    board: dict[str, Any] = {
        "metric": chosen.name,
        "higher_is_better": chosen.higher_is_better,
        "metrics": metrics_for(prediction),
        "runs": [],
        "champion": None,
    }
    if not project.db_path.exists():
        return board
    with Store(project.db_path) as store:
        store.reap_orphans()
        runs = store.runs(
            metric=chosen.name,
            higher_is_better=chosen.higher_is_better,
            status=None if include_all else "finished",
            limit=limit,
        )
        champion = store.champion()
    board["runs"] = [
        {**r.to_dict(), "label": r.label} for r in runs if include_all or r.prediction == prediction
    ]
    board["champion"] = champion.to_dict() if champion else None
    return board
