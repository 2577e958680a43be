"""How fast the `haj` CLI answers: `haj list` over 50 projects and `haj --version`.

Why: the issue promises `haj list` over 50 projects in under 0.3 s (mlflow's CLI needs about 3.4 s
just to print its version). This builds a throw-away workspace of 50 projects, a third of them with
data versions, runs and a champion recorded in their haj.db, then times the real `haj` entry point
wall-clock over repeated runs and prints the median and p95.

    .venv/bin/python bench/cli_speed.py [--projects 50] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import workspace  # noqa: E402
from engine.store import Store  # noqa: E402


def build_workspace(root: Path, count: int) -> None:
    """`count` projects; every third one has 2 data versions, 12 finished runs and a champion."""
    for i in range(count):
        prediction = "classification" if i % 2 == 0 else "regression"
        project = workspace.create_project(root, f"project-{i:02d}", prediction)
        if i % 3:
            continue
        metric = "acc" if prediction == "classification" else "rmse"
        with Store(project.db_path) as store:
            for seq in (1, 2):
                store.add_data_version(
                    kind="raw",
                    sha256=f"{i}-{seq}",
                    size=10,
                    fmt="csv",
                    rows=5,
                    columns=2,
                    source="bench",
                    parent=None,
                    path_for=lambda s: f"data/raw/v{s:04d}.csv",
                    write=lambda rel: None,
                )
            runs = store.start_runs(
                session="bench",
                models=[(f"model_{m}", {}) for m in range(12)],
                prediction=prediction,
                data_version="raw-0001",
            )
            for n, run in enumerate(runs):
                store.finish_run(run.id, status="finished", metrics={metric: 0.5 + n / 100})
            store.crown(runs[-1].id, metric, 0.61)


def time_command(
    args: list[str], env: dict[str, str], repeat: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of each run.

    CPU time is reported too because wall-clock on a shared machine mostly measures the load.
    """
    haj = [str(Path(sys.executable).with_name("haj"))]
    if not Path(haj[0]).exists():
        haj = [sys.executable, "-m", "engine"]
    wall, cpu = [], []
    subprocess.run(haj + args, env=env, capture_output=True, check=True)  # warm the file cache
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(haj + args, env=env, capture_output=True, check=True)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, cpu


def report(name: str, timings: tuple[list[float], list[float]]) -> None:
    for kind, values in zip(("wall", "cpu"), timings, strict=True):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            f"{name:<24} {kind:<4} median {statistics.median(ordered) * 1000:7.1f} ms   "
            f"p95 {p95 * 1000:7.1f} ms   min {ordered[0] * 1000:7.1f} ms   (n={len(ordered)})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="haj-bench-"))
    try:
        build_workspace(root, args.projects)
        env = {**os.environ, "HAJ_HOME": str(root), "COLUMNS": "200"}
        # As on a user's machine, Python keeps compiled bytecode (__pycache__) between runs; a
        # PYTHONDONTWRITEBYTECODE environment would recompile haj's modules on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        print(
            f"workspace: {args.projects} projects in {root}; load average {os.getloadavg()[0]:.1f}"
        )
        report("haj --version", time_command(["--version"], env, args.repeat))
        report(f"haj list ({args.projects})", time_command(["list"], env, args.repeat))
        report(
            f"haj list --json ({args.projects})", time_command(["list", "--json"], env, args.repeat)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
