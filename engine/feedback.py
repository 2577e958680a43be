"""`haj feedback`: real outcomes joined to logged predictions by request id, giving the live
performance of each served run and the target's drift, stored with the evaluations.

Why request ids: the server answers and logs one id per scored row (the client's X-Request-Id
or a generated one), so an outcome known days later can be matched to exactly the prediction
that was made, whatever the order or the batching.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import DataError, UsageError
from engine.project import Project


@dataclass
class RunFeedback:
    run_id: str
    rows: int
    metrics: dict[str, float]
    recorded: dict[str, float]
    evaluation_id: str


@dataclass
class FeedbackResult:
    labels: int  # outcomes in the file
    matched: int  # of those, found in the prediction log
    runs: list[RunFeedback] = field(default_factory=list)
    target_drift: dict[str, Any] | None = None
    unmatched_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feedback(project: Project, path: str, id_col: str, label_col: str) -> FeedbackResult:
    import numpy as np

    from engine.drift import compare_column
    from engine.evaluation import load_labelled, measure_predictions
    from engine.monitor import log_files
    from engine.serving.model import load, locate_champion
    from engine.store import Store

    if not Path(path).expanduser().is_file():
        raise UsageError(f"no such file: {path}")
    config = project.read_config()
    prediction = config["project"]["prediction"]
    frame = load_labelled(project, path).frame
    for column in (id_col, label_col):
        if column not in frame.columns:
            raise DataError(f"{path} has no {column!r} column")
    frame = frame[frame[label_col].notna() & frame[id_col].notna()]
    outcomes = dict(zip(frame[id_col].astype(str), frame[label_col].tolist(), strict=True))
    if not outcomes:
        raise DataError(f"{path} has no row with both {id_col!r} and {label_col!r}")
    by_run = _logged_predictions(log_files(project), outcomes)
    matched = sum(len(pairs) for pairs in by_run.values())
    result = FeedbackResult(labels=len(outcomes), matched=matched)
    found = {rid for pairs in by_run.values() for rid, _, _ in pairs}
    result.unmatched_examples = [rid for rid in outcomes if rid not in found][:5]
    if not matched:
        raise DataError(
            f"none of the {len(outcomes)} ids in {path} is in the prediction log "
            f"(first: {next(iter(outcomes))!r})"
        )
    sha = _sha(path)
    with Store(project.db_path) as store:
        for run_id, pairs in sorted(by_run.items()):
            truth = np.asarray([label for _, label, _ in pairs])
            predicted = np.asarray([p for _, _, p in pairs])
            if prediction == "regression":
                truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
            else:
                truth, predicted = truth.astype(str), predicted.astype(str)
            metrics, details = measure_predictions(truth, predicted, prediction)
            run = store.run(run_id)
            evaluation = store.add_evaluation(
                run_id, f"feedback:{Path(path).name}", sha, len(pairs), metrics,
                {**details, "source": "feedback"},
            )  # fmt: skip
            result.runs.append(
                RunFeedback(
                    run_id, len(pairs), metrics, dict(run.metrics) if run else {}, evaluation.id
                )
            )
    try:
        model = load(locate_champion(project.path), project.name)
    except DataError:
        model = None
    reference = (model.profile or {}).get("target") if model is not None else None
    if reference is not None:
        values = np.asarray(list(outcomes.values()))
        report = compare_column(
            reference, values, min_rows=int(config["monitoring"]["min_rows"]),
            method=str(config["monitoring"]["method"]),
        )  # fmt: skip
        result.target_drift = asdict(report)
    return result


def _logged_predictions(
    files: list[Path], outcomes: dict[str, Any]
) -> dict[str, list[tuple[str, Any, Any]]]:
    """run id -> [(request id, outcome, logged prediction)] for every logged id in `outcomes`."""
    import orjson

    by_run: dict[str, list[tuple[str, Any, Any]]] = {}
    seen: set[str] = set()
    for path in files:
        with open(path, "rb") as handle:
            for line in handle:
                if b'"request_ids"' not in line:
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                ids = record.get("request_ids") or []
                outputs = record.get("outputs") or []
                for rid, output in zip(ids, outputs, strict=False):
                    if rid in outcomes and rid not in seen:
                        seen.add(rid)
                        by_run.setdefault(record["run_id"], []).append((rid, outcomes[rid], output))
    return by_run


def _sha(path: str) -> str:
    from engine.fsutil import sha256_file

    return sha256_file(Path(path).expanduser())
