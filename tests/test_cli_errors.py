"""Every user error, run as a user runs it: one line `haj: error: ...`, a non-zero exit, no
traceback, and not one byte changed in the workspace (checked with a tree of content hashes)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fs_snapshot import changes, snapshot
from tests.support import call_haj, run_haj

# (arguments, a fragment of the message, extra environment)
CASES: list[tuple[list[str], str]] = [
    # missing or existing project, bad names
    (["init", "cancer", "-p", "classification"], "already exists"),
    (["init", "../x", "-p", "classification"], "invalid project name '../x'"),
    (["init", "a/b", "-p", "regression"], "invalid project name 'a/b'"),
    (["init", ".hidden", "-p", "regression"], "invalid project name '.hidden'"),
    (["init", "", "-p", "regression"], "cannot be empty"),
    (["init", "nl\n", "-p", "regression"], "invalid project name 'nl\\n'"),
    (["init", "-p", "regression", "--", "-dash"], "invalid project name '-dash'"),
    (["init", "newproj"], "--prediction is required when not on a terminal"),
    (["init", "newproj", "--example", "titanic"], "unknown example 'titanic'"),
    (["init", "newproj", "-p", "regression", "--example", "iris"], "classification dataset"),
    (["delete", "nope", "--yes"], "no project named 'nope'"),
    (["delete", "cancer"], "refusing to delete without confirmation"),
    (["delete", "../cancer", "--yes"], "invalid project name"),
    (["status", "nope"], "no project named 'nope'"),
    (["status", "a/b"], "invalid project name"),
    (["runs", ".hidden"], "invalid project name"),
    (["data", "nope"], "no project named"),
    (["impl", "nope", "model", "--no-edit"], "no project named"),
    # config
    (["config", "nope"], "no project named"),
    (["config", "cancer", "-t", "fresh"], "already exists"),
    (["config", "cancer", "-t", "../x"], "invalid project name"),
    (["config", "cancer", "-t", ""], "cannot be empty"),
    (["config", "cancer", "--metric", "rmse"], "'rmse' is for regression"),
    (["config", "cancer", "--metric", ""], "unknown metric"),
    (["config", "cancer", "--target", ""], "target column cannot be empty"),
    (["config", "cancer", "-p", "banana"], "prediction must be one of"),
    (["config", "cancer", "-d", "not a package!"], "not a package requirement"),
    (["config", "cancer", "--api-key"], "API key must be one non-empty line"),
    # data
    (["retrieve", "nope"], "no project named"),
    (["retrieve", "fresh"], "no data source"),
    (["process", "fresh"], "no data yet"),
    (["process", "cancer", "--version", "raw-0099"], "no raw data version 'raw-0099'"),
    (["process", "cancer", "--version", "proc-0001"], "is a processed version"),
    (["process", "badtarget"], "target column 'nope' not found"),
    (["data", "cancer", "--show", "raw-0099"], "no data version 'raw-0099'"),
    # training and evaluation
    (["train", "fresh"], "no data yet"),
    (
        ["train", "cancer", "-m", "knn", "xgboost"],
        # the valid ones: the built-in catalog, then model.py's candidates
        "unknown model 'xgboost' for classification: choose from logistic_regression, "
        "ridge_classifier, knn, svc, decision_tree, random_forest, extra_trees, gradient_boosting, "
        "hist_gradient_boosting, adaboost, gaussian_nb, balanced_logistic_regression",
    ),
    (["train", "badtarget", "-m", "knn"], "target column 'nope'"),
    (["runs", "cancer", "--metric", "rmse"], "'rmse' is for regression"),
    (["runs", "cancer", "--metric", "bogus"], "unknown metric 'bogus'"),
    (["runs", "cancer", "--limit", "0"], "the limit must be a positive number"),
    (["evaluate", "cancer", "rmse"], "'rmse' is for regression"),
    (["evaluate", "cancer", "bogus"], "unknown metric 'bogus'"),
    (["evaluate", "fresh"], "no runs yet"),
    (["evaluate", "nope"], "no project named"),
    # a corrupt config.toml
    (["config", "corrupt"], "is not valid TOML"),
    (["status", "corrupt"], "is not valid TOML"),
    (["retrieve", "corrupt"], "is not valid TOML"),
    (["train", "corrupt"], "is not valid TOML"),
    (["runs", "corrupt"], "is not valid TOML"),
    (["evaluate", "corrupt"], "is not valid TOML"),
    (["config", "corrupt", "--url", "x.csv"], "is not valid TOML"),
    # the command line itself
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["train"], "the following arguments are required: name"),
    (["init", "x", "-p", "clustering"], "invalid choice: 'clustering'"),
    (["runs", "cancer", "--limit", "many"], "invalid int value"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, trained_cache: dict[str, Path]) -> Path:
    """cancer (trained, crowned), badtarget (its copy whose target column does not exist),
    fresh (no data source), corrupt (config.toml is not TOML)."""
    ws = tmp_path_factory.mktemp("errors")
    shutil.copytree(trained_cache["classification"] / "cancer", ws / "cancer", symlinks=True)
    shutil.copytree(ws / "cancer", ws / "badtarget", symlinks=True)
    config = ws / "badtarget" / "config.toml"
    config.write_text(config.read_text().replace('target = "target"', 'target = "nope"', 1))
    for name in ("fresh", "corrupt"):
        assert call_haj(ws, "init", name, "-p", "classification").code == 0
    (ws / "corrupt" / "config.toml").write_text('[project\ntitle = "unterminated\n')
    return ws


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a) or "''" for a, _ in CASES])
def test_user_error_is_one_line_and_changes_nothing(
    workspace: Path, args: list[str], message: str
) -> None:
    before = snapshot(workspace)
    result = call_haj(workspace, *args, input="" if "--api-key" in args else None)
    after = snapshot(workspace)
    assert result.code != 0, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("haj: error: "), result.err
    assert message in lines[0]
    assert "Traceback" not in result.text
    assert after == before, changes(before, after)


@pytest.mark.e2e
def test_error_exit_codes_tell_kinds_apart(workspace: Path) -> None:
    """Through the real entry point (`python -m engine`): the exit code a shell sees."""
    assert run_haj(workspace, "status", "nope").code == 7  # ProjectNotFound
    assert run_haj(workspace, "init", "cancer", "-p", "regression").code == 4  # ProjectExists
    assert run_haj(workspace, "evaluate", "cancer", "rmse").code == 2  # UsageError
    assert run_haj(workspace, "status", "corrupt").code == 5  # ConfigError
    assert run_haj(workspace, "process", "fresh").code == 6  # DataError


def test_editor_that_does_not_exist_is_an_error(workspace: Path) -> None:
    before = snapshot(workspace)
    result = call_haj(
        workspace, "impl", "cancer", "model", env={"VISUAL": "", "EDITOR": "/nonexistent/ed -w"}
    )
    assert result.code != 0
    assert result.err.strip() == (
        "haj: error: editor '/nonexistent/ed' not found: set $EDITOR (or use --no-edit)"
    )
    assert snapshot(workspace) == before


def test_list_shows_a_broken_project_instead_of_failing(workspace: Path) -> None:
    result = call_haj(workspace, "list", "--json")
    assert result.code == 0, result.text
    import json

    rows = {row["name"]: row for row in json.loads(result.out)}
    assert rows["corrupt"]["error"].startswith("config.toml:")
    assert rows["cancer"]["error"] is None and rows["cancer"]["champion"]
