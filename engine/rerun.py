"""`haj rerun NAME RUN`: train a run's model again as it was trained, and say whether it
reproduces.

The rerun is a normal training session of one model (in the runner, under the project's lock,
with the project's interpreter) on the run's processed data version, with the seed and test split
recorded with the run (tags `train.random_state`, `train.test_size`), its cross-validation folds,
and its parameters: the estimator is built as training builds it (the catalog's, or model.py's
as it is now), then given the run's recorded parameters. The new run is tagged `rerun_of=RUN`.

Then every metric is compared to the run's (equal to within 1e-9 is a match) and what haj
recorded at both trainings is compared too (engine.tags): code hashes, the environment's package
list (which packages changed), haj, scikit-learn and Python versions, the git commit, and any
parameter that could not be restored. That is what a mismatch is explained by, or, when nothing
recorded differs, the model is said not to be deterministic.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine import events
from engine.errors import DataError, UsageError
from engine.tags import CODE_TAGS, ENV_TAG, RERUN_TAG, SPLIT_TAGS

if TYPE_CHECKING:
    from engine.project import Project
    from engine.store import Run

TOLERANCE = 1e-9
# what a rerun compares with the run it repeats: (tag key, what it is called)
RECORDED = (
    *((key, name) for key, name in CODE_TAGS.items()),
    (ENV_TAG, "environment"),
    ("haj.version", "haj version"),
    ("sklearn.version", "scikit-learn version"),
    ("python.version", "python version"),
    ("git.commit", "git commit"),
)
_PRIMITIVE = (bool, int, float, str, type(None))
_REPR = re.compile(r"^(<.*>|[A-Za-z_][\w.]*\(.*\))$", re.S)  # what repr() gives an object


@dataclass
class MetricCheck:
    name: str
    before: float | None
    after: float | None
    delta: float | None
    same: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Difference:
    """Something recorded at both trainings that is not the same: `what` names it (model.py,
    environment, scikit-learn version, parameter max_depth), `detail` lists the package
    changes of an environment."""

    what: str
    before: str | None
    after: str | None
    detail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RerunResult:
    source: dict[str, Any]  # the run repeated: id, label, model, data_version
    run: dict[str, Any]  # the rerun: id, label, status, error
    matches: bool
    metrics: list[MetricCheck] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tolerance: float = TOLERANCE

    def verdict(self) -> str:
        """One sentence: reproduced or not, and why not when that is known."""
        source, run = self.source["label"], self.run["label"]
        named = ", ".join(d.what for d in self.differences)
        if self.matches:
            tolerance = f"{self.tolerance:.0e}".replace("e-0", "e-")
            return f"reproduced: {run} matches {source} on every metric (to {tolerance})" + (
                f"; differs in {named}, without effect on the scores" if named else ""
            )
        if self.run.get("status") != "finished":
            return f"not reproduced: {run} {self.run.get('status')} ({self.run.get('error')})"
        off = [m for m in self.metrics if not m.same]
        said = ", ".join(_moved(m) for m in off[:2])
        said += f" and {len(off) - 2} more metrics" if len(off) > 2 else ""
        why = (
            f"what differs: {named}"
            if named
            else "nothing haj records differs (code, environment, versions, parameters, seed): "
            "the model is not deterministic (randomness without a random_state, threads)"
        )
        return f"NOT reproduced: {said}; {why}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict()}


def _moved(check: MetricCheck) -> str:
    from engine.compare import delta_text
    from engine.numbers import metric_text

    moved = f"{check.name} {metric_text(check.name, check.before)} -> "
    moved += metric_text(check.name, check.after)
    return moved if check.delta is None else f"{moved} ({delta_text(check.name, check.delta)})"


# ---- in the runner: the run's parameters back on a freshly built estimator ---------------------
def restore_params(estimators: dict[str, Any], params: dict[str, Any]) -> None:
    """Give each estimator the recorded `params` (as training recorded them: plain values, and
    the repr of anything else). A parameter recorded as a repr cannot be rebuilt: the current
    value stays, and the rerun names it among the differences."""
    for estimator in estimators.values():
        current = estimator.get_params(deep=False)
        settable = {}
        for key, value in params.items():
            if key not in current or _recorded(current[key]) == value:
                continue
            now = current[key]
            if isinstance(value, str) and not isinstance(now, str | None | bool | int | float):
                continue  # a repr: the object it described cannot be rebuilt from it
            if isinstance(value, str) and now is None and _REPR.match(value):
                continue
            settable[key] = value
        if settable:
            estimator.set_params(**settable)


def _recorded(value: Any) -> Any:
    """A parameter's value as training records it (engine.training._params_of)."""
    return value if isinstance(value, _PRIMITIVE) else repr(value)


# ---- the API side --------------------------------------------------------------------------------
def rerun(
    project: Project,
    ref: str,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> RerunResult:
    """Train run `ref` (an id or MODEL-#) again as it was trained and compare (see the module)."""
    from engine import runner_client
    from engine.store import Store

    config = project.read_config()
    if not project.db_path.exists():
        raise UsageError(f"no run {ref!r}: the project has no runs yet")
    with Store(project.db_path) as store:
        source = store.find_run(ref)
        if source is None:
            raise UsageError(f"no run {ref!r} (see `haj runs {project.name}`)")
        before = store.tags([source.id]).get(source.id, {})
    _check_source(source, config["project"]["prediction"])
    notes, training = [], {}
    for key in SPLIT_TAGS:
        name = key.split(".", 1)[1]
        if key in before:
            training[name] = _number(before[key])
        else:
            training[name] = config["training"][name]
    if any(key not in before for key in SPLIT_TAGS):
        notes.append(
            f"{source.label} was trained before haj recorded its seed and test split: used "
            f"config.toml's random_state {training['random_state']} and test_size "
            f"{training['test_size']}"
        )
    options = {
        "models": [source.model],
        "data": source.data_version,
        "cv": source.cv_folds,
        "redo": {
            "training": training,
            "params": source.params,
            "tags": {RERUN_TAG: source.id},
        },
    }
    payload = runner_client.run(project, "train", options, on_event, cancel)
    (outcome,) = payload["runs"]
    with Store(project.db_path) as store:
        new = store.run(outcome["run_id"])
        after = store.tags([outcome["run_id"]]).get(outcome["run_id"], {})
    assert new is not None
    return _result(project, source, before, new, after, notes)


def _check_source(source: Run, prediction: str) -> None:
    if source.refit_of:
        raise UsageError(
            f"{source.label} is a finalized refit on all rows (no test set is left to score a "
            f"rerun): rerun run {source.refit_of} instead"
        )
    if source.status != "finished":
        raise UsageError(
            f"{source.label} {source.status}: only a finished run has scores to reproduce"
        )
    if source.prediction != prediction:
        raise UsageError(
            f"{source.label} is a {source.prediction} run, but the project now does {prediction}"
        )
    if not source.data_version:
        raise DataError(f"{source.label} has no recorded data version to train on again")


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _result(
    project: Project,
    source: Run,
    before: dict[str, str],
    new: Run,
    after: dict[str, str],
    notes: list[str],
) -> RerunResult:
    from engine.metrics import METRICS

    checks = []
    names = dict.fromkeys([*source.metrics, *new.metrics])
    for name in sorted(names, key=lambda m: list(METRICS).index(m) if m in METRICS else 99):
        old, now = source.metrics.get(name), new.metrics.get(name)
        delta = None if old is None or now is None else now - old
        checks.append(
            MetricCheck(name, old, now, delta, delta is not None and abs(delta) <= TOLERANCE)
        )
    differences = [
        Difference(name, before.get(key), after.get(key), _detail(project, key, source, new))
        for key, name in RECORDED
        if key in before and before.get(key) != after.get(key)
    ]
    for key in dict.fromkeys([*source.params, *new.params]):
        old, now = source.params.get(key), new.params.get(key)
        if old != now:
            differences.append(Difference(f"parameter {key}", _text(old), _text(now)))
    if not any(key in before for key, _ in RECORDED):
        notes.append(
            f"{source.label} was trained before haj recorded code hashes and the environment: "
            "what changed since cannot be said"
        )
    return RerunResult(
        source={
            "id": source.id,
            "label": source.label,
            "model": source.model,
            "data_version": source.data_version,
        },
        run={"id": new.id, "label": new.label, "status": new.status, "error": new.error},
        matches=new.status == "finished" and bool(checks) and all(c.same for c in checks),
        metrics=checks,
        differences=differences,
        notes=notes,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _detail(project: Project, key: str, source: Run, new: Run) -> list[str]:
    """For the environment: which packages changed between the two sessions' listings."""
    if key != ENV_TAG:
        return []
    from engine.tags import freeze_changes, freeze_path

    old, now = freeze_path(project, source.session), freeze_path(project, new.session)
    if not (old.exists() and now.exists()):
        return []
    return freeze_changes(old.read_text(encoding="utf-8"), now.read_text(encoding="utf-8"))
