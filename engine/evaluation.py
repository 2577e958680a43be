"""Runs scored again on labelled data (`haj score`) and the champion's degradation check
(`haj check`), recorded in the store's evaluations.

Why through the run's own bundle: labelled data in the data's own shape goes through the
processing fitted at training (engine.intake) and the same metrics as training
(engine.metrics.evaluate), so a score today compares with the score recorded then. Processed
data (the model's feature columns) is taken as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DataError, NoChampion, UsageError
from engine.metrics import confusion, residual_summary  # shared with engine.artifacts
from engine.project import Project
from engine.store import Evaluation


@dataclass
class Scored:
    """One run scored on labelled data: the stored evaluation, the run's label and model."""

    evaluation: Evaluation
    label: str
    model: str
    recorded: dict[str, float] = field(default_factory=dict)  # its metrics from training

    def to_dict(self) -> dict[str, Any]:
        return {**self.evaluation.to_dict(), "label": self.label, "model": self.model,
                "recorded": self.recorded}  # fmt: skip


@dataclass
class CheckResult:
    """Whether the champion still scores as recorded on new data, and the one-line verdict."""

    holds: bool
    metric: str
    higher_is_better: bool
    recorded: float
    measured: float
    change: float  # relative: -0.08 = 8 % worse
    tolerance: float
    data: str
    rows: int
    run_id: str
    label: str
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- data --------------------------------------------------------------------------------------
@dataclass
class Labelled:
    frame: Any
    name: str  # a data version id or the file's path
    sha256: str | None


def load_labelled(project: Project, data: str | None) -> Labelled:
    """A data version (default: the current raw version) or a CSV / JSON file, as a frame."""
    import pandas as pd

    from engine.data import load_frame, open_store
    from engine.fsutil import sha256_file

    if data is not None and Path(data).expanduser().is_file():
        path = Path(data).expanduser()
        try:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                frame = pd.read_json(path, lines=True)
            elif path.suffix.lower() == ".json":
                frame = load_frame(path, "json")
            else:
                frame = load_frame(path, "csv")
        except ValueError as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        return Labelled(frame, str(path), sha256_file(path))
    with open_store(project) as store:
        version = store.data_version(data) if data else store.current_raw_version()
    if version is None:
        if data:
            raise UsageError(f"no file or data version {data!r}")
        raise DataError("no data yet: retrieve some first")
    frame = load_frame(project.path / version.path, version.format, version.reading)
    return Labelled(frame, version.id, version.sha256)


def labelled_matrix(model: Any, frame: Any, target: str, prediction: str) -> tuple[Any, Any]:
    """(X, y) of labelled rows for `model` (a serving LoadedModel): processed columns as they
    are, rows in the data's own shape through the model's fitted processing. Rows without a
    label are left out."""
    import numpy as np

    from engine.features import to_matrix

    if target not in frame.columns:
        raise DataError(f"the data has no {target!r} column: scoring needs labels")
    processed = processed_frame(model, frame, target, prediction, training_rows=True)
    processed = processed[processed[target].notna()]
    if processed.empty:
        raise DataError(f"no row has a {target!r} value")
    X = to_matrix(processed, model.features)
    y = processed[target].to_numpy()
    if prediction == "regression":
        y = y.astype(np.float64)
    return X, y


def processed_frame(
    model: Any, frame: Any, target: str, prediction: str, *, training_rows: bool
) -> Any:
    """`frame` in the model's processed columns: as it is when it has them, else through the
    model's fitted processing. `training_rows` also applies the processor's row filters
    (duplicates, unlabelled rows), as scoring on labels wants and monitoring inputs does not."""
    from engine import intake

    names = [f["name"] for f in model.features]
    if all(name in frame.columns for name in names):
        return frame
    raw = model.raw_intake
    if raw is None:
        missing = next(name for name in names if name not in frame.columns)
        raise DataError(
            f"the data lacks the model's feature {missing!r}, and this model takes only "
            "processed columns (it cannot process raw rows)"
        )
    try:
        if isinstance(raw.processor, intake.ProcessFunction):
            return intake.call_process(raw.processor.process, frame, target, prediction)
        features = raw.processor.transform(frame)
        keep = getattr(raw.processor, "training_rows", None)
        if not training_rows or not callable(keep):
            return features
        return keep(features, quiet=True) if _takes_quiet(keep) else keep(features)
    except Exception as exc:  # the user's processing may raise anything
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise DataError(f"processor.py could not process the data: {text}") from None


def _takes_quiet(function: Any) -> bool:
    import inspect

    if not callable(function):
        return False
    try:
        return "quiet" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


# ---- scoring -------------------------------------------------------------------------------------
def score_run(project: Project, run_ref: str, labelled: Labelled) -> Scored:
    """Score one run (id or MODEL-#) on labelled data, record the evaluation and return it."""
    from engine.serving.model import load, locate_run
    from engine.store import Store

    config = project.read_config()
    target, prediction = config["data"]["target"], config["project"]["prediction"]
    ref = locate_run(project.path, run_ref)
    model = load(ref, project.name)
    X, y = labelled_matrix(model, labelled.frame, target, prediction)
    metrics, details = measure(model, X, y, prediction)
    with Store(project.db_path) as store:
        run = store.run(ref.run_id)
        evaluation = store.add_evaluation(
            ref.run_id, labelled.name, labelled.sha256, len(y), metrics, details
        )
    assert run is not None
    return Scored(evaluation, run.label, run.model, dict(run.metrics))


def measure(model: Any, X: Any, y: Any, prediction: str) -> tuple[dict[str, float], dict]:
    """(metrics as training computes them, details: a confusion matrix or residual summary)."""
    from engine.training import class_scores

    pipeline = model.pipeline
    y_pred = pipeline.predict(X)
    if prediction == "regression":
        return measure_predictions(y, y_pred, prediction)
    y_score, _ = class_scores(pipeline, X)
    classes = list(getattr(pipeline, "classes_", [])) or None
    return measure_predictions(y, y_pred, prediction, y_score, classes)


def measure_predictions(
    y: Any, y_pred: Any, prediction: str, y_score: Any = None, classes: list[Any] | None = None
) -> tuple[dict[str, float], dict]:
    """measure() for predictions already made (a scored file, the prediction log)."""
    from engine.metrics import evaluate

    if prediction == "regression":
        metrics, _ = evaluate(prediction, y, y_pred)
        return metrics, {"residuals": residual_summary(y, y_pred)}
    metrics, _ = evaluate(prediction, y, y_pred, y_score, classes=classes)
    return metrics, {"confusion": confusion(y, y_pred, classes)}


def score(
    project: Project,
    data: str | None = None,
    runs: list[str] | None = None,
    champion: bool = False,
    top: int | None = None,
) -> list[Scored]:
    """Score the given runs (default: the champion) on labelled data; each is recorded."""
    from engine.store import Store

    chosen = list(runs or [])
    if top is not None:
        if top < 1:
            raise UsageError("--top must be at least 1")
        from engine.runs import leaderboard

        board = leaderboard(project, include_all=False)
        chosen += [run["id"] for run in board.finished()[:top]]
        if not chosen:
            raise NoChampion("no finished run on the current data to score")
    if champion or not chosen:
        if not project.db_path.exists():
            raise NoChampion("no runs yet")
        with Store(project.db_path) as store:
            crowned = store.champion()
        if crowned is None:
            raise NoChampion("no champion yet: give --run RUN or --top N")
        chosen.insert(0, crowned.run_id)
    labelled = load_labelled(project, data)
    seen: set[str] = set()
    results = []
    for ref in chosen:
        if ref in seen:
            continue
        seen.add(ref)
        results.append(score_run(project, ref, labelled))
    return results


def check(
    project: Project,
    data: str | None = None,
    metric: str | None = None,
    tolerance: float | None = None,
) -> CheckResult:
    """The champion scored on labelled data and compared with its recorded score: it holds
    unless it is worse than recorded by more than `tolerance` (relative: 0.05 = 5 % worse)."""
    from engine.metrics import check_metric
    from engine.store import Store

    config = project.read_config()
    prediction = config["project"]["prediction"]
    chosen = check_metric(metric or config["training"]["metric"], prediction)
    if tolerance is None:
        tolerance = float(config["monitoring"]["tolerance"])
    if tolerance < 0:
        raise UsageError("--tolerance must be 0 or more")
    if not project.db_path.exists():
        raise NoChampion("no runs yet")
    with Store(project.db_path) as store:
        crowned = store.champion()
    if crowned is None:
        raise NoChampion("no champion to check: crown one first")
    scored = score_run(project, crowned.run_id, load_labelled(project, data))
    if chosen.name not in scored.recorded or chosen.name not in scored.evaluation.metrics:
        raise UsageError(f"the champion has no recorded {chosen.name}: give another --metric")
    recorded = float(scored.recorded[chosen.name])
    measured = float(scored.evaluation.metrics[chosen.name])
    better = chosen.higher_is_better
    gain = (measured - recorded) if better else (recorded - measured)
    change = gain / abs(recorded) if recorded else gain
    holds = change >= -tolerance
    direction = "better" if change > 0 else "worse"
    how = f"{abs(change):.1%} {direction}" if change else "the same"
    verdict = (
        f"{'holds' if holds else 'DEGRADED'}: {scored.label} scores {chosen.name} = "
        f"{measured:.4f} on {scored.evaluation.data} ({scored.evaluation.rows} rows), "
        f"recorded {recorded:.4f}: {how} (tolerance {tolerance:.0%})"
    )
    return CheckResult(
        holds=holds,
        metric=chosen.name,
        higher_is_better=better,
        recorded=recorded,
        measured=measured,
        change=change,
        tolerance=tolerance,
        data=scored.evaluation.data,
        rows=scored.evaluation.rows,
        run_id=scored.evaluation.run_id,
        label=scored.label,
        verdict=verdict,
    )


def evaluations(project: Project, run_ref: str | None = None) -> list[dict[str, Any]]:
    """Stored evaluations (of one run), newest first."""
    from engine.data import open_store

    if not project.db_path.exists():
        return []
    with open_store(project) as store:
        run_id = None
        if run_ref is not None:
            run = store.find_run(run_ref)
            if run is None:
                raise UsageError(f"no run {run_ref!r}")
            run_id = run.id
        return [e.to_dict() for e in store.evaluations(run_id)]
