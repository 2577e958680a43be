"""The engine API both faces use: where the CLI and the app show the same thing, it is computed
here once (build settings, deploy defaults, the Server column, the leaderboard's best runs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.api import BuildSettings, ProjectRow, ServerRecord, Workspace
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
    assert build_settings(Options(), project.last_build()) == project.build_settings().to_dict()


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
