"""The leaderboard: runs sorted by a metric in its direction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.metrics import check_metric, metrics_for
from engine.project import Project


@dataclass
class Leaderboard:
    """Runs sorted by `metric` in its direction, best first; each run a dict (Run.to_dict()
    plus its "label", MODEL-#); `champion` the current champion (Champion.to_dict()) or None."""

    metric: str
    higher_is_better: bool
    metrics: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)
    champion: dict[str, Any] | None = None

    @property
    def champion_id(self) -> str | None:
        return self.champion["run_id"] if self.champion else None

    def finished(self) -> list[dict[str, Any]]:
        """The runs that finished and have the metric, best first."""
        return [r for r in self.runs if r["status"] == "finished" and self.metric in r["metrics"]]

    def best_per_model(self) -> list[dict[str, Any]]:
        """The best finished run of each model, best first."""
        seen: dict[str, dict[str, Any]] = {}
        for run in self.finished():
            seen.setdefault(run["model"], run)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def leaderboard(
    project: Project,
    metric: str | None = None,
    limit: int | None = None,
    include_all: bool = True,
) -> Leaderboard:
    from engine.errors import UsageError
    from engine.store import Store

    if limit is not None and limit < 1:
        raise UsageError("the limit must be a positive number")
    config = project.read_config()
    prediction = config["project"]["prediction"]
    chosen = check_metric(metric or config["training"]["metric"], prediction)
    board = Leaderboard(chosen.name, chosen.higher_is_better, list(metrics_for(prediction)))
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
    board.runs = [
        {**r.to_dict(), "label": r.label} for r in runs if include_all or r.prediction == prediction
    ]
    board.champion = champion.to_dict() if champion else None
    return board
