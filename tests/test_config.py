"""`haj config`: rename, prediction switch, data settings, the API key, and how config.toml and
.env are written (atomically, comments kept, secrets only in .env)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.project import Project
from engine.templates import render_file
from tests.support import Result, as_json


def test_rename_moves_the_project_and_keeps_runs_and_champion(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    before = as_json(haj("status", "cancer", "--json"))
    runs_before = as_json(haj("runs", "cancer", "--json"))["runs"]
    result = haj("config", "cancer", "-t", "tumours")
    assert result.code == 0, result.text
    assert "renamed to tumours" in result.out
    assert not (trained_home / "cancer").exists()
    project = trained_home / "tumours"
    assert 'title = "Tumours"' in (project / "config.toml").read_text()
    after = as_json(haj("status", "tumours", "--json"))
    assert after["champion"] == before["champion"]
    assert after["runs"] == before["runs"] == {"finished": 4}
    assert as_json(haj("runs", "tumours", "--json"))["runs"] == runs_before
    assert (project / "models" / "champion.joblib").is_file()
    names = [row["name"] for row in json.loads(haj("list", "--json").out)]
    assert names == ["diabetes", "tumours"]
    assert haj("evaluate", "tumours").code == 0  # model files are found at their new place


def test_switching_prediction_clears_champion_keeps_runs_and_swaps_unedited_model_py(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    project = trained_home / "cancer"
    rendered = render_file("classification", "model.py", {"name": "cancer"})
    assert (project / "model.py").read_text() == rendered
    result = haj("config", "cancer", "-p", "regression")
    assert result.code == 0, result.text
    assert "champion cleared (old runs kept)" in result.out
    config = as_json(haj("config", "cancer", "--json"))["config"]
    assert config["project"]["prediction"] == "regression"
    assert config["training"]["metric"] == "rmse"
    # regression: an unedited model.py was kept because it was compared with the raw template
    assert (project / "model.py").read_text() == render_file(
        "regression", "model.py", {"name": "cancer"}
    )
    status = as_json(haj("status", "cancer", "--json"))
    assert status["champion"] is None and status["runs"] == {"finished": 4}
    assert status["champion_history"][0]["reason"] == "prediction type changed to regression"
    assert not (project / "models" / "champion.joblib").exists()
    assert haj("models", "cancer").out.startswith("Built-in regression models: linear_regression")
    # old classification runs cannot be crowned by a regression metric
    evaluate = haj("evaluate", "cancer")
    assert evaluate.code != 0 and "no finished regression run has rmse" in evaluate.err


def test_switching_prediction_keeps_an_edited_model_py(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    model_py = trained_home / "diabetes" / "model.py"
    edited = model_py.read_text() + "\n# my tweak\n"
    model_py.write_text(edited)
    result = haj("config", "diabetes", "--prediction", "classification")
    assert result.code == 0, result.text
    assert "model.py kept (you edited it)" in result.out
    assert model_py.read_text() == edited


def test_url_target_and_metric_are_written_with_comments_kept(
    haj: Callable[..., Result], home: Path
) -> None:
    assert haj("init", "p", "-p", "regression").code == 0
    result = haj(
        "config", "p", "--url", "https://example.org/d.csv", "--target", "price", "--metric", "mae"
    )
    assert result.code == 0, result.text
    text = (home / "p" / "config.toml").read_text()
    assert 'url = "https://example.org/d.csv"' in text and 'target = "price"' in text
    assert 'metric = "mae"' in text
    assert "# classification | regression" in text  # the template's comments survive
    assert not [f for f in (home / "p").iterdir() if f.name.endswith(".tmp")]
    shown = haj("config", "p").out
    assert "url = 'https://example.org/d.csv'" in shown and "target = 'price'" in shown


def test_api_key_from_stdin_goes_to_env_only_and_is_masked(
    haj: Callable[..., Result], home: Path
) -> None:
    secret = "sk-test-9f8e7d6c5b4a"
    assert haj("init", "p", "-p", "classification").code == 0
    result = haj("config", "p", "--api-key", input=secret + "\n")
    assert result.code == 0, result.text
    env = home / "p" / ".env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert Project("p", home / "p").read_secrets() == {"HAJ_API_KEY": secret}
    shown = haj("config", "p")
    as_data = haj("config", "p", "--json")
    for output in (result.text, shown.text, as_data.text):
        assert secret not in output
    assert "HAJ_API_KEY = ••••••••" in shown.out
    assert json.loads(as_data.out)["secrets"] == {"HAJ_API_KEY": "••••••••"}
    for path in (home / "p").rglob("*"):
        if path.is_file() and path != env:
            assert secret.encode() not in path.read_bytes(), path
    # a key with quotes and backslashes survives the .env round trip
    tricky = "a'b\\c\"d e"
    assert haj("config", "p", "--api-key", input=tricky + "\n").code == 0
    assert Project("p", home / "p").read_secrets()["HAJ_API_KEY"] == tricky


def test_invalid_change_leaves_config_byte_identical(tmp_path: Path) -> None:
    from engine import workspace

    project = workspace.create_project(tmp_path, "p", "classification")
    before = project.config_path.read_bytes()
    with pytest.raises(ConfigError, match=r"serving\.port"):
        project.update_config({"serving": {"port": 70000}})
    with pytest.raises(ConfigError, match="prediction must be one of"):
        project.update_config({"project": {"prediction": "clustering"}})
    assert project.config_path.read_bytes() == before
    assert sorted(p.name for p in project.path.iterdir() if p.name.startswith(".")) == [
        ".env",
        ".gitignore",
    ]


def test_atomic_write_keeps_the_old_file_when_writing_fails_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing and renaming (simulated by a failing fsync) leaves the old
    config.toml whole and no temp file behind."""
    from engine import workspace

    project = workspace.create_project(tmp_path, "p", "classification")
    before = project.config_path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        project.update_config({"data": {"url": "https://example.org/new.csv"}})
    with pytest.raises(OSError):
        project.set_secret("HAJ_API_KEY", "secret-value")
    assert project.config_path.read_bytes() == before
    assert "secret-value" not in project.env_path.read_text()
    assert not [p for p in project.path.iterdir() if p.name.endswith(".tmp")]


def test_corrupt_config_is_one_clear_error(haj: Callable[..., Result], home: Path) -> None:
    assert haj("init", "p", "-p", "classification").code == 0
    config = home / "p" / "config.toml"
    config.write_text(config.read_text().replace("test_size = 0.2", "test_size = 2"))
    result = haj("config", "p")
    assert result.code == 5
    assert result.err.startswith("haj: error: ") and "training.test_size" in result.err
    assert len(result.err.strip().splitlines()) == 1
