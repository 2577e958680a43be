"""`haj diagnose` on a real trained project (the raw penguins table, with missing values):
missing values against pandas' own count, step timings, predictions per day from written logs,
the outdated-dependency table from a recorded pip answer and, when reachable, from the real
package index."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import diagnose
from engine.api import Workspace
from tests.fs_snapshot import changes, snapshot
from tests.support import call_haj
from tests.support.penguins import copy_home, train_penguins

# `pip list --outdated --format=json` as pip 23.2.1 answered on this machine (2026-12-02)
RECORDED_OUTDATED = (
    '[{"name": "mpmath", "version": "1.3.0", "latest_version": "1.4.1", "latest_filetype": '
    '"wheel"}, {"name": "pip", "version": "23.2.1", "latest_version": "26.3", '
    '"latest_filetype": "wheel"}, {"name": "plotext", "version": "5.3.2", "latest_version": '
    '"6.1.0", "latest_filetype": "wheel"}, {"name": "python-dateutil", "version": '
    '"2.9.0.post0", "latest_version": "4.0.0", "latest_filetype": "wheel"}, {"name": '
    '"Scikit_Learn", "version": "1.4.0", "latest_version": "1.9.1", "latest_filetype": '
    '"wheel"}]'
)
# a line of pip's --log when the index cannot be reached (pip then says nothing on its console)
RECORDED_UNREACHABLE_LOG = [
    "2026-12-02T08:01:02,941 Fetching project page and analyzing links: "
    "http://127.0.0.1:9/simple/cloudpickle/",
    "2026-12-02T08:01:02,949 Could not fetch URL http://127.0.0.1:9/simple/cloudpickle/: "
    "connection error: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded "
    "with url: /simple/cloudpickle/ (Caused by NewConnectionError('Failed to establish a new "
    "connection: [Errno 111] Connection refused')) - skipping",
]


# tiers: integration (a trained project: the module's fixture), unit (parsing), e2e (real pip)
@pytest.fixture(scope="module")
def trained(shared_build: Callable[..., Path]) -> Path:
    return shared_build(
        "penguins-lr-120", lambda home: train_penguins(home, ("logistic_regression",), rows=120)
    )


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    return copy_home(trained, tmp_path / "home")


@pytest.fixture
def project(home: Path) -> Any:
    return Workspace.open(home).project("penguins")


def fake_pip(outdated: str = "[]", log: list[str] | None = None) -> Any:
    """A stand-in for diagnose._pip answering as pip would, without a process or the network."""

    def run(python: str, args: list[str], timeout: float, log_path: Path | None = None) -> str:
        if "--outdated" not in args:
            import importlib.metadata

            return json.dumps(
                [
                    {"name": d.metadata["Name"], "version": d.version}
                    for d in importlib.metadata.distributions()
                ]
            )
        if log_path is not None and log:
            log_path.write_text("\n".join(log) + "\n")
        return outdated

    return run


@pytest.mark.integration
def test_missing_counts_equal_pandas_own_count(project: Any) -> None:
    import pandas as pd

    found, note = diagnose.data_missing_values(project.project)
    assert note is None and found is not None
    (raw,) = [v for v in project.versions("raw") if v["current"]]
    frame = pd.read_csv(project.path / raw["path"])
    expected = frame.isna().sum()
    assert found.source == raw["id"] and found.rows == len(frame) == 120
    assert {c.column: c.count for c in found.columns} == {k: int(v) for k, v in expected.items()}
    culmen = next(c for c in found.columns if c.column == "Culmen Length (mm)")
    assert culmen.count > 0 and culmen.share == pytest.approx(culmen.count / 120)


@pytest.mark.integration
def test_live_missing_values_come_from_the_given_source_else_no_live_traffic(
    project: Any,
) -> None:
    given = lambda: {"rows": 40, "missing": {"Island": 2, "Sex": {"count": 4}}}  # noqa: E731
    live, note = diagnose.live_missing_values(project.project, given)
    assert note is None and live is not None and live.rows == 40
    assert [(c.column, c.count, c.share) for c in live.columns] == [
        ("Island", 2, 0.05),
        ("Sex", 4, 0.1),
    ]
    assert diagnose.live_missing_values(project.project, lambda: None) == (None, "no live traffic")
    # no server runs: no live traffic, said with the reason
    live, note = diagnose.live_missing_values(project.project)
    assert live is None and note == "no live traffic (no server is running)"
    assert diagnose.live_figures({"rows": 3, "missing": "many"}) is None


@pytest.mark.integration
def test_step_timings_and_champion_age(project: Any) -> None:
    timings = diagnose.step_timings(project.project)
    steps = [(t.step, t.subject.split()[0]) for t in timings]
    assert steps == [
        ("retrieve", "raw-0001"),
        ("process", "proc-0001"),
        ("train", "logistic_regression-1"),
        ("train", "session"),
    ]
    assert all(t.seconds is not None and t.seconds >= 0 for t in timings)
    run = timings[2]
    assert run.status == "finished" and 0 <= run.fit_seconds <= run.seconds
    champion = diagnose.champion_age(project.project)
    assert champion is not None and champion.label == "logistic_regression-1"
    assert champion.crowned_at == project.champion_history()[0]["crowned_at"]
    later = datetime.fromisoformat(champion.crowned_at) + timedelta(days=2, hours=3)
    assert diagnose.champion_age(project.project, later).age_seconds == pytest.approx(183600)


def _line(when: datetime, rows: int = 1, endpoint: str = "/predict") -> str:
    record = {
        "time": when.isoformat(timespec="milliseconds"),
        "run_id": "r1",
        "endpoint": endpoint,
        "latency_ms": 1.0,
        "inputs": [{"Island": "Dream"}] * rows,
        "outputs": ["Adelie"] * rows,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


@pytest.mark.integration
def test_predictions_per_day_counted_from_a_written_log(project: Any) -> None:
    from engine.serving.monitoring import PredictionLog

    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    logs = project.project.logs_dir
    logs.mkdir(exist_ok=True)
    (logs / "predictions.jsonl").write_text(
        _line(now - timedelta(days=8))  # before the window
        + _line(now - timedelta(days=6, hours=9))  # the window's first day, 2026-11-26
        + _line(now - timedelta(days=1), rows=3)
        + _line(now - timedelta(hours=1))
        + '{"time":"2026-12-02T09:00:00.000+00:00","run_id":"r1","endpo'  # cut short
    )
    (logs / "predictions.jsonl.1").write_text(_line(now - timedelta(days=1)))
    (logs / "predictions-4242.jsonl").write_text(_line(now - timedelta(minutes=5), rows=2))
    (logs / "batch-predictions.jsonl").write_text(_line(now - timedelta(hours=2), 5, "batch"))
    stale = logs / "predictions.jsonl.2"  # last written before the window: not even opened
    stale.write_text(_line(now))
    old = (now - timedelta(days=9)).timestamp()
    os.utime(stale, (old, old))
    days = diagnose.predictions_per_day(project.project, now=now)
    assert [d.day for d in days] == [f"2026-11-{n}" for n in range(26, 31)] + [
        "2026-12-01",
        "2026-12-02",
    ]
    counted = {
        d.day: (d.served, d.requests, d.batch_logged) for d in days if d.served or d.batch_logged
    }
    assert counted == {"2026-11-26": (1, 1, 0), "2026-12-01": (4, 2, 0), "2026-12-02": (3, 2, 5)}

    # the server's own writer: its lines are counted as they are
    log = PredictionLog(logs / "predictions-77.jsonl")
    log.append("/predict", "r1", ["Island"], [["Dream"], ["Biscoe"]], ["Adelie", "Gentoo"],
               None, [], 0.001)  # fmt: skip
    log.close()
    today = diagnose.predictions_per_day(project.project)[-1]
    assert today.day == datetime.now(UTC).date().isoformat() and today.served >= 2


@pytest.mark.unit
def test_outdated_table_parsed_from_a_recorded_pip_answer() -> None:
    every = diagnose.parse_outdated(RECORDED_OUTDATED)
    assert [(p.package, p.installed, p.latest) for p in every] == [
        ("mpmath", "1.3.0", "1.4.1"),
        ("pip", "23.2.1", "26.3"),
        ("plotext", "5.3.2", "6.1.0"),
        ("python-dateutil", "2.9.0.post0", "4.0.0"),
        ("Scikit_Learn", "1.4.0", "1.9.1"),
    ]
    # only the project's packages, named in any spelling pip uses
    mine = diagnose.parse_outdated(RECORDED_OUTDATED, ["scikit-learn", "numpy", "pip"])
    assert [p.to_dict() for p in mine] == [
        {"package": "pip", "installed": "23.2.1", "latest": "26.3"},
        {"package": "Scikit_Learn", "installed": "1.4.0", "latest": "1.9.1"},
    ]
    assert diagnose.parse_outdated("[]") == []
    with pytest.raises(ValueError):
        diagnose.parse_outdated("WARNING: not JSON")
    assert diagnose.unreachable_index(RECORDED_UNREACHABLE_LOG) == (
        "http://127.0.0.1:9/simple: connection error"
    )
    assert diagnose.unreachable_index(RECORDED_UNREACHABLE_LOG[:1]) is None


@pytest.mark.integration
def test_offline_pip_gives_a_note_and_the_installed_versions_recorded(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    (project.path / "requirements.txt").write_text("joblib>=1\n-r more.txt\nno-such-package\n")
    monkeypatch.setattr(diagnose, "_pip", fake_pip(log=RECORDED_UNREACHABLE_LOG))
    found = diagnose.dependencies(project.project)
    assert not found.index_checked and found.outdated == []
    assert found.note == (
        "the package index is unreachable (http://127.0.0.1:9/simple: connection error); "
        "installed versions only"
    )
    names = [p.package.lower().replace("_", "-") for p in found.packages]
    assert names[0] == "joblib" and "scikit-learn" in names and "fastapi" in names
    assert found.packages[0].installed == importlib.metadata.version("joblib")
    assert found.not_installed == ["no-such-package"]

    monkeypatch.setattr(diagnose, "_pip", fake_pip(RECORDED_OUTDATED))
    online = diagnose.dependencies(project.project)
    assert online.index_checked and online.note is None
    assert [(p.package, p.latest) for p in online.outdated] == [("Scikit_Learn", "1.9.1")]


@pytest.mark.e2e
def test_outdated_table_against_the_real_index(project: Any) -> None:
    """Real pip against the real package index: pip (listed in requirements.txt, so part of
    the project's environment) is reported with the index's latest release when it is newer."""
    import importlib.metadata

    import httpx
    from packaging.version import Version

    try:
        answer = httpx.get("https://pypi.org/pypi/pip/json", timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"the package index (pypi.org) is unreachable from here: {exc!r}")
    latest_pip = answer.json()["info"]["version"]
    (project.path / "requirements.txt").write_text("pip\n")
    found = diagnose.dependencies(project.project, timeout=120)
    assert found.index_checked, found.note
    assert found.python == sys.executable  # no virtualenv: haj's own interpreter
    installed = importlib.metadata.version("pip")
    outdated = {p.package.lower(): p for p in found.outdated}
    if Version(latest_pip) > Version(installed):
        assert (outdated["pip"].installed, outdated["pip"].latest) == (installed, latest_pip)
    else:
        assert "pip" not in outdated
    for package in found.outdated:
        assert package.installed == importlib.metadata.version(package.package)
        assert Version(package.latest) > Version(package.installed)


@pytest.mark.integration
def test_cli_json_keys_and_tables(
    home: Path, project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diagnose, "_pip", fake_pip(RECORDED_OUTDATED))
    before = snapshot(home)
    result = call_haj(home, "diagnose", "penguins", "--json")
    assert result.code == 0, result.text
    answer = json.loads(result.out)
    assert list(answer) == [
        "project",
        "at",
        "missing",
        "timings",
        "dependencies",
        "champion",
        "predictions",
        "notes",
    ]
    assert answer["missing"]["data"]["rows"] == 120 and answer["missing"]["live"] is None
    assert answer["notes"]["live"].startswith("no live traffic")
    assert answer["dependencies"]["index_checked"] is True
    assert [p["package"] for p in answer["dependencies"]["outdated"]] == ["Scikit_Learn"]
    assert answer["champion"]["label"] == "logistic_regression-1"
    assert len(answer["predictions"]) == 7
    shown = call_haj(home, "diagnose", "penguins")
    assert shown.code == 0, shown.text
    for heading in ("missing values: raw-0001", "step timings", "outdated dependencies",
                    "champion: logistic_regression-1", "no live traffic"):  # fmt: skip
        assert heading in shown.out
    assert changes(before, snapshot(home)) == {"added": [], "removed": [], "modified": []}


@pytest.mark.integration
def test_unknown_project_is_a_one_line_error(home: Path) -> None:
    result = call_haj(home, "diagnose", "nope")
    assert result.code == 7
    assert result.out == "" and result.err.startswith("haj: error: no project named 'nope'")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
