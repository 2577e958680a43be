"""Serving speed: haj's server against a bare FastAPI + pydantic baseline, measured with wrk.

    .venv/bin/python bench/serve.py [--seconds 5] [--keep]

What it does, all on 127.0.0.1 in a temporary workspace:
1. creates two breast_cancer projects with `haj`: one trained with logistic_regression (scaled, as
   every haj pipeline), one with a 100-tree random forest (added through the project's model.py);
2. prints each model's raw in-process predict time for one row (the floor: no HTTP at all);
3. starts a bare FastAPI app (a pydantic body, the array built from it, pipeline.predict_proba)
   on plain uvicorn (asyncio + h11), the reference a typical hand-written server reaches;
4. starts haj's server (`haj run --detach`: uvloop + httptools, orjson, every monitor on:
   Prometheus counters and histogram, latency window, prediction log);
5. loads each with wrk (single-row POSTs) at concurrency 1 and 16 and prints req/s and p50/p99.

The issue's reference figures for `mlflow models serve` 3.17 on the same model and machine class
(240-310 req/s at c1, ~270 at c16) are printed for comparison: MLflow is not installed here.
Every process started is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MLFLOW_C1 = (240, 310)
MLFLOW_C16 = 270

RF_MODEL_PY = """
from sklearn.ensemble import RandomForestClassifier


def models():
    return {"rf100": RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)}
"""

BASELINE_APP = """
import sys

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import create_model

bundle = joblib.load(sys.argv[1])
names = [f["name"] for f in bundle["features"]]
pipeline = bundle["pipeline"]
Record = create_model("Record", **{f"f{i}": (float, ...) for i in range(len(names))})
app = FastAPI()


@app.post("/predict")
def predict(record: Record):
    row = np.array([[getattr(record, f"f{i}") for i in range(len(names))]])
    proba = pipeline.predict_proba(row)
    return {"prediction": int(proba.argmax()), "probabilities": proba[0].tolist()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="asyncio", http="h11",
                access_log=False, log_level="warning")
"""

WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{body}]]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def haj(home: Path, *args: str) -> str:
    env = {**os.environ, "HAJ_HOME": str(home), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SystemExit(f"haj {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def make_projects(home: Path) -> dict[str, Path]:
    haj(home, "init", "bc-lr", "--example", "breast_cancer")
    haj(home, "retrieve", "bc-lr")
    haj(home, "train", "bc-lr", "-m", "logistic_regression")
    haj(home, "evaluate", "bc-lr")
    haj(home, "init", "bc-rf", "--example", "breast_cancer")
    (home / "bc-rf" / "model.py").write_text(RF_MODEL_PY)
    haj(home, "retrieve", "bc-rf")
    haj(home, "train", "bc-rf", "-m", "rf100")
    haj(home, "evaluate", "bc-rf")
    return {"logistic_regression": home / "bc-lr", "random_forest_100": home / "bc-rf"}


def floor_us(bundle: dict[str, Any], row: list[float]) -> float:
    """Median in-process sklearn pipeline.predict_proba time for one row, in microseconds."""
    import numpy as np

    X = np.array([row])
    return time_us(lambda: bundle["pipeline"].predict_proba(X))


def time_us(call: Any, budget: float = 2.0) -> float:
    """Median time of `call` in microseconds, over as many calls as fit in `budget` seconds."""
    import numpy as np

    started = time.perf_counter()
    for _ in range(5):
        call()
    each = (time.perf_counter() - started) / 5
    n = int(min(2000, max(20, budget / max(each, 1e-9))))
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1e6)


def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def run_wrk(url: str, body: str, connections: int, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(WRK_LUA.format(body=body))
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)

    def pct(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)\b", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def bench_model(
    label: str, project_dir: Path, seconds: int, workdir: Path, with_baseline: bool
) -> dict[str, Any]:
    import joblib
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from engine.project import Project
    from engine.serving import control

    bundle = joblib.load(project_dir / "models" / "champion.joblib")
    names = [f["name"] for f in bundle["features"]]
    import pandas as pd

    data = pd.read_csv(next((project_dir / "data" / "raw").glob("*.csv")))
    row = [float(data[name].iloc[0]) for name in names]
    from engine.serving.model import load, locate_champion

    served = load(locate_champion(project_dir), project_dir.name)
    results: dict[str, Any] = {
        "model": label,
        "floor_us": floor_us(bundle, row),
        "haj_inprocess_us": time_us(lambda: served.predict(np.array([row]))),
        "scoring": served.fast_path,
    }
    servers: list[tuple[str, str, str]] = []
    started: list[int] = []
    project = Project(project_dir.name, project_dir)
    try:
        if with_baseline:
            port = free_port()
            app_path = workdir / "baseline_app.py"
            app_path.write_text(BASELINE_APP)
            baseline = subprocess.Popen(
                [
                    sys.executable,
                    str(app_path),
                    str(project_dir / "models" / "champion.joblib"),
                    str(port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            started.append(baseline.pid)
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/docs", baseline)
            body = json.dumps({f"f{i}": v for i, v in enumerate(row)})
            servers.append(("bare FastAPI + pydantic", f"{url}/predict", body))
        record = control.start_detached(project, host="127.0.0.1", port=free_port())
        started.append(int(record["pid"]))
        body = json.dumps(dict(zip(names, row, strict=True)))
        servers.append(("haj", f"{record['url']}/predict", body))
        for name, url, body in servers:
            run_wrk(url, body, 16, 1, workdir)  # warm-up
            for connections in (1, 16):
                figures = run_wrk(url, body, connections, seconds, workdir)
                results[(name, connections)] = figures
    finally:
        for pid in started:
            stop_pid(pid)
        control.stop(project)
    return results


def report(results: dict[str, Any], with_baseline: bool) -> None:
    label = results["model"]
    print(f"\n== {label} (breast_cancer, 30 features, single-row requests) ==")
    floor_ms = results["floor_us"] / 1000
    print(
        f"  in-process, one row: sklearn pipeline.predict_proba (the floor) "
        f"{results['floor_us']:.0f} us; haj's scoring ({results['scoring']}) "
        f"{results['haj_inprocess_us']:.0f} us"
    )
    print(f"  {'server':<26}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for key, figures in results.items():
        if not isinstance(key, tuple):
            continue
        name, connections = key
        errors = figures["non2xx"] + (1 if figures["socket_errors"] else 0)
        print(
            f"  {name:<26}{connections:>5}{figures['rps']:>10.0f}{figures['p50_ms']:>9.3f}"
            f"{figures['p99_ms']:>9.3f}{errors:>8}"
        )
    haj1, haj16 = results[("haj", 1)], results[("haj", 16)]
    print(
        f"  haj p50 at c1 minus the floor: {haj1['p50_ms'] - floor_ms:+.3f} ms; minus haj's own "
        f"in-process scoring (HTTP + validation + monitoring): "
        f"{haj1['p50_ms'] - results['haj_inprocess_us'] / 1000:.3f} ms"
    )
    if with_baseline:
        base16 = results[("bare FastAPI + pydantic", 16)]
        print(f"  haj / bare FastAPI at c16: {haj16['rps'] / base16['rps']:.2f}x")
        print(
            f"  mlflow models serve 3.17 (the issue's figures, not run here): {MLFLOW_C1[0]}-"
            f"{MLFLOW_C1[1]} req/s at c1, ~{MLFLOW_C16} at c16 -> haj at c16 = "
            f"{haj16['rps'] / MLFLOW_C16:.1f}x MLflow (goal >= 5x); haj p50 at c1 = "
            f"{haj1['p50_ms']:.3f} ms (goal < 1 ms)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="haj-bench-"))
    try:
        print(f"training in {workdir} ...", flush=True)
        projects = make_projects(workdir / "ws")
        print(
            textwrap.dedent(f"""\
            machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; wrk on loopback,
            {args.seconds} s per measurement, 1 server worker""")
        )
        for i, (label, path) in enumerate(projects.items()):
            results = bench_model(label, path, args.seconds, workdir, with_baseline=i == 0)
            report(results, with_baseline=i == 0)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
