"""The engine API both faces use: where the CLI and the app show the same thing, it is computed
here once (build settings, deploy defaults, the Server column, the leaderboard's best runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.api import (
    BuildSettings,
    Champion,
    ContainerRow,
    ContainerStatus,
    CrownResult,
    DeploymentRecord,
    ImageRecord,
    ProjectRow,
    ProjectStatus,
    ServerRecord,
    Workspace,
)
from engine.runs import Leaderboard
from engine.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for variable in ("HAJ_BASE_IMAGE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    ws = Workspace(tmp_path / "ws")
    ws.create("churn", "classification", example="breast_cancer")
    return ws


def test_build_settings_default_to_the_public_base_image(workspace: Workspace) -> None:
    assert workspace.project("churn").build_settings() == BuildSettings(
        "python:3.11-slim", wheelhouse=False, network="bridge"
    )


def test_a_local_base_image_builds_offline_on_the_host_network(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HAJ_BASE_IMAGE (printed by scripts/start-dockerd.sh) marks an engine that cannot pull and
    has no bridge: wheels come from the host, the build uses the host's network."""
    monkeypatch.setenv("HAJ_BASE_IMAGE", "haj-base:bookworm")
    assert workspace.project("churn").build_settings() == BuildSettings(
        "haj-base:bookworm", wheelhouse=True, network="host"
    )


def test_the_last_build_wins_over_defaults_and_what_is_said_wins_over_both(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAJ_BASE_IMAGE", "haj-base:bookworm")
    project = workspace.project("churn")
    with Store(project.path / "haj.db") as store:
        store.set_record(
            "image", {"image": "haj/churn:x", "base_image": "debian:12", "wheelhouse": False}
        )
    assert project.build_settings() == BuildSettings("debian:12", False, "bridge")
    assert project.build_settings(wheelhouse=True, network="host") == BuildSettings(
        "debian:12", True, "host"
    )
    assert project.build_settings(base_image="mine:1").base_image == "mine:1"


def test_deploy_builds_with_the_same_settings_as_the_app_and_haj_build(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.deploy.plan import Options, build_settings

    monkeypatch.setenv("HAJ_BASE_IMAGE", "haj-base:bookworm")
    project = workspace.project("churn")
    assert project.last_build() is None
    assert build_settings(Options(), None) == project.build_settings().to_dict()


def test_deploy_defaults_name_no_region_when_none_is_configured(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = workspace.project("churn")
    defaults = project.deploy_defaults()
    assert defaults.region is None and defaults.instance_type == "ml.t2.medium"
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert project.deploy_defaults().region == "eu-north-1"
    assert project.deploy_options().instance_type == defaults.instance_type


def test_the_listing_is_typed_and_its_json_keeps_the_keys(workspace: Workspace) -> None:
    (row,) = workspace.projects()
    assert isinstance(row, ProjectRow) and row.name == "churn" and row.server is None
    assert {"name", "title", "prediction", "runs", "champion", "score", "server"} <= set(
        row.to_dict()
    )


def test_a_server_record_round_trips_as_json() -> None:
    record = ServerRecord(pid=1, host="127.0.0.1", port=8000, url="http://127.0.0.1:8000")
    assert ServerRecord(**record.to_dict()) == record


def test_best_per_model_keeps_the_first_finished_run_of_each_model() -> None:
    def run(rid: str, model: str, status: str, acc: float | None) -> dict[str, object]:
        return {
            "id": rid,
            "model": model,
            "status": status,
            "metrics": {} if acc is None else {"acc": acc},
        }

    board = Leaderboard(
        "acc",
        True,
        ["acc"],
        runs=[
            run("a", "knn", "failed", None),
            run("b", "svc", "finished", 0.97),
            run("c", "knn", "finished", 0.95),
            run("d", "svc", "finished", 0.90),
        ],
        champion={"run_id": "b"},
    )
    assert [r["id"] for r in board.best_per_model()] == ["b", "c"]
    assert board.champion_id == "b"
    assert board.to_dict()["runs"][0]["id"] == "a"


def test_the_app_imports_only_the_engine_api() -> None:
    """haj_tui reaches the engine through engine.api (and the shared events, errors, units):
    a test can hand the app a fake, and nothing the engine computes is computed again."""
    allowed = {"engine.api", "engine.events", "engine.errors", "engine.units"}
    found = set()
    for path in (ROOT / "haj_tui").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\s*(?:from|import)\s+(engine(?:\.[\w.]+)?)", line)
            if match:
                module = match.group(1)
                if module == "engine" and " import " in line:
                    names = line.split(" import ", 1)[1].replace(" ", "").split(",")
                    found |= {f"engine.{n}" for n in names}
                else:
                    found.add(module)
    assert found <= allowed, sorted(found - allowed)


# ---- typed records: to_dict() is the dict the engine made ----------------------------------------
def _trained(project_path: Path, scores: dict[str, float]) -> dict[str, str]:
    """Finished runs with the given acc (and a model file each), straight into the store."""
    from engine.fsutil import sha256_file

    ids = {}
    with Store(project_path / "haj.db") as store:
        runs = store.start_runs(
            session="s",
            models=[(model, {}) for model in scores],
            prediction="classification",
            data_version=None,
        )
        for run in runs:
            path = project_path / "runs" / f"{run.id}.joblib"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(run.id.encode())
            store.finish_run(
                run.id,
                status="finished",
                metrics={"acc": scores[run.model]},
                model_path=str(path.relative_to(project_path)),
                model_sha256=sha256_file(path),
            )
            ids[run.model] = run.id
    return ids


def test_crowning_is_typed_and_its_json_keeps_the_keys(workspace: Workspace) -> None:
    project = workspace.project("churn")
    ids = _trained(project.path, {"knn": 0.9, "svc": 0.95})
    first = project.crown("acc")
    assert isinstance(first, CrownResult) and isinstance(first.champion, Champion)
    assert first.run.id == ids["svc"] and first.run.label == "svc-1" and first.value == 0.95
    assert first.runner_up is not None and first.runner_up.model == "knn"
    assert first.margin == pytest.approx(0.05) and first.previous is None and not first.replaced
    data = first.to_dict()
    assert list(data) == [
        "champion",
        "run",
        "metric",
        "higher_is_better",
        "value",
        "runner_up",
        "margin",
        "previous",
        "path",
        "reason",
        "data_version",
        "ties",
        "noise",
        "caveat",
        "stale",
        "inputs",
    ]
    assert data["run"] == first.run.to_dict() and data["champion"] == first.champion.to_dict()
    assert data["runner_up"] == {"run_id": ids["knn"], "model": "knn", "value": 0.9}
    again = project.crown("acc")
    assert again.previous == first.champion and not again.replaced
    assert again.to_dict()["previous"] == first.champion.to_dict()


def test_status_is_typed_and_its_json_is_the_engines_dict(workspace: Workspace) -> None:
    from engine import status as engine_status

    project = workspace.project("churn")
    _trained(project.path, {"knn": 0.9})
    project.crown("acc")
    image = {"image": "haj/churn:x", "size": 10, "run_id": "r", "built_at": "t", "extra": [1]}
    with Store(project.path / "haj.db") as store:
        store.set_record("image", image)
    status = project.status()
    assert isinstance(status, ProjectStatus)
    assert status.name == "churn" and status.runs == {"finished": 1} and status.server is None
    assert status.champion is not None and status.champion.model == "knn"
    assert status.image_record == ImageRecord("haj/churn:x", size=10, run_id="r", built_at="t")
    assert status.container and "image haj/churn:x" in status.container
    data = status.to_dict()
    assert data == engine_status.project_status(project.project).to_dict()
    assert data["records"] == {"image": image}
    assert ProjectStatus.from_dict(data).to_dict() == data
    assert "deployment" not in data
    # built field by field (a fake), it has the same shape
    rebuilt = ProjectStatus(
        **{f: getattr(status, f) for f in status.__dataclass_fields__ if f != "raw"}
    )
    assert rebuilt == status and rebuilt.to_dict() == data


def test_stored_records_keep_every_key_and_type_the_ones_read() -> None:
    recorded = {
        "target": "sagemaker",
        "region": "eu-west-1",
        "status": "failed",
        "error": "AccessDenied",
        "models": ["m1"],
        "role_created": True,  # no field: kept for --json all the same
    }
    deployment = DeploymentRecord.from_dict(recorded)
    assert deployment.status == "failed" and deployment.models == ["m1"]
    assert deployment.endpoint_name is None and deployment.endpoint_configs == []
    assert deployment.to_dict() == recorded and list(deployment.to_dict()) == list(recorded)
    assert deployment.get("role_created") is True and "role_created" not in repr(deployment)
    assert deployment == DeploymentRecord(
        region="eu-west-1", status="failed", error="AccessDenied", models=["m1"]
    )
    image = ImageRecord.from_dict({"image": "haj/a:1", "tags": ["haj/a:1"], "size": 5})
    assert image.to_dict() == {"image": "haj/a:1", "tags": ["haj/a:1"], "size": 5}
    image.to_dict()["tags"].append("changed")  # a copy: the record is not changed
    assert image.tags == ["haj/a:1"] and image.to_dict()["tags"] == ["haj/a:1"]


def test_the_container_status_keeps_its_json_shape() -> None:
    row = ContainerRow("c1", "haj-a-1234", "haj/a:1", "running", "healthy", "http://x:1", "t")
    status = ContainerStatus([row], ImageRecord.from_dict({"image": "haj/a:1", "size": 5}))
    assert status.running() == row and ContainerStatus().running() is None
    assert status.to_dict() == {
        "containers": [
            {
                "id": "c1",
                "name": "haj-a-1234",
                "image": "haj/a:1",
                "status": "running",
                "health": "healthy",
                "url": "http://x:1",
                "started_at": "t",
            }
        ],
        "image": {"image": "haj/a:1", "size": 5},
    }


def test_server_stats_turn_the_servers_history_into_chart_series() -> None:
    from engine.api import ServerStats

    stats = ServerStats(
        url="http://127.0.0.1:1",
        ready=True,
        history=[[100.0, 0, 0, None, None], [101.0, 10, 1, 2.0, 5.0], [103.0, 30, 1, 3.0, 6.0]],
    )
    assert stats.latency_series() == {"p50 ms": ([-2.0, 0.0], [2.0, 3.0]),
                                      "p95 ms": ([-2.0, 0.0], [5.0, 6.0])}  # fmt: skip
    rate = stats.rate_series()
    assert rate["requests/s"] == ([-2.0, 0.0], [10.0, 10.0])
    assert rate["refused/s"] == ([-2.0, 0.0], [1.0, 0.0])
    assert ServerStats(url="u", ready=True).rate_series() == {}
