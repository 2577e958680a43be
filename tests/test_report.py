"""`haj report` on the trained example projects: the PDF's pages rendered to images (pdftoppm)
and looked at (page count, no blank page, the confusion matrix drawn where the layout says),
the figures' numbers against the store and scikit-learn, Markdown and HTML with every section,
the pipeline's report step keeping the last N, and the sections that have nothing to show."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import diagnose
from engine import report as report_module
from engine.api import ProjectAPI, Workspace
from tests.support import call_haj

SECTIONS = (
    "Champion",
    "Leaderboard",
    "Data",
    "Drift and data quality",
    "Trends over the last 30d",
    "Diagnostics",
    "Live server",
)


@pytest.fixture(autouse=True)
def quick_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The diagnostics' dependency check without pip or the package index (tests/test_diagnose
    covers it): a report in a test takes a second, not the index's timeout."""

    def dependencies(project: Any, timeout: float = 0) -> diagnose.Dependencies:
        outdated = [diagnose.Package("scikit-learn", "1.4.0", "1.9.1")]
        return diagnose.Dependencies(sys.executable, list(outdated), outdated, True)

    monkeypatch.setattr(diagnose, "dependencies", dependencies)


def _api(home: Path, name: str) -> ProjectAPI:
    return Workspace.open(home).project(name)


def _holdout(api: ProjectAPI) -> tuple[Any, Any, Any]:
    """The champion's model and its holdout (X, y), read here without engine.report."""
    from engine.data import open_store
    from engine.evaluation import labelled_matrix
    from engine.retrain import holdout
    from engine.serving.model import load, locate_champion

    config = api.config()
    model = load(locate_champion(api.path), api.name)
    with open_store(api.project) as store:
        version = store.data_version(api.run(model.run_id).data_version)
    test = holdout(api.project, config, version)
    X, y = labelled_matrix(model, test, config["data"]["target"], config["project"]["prediction"])
    return model, X, y


def _pages(pdf: Path, out: Path, dpi: int) -> list[Path]:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (apt-get install poppler-utils; .ci/run does)")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page")], check=True)
    return sorted(out.glob("page-*.png"))


def _ink(image: Any, box: tuple[int, int, int, int] | None = None) -> tuple[float, float]:
    """(share of pixels that are not white, share that are clearly blue) in `box`."""
    import numpy as np

    region = image.convert("RGB").crop(box) if box else image.convert("RGB")
    pixels = np.asarray(region, dtype=np.int32).reshape(-1, 3)
    r, b = pixels[:, 0], pixels[:, 2]
    inked = (pixels.min(axis=1) < 235).mean()
    blue = ((b > r + 60) & (b > 90)).mean()
    return float(inked), float(blue)


# ---- the PDF, looked at --------------------------------------------------------------------
def test_the_pdf_pages_render_and_the_matrix_page_shows_the_figure(
    trained_home: Path, tmp_path: Path
) -> None:
    from PIL import Image

    api = _api(trained_home, "cancer")
    written = api.report(tmp_path / "cancer.pdf")
    assert written.path == tmp_path / "cancer.pdf" and written.pages and written.pages >= 2
    assert not list(tmp_path.glob(".cancer.pdf.*"))  # the atomic write left no temp file
    dpi = 50
    pages = _pages(written.path, tmp_path, dpi)
    assert len(pages) == written.pages
    for page in pages:  # no blank page (a break in the wrong place would leave one)
        assert _ink(Image.open(page))[0] > 0.01, page.name
    number, x, y, w, h = written.layout["evaluation"]
    image = Image.open(pages[int(number) - 1])
    px = dpi / 25.4
    box = (int(x * px), int(y * px), int((x + w) * px), int((y + h) * px))
    inked, blue = _ink(image, box)
    assert inked > 0.25 and blue > 0.1, (inked, blue)  # the heat map is there, in blue
    below = (box[0], box[3] + int(30 * px), box[2], box[3] + int(30 * px) + (box[3] - box[1]))
    assert _ink(image, below)[1] < blue / 3  # and not everywhere: the table below is not blue
    text = subprocess.run(
        ["pdftotext", "-layout", str(written.path), "-"], capture_output=True, text=True
    ).stdout
    for section in SECTIONS:
        assert section in text
    champion = written.report.champion
    assert champion is not None and f"♛ {champion.label}" in text
    assert "Confusion matrix" in text and "scikit-learn" in text  # the outdated package


# ---- the numbers, against the store and scikit-learn ---------------------------------------
def test_the_confusion_matrix_equals_the_artifacts_and_sklearn_on_the_holdout(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix

    api = _api(trained_home, "cancer")
    model, X, y = _holdout(api)
    classes = list(model.pipeline.classes_)
    expected = confusion_matrix(y, model.pipeline.predict(X), labels=classes).tolist()

    gathered = api.report(write=False)
    assert gathered.path is None and not (api.path / "reports").exists()
    evaluation = gathered.report.evaluation
    assert evaluation is not None and evaluation.kind == "confusion"
    assert evaluation.labels == classes and evaluation.matrix == expected
    assert evaluation.rows == len(y)
    artifacts = api.run_artifacts(model.run_id)
    if "confusion" in artifacts:  # runs trained since haj keeps artifacts
        assert evaluation.source == "artifacts"
        assert evaluation.matrix == artifacts["confusion"]["matrix"]

    # without artifacts (a run trained before haj kept them): computed on the holdout
    monkeypatch.setattr(report_module, "from_artifacts", lambda *args: None)
    computed = report_module.gather(api, index_timeout=0).evaluation
    assert computed is not None and computed.source == "holdout"
    assert computed.matrix == expected and computed.labels == classes
    run = api.run(model.run_id)
    assert computed.metrics["acc"] == pytest.approx(run.metrics["acc"])
    assert computed.metrics["acc"] == pytest.approx(accuracy_score(y, model.pipeline.predict(X)))
    assert (api.path / "haj.db").exists() and not api.evaluations()  # nothing was recorded


def test_the_leaderboard_and_champion_are_the_stores(trained_home: Path) -> None:
    api = _api(trained_home, "cancer")
    report = api.report(write=False).report
    board = api.leaderboard(include_all=False)
    expected = board.finished()[: report_module.TOP]
    rows = report.leaderboard["runs"]
    assert [r["run_id"] for r in rows] == [r["id"] for r in expected]
    assert [r["score"] for r in rows] == [r["metrics"][board.metric] for r in expected]
    assert [r["champion"] for r in rows].count(True) == 1
    assert report.champion is not None and report.champion.run_id == board.champion_id
    assert report.champion.value == board.champion["value"]
    assert report.metric == board.metric == "acc"
    versions = api.versions()
    assert {v["id"] for v in report.data["versions"]} == {v["id"] for v in versions}
    json.dumps(report.to_dict())  # --json can print it


def test_regression_residuals_match_the_holdout(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    api = _api(trained_home, "diabetes")
    model, X, y = _holdout(api)
    residuals = y - model.pipeline.predict(X)
    evaluation = api.report(write=False).report.evaluation
    assert evaluation is not None and evaluation.kind == "residuals"
    assert evaluation.rows == len(y)
    assert evaluation.residuals["median"] == pytest.approx(float(np.median(residuals)))
    assert evaluation.residuals["max_abs"] == pytest.approx(float(np.abs(residuals).max()))
    monkeypatch.setattr(report_module, "from_artifacts", lambda *args: None)
    computed = report_module.gather(api, index_timeout=0).evaluation
    assert computed is not None and computed.source == "holdout"
    assert computed.residuals["mean"] == pytest.approx(float(residuals.mean()))
    pairs = zip(computed.actual or [], computed.predicted or [], strict=True)
    assert sorted(a - p for a, p in pairs) == pytest.approx(sorted(residuals.tolist()))


# ---- Markdown and HTML ---------------------------------------------------------------------
def _with_history(api: ProjectAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored drift report, a scored evaluation and a live one (haj feedback's kind), and a
    running server's answers, so every section has something to show."""
    from engine.api import ServerRecord
    from engine.serving import control
    from engine.store import Store

    api.monitor(current=next(v for v in api.versions("raw") if v["current"])["id"])
    scored = api.score()[0]
    with Store(api.project.db_path) as store:
        store.add_evaluation(
            scored.evaluation.run_id, "feedback:outcomes.csv", None, 40, {"rmse": 61.5}, None
        )
    record = ServerRecord(pid=1, host="127.0.0.1", port=8123, url="http://127.0.0.1:8123")
    monkeypatch.setattr(ProjectAPI, "server", lambda self: record)
    answers = {
        "url": record.url,
        "ready": True,
        "health": {"status": "ok", "run_id": scored.evaluation.run_id, "model": scored.model},
        "counts": {"predictions": 1234, "requests": 321, "errors": 0},
        "latency": {"window": {"requests": 321, "p50_ms": 0.25, "p95_ms": 0.61},
                    "since_start": {"requests": 321, "p50_ms": 0.24}},
        "history": [],
    }  # fmt: skip
    monkeypatch.setattr(control, "fetch_stats", lambda record, timeout=1.0: answers)


def test_markdown_and_html_hold_every_section_and_their_figures(
    trained_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = _api(trained_home, "diabetes")
    _with_history(api, monkeypatch)
    md = api.report(tmp_path / "out" / "diabetes.md")
    text = md.path.read_text()
    for section in SECTIONS:
        assert f"## {section}" in text
    assert [p.name for p in md.files] == [
        "diabetes-evaluation.png",
        "diabetes-drift.png",
        "diabetes-metric.png",
    ]
    for png in md.files:
        assert png.read_bytes().startswith(b"\x89PNG") and f"]({png.name})" in text
    assert "### Residuals" in text and "| 1234 |" in text.replace(",", "")
    assert "feedback:outcomes.csv" in text and "| live |" in text
    assert "no dataset drift" in text
    report = md.report
    assert report.server is not None and not report.notes.get("server")
    assert [e["live"] for e in report.trends["evaluations"]] == [False, True]
    assert len(report.trends["monitor"]) == 1

    page = api.report(tmp_path / "diabetes.html").path.read_text()
    for section in SECTIONS:
        assert f"<h2>{section}" in page
    assert page.count('src="data:image/png;base64,') == 3
    assert "<script" not in page and "<link" not in page  # one page, nothing fetched
    assert "http://127.0.0.1:8123" in page


# ---- sections with nothing to show, and errors ---------------------------------------------
def test_a_project_without_champion_says_so(trained_home: Path, tmp_path: Path) -> None:
    from engine import champion

    api = _api(trained_home, "cancer")
    champion.clear(api.project, "test")
    result = call_haj(trained_home, "report", "cancer", "-o", str(tmp_path / "r.pdf"))
    assert result.code == 0, result.text
    assert "champion: no champion yet: crown one with `haj evaluate cancer`" in result.out
    report = api.report(write=False).report
    assert report.champion is None and report.evaluation is None
    assert report.leaderboard["runs"]  # the runs are still ranked
    text = report_module.render_md(report, tmp_path / "r.md").path.read_text()
    assert "*no champion yet: crown one with `haj evaluate cancer`*" in text.replace("\\", "")


def test_no_data_is_a_one_line_error_and_writes_nothing(home: Path) -> None:
    assert call_haj(home, "init", "empty", "-p", "classification").code == 0
    result = call_haj(home, "report", "empty")
    assert result.code == 6
    assert result.err == (
        "haj: error: empty has no data yet: nothing to report: run `haj retrieve empty` first\n"
    )
    assert not (home / "empty" / "reports").exists()
    bad = call_haj(home, "report", "empty", "-o", "report.docx")
    assert bad.code == 2 and "a report is a .pdf, .md or .html file" in bad.err


def test_a_missing_library_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fpdf" else real(name, *a)
    )
    with pytest.raises(report_module.DependencyError, match=r"needs fpdf2: pip install"):
        report_module.check_libraries("pdf")
    report_module.check_libraries("html")  # matplotlib alone


# ---- the default place, the pipeline step and keeping the last N ----------------------------
def test_the_default_report_and_the_pipeline_step_keep_the_last_n(trained_home: Path) -> None:
    project = trained_home / "cancer"
    assert call_haj(trained_home, "config", "cancer", "--set", "pipeline.keep_reports=2").code == 0
    bad = call_haj(trained_home, "config", "cancer", "--set", "pipeline.keep_reports=0")
    assert bad.code == 5 and "pipeline.keep_reports must be 1 to 1000" in bad.err
    first = call_haj(trained_home, "report", "cancer")
    assert first.code == 0 and first.out.startswith("wrote "), first.text
    reports = project / "reports"
    assert len(list(reports.glob("report-*.pdf"))) == 1
    details = []
    for _ in range(2):
        result = call_haj(trained_home, "pipeline", "run", "cancer", "--steps", "report", "--json")
        assert result.code == 0, result.text
        step = json.loads(result.out)["steps"][0]
        assert step["name"] == "report" and step["outcome"] == "done", step
        details.append(step["detail"])
    assert details[0].startswith("wrote reports/report-") and "removed" not in details[0]
    assert details[1].endswith("; removed 1 older")
    kept = sorted(reports.glob("report-*.pdf"))
    assert len(kept) == 2 and all(p.read_bytes().startswith(b"%PDF") for p in kept)
    assert all(p.name in " ".join(details) for p in kept)  # the first one went
    steps = call_haj(trained_home, "config", "cancer", "--set", 'pipeline.steps=["report"]')
    assert steps.code == 0, steps.text


def test_a_made_up_report_of_many_classes_renders_in_every_format(tmp_path: Path) -> None:
    """The renderers take a Report alone (no project): 16 classes draw as a figure without a
    table too wide for the page, and sections without data say so."""
    import numpy as np

    labels = [f"class-{i}" for i in range(16)]
    matrix = np.random.default_rng(0).integers(0, 20, (16, 16)).tolist()
    made = report_module.Report(
        project="many",
        title="many",
        prediction="classification",
        made_at="2026-12-02T08:00:00+00:00",
        since="30d",
        since_at="2026-11-02T08:00:00+00:00",
        metric="acc",
        higher_is_better=True,
        champion=report_module.ChampionPart(
            "abc", "knn-1", "knn", "proc-0001", "acc", 0.9, "2026-12-01T08:00:00+00:00",
            "evaluate", "test split", {"acc": 0.9},
        ),
        evaluation=report_module.EvaluationPart(
            "confusion", "holdout", "the test split of proc-0001", 5000, labels, matrix
        ),
        leaderboard={"runs": [], "finished": 0, "scope": "", "other_runs": 0, "metric": "acc"},
        data={"versions": [], "total": 0, "files": {}},
        trends={"monitor": [], "champions": [], "evaluations": []},
        notes={"server": "no server is running"},
    )  # fmt: skip
    pdf = report_module.render_pdf(made, tmp_path / "many.pdf")
    assert pdf.path.read_bytes().startswith(b"%PDF") and pdf.layout["evaluation"][0] == 1
    md = report_module.render_md(made, tmp_path / "many.md").path.read_text()
    assert "16 classes: the counts are in the figure" in md and "class-15 |" not in md
    assert "*no server is running*" in md and "*no drift report yet*" in md
    page = report_module.render_html(made, tmp_path / "many.html").path.read_text()
    assert page.count("<h2>") == len(SECTIONS) and "data:image/png;base64," in page
