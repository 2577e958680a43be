"""The serving parts without a server: JSON records give the same model input as training
(numeric and mixed features), the compiled fast path equals scikit-learn, the prediction log
rotates at its cap, and latency percentiles are right."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.features import feature_spec, make_pipeline, to_matrix
from engine.serving import fastpath, inputs
from engine.serving.monitoring import Monitor, PredictionLog


def _mixed_frame(n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "income": rng.normal(3000, 500, n),
            "member": rng.choice([True, False], n),
        }
    )
    frame.loc[3, "age"] = np.nan
    frame.loc[4, "city"] = None
    y = (frame["income"] > 3000).astype(int).to_numpy()
    return frame, y


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]


def test_json_records_give_the_training_matrix_for_mixed_features() -> None:
    from sklearn.linear_model import LogisticRegression

    frame, y = _mixed_frame()
    spec = feature_spec(frame)
    assert [f["kind"] for f in spec] == ["numeric", "categorical", "numeric", "categorical"]
    pipeline = make_pipeline(spec, LogisticRegression(max_iter=500))
    pipeline.fit(to_matrix(frame, spec), y)
    records = json.loads(json.dumps(_records(frame)))  # as they travel over the wire
    names = [f["name"] for f in spec]
    served = inputs.to_matrix(records, names, [f["kind"] for f in spec], all_numeric=False)
    assert np.array_equal(pipeline.predict(served), pipeline.predict(to_matrix(frame, spec)))
    assert np.array_equal(
        pipeline.predict_proba(served), pipeline.predict_proba(to_matrix(frame, spec))
    )


def test_a_number_for_a_categorical_field_is_its_text_and_a_list_is_refused() -> None:
    names, kinds = ["city", "n"], ["categorical", "numeric"]
    matrix = inputs.to_matrix([{"city": 75, "n": 1}], names, kinds, all_numeric=False)
    assert matrix[0, 0] == "75" and matrix[0, 1] == 1.0
    with pytest.raises(inputs.InputError) as error:
        inputs.to_matrix([{"city": ["a"], "n": 1}], names, kinds, all_numeric=False)
    assert error.value.field == "city" and error.value.status == 422
    with pytest.raises(inputs.InputError) as error:
        inputs.to_matrix([{"city": "a", "n": "1"}], names, kinds, all_numeric=False)
    assert error.value.field == "n"


def test_categories_sent_as_numbers_booleans_or_empty_text_read_as_at_training() -> None:
    """Training read a text column's `100` as "100", a bool column's values as "True"/"False",
    and an empty cell as missing: the server must see the same values, not "100.0" or ""."""
    names, kinds = ["code", "member", "n"], ["categorical", "categorical", "numeric"]
    rows = [
        {"code": 100.0, "member": True, "n": 1},
        {"code": 2.5, "member": False, "n": 2},
        {"code": "", "member": None, "n": 3},
    ]
    matrix = inputs.to_matrix(rows, names, kinds, all_numeric=False)
    assert matrix[0, 0] == "100" and matrix[0, 1] == "True"
    assert matrix[1, 0] == "2.5" and matrix[1, 1] == "False"
    assert np.isnan(matrix[2, 0]) and np.isnan(matrix[2, 1])


def test_too_large_names_the_limit_in_readable_units() -> None:
    assert "over the 10 MB limit" in inputs.too_large(10 * 1024 * 1024).message
    assert "over the 1 KB limit" in inputs.too_large(1024).message
    assert inputs.too_large(1).status == 413


def test_csv_values_are_read_by_their_feature_kind() -> None:
    """A category that looks like a number stays the text training saw ("100", quoted or not);
    numbers become floats; an empty cell is missing either way."""
    names, kinds = ["code", "x"], ["categorical", "numeric"]
    rows = inputs.csv_rows(b'code,x\n100,0.5\n"100",\n,2\n', names, kinds)
    assert rows == [{"code": "100", "x": 0.5}, {"code": "100", "x": None}, {"code": None, "x": 2.0}]
    headerless = inputs.csv_rows(b"100,0.5\n", names, kinds)
    assert headerless == [["100", 0.5]]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"a\n" + b"1" * 200_000, "unreadable CSV"),  # over the csv module's field limit
        (b'{"a": 1}', "looks like JSON"),
        (b"", "empty"),
    ],
)
def test_an_unreadable_csv_body_is_a_400(body: bytes, words: str) -> None:
    with pytest.raises(inputs.InputError) as error:
        inputs.csv_rows(body, ["a"], ["numeric"])
    assert error.value.status == 400 and words in error.value.message


def test_csv_infinity_is_refused_and_nan_is_missing() -> None:
    rows = inputs.csv_rows(b"a,b\n1,nan\n", ["a", "b"])
    assert rows == [{"a": 1.0, "b": None}]
    rows = inputs.csv_rows(b"a,b\n1,inf\n", ["a", "b"])
    with pytest.raises(inputs.InputError) as error:
        inputs.to_matrix(rows, ["a", "b"], ["numeric", "numeric"], all_numeric=True)
    assert error.value.field == "b"


@pytest.mark.parametrize("classes", [2, 3])
def test_the_compiled_linear_path_equals_sklearn(classes: int) -> None:
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge

    X, y = make_classification(200, 8, n_informative=5, n_classes=classes, random_state=0)
    X[::7, 2] = np.nan
    spec = [{"name": f"x{i}", "kind": "numeric"} for i in range(8)]
    clf = make_pipeline(spec, LogisticRegression(max_iter=1000)).fit(X, y)
    fast = fastpath.compile_linear(clf, 8, proba=True)
    assert fast is not None
    assert np.allclose(fast(X[:50]), clf.predict_proba(X[:50]), rtol=1e-9)
    Xr, yr = make_regression(100, 8, random_state=0)
    reg = make_pipeline(spec, Ridge()).fit(Xr, yr)
    fast_reg = fastpath.compile_linear(reg, 8, proba=False)
    assert fast_reg is not None and np.allclose(fast_reg(Xr[:1]), reg.predict(Xr[:1]))


def test_other_pipelines_are_not_compiled_but_run_step_by_step() -> None:
    from sklearn.tree import DecisionTreeClassifier

    frame, y = _mixed_frame()
    spec = feature_spec(frame)
    pipeline = make_pipeline(spec, DecisionTreeClassifier(random_state=0))
    X = to_matrix(frame, spec)
    pipeline.fit(X, y)
    assert fastpath.compile_linear(pipeline, 4, proba=True) is None
    stepwise = fastpath.general(pipeline, proba=True)
    assert np.array_equal(stepwise(X), pipeline.predict_proba(X))


def test_the_prediction_log_rotates_at_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    log = PredictionLog(path, max_bytes=2000, backups=2)
    for i in range(60):
        log.append("/predict", "run1", ["a"], [[float(i)]], [i % 2], None, [], 0.001)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["predictions.jsonl", "predictions.jsonl.1", "predictions.jsonl.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["inputs"] == [{"a": 59.0}] and last["outputs"] == [1] and last["run_id"] == "run1"


def test_workers_prediction_logs_are_capped_together(tmp_path: Path) -> None:
    """With --workers N each worker writes predictions-<pid>.jsonl: files left by workers that
    exited (restarts, respawns) are deleted oldest first once all of them pass the shared cap;
    the live worker's own file is never touched."""
    import os

    for n, dead_pid in enumerate((999_999_01, 999_999_02, 999_999_03)):
        old = tmp_path / f"predictions-{dead_pid}.jsonl"
        old.write_bytes(b"x" * 1500)
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    mine = tmp_path / f"predictions-{os.getpid()}.jsonl"
    log = PredictionLog(mine, max_bytes=2000, backups=1, shared_cap=4000)
    for i in range(40):
        log.append("/predict", "run1", ["a"], [[float(i)]], [i % 2], None, [], 0.001)
    log.close()
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sum(sizes.values()) <= 4000 + 2000  # the cap, plus the file being written
    assert mine.name in sizes and f"{mine.name}.1" in sizes
    assert "predictions-99999901.jsonl" not in sizes  # the oldest went first


def test_appending_to_the_prediction_log_costs_microseconds(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.jsonl")
    row = [{"x": 1.0}]
    batches = []
    for _ in range(5):  # the best of 5 batches: haj's cost, not another process's time slice
        started = time.perf_counter()
        for _ in range(2_000):
            log.append("/predict", "r", ["x"], row, [1], None, [], 0.001)
        batches.append((time.perf_counter() - started) / 2_000)
    log.close()
    assert min(batches) < 50e-6, batches
    assert log.written + log.dropped == 10_000


def test_latency_percentiles_over_the_window_and_since_start() -> None:
    monitor = Monitor()
    for ms in range(1, 1101):  # 1..1100 ms; the window keeps the last 1,000 (101..1100)
        monitor.observe("/predict", 200, ms / 1000)
    monitor.observe("/health", 200, 5.0)  # not a scoring request
    report = monitor.latency()
    window, since = report["window"], report["since_start"]
    assert window["requests"] == 1000 and since["requests"] == 1100
    assert window["p50_ms"] == pytest.approx(600.5)
    assert window["max_ms"] == pytest.approx(1100) and window["mean_ms"] == pytest.approx(600.5)
    assert since["p50_ms"] == pytest.approx(550, rel=0.05)
    assert since["p99_ms"] == pytest.approx(1089, rel=0.05)
    assert monitor.counts()["requests"] == 1100


async def test_until_its_model_is_loaded_the_app_is_alive_but_not_ready(tmp_path: Path) -> None:
    import httpx

    from engine.serving import create_app

    app = create_app(tmp_path)  # no lifespan run here: the model is never loaded
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/livez")).status_code == 200
        for path in ("/health", "/readyz", "/ping"):
            answer = await client.get(path)
            assert answer.status_code == 503, path
            assert answer.json()["detail"] == "the model is loading"
        answer = await client.post("/predict", json={"a": 1})
        assert answer.status_code == 503
        assert (await client.get("/predictions_count")).json()["predictions"] == 0
        assert "haj_requests_total" in (await client.get("/metrics")).text
