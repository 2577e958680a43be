"""`haj monitor` on a trained penguins project: the reference kept at training, reports from
files and the prediction log, exit codes, stored history and the HTML page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest

from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj
from tests.support.penguins import copy_home, train_penguins

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(shared_build: Callable[..., Path]) -> Path:
    return shared_build("penguins", train_penguins)


@pytest.fixture
def home(trained: Path, tmp_path: Path) -> Path:
    return copy_home(trained, tmp_path / "ws")


def _write(home: Path, name: str, rows: list[dict[str, str]]) -> Path:
    path = home / name
    path.write_text(to_csv(rows))
    return path


def _heavier(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every penguin 900 g heavier and its flippers 15 mm longer."""
    out = []
    for row in rows:
        mass = float(row["Body Mass (g)"].replace(",", "")) + 900
        flipper = float(row["Flipper Length (mm)"]) + 15
        out.append({**row, "Body Mass (g)": f"{mass:.0f}", "Flipper Length (mm)": f"{flipper:.0f}"})
    return out


def _monitor(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = call_haj(home, "monitor", "penguins", *args, "--json")
    assert result.code in (0, 3), result.text
    return result.code, json.loads(result.out)


def test_every_bundle_carries_its_reference_profile(trained: Path) -> None:
    models = [p for p in (trained / "penguins" / "models").glob("*.joblib") if p.stem != "champion"]
    assert len(models) == 2
    bundle = joblib.load(models[0])
    profile = bundle["profile"]
    names = [f["name"] for f in bundle["features"]]
    assert [f["name"] for f in profile["features"]] == names
    assert profile["rows"] == 192  # the training split of 240 rows
    assert profile["target"]["categories"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert profile["prediction"]["counts"]["rows"] == 48  # its own predictions on the holdout
    assert len(profile["sample"]["rows"]) == 192


def test_the_source_data_itself_shows_no_drift(home: Path) -> None:
    """(The same rows the model was trained from: a fresh sample of 9 features may flag one by
    chance at p < 0.05, as any per-feature test does.)"""
    current = _write(home, "same.csv", penguin_rows(240))
    code, report = _monitor(home, "--current", str(current), "--fail-on-drift")
    assert code == 0 and report["source"] == str(current)
    assert report["drifted_features"] == [] and not report["dataset_drift"]
    assert report["regime"] == "tests" and report["rows"] == 240
    assert report["target"] is not None and not report["target"]["drifted"]


def test_exactly_the_shifted_columns_are_flagged_and_fail_on_drift_exits_3(home: Path) -> None:
    current = _write(home, "heavier.csv", _heavier(penguin_rows(240)))
    code, report = _monitor(home, "--current", str(current))
    assert code == 0  # without --fail-on-drift
    assert sorted(report["drifted_features"]) == ["Body Mass (g)", "Flipper Length (mm)"]
    assert report["prediction"]["drifted"]  # heavier penguins look like Gentoos to the model
    assert report["quality"]["out_of_range"]["Body Mass (g)"] > 0
    share = call_haj(home, "config", "penguins", "--set", "monitoring.drift_share=0.2")
    assert share.code == 0, share.text
    code, report = _monitor(home, "--current", str(current), "--fail-on-drift")
    assert code == 3 and report["dataset_drift"]


def test_a_window_below_min_rows_is_reported_too_small(home: Path) -> None:
    current = _write(home, "few.csv", _heavier(penguin_rows(30, seed=11)))
    result = call_haj(home, "monitor", "penguins", "--current", str(current), "--fail-on-drift")
    assert result.code == 0, result.text
    assert "too few rows to test: 30 (at least 100)" in result.out


def test_the_prediction_log_is_a_source_and_last_n_picks_its_newest_rows(home: Path) -> None:
    rows = penguin_rows(150)
    batch = call_haj(home, "predict", "penguins", str(_write(home, "in.csv", rows)), "-o",
                     str(home / "out.csv"))  # fmt: skip
    assert batch.code == 0, batch.text  # a batch run logs to its own file, not this one
    log = home / "penguins" / "logs" / "predictions.jsonl"
    records = [{k: v for k, v in r.items() if k != "Species"} for r in _heavier(rows)]
    lines = [
        {"time": "2026-01-01T00:00:00.000+00:00", "run_id": "x", "endpoint": "/predict",
         "inputs": [record], "outputs": ["Gentoo"]}
        for record in records
    ]  # fmt: skip
    log.parent.mkdir(exist_ok=True)
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    _, report = _monitor(home)  # no server: the log is the default
    assert report["source"] == "log" and report["rows"] == 150
    assert "Body Mass (g)" in report["drifted_features"]
    _, report = _monitor(home, "--current", "log", "--last", "120")
    assert report["rows"] == 120 and report["window"] == "last 120 rows"
    since = call_haj(home, "monitor", "penguins", "--current", "log", "--since", "1h")
    assert since.code == 0 and "too few rows to test: 0" in since.out  # all from January


def test_reports_are_stored_and_history_draws_the_trend(home: Path) -> None:
    same = _write(home, "same.csv", penguin_rows(240))
    moved = _write(home, "moved.csv", _heavier(penguin_rows(240)))
    for path in (same, moved, same):
        assert call_haj(home, "monitor", "penguins", "--current", str(path)).code == 0
    history = json.loads(call_haj(home, "monitor", "penguins", "--history", "--json").out)
    assert [round(r["drift_share"], 3) for r in history] == [0.0, round(2 / 9, 3), 0.0]
    shown = call_haj(home, "monitor", "penguins", "--history")
    assert shown.code == 0 and "drift_share: ▁█▁" in shown.out


def test_html_report_is_written_and_bad_input_is_one_line(home: Path, tmp_path: Path) -> None:
    current = _write(home, "heavier.csv", _heavier(penguin_rows(240)))
    page = tmp_path / "report.html"
    result = call_haj(home, "monitor", "penguins", "--current", str(current), "--html", str(page))
    assert result.code == 0, result.text
    html = page.read_text()
    assert "<html" in html and "Body Mass (g)" in html and "drift" in html
    bad = call_haj(home, "monitor", "penguins", "--since", "soon")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "not a duration: 'soon'" in bad.err
    none = call_haj(home, "monitor", "penguins", "--current", "v999")
    assert none.code != 0 and "Traceback" not in none.err and none.err.count("\n") == 1
    wrong = call_haj(home, "config", "penguins", "--set", "monitoring.drift_share=2")
    assert wrong.code != 0 and "monitoring.drift_share" in wrong.err
