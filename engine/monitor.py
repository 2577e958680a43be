"""`haj monitor`: a drift and quality report of current inputs against the serving run's
reference, from live traffic, the prediction log, a data version or a file; stored for trends.

Why the window is always a sketch (engine.profile): the live server only has counters, and a
file or the log is summarised the same way, so a figure means the same whatever its source.
The statistics themselves are engine.drift's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.drift import DriftReport, compare
from engine.errors import DataError, Hint, ServingError, UsageError
from engine.profile import WindowSketch
from engine.project import Project

SOURCES = ("live", "log")
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
HISTORY_METRICS = ("drift_share", "missing_share", "rows", "quality_issues", "dataset_drift")


@dataclass
class MonitorResult:
    """One report: what was compared with which run's reference, and the report itself."""

    report: DriftReport
    run_id: str
    model: str
    source: str  # "live", "log", a data version id or a file path
    window: str  # "all rows", "last 500 rows", "since 24h"
    created_at: str
    report_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.report_id,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "model": self.model,
            "source": self.source,
            "window": self.window,
            "verdict": self.report.verdict(),
            **self.report.to_dict(),
        }


def parse_since(text: str) -> float:
    """'90s', '30m', '24h', '7d', '2w' in seconds (UsageError otherwise)."""
    match = _SINCE.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def window_text(since: str | None, last: int | None) -> str:
    if last is not None:
        return f"last {last} rows"
    if since is not None:
        return f"since {since.strip()}"
    return "all rows"


def monitor(
    project: Project,
    current: str | None = None,
    *,
    since: str | None = None,
    last: int | None = None,
    method: str | None = None,
    save: bool = True,
) -> MonitorResult:
    """Compare `current` (default: the live server if one runs, else the prediction log if it
    has rows, else the current raw data version) with the champion's reference profile."""
    from engine.serving.control import live_server
    from engine.serving.model import load, locate_champion, locate_run
    from engine.store import Store, now_iso

    if since is not None and last is not None:
        raise UsageError("give a window by time (--since) or by rows (--last), not both")
    if last is not None and last < 1:
        raise UsageError("--last must be 1 or more")
    seconds = parse_since(since) if since is not None else None
    config = project.read_config()
    settings = config["monitoring"]
    server = live_server(project)
    source = current or _default_source(project, server)
    if source == "live":
        if server is None:
            raise ServingError(
                "no server of this project is running: nothing live to compare",
                hint=Hint("serve", project.name),
            )
        sketch, run_id = _live_sketch(server, seconds, last)
        model = load(locate_run(project.path, run_id), project.name)
        window = WindowSketch.from_dict(_profile_of(model), sketch)
    else:
        model = load(locate_champion(project.path), project.name)
        profile = _profile_of(model)
        target = config["data"]["target"]
        prediction = config["project"]["prediction"]
        if source == "log":
            window = log_window(project, model, profile, seconds, last)
        else:
            if seconds is not None or last is not None:
                raise UsageError("--since and --last choose a window of traffic (live or log)")
            window = frame_window(project, model, profile, source, target, prediction)
    report = compare(
        model.profile,  # type: ignore[arg-type]
        window,
        drift_share=float(settings["drift_share"]),
        min_rows=int(settings["min_rows"]),
        method=method or settings["method"],
    )
    result = MonitorResult(
        report=report,
        run_id=model.run_id,
        model=model.model,
        source=source,
        window=window_text(since, last),
        created_at=now_iso(),
    )
    if save:
        with Store(project.db_path) as store:
            result.report_id = store.add_monitor_report(
                {
                    "created_at": result.created_at,
                    "run_id": result.run_id,
                    "source": result.source,
                    "window": result.window,
                    "rows": report.rows,
                    "too_small": report.too_small,
                    "dataset_drift": report.dataset_drift,
                    "drift_share": report.drift_share,
                    "missing_share": report.missing_share,
                    "quality_issues": report.quality.issues,
                    "report": result.to_dict(),
                }
            )
    return result


def history(project: Project, limit: int | None = None) -> list[dict[str, Any]]:
    """Stored reports' headline figures, oldest first (the last `limit`)."""
    from engine.store import Store

    if not project.db_path.exists():
        return []
    with Store(project.db_path) as store:
        return store.monitor_reports(limit)


def _profile_of(model: Any) -> dict[str, Any]:
    if model.profile is None:
        raise DataError(
            f"run {model.run_id} was trained before haj kept a reference profile: "
            "train again to monitor its inputs",
            hint=Hint("train", None),
        )
    return model.profile


def _default_source(project: Project, server: dict[str, Any] | None) -> str:
    if server is not None:
        return "live"
    if any(path.stat().st_size for path in log_files(project)):
        return "log"
    from engine.data import open_store

    with open_store(project) as store:
        version = store.current_raw_version()
    if version is None:
        raise DataError(
            "nothing to compare: no server runs, no prediction was logged and there is no data",
            hint=Hint("retrieve", project.name),
        )
    return version.id


# ---- live -----------------------------------------------------------------------------------
def _live_sketch(
    server: dict[str, Any], seconds: float | None, last: int | None
) -> tuple[dict[str, Any], str]:
    """The running server's sketch of its traffic over the window, and the run it serves."""
    import httpx

    from engine.serving.control import url_of

    url = server.get("url") or url_of(str(server.get("host", "127.0.0.1")), int(server["port"]))
    params: dict[str, Any] = {"sketch": "true"}
    if seconds is not None:
        params["since"] = seconds
    if last is not None:
        params["last"] = last
    try:
        with httpx.Client(timeout=10.0) as client:
            answer = client.get(f"{url}/drift", params=params)
    except httpx.HTTPError as exc:
        raise ServingError(f"the server at {url} does not answer: {type(exc).__name__}") from None
    if answer.status_code != 200:
        detail = (
            answer.json().get("detail")
            if answer.headers.get("content-type", "").startswith("application/json")
            else answer.text[:200]
        )
        raise ServingError(f"the server at {url} has no drift report: {detail}")
    body = answer.json()
    return body["sketch"], body["run_id"]


# ---- the prediction log --------------------------------------------------------------------
def log_files(project: Project) -> list[Path]:
    """The server's prediction logs (rotated ones too), oldest first."""
    logs = project.path / "logs"
    if not logs.is_dir():
        return []
    files = [
        p
        for p in logs.iterdir()
        if p.name.startswith("predictions") and ".jsonl" in p.name and p.is_file()
    ]
    return sorted(files, key=lambda p: p.stat().st_mtime)


def log_window(
    project: Project,
    model: Any,
    profile: dict[str, Any],
    seconds: float | None,
    last: int | None,
    chunk: int = 5000,
) -> WindowSketch:
    """The logged requests' inputs (and the model's logged predictions) as a sketch, in chunks
    so a long log never sits in memory whole."""
    import orjson

    cutoff = time.time() - seconds if seconds is not None else None
    window = WindowSketch(profile)
    rows: list[Any] = []
    outputs: list[Any] = []

    def flush() -> None:
        if rows:
            X = model.matrix(rows)
            same = [o for o in outputs if o is not _OTHER_RUN]
            window.add(X, same if len(same) == len(rows) else None)
            rows.clear()
            outputs.clear()

    records = _log_records(project, orjson, cutoff)
    if last is not None:
        records = _last(records, last)
    for record in records:
        inputs = record.get("inputs") or []
        answers = record.get("outputs") or []
        mine = record.get("run_id") == model.run_id and len(answers) == len(inputs)
        for i, row in enumerate(inputs):
            rows.append(row)
            outputs.append(answers[i] if mine else _OTHER_RUN)
        if len(rows) >= chunk:
            flush()
    flush()
    return window


_OTHER_RUN = object()  # a logged prediction of another run: not this run's prediction drift


def _log_records(project: Project, orjson: Any, cutoff: float | None) -> Any:
    for path in log_files(project):
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line cut by a crash
                if cutoff is not None:
                    stamp = datetime.fromisoformat(record["time"])
                    if stamp.replace(tzinfo=stamp.tzinfo or UTC).timestamp() < cutoff:
                        continue
                yield record


def _last(records: Any, rows: int) -> list[dict[str, Any]]:
    """The records holding the last `rows` input rows (the first one trimmed to fit)."""
    from collections import deque

    kept: deque[dict[str, Any]] = deque()
    held = 0
    for record in records:
        kept.append(record)
        held += len(record.get("inputs") or [])
        while kept and held - len(kept[0].get("inputs") or []) >= rows:
            held -= len(kept.popleft().get("inputs") or [])
    if kept and held > rows:
        first = dict(kept[0])
        cut = held - rows
        first["inputs"] = first["inputs"][cut:]
        if first.get("outputs"):
            first["outputs"] = first["outputs"][cut:]
        kept[0] = first
    return list(kept)


# ---- a data version or a file --------------------------------------------------------------
def frame_window(
    project: Project,
    model: Any,
    profile: dict[str, Any],
    source: str,
    target: str,
    prediction: str,
) -> WindowSketch:
    """A data version or a file (raw or processed) as a sketch, with the model's predictions and
    the labels when the data has them."""
    from engine.evaluation import load_labelled, processed_frame
    from engine.features import to_matrix

    labelled = load_labelled(project, source)
    frame = labelled.frame
    processed = processed_frame(model, frame, target, prediction, training_rows=False)
    X = to_matrix(processed, model.features)
    window = WindowSketch(profile)
    predictions = None
    if len(X):
        try:
            predictions, _ = model.predict(X)
        except ValueError:
            predictions = None  # outputs that are not finite: prediction drift is left out
    y = processed[target].to_numpy() if target in processed.columns else None
    window.add(X, predictions, y)
    window.duplicates = int(frame.duplicated().sum()) if len(frame) else 0
    return window
