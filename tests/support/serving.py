"""The serving tests' helpers: start a real server process on a free 127.0.0.1 port, wait for
it, stop it by PID; the champion bundle and real records to send it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT
from tests.support.procs import free_port, stop_pid


class Server:
    """A `python -m engine.serving` process; `url` once ready."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {timeout} s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_pid(self.process.pid)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.unlink(missing_ok=True)


def start_server(
    project_dir: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> Server:
    port = port or free_port()
    fd, name = tempfile.mkstemp(prefix=f"haj-test-server-{port}-", suffix=".log")
    os.close(fd)
    log = Path(name)
    command = [sys.executable, "-m", "engine.serving", *args]
    if project_dir is not None:
        command += ["--project-dir", str(project_dir), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
    return server


def load_bundle(project_dir: Path) -> dict[str, Any]:
    import joblib

    return joblib.load(project_dir / "models" / "champion.joblib")


def sample_records(project_dir: Path, n: int = 5) -> tuple[list[dict[str, Any]], Any]:
    """n real rows of the project's raw data as records (features only), and their matrix."""
    import pandas as pd

    from engine.features import to_matrix

    bundle = load_bundle(project_dir)
    raw = pd.read_csv(sorted((project_dir / "data" / "processed").glob("*.csv"))[-1])
    names = [f["name"] for f in bundle["features"]]
    frame = raw[names].head(n)
    records = [
        {k: None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame.to_dict(orient="records")
    ]
    records = json.loads(json.dumps(records))  # exactly as they travel over the wire
    return records, to_matrix(frame, bundle["features"])


def sample_record(project_dir: Path) -> dict[str, Any]:
    """The first processed row's features as floats (the all-numeric example projects)."""
    import pandas as pd

    frame = pd.read_csv(sorted((project_dir / "data" / "processed").glob("*.csv"))[-1])
    return {k: float(v) for k, v in frame.drop(columns=["target"]).iloc[0].items()}
