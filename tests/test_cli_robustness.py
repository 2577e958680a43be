"""The CLI when things go wrong around it: SIGTERM, Ctrl-D at a prompt, a damaged registry, a
workspace that is a file, user code raising multi-line errors; and config values that must not
leak (credentials in a URL) or be misread (a relative path, a human title, .env comments)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fs_snapshot import changes, snapshot
from tests.support import Result, call_haj, on_terminal
from tests.support.procs import alive, descendants, running_pids, wait_for_log
from tests.support.training import runs_by_label, start_training


@pytest.mark.e2e
def test_sigterm_cancels_training_like_ctrl_c_and_leaves_no_worker(
    haj: Callable[..., Result], trained_home: Path, slow_cancer: Path
) -> None:
    """`timeout 60 haj train ...`, a supervisor or `kill` must not leave the runner training on
    its own (and writing to the store) after haj has gone."""
    child = start_training(trained_home, "logistic_regression", "slow_a")
    try:
        wait_for_log(slow_cancer, "(logistic_regression-2) proc-0001] finished", "(slow_a-1)")
        (runner_pid,) = running_pids(slow_cancer / "haj.db")
        workers = descendants(runner_pid)
        assert workers  # the joblib workers
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, out + err
    assert err.strip().splitlines() == [
        "haj: error: train cancelled; unfinished work was recorded as cancelled"
    ]
    runs = runs_by_label(haj)
    assert runs["logistic_regression-2"]["status"] == "finished"
    assert runs["slow_a-1"]["status"] == "cancelled"
    deadline = time.monotonic() + 5
    left = [p for p in (runner_pid, *workers) if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    assert left == [], "the runner or its workers outlived haj"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "prompt"),
    [
        (("init", "asked"), "Prediction type"),
        (("delete", "cancer"), "Delete project"),
        (("config", "cancer", "-p"), "Prediction type"),
        (("config", "cancer", "--api-key"), "API key"),
    ],
)
def test_ctrl_d_at_a_prompt_is_one_line_and_changes_nothing(
    trained_home: Path, args: tuple[str, ...], prompt: str
) -> None:
    before = snapshot(trained_home)
    code, output = on_terminal(trained_home, list(args), [(prompt, "\x04")])  # Ctrl-D
    assert code == 1, output
    assert "haj: error: no answer (end of input): nothing was changed" in output
    assert "Traceback" not in output
    after = snapshot(trained_home)
    assert before == after, changes(before, after)


def test_a_damaged_registry_is_one_line_and_the_project_can_still_be_deleted(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    (trained_home / "cancer" / "haj.db").write_bytes(b"this is not a database" * 100)
    for args in (
        ["status"],
        ["runs"],
        ["evaluate"],
        ["data"],
        ["retrieve"],
        ["train", "-m", "knn"],
    ):
        result = haj(args[0], "cancer", *args[1:])
        assert result.code != 0, args
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("haj: error: "), (args, result.err)
        assert "haj.db" in lines[0] and "Traceback" not in result.err
    deleted = haj("delete", "cancer", "--yes")
    assert deleted.code == 0, deleted.text
    assert not (trained_home / "cancer").exists()


def test_a_workspace_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    for args in (["init", "q", "-p", "regression"], ["list"]):
        result = call_haj(tmp_path, "--home", str(afile), *args)
        assert result.code == 2, result.err
        assert result.err.strip() == (
            f"haj: error: the workspace {afile} is a file, not a directory: choose another --home"
        )
    assert afile.read_text() == "not a directory"


def test_credentials_in_the_data_url_are_never_printed(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    url = "http://bob:hunter2@127.0.0.1:9/data.csv?token=abc123&page=2"
    result = haj("config", "cancer", "--url", url)
    assert result.code == 0, result.text
    shown = haj("config", "cancer")
    as_json = haj("config", "cancer", "--json")
    for output in (result.text, shown.text, as_json.text):
        assert "hunter2" not in output and "abc123" not in output
    assert "bob:***@127.0.0.1:9/data.csv" in shown.out and "page=2" in shown.out
    assert url in (trained_home / "cancer" / "config.toml").read_text()  # kept for the retriever


@pytest.mark.integration  # retrieve runs in haj's runner
def test_a_relative_data_path_is_taken_from_where_it_was_typed(home: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rows = "\n".join(f"{i},{i * 2.5},{'ab'[i % 2]}" for i in range(40))
    (data_dir / "points.csv").write_text("x,y,label\n" + rows + "\n")

    def haj_in_data_dir(*args: str) -> Result:
        return call_haj(home, *args, cwd=data_dir)

    made = haj_in_data_dir("init", "rel", "-p", "classification", "--url", "points.csv")
    assert made.code == 0, made.err
    assert haj_in_data_dir("config", "rel", "--target", "label").code == 0
    fetched = haj_in_data_dir("retrieve", "rel")
    assert fetched.code == 0, fetched.err
    assert "new raw version raw-0001" in fetched.out
    config = (home / "rel" / "config.toml").read_text()
    assert f'url = "{data_dir / "points.csv"}"' in config


def test_a_title_with_spaces_names_the_directory_and_is_kept_as_the_title(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    result = haj("config", "cancer", "-t", "Customer Churn 2")
    assert result.code == 0, result.text
    assert "renamed to customer-churn-2" in result.out
    assert (trained_home / "customer-churn-2" / "haj.db").exists()
    listed = {row["name"]: row for row in json.loads(haj("list", "--json").out)}
    assert listed["customer-churn-2"]["title"] == "Customer Churn 2"
    assert listed["customer-churn-2"]["champion"]  # runs and champion moved with it
    refused = haj("config", "customer-churn-2", "-t", "../x")
    assert refused.code == 2 and "invalid project name '../x'" in refused.err


def test_the_api_key_is_written_into_env_keeping_its_comments(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    env_file = trained_home / "cancer" / ".env"
    comments = [line for line in env_file.read_text().splitlines() if line.startswith("#")]
    assert haj("config", "cancer", "--api-key", input="first-key\n").code == 0
    assert haj("config", "cancer", "--api-key", input="second-key\n").code == 0
    text = env_file.read_text()
    kept = [line for line in text.splitlines() if line.startswith("#")]
    assert len(kept) >= len(comments) - 1  # the `# HAJ_API_KEY=` placeholder became the key
    assert text.count("HAJ_API_KEY=") == 1 and "second-key" in text and "first-key" not in text
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_a_multi_line_error_from_user_code_is_printed_as_one_line(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    (trained_home / "cancer" / "retriever.py").write_text(
        "def retrieve(config, secrets):\n"
        "    raise ValueError('the server said no\\nstatus 503\\nretry later')\n"
    )
    result = haj("retrieve", "cancer")
    assert result.code != 0
    assert result.err.strip().splitlines() == [
        "haj: error: retriever.py failed: ValueError: the server said no | status 503 | retry later"
    ]


def test_an_editor_that_fails_is_reported(trained_home: Path, haj: Callable[..., Result]) -> None:
    result = haj("impl", "cancer", "processor", env={"VISUAL": "false", "EDITOR": "false"})
    assert result.code == 1
    assert result.err.strip() == (
        "haj: error: the editor 'false' exited with code 1; processor.py is as it left it"
    )


def test_a_bad_timeout_in_config_is_one_line(
    trained_home: Path, haj: Callable[..., Result]
) -> None:
    config = trained_home / "cancer" / "config.toml"
    config.write_text(config.read_text().replace("timeout = 60", "timeout = -5"))
    result = haj("status", "cancer")
    assert result.code == 5
    assert result.err.strip() == (
        f"haj: error: {config}: data.timeout must be a number of seconds above 0"
    )
