"""How soon long work starts: a retrieve and a small training, from a fresh runner and from the
warm runner, with the local workers forked from the runner (engine.local_pool) or started as
loky processes.

Why: the app, a scheduler and the test suite start hundreds of retrieves and trainings; each
fresh `python -m engine.runner` imports pandas and scikit-learn (about a second of CPU), and
each loky worker imports them again. The anchor, measured in the same run, is a bare
`python -c "import pandas, sklearn.ensemble"`: what every fresh process pays before any work.

    .venv/bin/python bench/runner_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import local_pool, warm_runner  # noqa: E402
from engine.api import ProjectAPI, Workspace  # noqa: E402

MODELS = ["logistic_regression", "decision_tree", "gaussian_nb", "knn"]


ANCHOR = "anchor: python -c 'import pandas, sklearn.ensemble'"


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def anchor() -> None:
    subprocess.run([sys.executable, "-c", "import pandas, sklearn.ensemble"], check=True)


class Run:
    def __init__(self, index: int) -> None:
        self.id = f"run{index}"
        self.model = "logistic_regression"


def fit_one(task: dict[str, object], X_train, y_train, X_test, y_test) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(X_train, y_train)
    return {"run_id": task["run_id"], "acc": model.score(X_test, y_test)}


def fits(how: str) -> None:
    """The local backend's two ways, in this process: 4 iris fits on 2 workers. This process
    has imported what a runner has (the estimators' modules), as a runner has when it forks."""
    import sklearn.linear_model  # noqa: F401
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    split = tuple(train_test_split(X, y, random_state=0))
    split = (split[0], split[2], split[1], split[3])
    runs = [Run(i) for i in range(4)]
    tasks = {run.id: {"run_id": run.id} for run in runs}
    pick = local_pool._loky_fits if how == "loky" else local_pool._forked_fits
    done = [h for h in pick(runs, tasks, split, 2, fit_one) if h[0] == "finished"]
    assert len(done) == 4
    if how == "loky":  # each session of a runner starts its workers afresh
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)


def project_in(root: Path) -> ProjectAPI:
    project = Workspace(root).create("iris", "classification", example="iris")
    project.retrieve()
    project.process()
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = project_in(Path(tmp))
        train = lambda: project.train(MODELS)  # noqa: E731
        rows.append((ANCHOR, timed(anchor, args.repeat)))
        rows.append(("retrieve, fresh runner", timed(project.retrieve, args.repeat)))
        rows.append(("train 4 models, fresh runner", timed(train, args.repeat)))
        warm_runner.keep_warm()
        warm_runner._get()  # started and ready: what the app has by the time a key is pressed
        rows.append(("retrieve, warm runner", timed(project.retrieve, args.repeat)))
        rows.append(("train 4 models, warm runner, forked workers", timed(train, args.repeat)))
        warm_runner.stop()
    rows.append(
        ("4 fits on 2 loky workers (fresh interpreters)", timed(lambda: fits("loky"), args.repeat))
    )
    rows.append(
        ("4 fits on 2 forked workers (engine.local_pool)", timed(lambda: fits("fork"), args.repeat))
    )
    print(f"iris, {args.repeat} runs each, wall seconds (median, min, max):")
    for label, times in rows:
        print(
            f"  {label:<56} {statistics.median(times):6.2f}  {min(times):6.2f}  {max(times):6.2f}"
        )


if __name__ == "__main__":
    main()
