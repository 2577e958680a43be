"""`haj pipeline run` with real runner processes: transient failures retried, bugs not, nothing
new skips the later steps with the reason, an overlapping run refused, notifications delivered
to a real webhook on 127.0.0.1 (and a dead one recorded, never failing the pipeline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine import notify
from engine.project import Project
from tests.support import ROOT, call_haj

pytestmark = pytest.mark.integration

FLAKY_RETRIEVER = """
from pathlib import Path

from sklearn import datasets

FAILURES = {failures}


def retrieve(config, secrets):
    counter = Path("attempts.txt")
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts <= FAILURES:
        {raise_line}
    frame = datasets.load_iris(as_frame=True).frame
    return frame.iloc[: {rows}]
"""


def _project(home: Path, failures: int = 0, raise_line: str = "", rows: int = 150) -> Path:
    result = call_haj(home, "init", "flaky", "-p", "classification", "--example", "iris")
    assert result.code == 0, result.text
    project = home / "flaky"
    raise_line = raise_line or 'raise ConnectionError("connection refused by the source")'
    code = FLAKY_RETRIEVER.format(failures=failures, raise_line=raise_line, rows=rows)
    (project / "retriever.py").write_text(code)
    for setting in ("pipeline.backoff_seconds=0.05", 'pipeline.models=["gaussian_nb"]',
                    "training.n_jobs=1", "pipeline.redeploy=none"):  # fmt: skip
        assert call_haj(home, "config", "flaky", "--set", setting).code == 0
    return project


def _run(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = call_haj(home, "pipeline", "run", "flaky", *args, "--json")
    return result.code, (json.loads(result.out) if result.code == 0 else {"err": result.err})


def _steps(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in answer["steps"]}


def test_transient_failures_are_retried_and_the_pipeline_goes_on(home: Path) -> None:
    project = _project(home, failures=2)
    code, answer = _run(home, "--steps", "retrieve", "process")
    assert code == 0 and answer["status"] == "finished", answer
    retrieve = _steps(answer)["retrieve"]
    assert retrieve["outcome"] == "done" and retrieve["attempts"] == 3
    assert retrieve["mark"] == "✓ retried 2"
    assert (project / "attempts.txt").read_text() == "3"
    assert _steps(answer)["process"]["outcome"] == "done"
    history = json.loads(call_haj(home, "pipeline", "history", "flaky", "--json").out)
    assert history[0]["id"] == answer["id"] and history[0]["steps"][0]["attempts"] == 3


def test_too_many_transient_failures_fail_after_the_configured_attempts(home: Path) -> None:
    _project(home, failures=5)
    result = call_haj(home, "pipeline", "run", "flaky", "--steps", "retrieve", "process")
    assert result.code == 6 and "ConnectionError: connection refused" in result.err
    assert "↻ retrieve: attempt 2" in result.out and "↻ retrieve: attempt 3" in result.out
    [run] = json.loads(call_haj(home, "pipeline", "history", "flaky", "--json").out)
    assert run["status"] == "failed"
    assert [(s["name"], s["outcome"], s["attempts"]) for s in run["steps"]] == [
        ("retrieve", "failed", 3),
        ("process", "skipped", 0),
    ]
    assert run["steps"][1]["detail"] == "not run: retrieve did not finish"


def test_a_bug_in_the_retriever_fails_at_once(home: Path) -> None:
    project = _project(home, failures=9, raise_line='raise KeyError("price")')
    result = call_haj(home, "pipeline", "run", "flaky")
    assert result.code == 6 and "retriever.py failed: KeyError: 'price'" in result.err
    assert (project / "attempts.txt").read_text() == "1"  # not retried
    [run] = json.loads(call_haj(home, "pipeline", "history", "flaky", "--json").out)
    assert run["steps"][0]["attempts"] == 1 and run["status"] == "failed"


def test_unchanged_data_skips_the_later_steps_with_the_reason(home: Path) -> None:
    _project(home)
    code, first = _run(home)
    assert code == 0, first
    assert _steps(first)["retrain"]["outcome"] == "done"  # no champion yet: one is crowned
    code, second = _run(home)
    steps = _steps(second)
    assert steps["retrieve"]["detail"].startswith("nothing new")
    for name in ("process", "check", "retrain"):
        assert (steps[name]["outcome"], steps[name]["detail"]) == ("skipped", "no new data")
    assert second["summary"] == "no new data"
    status = call_haj(home, "status", "flaky")
    assert "pipeline   last run" in status.out and "(manual): finished: no new data" in status.out
    listed = json.loads(call_haj(home, "list", "--json").out)
    assert listed[0]["pipeline"].startswith("✓ ")
    code, forced = _run(home, "--force")
    assert _steps(forced)["retrain"]["outcome"] == "done"
    assert "challenger not better" in _steps(forced)["retrain"]["detail"]


def test_a_second_run_at_once_is_refused(home: Path) -> None:
    project = _project(home, failures=1, raise_line="__import__('time').sleep(30)")
    env = {**os.environ, "HAJ_HOME": str(home)}
    first = subprocess.Popen(
        [sys.executable, "-m", "engine", "pipeline", "run", "flaky", "--steps", "retrieve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (project / "attempts.txt").exists():
            assert time.monotonic() < deadline, "the first pipeline never started its retriever"
            time.sleep(0.05)
        second = call_haj(home, "pipeline", "run", "flaky")
        assert second.code == 13
        assert "the pipeline is already running since" in second.err
        assert f"(pid {first.pid})" in second.err
    finally:
        first.terminate()
        first.wait(timeout=30)
    [run] = json.loads(call_haj(home, "pipeline", "history", "flaky", "--json").out)
    assert run["status"] == "cancelled"  # SIGTERM: recorded as such


class Webhook:
    """A webhook on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/T0KEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _set_notify_url(home: Path, url: str) -> None:
    result = call_haj(home, "config", "flaky", "--notify-url", input=url + "\n")
    assert result.code == 0 and url not in result.out + result.err


def test_a_promotion_is_notified_to_the_webhook(home: Path, webhook: Webhook) -> None:
    _project(home)
    _set_notify_url(home, webhook.url)
    code, answer = _run(home)
    assert code == 0, answer
    assert [m["event"] for m in webhook.received] == ["promoted"]
    message = webhook.received[0]
    assert message["text"].startswith("[haj] flaky: ") and message["project"] == "flaky"
    config = (home / "flaky" / "config.toml").read_text()
    assert "T0KEN" not in config and "T0KEN" in (home / "flaky" / ".env").read_text()
    [sent] = notify.recent(Project("flaky", home / "flaky"))
    assert (sent["event"], sent["status"], sent["attempts"]) == ("promoted", "sent", 1)


def test_a_failure_is_notified_and_an_unreachable_hook_is_recorded_not_raised(
    home: Path, webhook: Webhook
) -> None:
    _project(home, failures=9, raise_line='raise KeyError("price")')
    _set_notify_url(home, webhook.url)
    assert _run(home)[0] == 6
    assert [m["event"] for m in webhook.received] == ["failed"]
    assert "KeyError" in webhook.received[0]["text"]
    project = Project("flaky", home / "flaky")
    project.set_secret("HAJ_NOTIFY_URL", "http://127.0.0.1:9/hook/T0KEN")  # nothing listens
    waits: list[float] = []
    record = notify.notify(project, "drift", "dataset drift", sleep=waits.append)
    assert record is not None and record["status"] == "failed" and record["attempts"] == 3
    assert waits == [1.0, 2.0] and "T0KEN" not in (record["error"] or "")
    assert notify.recent(project)[0]["status"] == "failed"


def test_the_config_refuses_steps_haj_cannot_run(home: Path) -> None:
    _project(home)
    report = call_haj(home, "config", "flaky", "--set", 'pipeline.steps=["retrieve", "report"]')
    assert report.code == 0, report.text  # haj report exists: the step is accepted
    unknown = call_haj(home, "config", "flaky", "--set", 'pipeline.steps=["retreive"]')
    assert unknown.code == 5 and "unknown step 'retreive'" in unknown.err
    retries = call_haj(home, "config", "flaky", "--set", "pipeline.retries.retrieve=5")
    assert retries.code == 0, retries.text
    assert "retrieve = 5" in (home / "flaky" / "config.toml").read_text()
    bad = call_haj(home, "config", "flaky", "--set", "pipeline.when=sometimes")
    assert bad.code == 5 and "pipeline.when must be one of" in bad.err
