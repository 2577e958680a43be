"""What the run registry costs beside the training itself.

Why: the issue promises that recording a finished run costs under 5 ms and that crowning the
champion among 10,000 runs takes under 20 ms. This times the real Store on a real haj.db (WAL) in
a temporary project:

- recording: start_runs + finish_run (status, 4 metrics, model file, sha256) per run, 1,000 times;
- crowning: engine.champion.crown() (best run by a metric, sha256 check of its model file, copy to
  the stable path, history row) among 10,000 finished runs, and the store's part of it alone.

    .venv/bin/python bench/store_speed.py [--records 1000] [--runs 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import champion, workspace  # noqa: E402
from engine.store import Store  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def line(name: str, millis: list[float]) -> str:
    return (
        f"{name:<44} median {statistics.median(millis):7.3f} ms   "
        f"p95 {percentile(millis, 0.95):7.3f} ms   max {max(millis):7.3f} ms   (n={len(millis)})"
    )


def metrics(rng: random.Random) -> dict[str, float]:
    mse = rng.uniform(1, 100)
    return {"rmse": mse**0.5, "mae": mse / 3, "mse": mse, "r2": rng.uniform(0, 1)}


def bench_recording(db: Path, count: int) -> tuple[list[float], list[float]]:
    rng = random.Random(1)
    finish, both = [], []
    with Store(db) as store:
        for i in range(count):
            started = time.perf_counter()
            (run,) = store.start_runs(
                session="bench",
                models=[(f"model_{i % 12}", {"alpha": 1.0, "max_iter": 100})],
                prediction="regression",
                data_version="proc-0001",
            )
            middle = time.perf_counter()
            store.finish_run(
                run.id,
                status="finished",
                metrics=metrics(rng),
                fit_seconds=0.1,
                duration_seconds=0.12,
                model_path=f"models/{run.id}.joblib",
                model_sha256="0" * 64,
            )
            done = time.perf_counter()
            finish.append((done - middle) * 1000)
            both.append((done - started) * 1000)
    return finish, both


def fill(project_path: Path, count: int) -> None:
    """`count` finished regression runs sharing one small model file."""
    model = project_path / "models" / "shared.joblib"
    model.write_bytes(b"not really a model, but the bytes are checked" * 100)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    rng = random.Random(2)
    with Store(project_path / "haj.db") as store:
        runs = store.start_runs(
            session="fill",
            models=[(f"model_{i % 12}", {}) for i in range(count)],
            prediction="regression",
            data_version="proc-0001",
        )
        for run in runs:
            store.finish_run(
                run.id,
                status="finished",
                metrics=metrics(rng),
                model_path="models/shared.joblib",
                model_sha256=digest,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--crownings", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="haj-bench-"))
    try:
        project = workspace.create_project(root, "bench", "regression")
        finish, both = bench_recording(root / "record.db", args.records)
        print(line(f"record a finished run (finish_run, n={args.records})", finish))
        print(line("record a run from start (start_runs + finish_run)", both))

        started = time.perf_counter()
        fill(project.path, args.runs)
        print(f"(filled {args.runs} finished runs in {time.perf_counter() - started:.1f} s)")
        store_only, full = [], []
        for i in range(args.crownings):
            metric, higher = ("rmse", False) if i % 2 else ("r2", True)
            with Store(project.db_path) as store:
                began = time.perf_counter()
                best = store.best_runs(metric, higher_is_better=higher, prediction="regression")
                store.crown(best[0][0], metric, best[0][2])
                store_only.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            champion.crown(project, metric)
            full.append((time.perf_counter() - began) * 1000)
        print(line(f"crown among {args.runs} runs (store: best + record)", store_only))
        print(line(f"crown among {args.runs} runs (champion.crown, all)", full))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
