"""Live monitoring through a real server process on 127.0.0.1: the running sketches agree with
an offline report on the same rows, the drift endpoints and Prometheus figures, and request ids
that come back as outcomes through `haj feedback`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api import Workspace
from engine.monitor import frame_window
from engine.serving.model import load, locate_champion
from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj
from tests.support.penguins import TARGET, train_penguins
from tests.support.procs import free_port

ROWS = 240


def _heavier(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    out = []
    for row in rows:
        mass = float(row["Body Mass (g)"].replace(",", "")) + 900
        out.append({**row, "Body Mass (g)": f"{mass:.0f}"})
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("live")
    train_penguins(home)
    return home


class Detached:
    """`haj run penguins --detach` (recorded, so `haj monitor` finds it live)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        port = free_port()
        started = call_haj(home, "run", "penguins", "--detach", "--port", str(port))
        assert started.code == 0, started.text
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the detached server never became ready"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Detached]:
    running = Detached(home)
    yield running
    assert call_haj(home, "stop", "penguins").code == 0


@pytest.fixture(scope="module")
def sent(server: Detached, home: Path) -> list[dict[str, str]]:
    """ROWS heavier penguins sent as single records and batches of 10, each with an id."""
    rows = _heavier(penguin_rows(ROWS, seed=3))
    records = [{k: v for k, v in r.items() if k != TARGET} for r in rows]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(0, 40):
            answer = client.post("/predict", json=records[i], headers={"X-Request-Id": f"p{i}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["request_ids"] == [f"p{i}"]
            assert answer.headers["x-request-id"] == f"p{i}"
        for start in range(40, ROWS, 10):
            batch = {"records": records[start : start + 10]}
            answer = client.post("/predict", json=batch, headers={"X-Request-Id": f"b{start}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["request_ids"] == [f"b{start}-{i}" for i in range(10)]
        refused = client.post("/predict", json={**records[0], "Wingspan": 1})
        assert refused.status_code == 422
        # the writer thread feeds the sketches a few times a second
        deadline = time.monotonic() + 30
        while client.get("/diagnostics").json()["rows"] < ROWS:
            assert time.monotonic() < deadline, "the live sketches never reached all rows"
            time.sleep(0.05)
    return rows


def test_live_sketches_agree_with_an_offline_report_on_the_same_rows(
    server: Detached, home: Path, sent: list[dict[str, str]]
) -> None:
    live = httpx.get(f"{server.url}/drift", params={"sketch": "true"}, timeout=30).json()
    assert live["rows"] == ROWS and live["window"] == "since the model was served"
    project = Workspace(home).project("penguins").project
    model = load(locate_champion(project.path), "penguins")
    path = home / "sent.csv"
    path.write_text(to_csv([{k: v for k, v in r.items() if k != TARGET} for r in sent]))
    offline = frame_window(project, model, model.profile, str(path), TARGET, "classification")
    for mine, theirs in zip(live["sketch"]["features"], offline.to_dict()["features"], strict=True):
        assert mine["counts"] == theirs["counts"] and mine["missing"] == theirs["missing"]
        assert mine["sums"] == pytest.approx(theirs["sums"]) if "sums" in mine else True
    assert live["sketch"]["prediction"]["counts"] == offline.to_dict()["prediction"]["counts"]
    assert live["drifted_features"] == ["Body Mass (g)"]
    # `haj monitor` reads the same live window and stores the same figures
    result = call_haj(home, "monitor", "penguins", "--json")
    assert result.code == 0, result.text
    report = json.loads(result.out)
    assert report["source"] == "live" and report["rows"] == ROWS
    assert report["drifted_features"] == ["Body Mass (g)"]
    assert report["features"] == live["features"]
    assert report["quality"]["refused"] == {"Wingspan": 1}


def test_windows_summary_diagnostics_and_prometheus(server: Detached, sent: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        last = client.get("/drift", params={"last": 50}).json()
        assert last["rows"] == 50 and last["too_small"] and last["window"] == "last 50 rows"
        recent = client.get("/drift", params={"since": "1h"}).json()
        assert recent["rows"] == ROWS
        assert client.get("/drift", params={"since": "soon"}).status_code == 422
        summary = client.get("/summary").json()
        mass = next(f for f in summary["features"] if f["name"] == "Body Mass (g)")
        assert mass["live"]["mean"] > mass["reference"]["mean"] + 800
        island = next(f for f in summary["features"] if f["name"] == "Island")
        assert {name for name, _ in island["live"]["top"]} <= {"Biscoe", "Dream", "Torgersen"}
        diagnostics = client.get("/diagnostics").json()
        culmen = diagnostics["missing"]["Culmen Length (mm)"]
        assert culmen == sum(1 for r in sent if r["Culmen Length (mm)"] == "NA") > 0
        assert diagnostics["refused"] == {"Wingspan": 1}
        assert diagnostics["model_age_seconds"] >= 0 and diagnostics["predictions"] == ROWS
        metrics = client.get("/metrics").text
    assert 'haj_feature_drift{feature="Body Mass (g)",test="ks"}' in metrics
    assert "haj_dataset_drift 0.0" in metrics
    assert f'haj_input_missing_total{{feature="Culmen Length (mm)"}} {float(culmen)}' in metrics
    assert 'haj_unseen_category_total{feature="Island"} 0.0' in metrics


def test_request_ids_round_trip_through_feedback(home: Path, sent: list[dict[str, str]]) -> None:
    ids = [f"p{i}" for i in range(40)] + [
        f"b{s}-{i}" for s in range(40, ROWS, 10) for i in range(10)
    ]
    outcomes = [{"id": rid, "truth": row[TARGET]} for rid, row in zip(ids, sent, strict=True)]
    outcomes.append({"id": "never-sent", "truth": "Adelie"})
    path = home / "outcomes.csv"
    path.write_text(to_csv(outcomes))
    result = call_haj(home, "feedback", "penguins", str(path), "--id-col", "id", "--label-col",
                      "truth", "--json")  # fmt: skip
    assert result.code == 0, result.text
    answer = json.loads(result.out)
    assert answer["labels"] == ROWS + 1 and answer["matched"] == ROWS
    assert answer["unmatched_examples"] == ["never-sent"]
    [run] = answer["runs"]
    assert run["rows"] == ROWS and 0 <= run["metrics"]["acc"] <= 1
    assert answer["target_drift"]["test"] == "chi2" and not answer["target_drift"]["drifted"]
    shown = call_haj(home, "runs", "penguins", "--show", run["run_id"])
    assert "feedback:outcomes.csv" in shown.out
    text = call_haj(home, "feedback", "penguins", str(path), "--id-col", "id", "--label-col",
                    "truth")  # fmt: skip
    assert f"{ROWS} of {ROWS + 1} outcomes matched a logged prediction" in text.out
    missing = call_haj(home, "feedback", "penguins", str(path), "--id-col", "nope",
                       "--label-col", "truth")  # fmt: skip
    assert missing.code != 0 and "has no 'nope' column" in missing.err
