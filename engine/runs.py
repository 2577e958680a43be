"""The leaderboard: runs sorted by a metric in its direction, compared like with like.

Runs are ranked only against runs scored on the same processed data version (another version
has another test set, so its scores do not compare): by default the current one, the version
`haj train` would use now (the current raw version processed with the current recipe, as
`haj data` marks it). `data_scope()` says which version that is, and `stale_champion()` says when
the champion was trained on another one: the leaderboard, crowning and `haj status` all use these
two, so every face says the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine.metrics import check_metric, metrics_for
from engine.project import Project
from engine.store import TIE_RULE

if TYPE_CHECKING:
    from engine.store import Run, Store


@dataclass(frozen=True)
class DataScope:
    """Which runs are compared. `every`: all of them (any data version); otherwise those scored
    on `version` (None: the current raw data is not processed with the current recipe yet, so
    no run is on it). `current` is the current processed version, `current_raw` the current raw
    version, `chosen` whether `version` was asked for (else it is the current one)."""

    version: str | None
    every: bool = False
    current: str | None = None
    current_raw: str | None = None
    chosen: bool = False

    def includes(self, data_version: str | None) -> bool:
        return self.every or (self.version is not None and data_version == self.version)

    def describe(self) -> str:
        """In words, for a title: "on proc-0002 (the current data)"."""
        if self.every:
            return "on every data version"
        if self.version is None:
            return f"on the current data ({self.current_raw}, not processed yet)"
        if self.version == self.current:
            return f"on {self.version} (the current data)"
        return f"on {self.version}" + (" (chosen)" if self.chosen else " (not the current data)")


def data_scope(
    project: Project,
    store: Store,
    config: dict[str, Any],
    data: str | None = None,
    any_data: bool = False,
) -> DataScope:
    """The scope `data` (a processed version, or a raw one: the version it was processed into)
    or `any_data` asks for; by default the current processed version. A project without data
    (runs recorded some other way) compares all its runs."""
    from engine.data import recipe_of
    from engine.errors import DataError, Hint, UsageError

    if data and any_data:
        raise UsageError("--data and --any-data contradict each other: give one")
    raw = store.current_raw_version()
    recipe = recipe_of(project, config)
    derived = store.derivation(raw.id, recipe) if raw else None
    current = derived.processed.id if derived else None
    base = {"current": current, "current_raw": raw.id if raw else None}
    if any_data or (raw is None and not data):
        return DataScope(None, every=True, **base)
    if not data:
        return DataScope(current, **base)
    version = store.data_version(data)
    if version is None:
        raise DataError(f"no data version {data!r}", Hint("list-data", project.name))
    if version.kind == "raw":
        made = store.derivation(version.id, recipe) or store.derivation(version.id)
        if made is None:
            raise DataError(f"{version.id} was never processed: no run was trained on it")
        return DataScope(made.processed.id, chosen=True, **base)
    return DataScope(version.id, chosen=True, **base)


def custom_metrics(project: Project, prediction: str) -> dict[str, bool]:
    """The custom metrics (model.py's `metrics()`) the project's runs of `prediction` recorded:
    name -> higher is better ({} before any). Read from the store, not from model.py: ranking
    runs needs no project code, and the direction is the one they were trained with."""
    from engine.metrics import CUSTOM_RECORD
    from engine.store import Store

    if not project.db_path.exists():
        return {}
    with Store(project.db_path) as store:
        record = store.get_record(CUSTOM_RECORD) or {}
    return dict(record.get(prediction) or {})


def stale_champion(champion: Run | None, scope: DataScope) -> str | None:
    """A sentence when the champion was trained on other data than the current, else None."""
    if champion is None or scope.current_raw is None or champion.data_version == scope.current:
        return None
    trained = champion.data_version or "unrecorded data"
    if scope.current is None:
        now = (
            f"the current data ({scope.current_raw}) is not processed with the current "
            "processor.py, target and prediction type yet"
        )
    else:
        now = f"the current data is {scope.current}"
    return (
        f"the champion {champion.label} was trained on {trained}, but {now}: "
        "train and crown again to serve a model of the current data"
    )


@dataclass
class Leaderboard:
    """Runs sorted by `metric` in its direction, best first; each run a dict (Run.to_dict()
    plus its "label", MODEL-#); `champion` the current champion (Champion.to_dict()) or None.

    Only the runs of one data version are ranked (`data_version`; None with `any_data`: all);
    `scope` says which in words, `other_runs` how many runs other versions hold, `stale` when
    the champion was trained on other data than the current, `tie_rule` how equal scores are
    ordered."""

    metric: str
    higher_is_better: bool
    metrics: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)
    champion: dict[str, Any] | None = None
    data_version: str | None = None
    current_data: str | None = None
    any_data: bool = False
    scope: str = ""
    other_runs: int = 0
    stale: str | None = None
    tie_rule: str = TIE_RULE
    filter: str = ""  # the filter the runs matched (engine.run_filter), as written
    filtered_out: int = 0  # runs of the scope the filter left out

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


def score_text(run: dict[str, Any], metric: str) -> str:
    """A run's score as both faces show it (engine.numbers: one precision per metric):
    "0.9650 ± 0.0120" for a cross-validated run (mean ± std of its folds), "0.9737" or
    "52.94" otherwise, "" without the metric."""
    from engine.numbers import metric_text

    value = run["metrics"].get(metric)
    if value is None:
        return ""
    return metric_text(metric, value, (run.get("metrics_std") or {}).get(metric))


def run_kind(run: dict[str, Any]) -> str:
    """How a run was validated, in a word or two: "5-fold CV", "finalized", "test split"."""
    if run.get("refit_of"):
        return "finalized"
    if run.get("cv_folds"):
        return f"{run['cv_folds']}-fold CV"
    return "test split"


def leaderboard(
    project: Project,
    metric: str | None = None,
    limit: int | None = None,
    include_all: bool = True,
    data: str | None = None,
    any_data: bool = False,
    where: str | None = None,
) -> Leaderboard:
    """The leaderboard; `where` is a filter (engine.run_filter): a run must match all its terms.
    A filter on `data` looks at every data version (unless `data` chooses one), and one on
    `status` at every status."""
    from engine import run_filter
    from engine.errors import UsageError
    from engine.store import Store

    if limit is not None and limit < 1:
        raise UsageError("the limit must be a positive number")
    wanted = run_filter.parse(where)  # a bad term is said before anything is read
    any_data = any_data or (wanted.mentions("data") and not data)
    include_all = include_all or wanted.mentions("status")
    config = project.read_config()
    prediction = config["project"]["prediction"]
    custom = custom_metrics(project, prediction)
    chosen = check_metric(metric or config["training"]["metric"], prediction, custom)
    board = Leaderboard(chosen.name, chosen.higher_is_better, [*metrics_for(prediction), *custom])
    if not project.db_path.exists():
        if data:
            from engine.errors import DataError, Hint

            raise DataError("no data yet", Hint("retrieve", project.name))
        return board
    with Store(project.db_path) as store:
        store.reap_orphans()
        scope = data_scope(project, store, config, data, any_data)
        runs: list[Run] = []
        if scope.every or scope.version is not None:
            runs = store.runs(
                metric=chosen.name,
                higher_is_better=chosen.higher_is_better,
                status=None if include_all else "finished",
                limit=None if wanted else limit,
                data_version=None if scope.every else scope.version,
            )
        # every tag at once past SQLite's parameter limit (a few small rows per run)
        tags = store.tags([r.id for r in runs] if len(runs) <= 900 else None) if runs else {}
        counts = store.run_counts_by_data_version(prediction)
        champion = store.champion()
        champion_run = store.run(champion.run_id) if champion else None
    board.runs = [
        {**r.to_dict(), "label": r.label, "tags": tags.get(r.id, {})}
        for r in runs
        if include_all or r.prediction == prediction
    ]
    if wanted:
        wanted.check_metrics([*board.metrics, *(m for r in board.runs for m in r["metrics"])])
        matched = wanted.apply(board.runs)
        board.filter, board.filtered_out = wanted.text, len(board.runs) - len(matched)
        board.runs = matched[:limit] if limit else matched
    board.champion = champion.to_dict() if champion else None
    board.data_version = scope.version
    board.current_data = scope.current
    board.any_data = scope.every
    board.scope = scope.describe()
    board.other_runs = sum(n for v, n in counts.items() if not scope.includes(v))
    board.stale = stale_champion(champion_run, scope)
    return board
