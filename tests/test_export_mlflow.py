"""`haj export NAME --mlflow URI` against a real MLflow tracking server (engine.export_mlflow).

The server is a real `mlflow server` on 127.0.0.1 (a free port, SQLite backend, artifacts proxied
to a temporary folder, telemetry off), started once for the module and stopped by its pid; what
haj sent is read back through MLflow's REST API (runs/search, metrics/get-history, artifacts),
not through the client haj used.

Skipped unless both are there:
- MLflow's client in this environment (haj's `mlflow` extra: `pip install -e '.[mlflow]'`), since
  the export runs in-process;
- an MLflow server: `HAJ_MLFLOW_SERVER` naming an `mlflow` executable (e.g. one in its own
  virtualenv: `python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow`,
  then `HAJ_MLFLOW_SERVER=/tmp/mlflow-venv/bin/mlflow`), or the full `mlflow` package installed
  here. The full package would downgrade pyarrow in haj's environment, hence its own venv.

The tests that need no server (the mapping, the missing extra) always run."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store import Store
from tests.support import Result, as_json
from tests.support.procs import free_port

pytestmark = pytest.mark.xdist_group("mlflow")  # one server for the module, on one worker

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # MLflow's usage telemetry (mlflow.telemetry)
    "DO_NOT_TRACK": "true",  # the same, by the common convention MLflow also honours
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no background job workers (huey)
}
START_TIMEOUT = 120  # seconds; about 10 s here (creating the SQLite schema is most of it)


def _server_command() -> list[str] | None:
    named = os.environ.get("HAJ_MLFLOW_SERVER")
    if named:
        return [named]
    try:
        metadata.distribution("mlflow")  # the full package (mlflow-skinny has no server)
    except metadata.PackageNotFoundError:
        return None
    return [sys.executable, "-m", "mlflow"]


def _client_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


needs_client = pytest.mark.skipif(
    not _client_installed(),
    reason="MLflow's client is not installed: pip install -e '.[mlflow]'",
)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on a free 127.0.0.1 port; its URL."""
    if not _client_installed():
        pytest.skip("MLflow's client is not installed: pip install -e '.[mlflow]'")
    command = _server_command()
    if command is None:
        pytest.skip(
            "no MLflow server: set HAJ_MLFLOW_SERVER to an `mlflow` executable (e.g. from "
            "`pip install mlflow` in its own venv), or install the full mlflow package"
        )
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = root / "server.log"
    args = [
        *command,
        "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--serve-artifacts",
    ]  # fmt: skip
    env = {**os.environ, **TELEMETRY_OFF}
    with open(log, "wb") as out:
        server = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        _wait_healthy(url, server, log)
        sys.stderr.write(f"mlflow server up in {time.monotonic() - started:.1f}s\n")
        yield url
    finally:
        _stop_group(server)


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"mlflow server did not answer: {log.read_text(errors='replace')}")


def _stop_group(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the server and the uvicorn worker it started, in a
    session of their own), SIGKILL it after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


# ---- reading MLflow back through its REST API ----------------------------------------------------
def _api(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(method, f"{url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def _experiment_id(url: str, name: str) -> str:
    found = _api(url, "GET", "experiments/get-by-name", params={"experiment_name": name})
    return found["experiment"]["experiment_id"]


def _runs(url: str, experiment: str) -> dict[str, dict[str, Any]]:
    """haj run id -> {"id", "name", "status", "params", "metrics", "tags"} of the experiment."""
    body: dict[str, Any] = {"experiment_ids": [_experiment_id(url, experiment)], "max_results": 500}
    found = _api(url, "POST", "runs/search", json=body).get("runs", [])
    out: dict[str, dict[str, Any]] = {}
    for run in found:
        data = run["data"]
        tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        haj_id = tags["haj.run_id"]
        assert haj_id not in out, f"two MLflow runs for haj run {haj_id}"
        out[haj_id] = {
            "id": run["info"]["run_id"],
            "name": run["info"]["run_name"],
            "status": run["info"]["status"],
            "params": {p["key"]: p["value"] for p in data.get("params", [])},
            "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
            "tags": tags,
        }
    return out


def _artifacts(url: str, run_id: str, path: str = "") -> set[str]:
    listed = _api(url, "GET", "artifacts/list", params={"run_id": run_id, "path": path})
    return {f["path"] for f in listed.get("files", [])}


def _download(url: str, experiment_id: str, run_id: str, path: str) -> bytes:
    """An artifact's bytes through the server's artifact proxy."""
    response = httpx.get(
        f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{path}",
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.content


# ---- what the store says the export must hold ----------------------------------------------------
def _expected(project: Path) -> dict[str, dict[str, Any]]:
    """haj run id -> params, metrics and tags as haj's store has them, for the runs a default
    export sends (the finished runs of the current data version, and the champion)."""
    with Store(project / "haj.db") as store:
        champion = store.champion()
        assert champion is not None
        runs = [r for r in store.runs(status="finished")]
        tags = store.tags([r.id for r in runs])
    out = {}
    for run in runs:
        metrics = dict(run.metrics)
        metrics.update({f"{k}_std": v for k, v in run.metrics_std.items()})
        test = run.test_metrics if run.cv_folds else run.metrics
        metrics.update({f"test_{k}": v for k, v in test.items()})
        out[run.id] = {
            "label": run.label,
            "params": {
                k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else str(v)
                for k, v in run.params.items()
            },
            "metrics": metrics,
            "tags": {
                **tags.get(run.id, {}),
                "haj.run_id": run.id,
                "haj.model": run.model,
                "haj.data_version": run.data_version,
                "haj.project": project.name,
            },
            "champion": run.id == champion.run_id,
            "model_path": run.model_path,
            "sha256": run.model_sha256,
        }
    return out


@pytest.fixture
def cancer(trained_home: Path, haj: Callable[..., Result]) -> Path:
    """The trained 'cancer' project with one cross-validated run more (metrics with a std and
    test scores) and a tag of the user's."""
    result = haj("train", "cancer", "-m", "knn", "--cv", "3")
    assert result.code == 0, result.text
    project = trained_home / "cancer"
    with Store(project / "haj.db") as store:
        first = store.runs(status="finished")[-1]
        store.set_tags(first.id, {"owner": "ana", "purpose": "export test"})
    return project


# ---- the tests -----------------------------------------------------------------------------------
def test_export_lands_in_a_real_mlflow_server_and_a_second_adds_nothing(
    cancer: Path, haj: Callable[..., Result], mlflow_server: str
) -> None:
    url = mlflow_server
    first = as_json(haj("export", "cancer", "--mlflow", url, "--experiment", "e1", "--json"))
    expected = _expected(cancer)
    assert {r["run_id"] for r in first["runs"]} == set(expected)
    assert all(r["action"] == "created" and not r["notes"] for r in first["runs"]), first
    assert first["counts"] == {"created": len(expected), "updated": 0, "unchanged": 0}
    champion = next(e["label"] for e in expected.values() if e["champion"])
    assert first["champion"] == champion

    found = _runs(url, "e1")
    assert set(found) == set(expected)
    experiment_id = _experiment_id(url, "e1")
    for haj_id, want in expected.items():
        got = found[haj_id]
        assert got["name"] == want["label"]
        assert got["status"] == "FINISHED"
        assert got["params"] == want["params"]
        assert got["metrics"] == pytest.approx(want["metrics"], rel=0, abs=0)
        assert want["tags"].items() <= got["tags"].items()
        assert (got["tags"].get("haj.champion") == "true") == want["champion"]
        # the model: haj's bundle, byte for byte, and an MLflow sklearn model
        bundle = f"haj/{Path(want['model_path']).name}"
        assert bundle in _artifacts(url, got["id"], "haj")
        data = _download(url, experiment_id, got["id"], bundle)
        assert hashlib.sha256(data).hexdigest() == want["sha256"]
        assert "model/MLmodel" in _artifacts(url, got["id"], "model")
    cv = [e for e in expected.values() if any(k.endswith("_std") for k in e["metrics"])]
    assert cv, "the fixture's cross-validated run is missing"
    tagged = [e for e in expected.values() if e["tags"].get("owner") == "ana"]
    assert len(tagged) == 1

    second = as_json(haj("export", "cancer", "--mlflow", url, "--experiment", "e1", "--json"))
    assert {r["action"] for r in second["runs"]} == {"unchanged"}, second
    assert {r["mlflow_run_id"] for r in second["runs"]} == {r["id"] for r in found.values()}
    assert _runs(url, "e1").keys() == found.keys()  # no duplicate run (_runs asserts it too)
    run = found[next(iter(expected))]
    history = _api(
        url, "GET", "metrics/get-history", params={"run_id": run["id"], "metric_key": "acc"}
    )
    assert len(history["metrics"]) == 1  # the metric was not logged twice


def test_the_champion_mark_follows_a_new_crowning(
    cancer: Path, haj: Callable[..., Result], mlflow_server: str
) -> None:
    url = mlflow_server
    as_json(haj("export", "cancer", "--mlflow", url, "--experiment", "e2", "--json"))
    expected = _expected(cancer)
    old = next(k for k, e in expected.items() if e["champion"])
    new = next(k for k, e in expected.items() if not e["champion"])
    assert haj("evaluate", "cancer", "--run", new).code == 0

    again = as_json(haj("export", "cancer", "--mlflow", url, "--experiment", "e2", "--json"))
    actions = {r["run_id"]: r["action"] for r in again["runs"]}
    assert actions[old] == actions[new] == "updated"
    assert again["champion"] == expected[new]["label"]
    found = _runs(url, "e2")
    marked = [k for k, run in found.items() if run["tags"].get("haj.champion") == "true"]
    assert marked == [new]
    assert "haj.crowned_at" not in found[old]["tags"]

    # a run exported earlier but not this time still loses its mark
    assert haj("evaluate", "cancer", "--run", old).code == 0
    only = as_json(
        haj("export", "cancer", "--mlflow", url, "--experiment", "e2", "--runs", old, "--json")
    )
    assert len(only["unmarked"]) == 1
    found = _runs(url, "e2")
    assert [k for k, run in found.items() if run["tags"].get("haj.champion")] == [old]


def test_the_mlflow_model_predicts_as_haj_bundle(
    cancer: Path, haj: Callable[..., Result], mlflow_server: str
) -> None:
    import joblib
    import mlflow.artifacts
    import mlflow.pyfunc
    import pandas as pd

    url = mlflow_server
    result = as_json(haj("export", "cancer", "--mlflow", url, "--experiment", "e3", "--json"))
    run = next(r for r in result["runs"] if r["champion"])
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{run['mlflow_run_id']}/model",
        tracking_uri=url,
        dst_path=str(cancer.parent / "downloaded"),
    )
    model = mlflow.pyfunc.load_model(local)
    bundle = joblib.load(cancer / "models" / "champion.joblib")
    names = [f["name"] for f in bundle["features"]]
    frame = pd.read_csv(next((cancer / "data" / "raw").glob("*.csv")))[names].head(20)
    with pytest.warns(UserWarning, match="feature names"):  # fitted on arrays, as haj does
        served = model.predict(frame)
    assert list(served) == list(bundle["pipeline"].predict(frame.to_numpy()))


def test_a_model_file_changed_since_training_stays_home(
    trained_home: Path, haj: Callable[..., Result], mlflow_server: str
) -> None:
    """Only the bytes haj trained leave, and only they are unpickled (sha256 first)."""
    project = trained_home / "cancer"
    with Store(project / "haj.db") as store:
        run = next(r for r in store.runs(status="finished") if r.model_path)
    with open(project / run.model_path, "ab") as handle:
        handle.write(b"changed")
    result = as_json(
        haj("export", "cancer", "--mlflow", mlflow_server, "--experiment", "e4", "--runs", run.id,
            "--json")
    )  # fmt: skip
    (done,) = result["runs"]
    assert done["action"] == "created"
    bundle = f"haj/{Path(run.model_path).name}"
    assert bundle not in done["artifacts"] and "model" not in done["artifacts"]
    assert any("does not hash to the sha256 recorded" in note for note in done["notes"])
    assert "model" not in _artifacts(mlflow_server, done["mlflow_run_id"])
    assert bundle not in _artifacts(mlflow_server, done["mlflow_run_id"], "haj")


@needs_client
def test_an_unreachable_server_is_one_line_and_exit_6(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    result = haj("export", "cancer", "--mlflow", f"http://127.0.0.1:{free_port()}")
    assert result.code == 6, result.text
    assert result.err.startswith("haj: error: cannot reach the MLflow tracking server at ")
    assert result.err.count("\n") == 1
    assert result.out == ""


def test_without_mlflow_the_export_says_how_to_install_it(
    trained_home: Path, haj: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("mlflow", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, module, None)  # import mlflow fails, as uninstalled
    result = haj("export", "cancer", "--mlflow", "http://127.0.0.1:5000")
    assert result.code == 9, result.text
    assert result.err == (
        "haj: error: exporting to MLflow needs MLflow's client, which is not installed: "
        "pip install 'haj[mlflow]' (or pip install mlflow-skinny)\n"
    )


def test_no_tracking_server_named_is_a_usage_error(
    trained_home: Path, haj: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = haj("export", "cancer")
    assert result.code == 2, result.text
    assert "give --mlflow URI" in result.err


@pytest.mark.unit
def test_record_of_maps_params_metrics_and_tags() -> None:
    from engine.export_mlflow import mlflow_key, record_of
    from engine.store import Champion, Run

    run = Run(
        id="abc123", session="s1", model="knn", seq=2, status="finished",
        prediction="classification", data_version="proc-0001",
        params={"n_neighbors": 5, "weights": None, "grid": [1, 2], "a+b": True},
        error=None, started_at="2026-01-01T00:00:00.000+00:00",
        finished_at="2026-01-01T00:00:01.000+00:00", fit_seconds=0.1, duration_seconds=0.2,
        model_path="models/abc123.joblib", model_sha256="f" * 64, pid=None,
        metrics={"acc": 0.9}, metrics_std={"acc": 0.01}, test_metrics={"acc": 0.95},
        cv_folds=3, test_rows=30, notes={"roc_auc": "not computed: one class"},
    )  # fmt: skip
    crowned = Champion("abc123", "acc", 0.9, None, "2026-01-02T00:00:00+00:00", "knn")
    record = record_of("cancer", run, {"owner": "ana", "x" * 300: "long"}, crowned)
    assert record.params == {
        "n_neighbors": "5",
        "weights": "None",
        "grid": "[1, 2]",
        "a_b": "True",
    }
    assert record.metrics == {"acc": 0.9, "acc_std": 0.01, "test_acc": 0.95}
    assert record.tags["owner"] == "ana"
    assert record.tags["x" * 250] == "long"
    assert record.tags["haj.note.roc_auc"] == "not computed: one class"
    assert record.tags["haj.champion"] == "true"
    assert record.tags["haj.label"] == "knn-2"
    assert "haj.refit_of" not in record.tags  # None is left out
    assert any("'a+b' is exported as 'a_b'" in note for note in record.notes)
    # a run without CV: its metrics are test scores, and say so under both names
    without_cv = Run(**{**run.__dict__, "cv_folds": None, "metrics_std": {}, "test_metrics": {}})
    plain = record_of("cancer", without_cv, {})
    assert plain.metrics == {"acc": 0.9, "test_acc": 0.9}
    assert "haj.champion" not in plain.tags
    assert mlflow_key("a//b") == "a__b"
    assert mlflow_key("ok/key.name-1 x:y") == "ok/key.name-1 x:y"
