"""The served model takes rows in the data's own shape: a real server process, a project whose
raw data needs processing (numbers written as text, dates, upper-case categories, ids, notes),
its holdout rows sent raw and answered exactly as the training pipeline answers them."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.raw_tables import penguin_rows, to_csv
from tests.support import call_haj
from tests.support.penguins import train_penguins
from tests.support.serving import Server, load_bundle, start_server

TARGET = "Species"


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained and crowned project on penguins.csv (the raw table of tests/raw_tables.py)."""
    return train_penguins(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def server(penguins: Path) -> Iterator[Server]:
    running = start_server(penguins)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def holdout(project: Path) -> tuple[pd.DataFrame, Any, Any]:
    """(raw holdout rows without the target, the pipeline's probabilities and predictions on
    the same rows as training processed them). Every raw row has a label and none repeats, so
    processed row i is raw row i; the split is training's (same size, seed and strata)."""
    from sklearn.model_selection import train_test_split

    from engine.features import to_matrix

    bundle = load_bundle(project)
    processed_file = next((project / "data" / "processed").glob("*.csv"))
    processed = pd.read_csv(processed_file)
    raw = pd.read_csv(io.StringIO(to_csv(penguin_rows())))
    assert len(processed) == len(raw)
    rows = np.arange(len(processed))
    _, test = train_test_split(
        rows, test_size=0.2, random_state=42, stratify=processed[TARGET].to_numpy()
    )
    X = to_matrix(processed.iloc[test], bundle["features"])
    pipeline = bundle["pipeline"]
    return raw.iloc[test].drop(columns=[TARGET]), pipeline.predict_proba(X), pipeline.predict(X)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON carries them: NaN as null."""
    return json.loads(frame.to_json(orient="records"))


def test_raw_holdout_rows_get_the_training_pipelines_predictions(
    client: httpx.Client, penguins: Path
) -> None:
    raw, expected_proba, expected = holdout(penguins)
    assert raw["Body Mass (g)"].str.contains(",").all()  # "3,700": text that processing parses
    answer = client.post("/predict", json={"records": records(raw)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == expected.tolist()
    labels = body["classes"]
    got = np.array([[p[str(label)] for label in labels] for p in body["probabilities"]])
    np.testing.assert_allclose(got, expected_proba, rtol=0, atol=1e-12)

    csv_body = raw.to_csv(index=False)  # MLflow / SageMaker scoring of the raw file, header on
    scored = client.post("/invocations", content=csv_body, headers={"content-type": "text/csv"})
    assert scored.status_code == 200, scored.text
    assert scored.json()["predictions"] == expected.tolist()


def test_one_raw_row_as_a_client_sends_it(client: httpx.Client, penguins: Path) -> None:
    raw, _, expected = holdout(penguins)
    record = records(raw.head(1))[0]
    record["Sex"] = record["Sex"].lower()  # "female": training saw FEMALE most
    del record["Comments"]  # free text the processing drops: need not be sent
    answer = client.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected[:1].tolist()


def test_a_category_never_seen_is_counted_and_marked_in_the_log(
    client: httpx.Client, penguins: Path
) -> None:
    raw, _, _ = holdout(penguins)
    record = {**records(raw.head(1))[0], "Island": "Atlantis"}
    assert client.post("/predict", json=record).status_code == 200
    metrics = client.get("/metrics").text
    assert 'haj_unknown_values_total{feature="Island",kind="unseen"} 1.0' in metrics
    log = penguins / "logs" / "predictions.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        marked = [json.loads(line) for line in lines if "Atlantis" in line]
        if marked:
            break
        time.sleep(0.05)
    assert marked[0]["unknown"] == [{"unseen": {"Island": "Atlantis"}}]


def test_docs_describe_and_exemplify_the_raw_columns(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    example = content["examples"]["one record"]["value"]
    assert example["Sample Number"] == 1 and example["Body Mass (g)"].replace(",", "").isdigit()
    record = content["schema"]["oneOf"][0]
    assert "Island" in record["properties"] and TARGET not in record["properties"]
    assert "Comments" not in record["required"] and "Date Egg" in record["required"]


def test_reject_refuses_an_unseen_category_naming_field_and_value(
    penguins: Path, tmp_path: Path
) -> None:
    strict = tmp_path / "penguins"
    shutil.copytree(penguins, strict, symlinks=True, ignore=shutil.ignore_patterns("logs"))
    config = strict / "config.toml"
    config.write_text(
        config.read_text().replace(
            'unknown_categories = "accept"', 'unknown_categories = "reject"', 1
        )
    )
    raw, _, _ = holdout(penguins)
    record = records(raw.head(1))[0]
    running = start_server(strict)
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.post("/predict", json=record).status_code == 200
            refused = http.post("/predict", json={**record, "Island": "Atlantis"})
    finally:
        running.stop()
    assert refused.status_code == 422
    assert refused.json()["field"] == "Island"
    assert "'Atlantis', a category the model never saw" in refused.json()["detail"]


def test_the_example_request_the_app_and_deploy_send_is_a_raw_row(penguins: Path) -> None:
    from engine.api import Workspace

    project = Workspace(penguins.parent).project("penguins")
    example = project.example_record(3)
    assert set(example) == {c for c in penguin_rows()[0] if c != TARGET}
    assert example["Sample Number"] == 4 and isinstance(example["Body Mass (g)"], str)


def test_a_model_that_takes_processed_columns_says_so_when_crowned(tmp_path: Path) -> None:
    """processor.py of the older, function-only shape, which needs labels on every call."""
    source = tmp_path / "penguins.csv"
    source.write_text(to_csv(penguin_rows(80)))
    home = tmp_path / "home"
    assert call_haj(home, "init", "old", "-p", "classification", "--url", str(source),
                    "--target", TARGET).code == 0  # fmt: skip
    (home / "old" / "processor.py").write_text(
        "def process(raw, target):\n"
        "    out = raw.dropna(subset=[target])\n"
        "    if out[target].nunique() < 2:\n"
        "        raise ValueError('a single class')\n"
        "    return out[['Flipper Length (mm)', 'Island', target]]\n"
    )
    assert call_haj(home, "retrieve", "old").code == 0
    processed = call_haj(home, "process", "old")
    assert "will take the processed columns, not raw rows" in processed.text
    assert call_haj(home, "train", "old", "-m", "logistic_regression").code == 0
    crowned = call_haj(home, "evaluate", "old")
    assert crowned.code == 0, crowned.text
    assert "this model takes the processed columns of proc-0001, not raw rows" in crowned.out
    assert "a single class" in crowned.out
    from engine.api import Workspace

    example = Workspace(home).project("old").example_record()
    assert set(example) == {"Flipper Length (mm)", "Island"}  # the processed features


# ---- haj predict: the same rows, the same answers ------------------------------------------------
def test_batch_predictions_equal_the_servers_for_the_same_raw_rows(
    client: httpx.Client, penguins: Path, tmp_path: Path
) -> None:
    from engine.api import Workspace

    raw, _, _ = holdout(penguins)
    source = tmp_path / "holdout.csv"
    raw.to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    project = Workspace(penguins.parent).project("penguins")
    result = project.predict(str(source), out, keep=["Sample Number"])
    assert result.rows == len(raw) and result.rejected == 0
    scored = pd.read_csv(out)
    served = client.post("/predict", json={"records": records(raw)}).json()
    assert scored["Sample Number"].tolist() == raw["Sample Number"].tolist()
    assert scored["prediction"].tolist() == served["predictions"]
    for label in served["classes"]:
        np.testing.assert_allclose(
            scored[f"proba_{label}"], [p[label] for p in served["probabilities"]], atol=1e-12
        )
    # the same rows as JSON lines go through the server's own record checks: same answers
    lines = tmp_path / "holdout.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records(raw)))
    again = tmp_path / "scored.jsonl"
    project.predict(str(lines), again)
    answers = [json.loads(line) for line in again.read_text().splitlines()]
    assert [a["prediction"] for a in answers] == served["predictions"]


def test_a_bad_row_is_named_by_its_line_and_skip_bad_sets_it_aside(
    penguins: Path, tmp_path: Path
) -> None:
    from engine.api import Workspace
    from engine.errors import DataError

    raw, _, _ = holdout(penguins)
    broken = raw.head(5).copy()
    broken["Flipper Length (mm)"] = broken["Flipper Length (mm)"].astype(object)
    broken.iloc[2, broken.columns.get_loc("Flipper Length (mm)")] = "long"
    source = tmp_path / "broken.csv"
    broken.to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    project = Workspace(penguins.parent).project("penguins")
    with pytest.raises(DataError, match="line 4: field 'Flipper Length \\(mm\\)' must be a number"):
        project.predict(str(source), out)
    assert not out.exists() and not list(tmp_path.glob(".scored.csv.*"))  # no half file
    result = project.predict(str(source), out, skip_bad=True)
    assert result.rows == 4 and result.rejected == 1
    rejected = [json.loads(line) for line in Path(result.rejects or "").read_text().splitlines()]
    assert rejected == [{"line": 4, "reason": "field 'Flipper Length (mm)' must be a number, "
                         "got 'long'"}]  # fmt: skip
    assert len(pd.read_csv(out)) == 4


def test_stdin_streaming_answers_each_line_before_the_next_arrives(penguins: Path) -> None:
    import os
    import select
    import subprocess
    import sys

    from tests.support import ROOT

    raw, _, expected = holdout(penguins)
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "predict", "penguins", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HAJ_HOME": str(penguins.parent)},
    )
    assert process.stdin and process.stdout
    try:
        for i, record in enumerate(records(raw.head(3))):
            process.stdin.write(json.dumps(record) + "\n")
            process.stdin.flush()  # the next line is sent only once this one is answered
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, "no answer to a line within 30 s: the output is buffered"
            answer = json.loads(process.stdout.readline())
            assert answer["prediction"] == expected[i]
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
