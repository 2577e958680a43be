"""`haj report`: one document about a project, for people who do not run haj: the champion and
its metrics, its confusion matrix (or residuals), the top of the leaderboard, the data versions
and the files they were made of, diagnostics, the latest drift and quality report, trends over a
window, and a running server's own answers.

Why gathering and rendering are apart: `gather()` reads the project once into a `Report` (plain
data: `--json` prints it, tests compare it with the store), `blocks()` turns a Report into
headings, paragraphs, tables and figures, and `render_pdf`, `render_md` and `render_html` lay out
the same blocks, so the three formats say the same. Figures are drawn with matplotlib's Agg
canvas (the object API, no pyplot: nothing global, nothing on screen).

Why fpdf2 for the PDF: a report is mostly text and tables with a few figures. matplotlib's own
PdfPages makes every page a figure: text does not flow and a long table does not break across
pages unless laid out by hand. reportlab's Platypus does all of it but is a larger toolkit than
this needs. fpdf2 is pure Python, actively released, flows text, breaks tables across pages with
their header repeated, places PNGs, and shares its dependencies (Pillow, fontTools) with
matplotlib; its fonts here are the DejaVu TTFs matplotlib ships, so every character haj prints
(✓, ±, ♛) is in the PDF.

Everything is read: the champion is scored on its holdout in memory and nothing is recorded, so
a report changes nothing but the file it writes.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import DataError, DependencyError, HajError, Hint, UsageError

# engine.api.ProjectAPI, whose reads (leaderboard, versions, diagnose, server...) a report makes;
# not imported, even for type checking: engine.api imports this module (the core has no cycle)
ProjectAPI = Any

FORMATS = {".pdf": "pdf", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
TOP = 10  # leaderboard rows
VERSIONS_SHOWN = 12  # data versions, newest first
MATRIX_TABLE = 12  # classes up to which the confusion matrix is also a table
POINTS = 2000  # predicted-vs-actual points kept for the regression figure (a seeded sample)
INDEX_TIMEOUT = 15.0  # seconds the diagnostics give the package index
SERVER_TIMEOUT = 2.0  # seconds a running server is given to answer
KEEP = 10  # reports kept in reports/ ([pipeline] keep_reports)


# ---- the data --------------------------------------------------------------------------------
@dataclass
class ChampionPart:
    run_id: str
    label: str
    model: str
    data_version: str | None
    metric: str
    value: float
    crowned_at: str
    reason: str | None
    validation: str  # "test split", "5-fold CV", "finalized"
    metrics: dict[str, float]
    metrics_std: dict[str, float] = field(default_factory=dict)
    stale: str | None = None  # trained on other data than the current


@dataclass
class EvaluationPart:
    """The champion's confusion matrix (classification) or residuals (regression): from its
    run artifacts when it has them, else computed on its holdout."""

    kind: str  # "confusion" or "residuals"
    source: str  # "artifacts" or "holdout"
    data: str  # what it was measured on
    rows: int
    labels: list[Any] | None = None  # rows = true class, columns = predicted class
    matrix: list[list[int]] | None = None
    residuals: dict[str, float] | None = None  # mean, std, quantiles, max_abs
    actual: list[float] | None = None  # a sample of the points (at most POINTS)
    predicted: list[float] | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # measured on these rows
    note: str | None = None


@dataclass
class Report:
    """Everything a report shows; `notes` says, per section, why it is empty."""

    project: str
    title: str
    prediction: str
    made_at: str
    since: str  # the trends' window, as given ("30d")
    since_at: str  # its start
    metric: str
    higher_is_better: bool
    champion: ChampionPart | None = None
    evaluation: EvaluationPart | None = None
    leaderboard: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    monitoring: dict[str, Any] | None = None  # the latest stored drift and quality report
    trends: dict[str, Any] = field(default_factory=dict)
    diagnosis: dict[str, Any] | None = None
    server: dict[str, Any] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Written:
    """What `make` did: the file (None: not written), its pages (PDF), the figures written
    beside it (Markdown), the older reports removed, where each figure landed in the PDF
    (name -> [page, x, y, width, height] in mm) and the report itself."""

    path: Path | None
    format: str | None
    report: Report
    pages: int | None = None
    files: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    layout: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path) if self.path else None,
            "format": self.format,
            "pages": self.pages,
            "files": [str(p) for p in self.files],
            "removed": [str(p) for p in self.removed],
            "report": self.report.to_dict(),
        }


# ---- making one ------------------------------------------------------------------------------
def format_of(path: Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: a report is a .pdf, .md or .html file")
    return fmt


def check_libraries(fmt: str) -> None:
    """DependencyError naming what is missing: matplotlib for the figures, fpdf2 for a PDF."""
    import importlib.util

    missing = [
        package
        for package, module in (("matplotlib", "matplotlib"), ("fpdf2", "fpdf"))
        if (module != "fpdf" or fmt == "pdf") and importlib.util.find_spec(module) is None
    ]
    if missing:
        raise DependencyError(
            f"a {fmt} report needs {' and '.join(missing)}: pip install 'haj[report]'"
        )


def make(
    api: ProjectAPI,
    output: Path | None = None,
    *,
    since: str = "30d",
    write: bool = True,
    index_timeout: float | None = None,
) -> Written:
    """Gather the report and write it to `output` (.pdf, .md, .html), or by default to the
    project's reports/report-<UTC time>.pdf, keeping the last [pipeline] keep_reports there.
    `write=False` gathers only."""
    fmt = format_of(output) if output is not None else "pdf"
    if write:
        check_libraries(fmt)
    report = gather(api, since, index_timeout=index_timeout)
    if not write:
        return Written(None, None, report)
    if output is not None:
        return render(report, Path(output), fmt)
    folder = api.project.path / "reports"
    written = render(report, default_path(folder), "pdf")
    keep = int(api.config().get("pipeline", {}).get("keep_reports", KEEP))
    written.removed = prune(folder, keep)
    return written


def default_path(folder: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    path = folder / f"report-{stamp}.pdf"
    n = 1
    while path.exists():  # two reports in one second
        n += 1
        path = folder / f"report-{stamp}-{n}.pdf"
    return path


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` report-*.pdf of `folder`; the removed ones."""
    if not folder.is_dir():
        return []
    found = sorted(folder.glob("report-*.pdf"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    removed = found[: max(0, len(found) - keep)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def render(report: Report, path: Path, fmt: str) -> Written:
    if fmt == "pdf":
        return render_pdf(report, path)
    if fmt == "md":
        return render_md(report, path)
    return render_html(report, path)


# ---- gathering -------------------------------------------------------------------------------
def gather(
    api: ProjectAPI,
    since: str = "30d",
    *,
    index_timeout: float | None = None,
    server_timeout: float = SERVER_TIMEOUT,
    now: datetime | None = None,
) -> Report:
    """Read the project into a Report. A project without data is a DataError; every other
    missing part is a note in its section."""
    from engine.metrics import check_metric
    from engine.monitor import parse_since

    seconds = parse_since(since)
    config = api.config()
    if not api.versions():
        raise DataError(
            f"{api.name} has no data yet: nothing to report", Hint("retrieve", api.name)
        )
    now = now or datetime.now(UTC)
    prediction = config["project"]["prediction"]
    metric = check_metric(config["training"]["metric"], prediction)
    report = Report(
        project=api.name,
        title=str(config["project"].get("title") or api.name),
        prediction=prediction,
        made_at=now.isoformat(timespec="seconds"),
        since=since.strip(),
        since_at=(now - timedelta(seconds=seconds)).isoformat(timespec="seconds"),
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
    )
    _leaderboard_and_champion(api, report)
    if report.champion is not None:
        try:
            report.evaluation = evaluation_of(api, config, report.champion)
        except HajError as exc:
            report.notes["evaluation"] = f"it could not be measured: {exc.message}"
    _data(api, report)
    _monitoring(api, report)
    _trends(api, report)
    try:
        timeout = INDEX_TIMEOUT if index_timeout is None else index_timeout
        report.diagnosis = _plain(api.diagnose(index_timeout=timeout).to_dict())
    except HajError as exc:
        report.notes["diagnosis"] = exc.message
    _server(api, report, server_timeout)
    return report


def _leaderboard_and_champion(api: ProjectAPI, report: Report) -> None:
    from engine.runs import run_kind, score_text

    board = api.leaderboard(include_all=False)
    finished = board.finished()
    report.leaderboard = {
        "metric": board.metric,
        "higher_is_better": board.higher_is_better,
        "scope": board.scope,
        "data_version": board.data_version,
        "finished": len(finished),
        "other_runs": board.other_runs,
        "runs": [
            {
                "rank": rank,
                "run_id": run["id"],
                "label": run["label"],
                "model": run["model"],
                "score": run["metrics"][board.metric],
                "score_text": score_text(run, board.metric),
                "validation": run_kind(run),
                "fit_seconds": run.get("fit_seconds"),
                "champion": run["id"] == board.champion_id,
            }
            for rank, run in enumerate(finished[:TOP], start=1)
        ],
    }
    if not finished:
        report.notes["leaderboard"] = (
            f"no finished run {board.scope}"
            + (f" ({board.other_runs} on other data versions)" if board.other_runs else "")
            + f": train with `haj train {api.name}`"
        )
    if board.champion is None:
        report.notes["champion"] = (
            f"no champion yet: crown one with `haj evaluate {api.name}`"
            if finished
            else f"no champion yet: train and crown one (`haj train {api.name}`, then "
            f"`haj evaluate {api.name}`)"
        )
        return
    run = api.run(board.champion["run_id"])
    history = api.champion_history()
    reason = history[0].get("reason") if history and history[0]["run_id"] == run.id else None
    report.champion = ChampionPart(
        run_id=run.id,
        label=run.label,
        model=run.model,
        data_version=run.data_version,
        metric=board.champion["metric"],
        value=float(board.champion["value"]),
        crowned_at=board.champion["crowned_at"],
        reason=reason,
        validation=run_kind(run.to_dict()),
        metrics=dict(run.metrics),
        metrics_std=dict(run.metrics_std),
        stale=board.stale,
    )


def evaluation_of(
    api: ProjectAPI, config: dict[str, Any], champion: ChampionPart
) -> EvaluationPart:
    """From the run's artifacts when they hold a confusion matrix (or predicted-vs-actual
    points), else computed on the champion's holdout (its data version's test split)."""
    found = from_artifacts(api, champion, config["project"]["prediction"])
    if found is not None:
        return found
    return on_holdout(api, config, champion)


def from_artifacts(
    api: ProjectAPI, champion: ChampionPart, prediction: str
) -> EvaluationPart | None:
    """The confusion matrix, or the residual summary and predicted-vs-actual points, kept at
    training (engine.artifacts, `ProjectAPI.run_artifacts`); None when the run has none."""
    try:
        found = _plain(api.run_artifacts(champion.run_id))
    except HajError:
        return None
    if not isinstance(found, Mapping):
        return None
    data = f"the test split of {champion.data_version}"
    note = None
    if found.get("from_run"):
        note = (
            f"finalized: the figures are its source run {found['from_run']}'s, kept at training "
            "on the test split"
        )
    if prediction == "classification":
        confusion = found.get("confusion")
        if not isinstance(confusion, Mapping) or not _is_confusion(confusion):
            return None
        matrix = [[int(v) for v in row] for row in confusion["matrix"]]
        return EvaluationPart(
            kind="confusion",
            source="artifacts",
            data=data,
            rows=sum(sum(row) for row in matrix),
            labels=list(confusion["labels"]),
            matrix=matrix,
            note=note,
        )
    points = found.get("predicted_vs_actual")
    summary = found.get("residuals")
    if not isinstance(points, Mapping) or not isinstance(summary, Mapping):
        return None
    actual, predicted = points.get("actual"), points.get("predicted")
    if not isinstance(actual, list) or not isinstance(predicted, list) or not actual:
        return None
    rows = found.get("rows") or points.get("sampled_from") or len(actual)
    return EvaluationPart(
        kind="residuals",
        source="artifacts",
        data=data,
        rows=int(rows),
        residuals=dict(summary),
        actual=[float(v) for v in actual],
        predicted=[float(v) for v in predicted],
        note=note,
    )


def _is_confusion(value: Mapping[str, Any]) -> bool:
    labels, matrix = value.get("labels"), value.get("matrix")
    return (
        isinstance(labels, list)
        and isinstance(matrix, list)
        and len(matrix) == len(labels)
        and all(isinstance(row, list) and len(row) == len(labels) for row in matrix)
    )


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses and to_dict() objects as dicts, numpy scalars and arrays as
    Python values, paths as text."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        value = value.to_dict()
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def on_holdout(api: ProjectAPI, config: dict[str, Any], champion: ChampionPart) -> EvaluationPart:
    """The champion scored on its data version's test split (split as training splits it), in
    memory: nothing is recorded."""
    from engine.data import open_store
    from engine.evaluation import labelled_matrix, measure_predictions
    from engine.retrain import holdout
    from engine.serving.model import load, locate_run
    from engine.training import class_scores

    project = api.project
    prediction, target = config["project"]["prediction"], config["data"]["target"]
    with open_store(project) as store:
        version = store.data_version(champion.data_version) if champion.data_version else None
    if version is None:
        raise DataError(f"its data version {champion.data_version} is not in the project")
    test = holdout(project, config, version)
    model = load(locate_run(project.path, champion.run_id), project.name)
    X, y = labelled_matrix(model, test, target, prediction)
    pipeline = model.pipeline
    y_pred = pipeline.predict(X)
    note = (
        "finalized: these rows were part of its training, so its scores on them are optimistic"
        if champion.validation == "finalized"
        else None
    )
    data = f"the test split of {version.id}"
    if prediction == "regression":
        part = _residual_part(list(map(float, y)), list(map(float, y_pred)), "holdout")
        part.data, part.note = data, note
        return part
    y_score, _ = class_scores(pipeline, X)
    classes = list(getattr(pipeline, "classes_", [])) or None
    metrics, details = measure_predictions(y, y_pred, prediction, y_score, classes)
    confusion = details["confusion"]
    return EvaluationPart(
        kind="confusion",
        source="holdout",
        data=data,
        rows=len(y),
        labels=_plain(confusion["labels"]),
        matrix=_plain(confusion["matrix"]),
        metrics=_plain(metrics),
        note=note,
    )


def _residual_part(actual: list[float], predicted: list[float], source: str) -> EvaluationPart:
    import numpy as np

    from engine.evaluation import measure_predictions

    metrics, details = measure_predictions(
        np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64), "regression"
    )
    keep = np.arange(len(actual))
    if len(keep) > POINTS:
        keep = np.sort(np.random.default_rng(0).choice(len(actual), POINTS, replace=False))
    return EvaluationPart(
        kind="residuals",
        source=source,
        data="",
        rows=len(actual),
        residuals=_plain(details["residuals"]),
        actual=[actual[i] for i in keep],
        predicted=[predicted[i] for i in keep],
        metrics=_plain(metrics),
    )


def _data(api: ProjectAPI, report: Report) -> None:
    from engine import folder

    versions = api.versions()
    shown = list(reversed(versions))[:VERSIONS_SHOWN]
    keys = ("id", "kind", "format", "rows", "columns", "bytes", "parent", "source", "created_at")
    files = {}
    for version in [v for v in shown if v["kind"] == "raw"][:3]:
        record = folder.load(api.project.path / version["path"]) or {}
        listed = (record.get("ingest") or {}).get("files")
        if listed:
            files[version["id"]] = listed
    report.data = {
        "versions": [
            {**{k: v.get(k) for k in keys}, "current": v["current"], "seconds": v.get("seconds")}
            for v in shown
        ],
        "total": len(versions),
        "files": files,
    }


def _monitoring(api: ProjectAPI, report: Report) -> None:
    from engine.store import Store

    with Store(api.project.db_path) as store:
        latest = store.monitor_reports(1, full=True)
    if not latest:
        report.notes["monitoring"] = f"no drift report yet: `haj monitor {api.name}` makes one"
        return
    report.monitoring = _plain(latest[-1])


def _trends(api: ProjectAPI, report: Report) -> None:
    from engine.store import Store

    start = _moment(report.since_at)
    monitor = [r for r in api.monitor_history() if _moment(r["created_at"]) >= start]
    crowned = [e for e in api.champion_history() if _moment(e["crowned_at"]) >= start]
    crowned.reverse()  # oldest first
    evaluations = [e for e in api.evaluations() if _moment(e["created_at"]) >= start]
    evaluations.reverse()
    labels: dict[str, str] = {}
    with Store(api.project.db_path) as store:
        for run_id in {e["run_id"] for e in evaluations} | {e["run_id"] for e in crowned}:
            run = store.run(run_id) if run_id else None
            if run is not None:
                labels[run.id] = run.label
    report.trends = {
        "monitor": [{k: r[k] for k in _MONITOR_KEYS} for r in monitor],
        "champions": [
            {
                "crowned_at": e["crowned_at"],
                "run_id": e["run_id"],
                "label": labels.get(e["run_id"] or "", e.get("model") or "(cleared)"),
                "metric": e["metric"],
                "value": e["value"],
                "reason": e["reason"],
            }
            for e in crowned
        ],
        "evaluations": [
            {
                "created_at": e["created_at"],
                "run_id": e["run_id"],
                "label": labels.get(e["run_id"], e["run_id"]),
                "data": e["data"],
                "rows": e["rows"],
                "live": str(e["data"]).startswith("feedback:"),
                "value": e["metrics"].get(report.metric),
            }
            for e in evaluations
        ],
    }
    if not monitor:
        report.notes["trends.monitor"] = f"no drift report in the last {report.since}"
    if not crowned and not evaluations:
        report.notes["trends.metric"] = f"no crowning and no evaluation in the last {report.since}"


_MONITOR_KEYS = (
    "created_at", "source", "rows", "drift_share", "missing_share", "dataset_drift", "too_small",
    "quality_issues",
)  # fmt: skip


def _server(api: ProjectAPI, report: Report, timeout: float) -> None:
    from engine.errors import ServingError
    from engine.serving.control import fetch_stats

    server = api.server()
    if server is None:
        report.notes["server"] = f"no server is running (`haj run {api.name} --detach` starts one)"
        return
    try:
        stats = fetch_stats(server.to_dict(), timeout)
    except ServingError as exc:
        report.notes["server"] = exc.message
        return
    report.server = _plain(
        {k: stats.get(k) for k in ("url", "ready", "health", "counts", "latency")}
    )


def _moment(iso: str) -> datetime:
    stamp = datetime.fromisoformat(iso)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


# ---- the document: blocks every format lays out ----------------------------------------------
@dataclass
class Block:
    kind: str  # title, h2, h3, p, note, table, figure
    text: str = ""  # a figure's caption
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    right: list[int] = field(default_factory=list)  # columns aligned right (numbers)
    figure: str = ""  # the figure's name (figures())


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return _moment(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _share(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def blocks(report: Report, figures: Iterable[str] = ()) -> list[Block]:
    """The report as a sequence of blocks; a figure block only for the names in `figures`."""
    from engine.numbers import duration_text, metric_text

    drawn = set(figures)
    out: list[Block] = []
    add = out.append
    name = report.project
    title = report.title if report.title != name else name
    add(Block("title", f"{title}: model report"))
    zone = datetime.now().astimezone().strftime("%Z") or "local time"
    add(
        Block(
            "p",
            f"Project {name} ({report.prediction}), made {_when(report.made_at)} ({zone}); "
            f"trends over the last {report.since} (since {_when(report.since_at)}). "
            f"Ranked by {report.metric} ({'higher' if report.higher_is_better else 'lower'} "
            "is better).",
        )
    )

    # champion
    add(Block("h2", "Champion"))
    champion = report.champion
    if champion is None:
        add(Block("note", report.notes.get("champion", "no champion")))
    else:
        add(
            Block(
                "p",
                f"♛ {champion.label} (run {champion.run_id}, {champion.model}), trained on "
                f"{champion.data_version or 'unrecorded data'}, validated by "
                f"{champion.validation}; champion since {_when(champion.crowned_at)}"
                + (f" ({champion.reason})" if champion.reason else "")
                + f": {champion.metric} = {metric_text(champion.metric, champion.value)}.",
            )
        )
        if champion.stale:
            add(Block("note", champion.stale))
        measured = report.evaluation.metrics if report.evaluation else {}
        header = ["metric", "recorded at training"]
        if measured:
            header.append(f"on {report.evaluation.data}" if report.evaluation else "")
        rows = []
        for metric, value in champion.metrics.items():
            row = [
                metric + (" (ranking)" if metric == report.metric else ""),
                metric_text(metric, value, champion.metrics_std.get(metric)),
            ]
            if measured:
                row.append(metric_text(metric, measured.get(metric)))
            rows.append(row)
        add(Block("table", header=header, rows=rows, right=[1, 2]))
        out.extend(_evaluation_blocks(report, drawn))

    # leaderboard
    board = report.leaderboard
    add(Block("h2", "Leaderboard"))
    if board.get("runs"):
        shown = len(board["runs"])
        add(
            Block(
                "p",
                f"The top {shown} of {board['finished']} finished runs {board['scope']}, by "
                f"{board['metric']}"
                + (
                    f"; {board['other_runs']} runs on other data versions"
                    if board["other_runs"]
                    else ""
                )
                + ".",
            )
        )
        add(
            Block(
                "table",
                header=["#", "run", "model", board["metric"], "validation", "fit", ""],
                rows=[
                    [
                        str(r["rank"]),
                        r["label"],
                        r["model"],
                        r["score_text"],
                        r["validation"],
                        duration_text(r["fit_seconds"]),
                        "♛" if r["champion"] else "",
                    ]
                    for r in board["runs"]
                ],
                right=[0, 3, 5],
            )
        )
    else:
        add(Block("note", report.notes.get("leaderboard", "no finished run")))

    out.extend(_data_blocks(report))
    out.extend(_monitoring_blocks(report))
    out.extend(_trend_blocks(report, drawn))
    out.extend(_diagnosis_blocks(report))
    out.extend(_server_blocks(report))
    return out


def _evaluation_blocks(report: Report, drawn: set[str]) -> list[Block]:
    from engine.numbers import column_format

    evaluation = report.evaluation
    champion = report.champion
    assert champion is not None
    if evaluation is None:
        what = "confusion matrix" if report.prediction == "classification" else "residuals"
        return [Block("note", f"The champion's {what}: {report.notes.get('evaluation', '-')}")]
    where = (
        "kept at training in the run's artifacts"
        if evaluation.source == "artifacts"
        else "computed now with the champion's model"
    )
    sample = evaluation.actual or []
    if evaluation.kind == "residuals" and 0 < len(sample) < evaluation.rows:
        where += f"; {len(sample)} of them drawn"
    out = []
    if evaluation.kind == "confusion":
        caption = (
            f"Confusion matrix of {champion.label} on {evaluation.data} ({evaluation.rows} rows; "
            f"{where}): rows are the true class, columns the predicted one."
        )
        out.append(Block("h3", "Confusion matrix"))
        if "evaluation" in drawn:
            out.append(Block("figure", caption, figure="evaluation"))
        else:
            out.append(Block("p", caption))
        labels = [str(v) for v in evaluation.labels or []]
        if len(labels) > MATRIX_TABLE:  # too wide for a page: the figure (and --json) has it
            out.append(Block("note", f"{len(labels)} classes: the counts are in the figure"))
        else:
            out.append(
                Block(
                    "table",
                    header=["true \\ predicted", *labels],
                    rows=[
                        [label, *(str(v) for v in row)]
                        for label, row in zip(labels, evaluation.matrix or [], strict=False)
                    ],
                    right=list(range(1, len(labels) + 1)),
                )
            )
    else:
        caption = (
            f"Residuals (actual - predicted) of {champion.label} on {evaluation.data} "
            f"({evaluation.rows} rows; {where}): predicted against actual, and their spread."
        )
        out.append(Block("h3", "Residuals"))
        if "evaluation" in drawn:
            out.append(Block("figure", caption, figure="evaluation"))
        else:
            out.append(Block("p", caption))
        residuals = evaluation.residuals or {}
        keys = ["mean", "std", "p05", "p25", "median", "p75", "p95", "max_abs"]
        write = column_format(residuals.get(k) for k in keys)
        out.append(
            Block(
                "table",
                header=["mean", "std", "p05", "p25", "median", "p75", "p95", "max |r|"],
                rows=[[write(residuals.get(k)) for k in keys]],
                right=list(range(8)),
            )
        )
    if evaluation.note:
        out.append(Block("note", evaluation.note))
    return out


def _data_blocks(report: Report) -> list[Block]:
    data = report.data
    out = [Block("h2", "Data")]
    versions = data.get("versions") or []
    total = data.get("total", len(versions))
    out.append(
        Block(
            "p",
            f"{total} data versions"
            + (f", the newest {len(versions)} shown" if total > len(versions) else "")
            + "; ✓ marks the current raw version and the processed version training uses.",
        )
    )
    out.append(
        Block(
            "table",
            header=["", "version", "kind", "rows", "columns", "size", "from", "created", "took"],
            rows=[
                [
                    "✓" if v["current"] else "",
                    v["id"],
                    f"{v['kind']} {v['format']}",
                    f"{v['rows']:,}" if v["rows"] is not None else "-",
                    str(v["columns"]) if v["columns"] is not None else "-",
                    _size(v["bytes"]),
                    v["parent"] or _short_source(v["source"]),
                    _when(v["created_at"]),
                    f"{v['seconds']:.1f}s" if v.get("seconds") is not None else "-",
                ]
                for v in versions
            ],
            right=[3, 4, 5, 8],
        )
    )
    for version_id, files in (data.get("files") or {}).items():
        out.append(Block("h3", f"Files ingested into {version_id}"))
        out.append(
            Block(
                "table",
                header=["file", "rows", "size", "sha256", "used"],
                rows=[
                    [
                        str(f.get("file")),
                        str(f["rows"]) if f.get("rows") is not None else "-",
                        _size(f.get("bytes")),
                        str(f.get("sha256", ""))[:12],
                        "yes" if f.get("used") else f"no: {f.get('reason')}",
                    ]
                    for f in files
                ],
                right=[1, 2],
            )
        )
    return out


def _short_source(source: str | None) -> str:
    if not source:
        return "-"
    text = re.sub(r"//[^/@]*@", "//", source)  # never a password of a URL
    return text if len(text) <= 40 else "…" + text[-39:]


def _monitoring_blocks(report: Report) -> list[Block]:
    out = [Block("h2", "Drift and data quality (the latest report)")]
    latest = report.monitoring
    if latest is None:
        out.append(Block("note", report.notes.get("monitoring", "no drift report yet")))
        return out
    body = latest.get("report") or {}
    out.append(
        Block(
            "p",
            f"{body.get('verdict', '')}. Made {_when(latest['created_at'])} on "
            f"{latest['source']} ({latest['window']}, {latest['rows']:,} rows) against run "
            f"{latest['run_id']}; missing values: {_share(latest['missing_share'])} of the "
            f"inputs; {latest['quality_issues']} quality issues.",
        )
    )
    features = sorted(body.get("features") or [], key=lambda c: not c.get("drifted"))
    for extra in ("prediction", "target"):
        if body.get(extra):
            features.append({**body[extra], "name": f"({extra})"})
    if features:
        out.append(
            Block(
                "table",
                header=["feature", "drift", "test", "statistic", "missing", "at training"],
                rows=[
                    [
                        str(c["name"]),
                        "drift" if c.get("drifted") else "ok",
                        str(c.get("test", "")),
                        _statistic(c),
                        _share(c.get("missing_share")),
                        _share(c.get("reference_missing_share")),
                    ]
                    for c in features[:15]
                ],
                right=[3, 4, 5],
            )
        )
        if len(features) > 15:
            out.append(Block("note", f"{len(features) - 15} more features not shown"))
    quality = body.get("quality") or {}
    lines = []
    for key, words in (
        ("unseen", "unseen categories"),
        ("out_of_range", "outside the training range"),
        ("refused", "refused by the server"),
    ):
        if quality.get(key):
            lines.append(f"{words}: " + ", ".join(f"{k} {v}" for k, v in quality[key].items()))
    if quality.get("constant"):
        lines.append("constant now: " + ", ".join(quality["constant"]))
    if quality.get("duplicates"):
        lines.append(f"duplicate rows: {quality['duplicates']}")
    if lines:
        out.append(Block("p", "Quality: " + "; ".join(lines) + "."))
    return out


def _statistic(column: Mapping[str, Any]) -> str:
    if column.get("p_value") is not None:
        return f"p {column['p_value']:.4f}"
    if column.get("statistic") is not None:
        return f"{column['statistic']:.4f}"
    return "-"


def _trend_blocks(report: Report, drawn: set[str]) -> list[Block]:
    from engine.numbers import metric_text

    trends = report.trends
    out = [Block("h2", f"Trends over the last {report.since}")]
    monitor = trends.get("monitor") or []
    if monitor:
        drifted = sum(1 for r in monitor if r["dataset_drift"])
        out.append(
            Block(
                "p",
                f"{_count(len(monitor), 'drift report')}, {drifted} with dataset drift; the "
                "share of "
                f"drifted features went from {_share(monitor[0]['drift_share'])} to "
                f"{_share(monitor[-1]['drift_share'])}, missing values from "
                f"{_share(monitor[0]['missing_share'])} to {_share(monitor[-1]['missing_share'])}.",
            )
        )
        if "drift" in drawn:
            out.append(
                Block(
                    "figure",
                    "Share of drifted features and of missing input values per stored report "
                    "(a red point: dataset drift).",
                    figure="drift",
                )
            )
    else:
        out.append(Block("note", report.notes.get("trends.monitor", "no drift report")))
    champions = trends.get("champions") or []
    evaluations = trends.get("evaluations") or []
    if "metric" in drawn:
        out.append(
            Block(
                "figure",
                f"{report.metric} over time: the champion at each crowning, runs scored on "
                "labelled data, and live performance from real outcomes (haj feedback).",
                figure="metric",
            )
        )
    out.append(Block("h3", "Champions crowned"))
    if champions:
        out.append(
            Block(
                "table",
                header=["when", "run", "metric", "score", "why"],
                rows=[
                    [
                        _when(e["crowned_at"]),
                        e["label"],
                        e["metric"] or "-",
                        metric_text(e["metric"], e["value"]) if e["metric"] else "-",
                        e["reason"] or "-",
                    ]
                    for e in champions
                ],
                right=[3],
            )
        )
    else:
        out.append(Block("note", f"no crowning in the last {report.since}"))
    out.append(Block("h3", "Evaluations (scored on labelled data; live: haj feedback)"))
    if evaluations:
        out.append(
            Block(
                "table",
                header=["when", "run", "data", "rows", report.metric, "live"],
                rows=[
                    [
                        _when(e["created_at"]),
                        e["label"],
                        _short_source(e["data"]),
                        f"{e['rows']:,}",
                        metric_text(report.metric, e["value"]),
                        "live" if e["live"] else "",
                    ]
                    for e in evaluations[-15:]
                ],
                right=[3, 4],
            )
        )
        if len(evaluations) > 15:
            out.append(Block("note", f"the last 15 of {len(evaluations)} evaluations"))
    else:
        out.append(Block("note", f"no evaluation in the last {report.since}"))
    return out


def _diagnosis_blocks(report: Report) -> list[Block]:
    from engine.numbers import duration_text

    out = [Block("h2", "Diagnostics")]
    diagnosis = report.diagnosis
    if diagnosis is None:
        out.append(Block("note", report.notes.get("diagnosis", "no diagnosis")))
        return out
    notes = diagnosis.get("notes") or {}
    missing = diagnosis.get("missing") or {}
    data, live = missing.get("data"), missing.get("live")
    out.append(Block("h3", "Missing values"))
    rows = []
    if data:
        live_by = {c["column"]: c for c in (live or {}).get("columns", [])}
        for column in data["columns"]:
            other = live_by.get(column["column"])
            if column["count"] or (other and other["count"]):
                rows.append(
                    [
                        column["column"],
                        f"{column['count']:,}",
                        _share(column["share"]),
                        _share(other["share"]) if other else "-",
                    ]
                )
        said = f"{data['source']} ({data['rows']:,} rows)"
        said += f"; live: {live['rows']:,} rows" if live else f"; {notes.get('live', '')}"
        out.append(Block("p", said + ("." if rows else ": no missing value.")))
    else:
        out.append(Block("note", notes.get("data", "no data")))
    if rows:
        out.append(
            Block(
                "table",
                header=["column", "missing", "share", "live share"],
                rows=rows[:15],
                right=[1, 2, 3],
            )
        )
    timings = diagnosis.get("timings") or []
    out.append(Block("h3", "Step timings"))
    if timings:
        out.append(
            Block(
                "table",
                header=["step", "of", "seconds", "fit", "status"],
                rows=[
                    [
                        t["step"],
                        t["subject"],
                        f"{t['seconds']:.2f}" if t["seconds"] is not None else "-",
                        f"{t['fit_seconds']:.2f}" if t.get("fit_seconds") is not None else "",
                        t.get("status") or "",
                    ]
                    for t in timings
                ],
                right=[2, 3],
            )
        )
    else:
        out.append(Block("note", notes.get("timings", "no timings")))
    deps = diagnosis.get("dependencies") or {}
    out.append(Block("h3", "Dependencies"))
    outdated = deps.get("outdated") or []
    if deps.get("note"):
        out.append(Block("note", f"dependencies: {deps['note']}"))
    if outdated:
        out.append(
            Block(
                "table",
                header=["package", "installed", "latest"],
                rows=[[p["package"], p["installed"] or "-", p["latest"] or "-"] for p in outdated],
            )
        )
    elif deps.get("index_checked"):
        out.append(Block("p", f"all {len(deps.get('packages') or [])} packages up to date."))
    if deps.get("not_installed"):
        out.append(Block("note", "not installed: " + ", ".join(deps["not_installed"])))
    age = diagnosis.get("champion")
    out.append(Block("h3", "Champion age and predictions per day"))
    if age:
        days = age["age_seconds"] / 86400
        held = f"{days:.1f} days" if days >= 1 else duration_text(age["age_seconds"])
        out.append(
            Block(
                "p",
                f"{age['label']} has been champion for {held} (since {_when(age['crowned_at'])}).",
            )
        )
    predictions = diagnosis.get("predictions") or []
    if any(d["served"] or d["batch_logged"] for d in predictions):
        out.append(
            Block(
                "table",
                header=["day (UTC)", "served", "requests", "batch (sampled)"],
                rows=[
                    [d["day"], f"{d['served']:,}", f"{d['requests']:,}", f"{d['batch_logged']:,}"]
                    for d in predictions
                ],
                right=[1, 2, 3],
            )
        )
    else:
        out.append(Block("note", notes.get("predictions", "no predictions logged")))
    return out


def _server_blocks(report: Report) -> list[Block]:
    out = [Block("h2", "Live server")]
    server = report.server
    if server is None:
        out.append(Block("note", report.notes.get("server", "no server is running")))
        return out
    health = server.get("health") or {}
    counts = server.get("counts") or {}
    latency = server.get("latency") or {}
    out.append(
        Block(
            "p",
            f"{server['url']}: {'ready' if server.get('ready') else 'NOT ready'}; the answers of "
            "/health, /predictions_count and /latency at the time of this report.",
        )
    )
    out.append(Block("h3", "/health"))
    out.append(Block("table", header=["field", "value"], rows=_pairs(health)))
    out.append(Block("h3", "/predictions_count"))
    out.append(Block("table", header=["field", "value"], rows=_pairs(counts), right=[1]))
    out.append(Block("h3", "/latency (ms)"))
    keys = ["requests", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms"]
    rows = []
    for part in ("window", "since_start"):
        figures = latency.get(part) or {}
        rows.append([part.replace("_", " "), *(str(figures.get(k, "-")) for k in keys)])
    out.append(
        Block(
            "table",
            header=["", "requests", "p50", "p95", "p99", "mean", "max"],
            rows=rows,
            right=[1, 2, 3, 4, 5, 6],
        )
    )
    return out


def _pairs(answer: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key, value in answer.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        rows.append([str(key), "-" if value is None else str(value)])
    return rows


# ---- figures (matplotlib, Agg) ---------------------------------------------------------------
def figures(report: Report, dpi: int = 150) -> dict[str, bytes]:
    """name -> PNG: "evaluation" (confusion matrix or residuals), "drift" and "metric" (trends),
    each when there is something to draw."""
    out = {}
    if report.evaluation is not None:
        out["evaluation"] = _png(_evaluation_figure(report), dpi)
    monitor = report.trends.get("monitor") or []
    if monitor:
        out["drift"] = _png(_drift_figure(report, monitor), dpi)
    trends = report.trends
    if any(e["value"] is not None for e in trends.get("evaluations") or []) or any(
        e["value"] is not None and e["metric"] == report.metric
        for e in trends.get("champions") or []
    ):
        out["metric"] = _png(_metric_figure(report), dpi)
    return out


def _png(figure: Any, dpi: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _evaluation_figure(report: Report) -> Any:
    from matplotlib.figure import Figure

    evaluation = report.evaluation
    assert evaluation is not None
    if evaluation.kind == "confusion":
        labels = [str(v) for v in evaluation.labels or []]
        matrix = evaluation.matrix or []
        n = max(1, len(labels))
        side = min(7.0, 3.2 + 0.35 * n)
        figure = Figure(figsize=(side + 1.0, side), layout="constrained")
        ax = figure.add_subplot()
        image = ax.imshow(matrix, cmap="Blues", vmin=0)
        figure.colorbar(image, ax=ax, shrink=0.8, label="rows")
        top = max((max(row) for row in matrix if row), default=0)
        if n <= 20:
            for i, row in enumerate(matrix):
                for j, value in enumerate(row):
                    ax.text(
                        j,
                        i,
                        str(value),
                        ha="center",
                        va="center",
                        fontsize=10 if n <= 8 else 7,
                        color="white" if value > top / 2 else "black",
                    )
        short = [label if len(label) <= 14 else label[:13] + "…" for label in labels]
        ax.set_xticks(
            range(n), short, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center"
        )
        ax.set_yticks(range(n), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{report.champion.label if report.champion else ''}: confusion matrix")
        return figure
    figure = Figure(figsize=(9.0, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    actual, predicted = evaluation.actual or [], evaluation.predicted or []
    left.scatter(actual, predicted, s=8, alpha=0.6, color="#1f77b4")
    low = min(actual + predicted) if actual else 0.0
    high = max(actual + predicted) if actual else 1.0
    left.plot([low, high], [low, high], color="#d62728", linewidth=1, label="predicted = actual")
    left.set_xlabel("actual")
    left.set_ylabel("predicted")
    left.legend(loc="upper left", fontsize=8)
    left.set_title("predicted against actual")
    residuals = [a - p for a, p in zip(actual, predicted, strict=True)]
    right.hist(residuals, bins=30, color="#1f77b4", alpha=0.85)
    right.axvline(0, color="#d62728", linewidth=1)
    right.set_xlabel("residual (actual - predicted)")
    right.set_ylabel("rows")
    right.set_title("residuals")
    return figure


def _time_axis(ax: Any, report: Report) -> None:
    """The trends' x axis: the whole window, dates written concisely."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    start, end = _moment(report.since_at), _moment(report.made_at)
    ax.set_xlim(start, end + (end - start) * 0.03)  # a point made just now stays in view
    ax.grid(alpha=0.3)


def _drift_figure(report: Report, monitor: list[dict[str, Any]]) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.2), layout="constrained")
    ax = figure.add_subplot()
    when = [_moment(r["created_at"]) for r in monitor]
    ax.plot(when, [r["drift_share"] * 100 for r in monitor], marker="o", label="drifted features")
    ax.plot(when, [r["missing_share"] * 100 for r in monitor], marker="s", label="missing values")
    drifted = [
        (w, r["drift_share"] * 100)
        for w, r in zip(when, monitor, strict=True)
        if r["dataset_drift"]
    ]
    if drifted:
        ax.scatter(
            *zip(*drifted, strict=True), color="#d62728", s=60, zorder=3, label="dataset drift"
        )
    ax.set_ylabel("% of the inputs")
    top = max(max(r["drift_share"], r["missing_share"]) for r in monitor) * 100
    ax.set_ylim(0, max(10.0, top * 1.15))
    ax.legend(loc="upper left", fontsize=8)
    _time_axis(ax, report)
    return figure


def _metric_figure(report: Report) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.2), layout="constrained")
    ax = figure.add_subplot()
    champions = [
        e
        for e in report.trends.get("champions") or []
        if e["value"] is not None and e["metric"] == report.metric
    ]
    if champions:  # each champion's score holds until the next crowning, the last until now
        ax.step(
            [_moment(e["crowned_at"]) for e in champions] + [_moment(report.made_at)],
            [e["value"] for e in champions] + [champions[-1]["value"]],
            where="post",
            marker="D",
            label="champion at crowning",
        )
    evaluations = [e for e in report.trends.get("evaluations") or [] if e["value"] is not None]
    for live, marker, words in (
        (False, "o", "scored on labelled data"),
        (True, "^", "live (feedback)"),
    ):
        points = [e for e in evaluations if e["live"] == live]
        if points:
            ax.scatter(
                [_moment(e["created_at"]) for e in points],
                [e["value"] for e in points],
                marker=marker,
                s=36,
                label=words,
                zorder=3,
            )
    ax.set_ylabel(
        report.metric + (" (higher is better)" if report.higher_is_better else " (lower is better)")
    )
    ax.legend(loc="best", fontsize=8)
    _time_axis(ax, report)
    return figure


# ---- PDF (fpdf2) -----------------------------------------------------------------------------
def _fonts() -> dict[str, Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {
        "": folder / "DejaVuSans.ttf",
        "B": folder / "DejaVuSans-Bold.ttf",
        "I": folder / "DejaVuSans-Oblique.ttf",
    }


def render_pdf(report: Report, path: Path) -> Written:
    """The report as an A4 PDF, written atomically; where each figure landed is kept in
    `Written.layout`."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    from engine.fsutil import atomic_write_bytes

    images = figures(report)
    footer_text = f"{report.project} · haj report · {_when(report.made_at)}"

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("DejaVu", "", 7.5)
            self.set_text_color(120, 120, 120)
            self.cell(0, 6, f"{footer_text} · page {self.page_no()}/{{nb}}", align="C")
            self.set_text_color(0, 0, 0)

    pdf = _Pdf(format="A4", unit="mm")
    pdf.set_margins(16, 14, 16)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_title(f"{report.project}: model report")
    pdf.set_author("haj")
    pdf.set_creation_date(_moment(report.made_at))
    for style, font in _fonts().items():
        pdf.add_font("DejaVu", style, str(font))
    pdf.add_page()
    layout: dict[str, list[float]] = {}
    width = pdf.w - pdf.l_margin - pdf.r_margin
    heading = FontFace(emphasis="BOLD", fill_color=(232, 236, 242))

    def room(needed: float) -> None:
        if pdf.get_y() + needed > pdf.page_break_trigger:
            pdf.add_page()

    for block in blocks(report, images):
        if block.kind == "title":
            pdf.set_font("DejaVu", "B", 18)
            pdf.multi_cell(0, 9, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "h2":
            room(28)
            pdf.ln(4)
            pdf.set_font("DejaVu", "B", 13)
            pdf.set_text_color(24, 54, 104)
            pdf.cell(0, 7, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.set_draw_color(24, 54, 104)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
            pdf.set_text_color(0, 0, 0)
            pdf.set_draw_color(0, 0, 0)
            pdf.ln(2)
        elif block.kind == "h3":
            room(18)
            pdf.ln(1.5)
            pdf.set_font("DejaVu", "B", 10.5)
            pdf.cell(0, 6, block.text, new_x="LMARGIN", new_y="NEXT")
        elif block.kind in ("p", "note"):
            pdf.set_font("DejaVu", "I" if block.kind == "note" else "", 9.5)
            if block.kind == "note":
                pdf.set_text_color(90, 90, 90)
            pdf.multi_cell(0, 5, block.text, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
            pdf.ln(1.5)
        elif block.kind == "table":
            _pdf_table(pdf, block, width, heading)
            pdf.ln(2)
        elif block.kind == "figure":
            png = images[block.figure]
            pixels_w, pixels_h = _png_size(png)
            w = min(width, pixels_w / 150 * 25.4 * 0.75)
            h = w * pixels_h / pixels_w
            room(h + 12)
            x, y = pdf.l_margin + (width - w) / 2, pdf.get_y()
            pdf.image(io.BytesIO(png), x=x, y=y, w=w, h=h)
            layout[block.figure] = [pdf.page_no(), x, y, w, h]
            pdf.set_y(y + h + 1)
            pdf.set_font("DejaVu", "I", 8.5)
            pdf.set_text_color(70, 70, 70)
            pdf.multi_cell(0, 4.2, block.text, align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.set_text_color(0, 0, 0)
            pdf.ln(2)
    data = bytes(pdf.output())
    atomic_write_bytes(path, data)
    return Written(path, "pdf", report, pages=pdf.pages_count, layout=layout)


def _pdf_table(pdf: Any, block: Block, width: float, heading: Any) -> None:
    """A table as wide as its text needs (at most the page): each column gets its widest
    cell, and when they do not fit, the room left above each column's longest word is shared
    in proportion to what it would want."""
    columns = len(block.header)
    texts = [block.header, *block.rows]
    pad = 2 * 1.2 + 0.6
    natural, least = [], []
    for i in range(columns):
        cells = [str(row[i]) if i < len(row) else "" for row in texts]
        pdf.set_font("DejaVu", "B", 8)
        head = pdf.get_string_width(cells[0])
        pdf.set_font("DejaVu", "", 8)
        widest = max([head, *(pdf.get_string_width(c) for c in cells[1:])])
        word = max(pdf.get_string_width(w) for c in cells for w in (c.split() or [""]))
        natural.append(widest + pad)
        least.append(min(widest, max(word, 6.0)) + pad)
    if sum(natural) <= width:
        widths = natural
    elif sum(least) >= width:
        widths = [w * width / sum(least) for w in least]
    else:
        spare = width - sum(least)
        wants = [n - m for n, m in zip(natural, least, strict=True)]
        widths = [m + spare * w / sum(wants) for m, w in zip(least, wants, strict=True)]
    align = tuple("RIGHT" if i in block.right else "LEFT" for i in range(columns))
    pdf.set_font("DejaVu", "", 8)
    with pdf.table(
        width=sum(widths),
        col_widths=tuple(widths),
        text_align=align,
        headings_style=heading,
        line_height=4.6,
        borders_layout="HORIZONTAL_LINES",
        align="LEFT",
        padding=(0.8, 1.2),
    ) as table:
        for row in texts:
            cells = table.row()
            for i in range(columns):
                cells.cell(str(row[i]) if i < len(row) else "")


def _png_size(png: bytes) -> tuple[int, int]:
    import struct

    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return int(width), int(height)


# ---- Markdown and HTML ---------------------------------------------------------------------
def render_md(report: Report, path: Path) -> Written:
    """The report as Markdown, its figures as PNG files beside it (<stem>-<figure>.png); each
    file written atomically, the figures first."""
    from engine.fsutil import atomic_write_bytes, atomic_write_text

    path = Path(path)
    images = figures(report)
    files = []
    names = {}
    for name, png in images.items():
        image = path.with_name(f"{path.stem}-{name}.png")
        atomic_write_bytes(image, png)
        files.append(image)
        names[name] = image.name
    lines: list[str] = []
    for block in blocks(report, images):
        if block.kind == "title":
            lines += [f"# {block.text}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.text}", ""]
        elif block.kind == "h3":
            lines += [f"### {block.text}", ""]
        elif block.kind == "p":
            lines += [_md_text(block.text), ""]
        elif block.kind == "note":
            lines += [f"*{_md_text(block.text)}*", ""]
        elif block.kind == "table":
            lines += [*_md_table(block), ""]
        elif block.kind == "figure":
            lines += [
                f"![{_md_text(block.text)}]({names[block.figure]})",
                "",
                f"*{_md_text(block.text)}*",
                "",
            ]
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return Written(path, "md", report, files=files)


def _md_text(text: str) -> str:
    return text.replace("\n", " ").replace("*", "\\*").replace("_", "\\_")


def _md_table(block: Block) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "

    header = "| " + " | ".join(cell(h) for h in block.header) + " |"
    rule = "|" + "|".join("---:" if i in block.right else "---" for i in range(len(block.header)))
    return [
        header,
        rule + "|",
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in block.rows),
    ]


_CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { color: #183668; border-bottom: 2px solid #183668; padding-bottom: .15rem; margin-top: 2rem; }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0 .9rem; }
th { background: #e8ecf2; text-align: left; }
th, td { padding: .22rem .6rem; border-bottom: 1px solid #d5d9e0; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #5a5a5a; font-style: italic; }
figure { margin: .8rem 0; text-align: center; }
figure img { max-width: 100%; }
figcaption { font-size: .85rem; color: #464646; font-style: italic; }
"""


def render_html(report: Report, path: Path) -> Written:
    """The report as one standalone HTML page, its figures inline (base64 PNG); atomic."""
    from engine.fsutil import atomic_write_text

    images = figures(report)
    escape = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(report.project)}: model report</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for block in blocks(report, images):
        if block.kind == "title":
            parts.append(f"<h1>{escape(block.text)}</h1>")
        elif block.kind in ("h2", "h3"):
            parts.append(f"<{block.kind}>{escape(block.text)}</{block.kind}>")
        elif block.kind == "p":
            parts.append(f"<p>{escape(block.text)}</p>")
        elif block.kind == "note":
            parts.append(f'<p class="note">{escape(block.text)}</p>')
        elif block.kind == "table":

            def cls(i: int, block: Block = block) -> str:
                return ' class="r"' if i in block.right else ""

            head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(block.header))
            body = "".join(
                "<tr>"
                + "".join(f"<td{cls(i)}>{escape(str(c))}</td>" for i, c in enumerate(row))
                + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif block.kind == "figure":
            data = base64.b64encode(images[block.figure]).decode("ascii")
            parts.append(
                f'<figure><img alt="{escape(block.text, quote=True)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{escape(block.text)}'
                "</figcaption></figure>"
            )
    parts.append("</body></html>")
    atomic_write_text(Path(path), "\n".join(parts) + "\n")
    return Written(Path(path), "html", report)
