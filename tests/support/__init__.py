"""Helpers shared by the tests, defined once: the `haj` command (in-process and as a real
subprocess), trained example workspaces, processes, servers, Docker and AWS (moto).

Test modules import from here (or from conftest's fixtures), never from one another."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FAST_CLASSIFIERS = ["logistic_regression", "decision_tree", "gaussian_nb", "knn"]
FAST_REGRESSORS = ["linear_regression", "ridge", "decision_tree", "knn"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def as_json(result: Result) -> object:
    assert result.code == 0, result.text
    return json.loads(result.out)


# ---- `haj` as a real subprocess: for what only a process shows (signals, the entry point) -------
def run_haj(
    home: Path,
    *args: str,
    input: str | None = None,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> Result:
    """Run `python -m engine ARGS` in a subprocess, as a user would (no terminal attached)."""
    full_env = {
        **os.environ,
        "HAJ_HOME": str(home),
        "COLUMNS": "200",
        "NO_COLOR": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


# ---- `haj` in-process: engine.cli.main(argv), the same answer without starting Python ----------
@contextlib.contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _forget_console() -> None:
    """engine.cli.output caches its rich Console: make a fresh one for each call."""
    output = sys.modules.get("engine.cli.output")
    if output is not None:
        output.console.cache_clear()


def call_haj(
    home: Path,
    *args: str,
    input: str | None = None,
    timeout: float | None = None,  # accepted for run_haj's shape; an in-process call has none
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    """`haj ARGS` through engine.cli.main in this process, with run_haj's environment (HAJ_HOME,
    COLUMNS=200, NO_COLOR=1, no terminal, stdin = `input` or empty, cwd = the repository).

    The exit code is what the entry point would exit with: main()'s return value, or the code of
    a SystemExit (argparse's usage errors, --help, --version). An exception main() lets through
    is printed as a traceback with code 1, as Python would. SIGTERM's handler, the environment,
    stdin and the working directory are restored afterwards."""
    del timeout
    from engine import cli

    out, err = io.StringIO(), io.StringIO()
    main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    previous_stdin, previous_cwd = sys.stdin, os.getcwd()
    changes = {"HAJ_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    try:
        with (
            _environment(changes),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            sys.stdin = io.StringIO(input or "")
            os.chdir(cwd or ROOT)
            _forget_console()
            try:
                code = cli.main(list(args))
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    err.write(f"{exc.code}\n")
                    code = 1
            except Exception:
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.stdin = previous_stdin
        os.chdir(previous_cwd)
        _forget_console()
        if main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return Result(int(code), out.getvalue(), err.getvalue())


# ---- trained example projects -------------------------------------------------------------------
def build_trained(ws: Path, name: str, example: str, models: list[str]) -> Path:
    """`haj init NAME --example EXAMPLE; retrieve; train -m MODELS; evaluate` in workspace `ws`
    (in-process; training itself runs in haj's runner subprocess, as always). Returns `ws`."""
    ws.mkdir(parents=True, exist_ok=True)
    for args in (
        ["init", name, "--example", example],
        ["retrieve", name],
        ["train", name, "-m", *models],
        ["evaluate", name],
    ):
        result = call_haj(ws, *args)
        assert result.code == 0, result.text
        if args[0] == "init":
            # One worker: a process pool costs seconds to start on a busy 2-core machine, more
            # than these small models take. tests/test_interrupts.py covers parallel training.
            config = ws / name / "config.toml"
            config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    return ws


# ---- `haj` on a real terminal (a pseudo-terminal) -----------------------------------------------
def on_terminal(home: Path, args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run `haj ARGS` on a pty; for each (prompt, answer) wait for the prompt, then type."""
    leader, follower = pty.openpty()
    env = {**os.environ, "HAJ_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    child = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=ROOT,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if pending and pending[0][0].encode() in seen:
            os.write(leader, pending.pop(0)[1].encode() + b"\n")
        if child.poll() is not None and not ready:
            break
    code = child.wait(timeout=30)
    os.close(leader)
    return code, seen.decode(errors="replace")
