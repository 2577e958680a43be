"""`haj run`'s server, used over real HTTP: a real uvicorn process on a free 127.0.0.1 port serving
the champion of a trained example project (breast cancer classification)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serving import Server, load_bundle, sample_records, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cancer_dir(trained_cache: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("served") / "cancer"
    shutil.copytree(trained_cache["classification"] / "cancer", target, symlinks=True)
    return target


@pytest.fixture(scope="module")
def server(cancer_dir: Path) -> Iterator[Server]:
    running = start_server(cancer_dir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _features(cancer_dir: Path) -> list[str]:
    return [f["name"] for f in load_bundle(cancer_dir)["features"]]


# ---- /predict ------------------------------------------------------------------------------------
def test_predict_one_record_matches_the_model_with_probabilities_and_run_id(
    client: httpx.Client, cancer_dir: Path
) -> None:
    records, matrix = sample_records(cancer_dir, 1)
    bundle = load_bundle(cancer_dir)
    answer = client.post("/predict", json=records[0])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["run_id"] == bundle["run_id"]
    assert body["predictions"] == bundle["pipeline"].predict(matrix).tolist()
    assert body["classes"] == [0, 1]  # like the predictions; the probabilities' keys are text
    expected = bundle["pipeline"].predict_proba(matrix)[0]
    assert body["probabilities"][0] == pytest.approx({"0": expected[0], "1": expected[1]})


def test_predict_a_batch_of_records(client: httpx.Client, cancer_dir: Path) -> None:
    records, matrix = sample_records(cancer_dir, 100)
    body = client.post("/predict", json={"records": records}).json()
    assert body["predictions"] == load_bundle(cancer_dir)["pipeline"].predict(matrix).tolist()
    assert len(body["probabilities"]) == 100


def test_null_is_a_missing_value_the_pipeline_imputes(
    client: httpx.Client, cancer_dir: Path
) -> None:
    records, _ = sample_records(cancer_dir, 1)
    record = {**records[0], "mean radius": None}
    answer = client.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0] in (0, 1)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ("drop", "mean texture", "missing field"),
        ("add", "colour", "unknown field"),
        ("string", "mean area", "must be a number"),
        ("bool", "worst radius", "must be a number"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: httpx.Client, cancer_dir: Path, change: str, field: str, words: str
) -> None:
    record = dict(sample_records(cancer_dir, 1)[0][0])
    if change == "drop":
        del record[field]
    elif change == "add":
        record[field] = "blue"
    elif change == "string":
        record[field] = "large"
    else:
        record[field] = True
    for body in (record, {"records": [sample_records(cancer_dir, 1)[0][0], record]}):
        answer = client.post("/predict", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        assert words in answer.json()["detail"] and field in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"mean radius": ', 400),
        (b"", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 422),
        (b'{"records": []}', 422),
        (b'{"records": [1]}', 422),
    ],
)
def test_malformed_bodies_are_client_errors(client: httpx.Client, body: bytes, status: int) -> None:
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_nan_literals_are_missing_values_and_infinity_or_overflow_is_422(
    client: httpx.Client, cancer_dir: Path
) -> None:
    """Python's json.dumps writes NaN and Infinity (MLflow's server accepts them); a value so
    large the model overflows must not come back as a 200 with a null prediction."""
    record = dict(sample_records(cancer_dir, 1)[0][0])
    field = next(iter(record))
    with_nan = json.dumps({**record, field: float("nan")})
    answer = client.post("/predict", content=with_nan, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0] in (0, 1)
    with_inf = json.dumps({**record, field: float("inf")})
    answer = client.post("/predict", content=with_inf, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["field"] == field
    assert "finite" in answer.json()["detail"]
    huge = {name: 1e308 for name in record}
    for path, body in (("/predict", huge), ("/invocations", {"dataframe_records": [huge]})):
        answer = client.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert "not a finite number" in answer.json()["detail"]


def test_an_unknown_key_beside_records_is_422(client: httpx.Client, cancer_dir: Path) -> None:
    records, _ = sample_records(cancer_dir, 2)
    answer = client.post("/predict", json={"records": records, "threshold": 0.3})
    assert answer.status_code == 422 and answer.json()["field"] == "threshold"


def test_records_that_are_not_a_list_are_named_as_such(client: httpx.Client) -> None:
    for body in ({"records": "x"}, {"records": {"mean radius": 14.1}}):
        answer = client.post("/predict", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "records"
        assert "must be a list of records" in answer.json()["detail"]


def test_a_feature_named_records_is_a_value_not_the_batch_key() -> None:
    from engine.serving.inputs import predict_records

    one = {"records": 3, "age": 40}
    assert predict_records(one, features=("records", "age")) == [one]
    assert predict_records({"records": [one]}, features=("age",)) == [one]


def test_refused_requests_are_counted_as_errors_but_not_timed(
    client: httpx.Client, cancer_dir: Path
) -> None:
    before_counts = client.get("/predictions_count").json()
    before = client.get("/latency").json()["since_start"]["requests"]
    for _ in range(3):
        assert client.post("/predict", json={"nope": 1}).status_code == 422
    assert client.get("/predict").status_code == 405
    counts = client.get("/predictions_count").json()
    assert counts["errors"] - before_counts["errors"] == 4
    assert client.get("/latency").json()["since_start"]["requests"] == before
    assert 'haj_requests_total{endpoint="/predict",status="422"}' in client.get("/metrics").text


def test_more_than_10000_records_is_422(client: httpx.Client) -> None:
    answer = client.post("/predict", json={"records": [{}] * 10_001})
    assert answer.status_code == 422
    assert "10,000" in answer.json()["detail"]


def test_a_body_over_the_limit_is_413(client: httpx.Client) -> None:
    big = b'{"records": [' + b" " * (11 * 1024 * 1024) + b"]}"
    answer = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: the limit is enforced while reading
        yield b'{"records": ['
        for _ in range(11):
            yield b" " * (1024 * 1024)
        yield b"]}"

    answer = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


def test_a_python_client_sending_a_body_over_the_limit_reads_the_413(server: Server) -> None:
    """urllib (and requests) send the whole body before reading: the server reads and drops
    what is in flight (bounded) before it answers and closes, so they get the 413, not a reset
    connection."""
    import urllib.error
    import urllib.request

    big = b'{"records": [' + b" " * (11 * 1024 * 1024) + b"]}"
    request = urllib.request.Request(
        f"{server.url}/predict", data=big, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "limit" in refused.value.read().decode()
    import requests  # installed with the docker SDK

    answer = requests.post(
        f"{server.url}/predict", data=big, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 413


def test_wrong_method_and_unknown_path_are_not_500(client: httpx.Client) -> None:
    assert client.get("/predict").status_code == 405
    assert client.get("/nope").status_code == 404


# ---- MLflow / SageMaker contract ---------------------------------------------------------------
def test_invocations_accepts_the_mlflow_and_sagemaker_formats(
    client: httpx.Client, cancer_dir: Path
) -> None:
    records, matrix = sample_records(cancer_dir, 3)
    names = _features(cancer_dir)
    expected = load_bundle(cancer_dir)["pipeline"].predict(matrix).tolist()
    rows = [[r[n] for n in names] for r in records]
    bodies: list[Any] = [
        {"dataframe_split": {"columns": names, "data": rows}},
        {"dataframe_records": records},
        {"instances": records},
        {"instances": rows},
        {"inputs": {n: [r[n] for r in records] for n in names}},
        {"inputs": records},
    ]
    for body in bodies:
        answer = client.post("/invocations", json=body)
        assert answer.status_code == 200, (list(body), answer.text)
        assert answer.json() == {"predictions": expected}
    one = client.post("/invocations", json={"inputs": records[0]})  # columns of scalars
    assert one.status_code == 200 and one.json() == {"predictions": expected[:1]}
    csv_body = ",".join(names) + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows)
    answer = client.post("/invocations", content=csv_body, headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected}
    assert client.get("/ping").status_code == 200


def test_invocations_rejects_bad_input_with_4xx(client: httpx.Client, cancer_dir: Path) -> None:
    names = _features(cancer_dir)
    bad = [
        {"dataframe_split": {"columns": names, "data": [[1.0]]}},
        {"instances": [[1.0, 2.0]]},
        {"something": []},
        {"dataframe_records": [{"x": 1}]},
    ]
    for body in bad:
        assert client.post("/invocations", json=body).status_code == 422, body
    answer = client.post("/invocations", content=b"a,b\n1", headers={"content-type": "text/csv"})
    assert answer.status_code == 422


def test_invocations_accepts_csv_without_a_header_as_sagemaker_sends_it(
    client: httpx.Client, cancer_dir: Path
) -> None:
    records, matrix = sample_records(cancer_dir, 3)
    names = _features(cancer_dir)
    expected = load_bundle(cancer_dir)["pipeline"].predict(matrix).tolist()
    rows = [",".join(repr(float(r[n])) for n in names) for r in records]
    csv = {"content-type": "text/csv"}
    answer = client.post("/invocations", content="\n".join(rows) + "\n", headers=csv)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected}
    # a header of exactly the feature names, in any order, is still a header
    shuffled = list(reversed(names))
    body = (
        ",".join(shuffled)
        + "\n"
        + "\n".join(",".join(repr(float(r[n])) for n in shuffled) for r in records)
    )
    answer = client.post("/invocations", content=body, headers=csv)
    assert answer.status_code == 200 and answer.json() == {"predictions": expected}
    # neither: a 422 that says what was expected
    answer = client.post("/invocations", content=rows[0] + "\n1.0,2.0\n", headers=csv)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert f"CSV line 2 has 2 values: expected {len(names)} per row, in the order" in detail
    assert names[0] in detail and "header" in detail


# ---- health and monitoring --------------------------------------------------------------------
def test_health_livez_readyz(client: httpx.Client, cancer_dir: Path) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    bundle = load_bundle(cancer_dir)
    champion = json.loads((cancer_dir / "models" / "champion.json").read_text())
    assert body["run_id"] == bundle["run_id"] == champion["run_id"]
    assert body["model"] == champion["model"]
    assert body["metric"] == "acc" and body["score"] == pytest.approx(champion["value"])
    assert body["data_version"] == bundle["data_version"]
    assert body["loaded_at"] and body["uptime_seconds"] > 0
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").json()["status"] == "ready"


def test_metrics_are_prometheus_text_with_counters_latency_and_model_metrics(
    client: httpx.Client, cancer_dir: Path
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    record = sample_records(cancer_dir, 1)[0][0]
    client.post("/predict", json={"records": [record, record, record]})
    client.post("/predict", json={"nope": 1})
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    requests = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in families["haj_requests"].samples
        if s.name == "haj_requests_total"
    }
    assert requests[("/predict", "200")] >= 1
    assert requests[("/predict", "422")] >= 1
    assert families["haj_predictions"].samples[0].value >= 3
    buckets = [
        s
        for s in families["haj_request_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["endpoint"] == "/predict"
    ]
    assert buckets and buckets[-1].labels["le"] == "+Inf"
    assert families["haj_requests_in_progress"].samples[0].value >= 1  # this request
    info = families["haj_model_info"].samples[0].labels  # an Info metric
    assert info["run_id"] == load_bundle(cancer_dir)["run_id"]
    gauges = {s.labels["metric"]: s.value for s in families["haj_model_metric"].samples}
    assert gauges == pytest.approx(load_bundle(cancer_dir)["metrics"])


def test_predictions_count_and_latency(client: httpx.Client, cancer_dir: Path) -> None:
    before = client.get("/predictions_count").json()
    records, _ = sample_records(cancer_dir, 4)
    client.post("/predict", json={"records": records})
    client.post("/predict", json=records[0])
    after = client.get("/predictions_count").json()
    assert after["predictions"] - before["predictions"] == 5
    assert after["requests"] - before["requests"] == 2
    latency = client.get("/latency").json()
    for part in ("window", "since_start"):
        figures = latency[part]
        assert figures["requests"] >= 2
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["p99_ms"] <= figures["max_ms"] * 1.0001 and figures["mean_ms"] > 0


def test_docs_show_an_example_built_from_the_real_feature_names(
    client: httpx.Client, cancer_dir: Path
) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    # Swagger UI comes from the server itself, not a CDN: /docs works offline
    assert "cdn." not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    example = body["examples"]["one record"]["value"]
    assert list(example) == _features(cancer_dir)
    assert all(isinstance(v, float) for v in example.values())
    answer = client.post("/predict", json=example)  # the documented example works as is
    assert answer.status_code == 200
    assert "/invocations" in schema["paths"] and "/health" in schema["paths"]


def test_every_prediction_is_appended_to_the_prediction_log(
    client: httpx.Client, cancer_dir: Path
) -> None:
    record = sample_records(cancer_dir, 1)[0][0]
    marker = {**record, "mean radius": 12.3456}
    answer = client.post("/predict", json=marker).json()
    path = cancer_dir / "logs" / "predictions.jsonl"
    deadline = time.monotonic() + 5
    entry = None
    while entry is None and time.monotonic() < deadline:
        for line in path.read_text().splitlines() if path.exists() else []:
            row = json.loads(line)
            if row["inputs"][0].get("mean radius") == 12.3456:
                entry = row
        time.sleep(0.05)
    assert entry is not None, "the prediction was not logged"
    assert entry["run_id"] == answer["run_id"]
    assert entry["outputs"] == answer["predictions"]
    assert entry["latency_ms"] > 0 and entry["time"]
    assert entry["inputs"][0] == marker


def test_history_keeps_one_point_a_second_of_requests_and_latency(client: httpx.Client) -> None:
    """GET /history: what the app charts, kept by the server so a chart outlives the app."""
    time.sleep(1.2)
    points = client.get("/history").json()["points"]
    assert points and all(len(point) == 5 for point in points)
    times = [point[0] for point in points]
    totals = [point[1] for point in points]
    assert times == sorted(times) and totals == sorted(totals)  # totals only grow
