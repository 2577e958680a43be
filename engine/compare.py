"""Runs side by side: `haj runs NAME --compare RUN RUN ...` and the app's compare view.

What tells runs apart, and only that: the parameters that differ (the identical ones are counted,
not listed), every metric with its difference to the first run, the data versions, the code,
environment and versions haj recorded at training (engine.tags), flagged where they differ, and
the user's tags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError
from engine.tags import CODE_TAGS, ENV_TAG, RERUN_TAG, SPLIT_TAGS, is_automatic

if TYPE_CHECKING:
    from engine.project import Project
    from engine.store import Run

# the recorded provenance compared, in the order shown: (tag key, what it is called)
PROVENANCE = (
    *((key, name) for key, name in CODE_TAGS.items()),
    (ENV_TAG, "environment (pip freeze)"),
    ("git.commit", "git commit"),
    ("git.dirty", "git dirty"),
    ("haj.version", "haj version"),
    ("sklearn.version", "scikit-learn version"),
    ("python.version", "python version"),
    *((key, key.replace("train.", "split ")) for key in SPLIT_TAGS),
    ("user", "user"),
    ("host", "host"),
    (RERUN_TAG, "rerun of"),
)


@dataclass
class Row:
    """One compared field: its value in each run (None: not recorded) and whether they differ."""

    name: str
    values: list[Any]
    differs: bool
    key: str = ""  # the tag key, for provenance rows
    absent: list[bool] = field(default_factory=list)  # parameters: not a parameter of run i

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MetricRow:
    """A metric in each run, and each run's difference to the first (`deltas[0]` is 0.0, None
    where either value is missing); `better[i]` says whether run i beats the first on it (None:
    equal, missing, or a metric of unknown direction)."""

    name: str
    values: list[float | None]
    stds: list[float | None]
    deltas: list[float | None]
    better: list[bool | None]
    higher_is_better: bool | None
    texts: list[str] = field(default_factory=list)  # each value as every face shows it
    delta_texts: list[str] = field(default_factory=list)  # each delta ("" for the first run)

    @property
    def differs(self) -> bool:
        return any(d is None or abs(d) > SAME for d in self.deltas[1:])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    runs: list[dict[str, Any]]  # id, label, model, status, data_version, kind, ...
    params: list[Row] = field(default_factory=list)  # the differing ones only
    same_params: int = 0  # parameters every run has with the same value (not listed)
    metrics: list[MetricRow] = field(default_factory=list)
    data: Row | None = None
    provenance: list[Row] = field(default_factory=list)  # code hashes, env, versions, split
    tags: list[Row] = field(default_factory=list)  # the user's tags
    unrecorded: list[str] = field(default_factory=list)  # labels of runs without provenance

    @property
    def labels(self) -> list[str]:
        return [run["label"] for run in self.runs]

    def differences(self) -> list[str]:
        """The recorded provenance that differs, named ("model.py", "environment ..."): what
        can explain different scores (who ran it, where, and reruns aside)."""
        aside = ("user", "host", RERUN_TAG)
        return [row.name for row in self.provenance if row.differs and row.key not in aside]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(project: Project, refs: list[str] | tuple[str, ...]) -> Comparison:
    """Compare the runs `refs` (ids or MODEL-#; two or more, each once)."""
    from engine.runs import run_kind
    from engine.store import Store

    if len(refs) < 2:
        raise UsageError("compare needs two or more runs (ids or MODEL-# as `haj runs` shows)")
    if not project.db_path.exists():
        raise UsageError("the project has no runs yet")
    with Store(project.db_path) as store:
        runs: list[Run] = []
        for ref in refs:
            run = store.find_run(ref)
            if run is None:
                raise UsageError(f"no run {ref!r} (see `haj runs {project.name}`)")
            if any(r.id == run.id for r in runs):
                raise UsageError(f"run {run.label} is given twice: compare each run once")
            runs.append(run)
        tags = store.tags([r.id for r in runs])
    records = [
        {
            "id": r.id,
            "label": r.label,
            "model": r.model,
            "status": r.status,
            "data_version": r.data_version,
            "kind": run_kind({"refit_of": r.refit_of, "cv_folds": r.cv_folds}),
            "cv_folds": r.cv_folds,
            "test_rows": r.test_rows,
            "finished_at": r.finished_at,
            "error": r.error,
        }
        for r in runs
    ]
    each = [tags.get(r.id, {}) for r in runs]
    # a run trained before haj recorded its provenance is unknown there, not different
    recorded = [ENV_TAG in t for t in each] if any(ENV_TAG in t for t in each) else []
    params, same = _params(runs)
    user_keys = sorted({k for t in each for k in t if not is_automatic(k)})
    return Comparison(
        runs=records,
        params=params,
        same_params=same,
        metrics=_metrics(runs),
        data=_row("data version", [r.data_version for r in runs]),
        provenance=[
            _row(name, [t.get(key) for t in each], key=key, among=recorded)
            for key, name in PROVENANCE
            if any(key in t for t in each)
        ],
        tags=[_row(key, [t.get(key) for t in each], key=key) for key in user_keys],
        unrecorded=[r.label for r, t in zip(runs, each, strict=True) if ENV_TAG not in t],
    )


_MISSING = object()
SAME = 1e-12  # metric differences below this are float noise: equal


def delta_text(metric: str, delta: float | None) -> str:
    """A difference of `metric` as both faces show it: with a sign, at the metric's precision
    ("+0.0088", "-2.310"), "=" when equal, and in scientific notation when it is real but too
    small for that precision ("+4.4e-05")."""
    from engine.numbers import MISSING, metric_text

    if delta is None:
        return MISSING
    if abs(delta) <= SAME:
        return "="
    text = metric_text(metric, abs(delta))
    if float(text) == 0:
        text = f"{abs(delta):.1e}"
    return ("+" if delta > 0 else "-") + text


def _row(name: str, values: list[Any], key: str = "", among: list[bool] | None = None) -> Row:
    """A row; `among`: compare only the values of these runs (the others are unknown)."""
    compared = [v for i, v in enumerate(values) if not among or among[i]]
    return Row(name, values, len({repr(v) for v in compared}) > 1, key)


def _params(runs: list[Run]) -> tuple[list[Row], int]:
    """(the parameters whose values differ between the runs, how many are the same in all)."""
    names = list(dict.fromkeys(name for run in runs for name in run.params))
    rows, same = [], 0
    for name in names:
        values = [run.params.get(name, _MISSING) for run in runs]
        if len({repr(v) for v in values}) == 1:
            same += 1
        else:
            plain = [None if v is _MISSING else v for v in values]
            rows.append(Row(name, plain, True, absent=[v is _MISSING for v in values]))
    return rows, same


def _metrics(runs: list[Run]) -> list[MetricRow]:
    from engine.metrics import METRICS
    from engine.numbers import metric_text

    names = list(dict.fromkeys(m for run in runs for m in run.metrics))
    known = [m for m in METRICS if m in names]
    rows = []
    for name in [*known, *(m for m in names if m not in known)]:
        values = [run.metrics.get(name) for run in runs]
        stds = [(run.metrics_std or {}).get(name) for run in runs]
        first = values[0]
        deltas = [None if v is None or first is None else v - first for v in values]
        direction = METRICS[name].higher_is_better if name in METRICS else None
        better: list[bool | None] = []
        for delta in deltas:
            if delta is None or abs(delta) <= SAME or direction is None:
                better.append(None)
            else:
                better.append(delta > 0 if direction else delta < 0)
        rows.append(
            MetricRow(
                name,
                values,
                stds,
                deltas,
                better,
                direction,
                texts=[metric_text(name, v, sd) for v, sd in zip(values, stds, strict=True)],
                delta_texts=["", *(delta_text(name, d) for d in deltas[1:])],
            )
        )
    return rows
