"""`haj tune`: trials scored by cross-validation of the training split and recorded as runs of
their study, pruning, the refit scored on the holdout and crowned, resuming a study (after a
SIGTERM too), and the one-line errors. On the trained breast-cancer project (455 training
rows, 114 held out), with fast models and 3 folds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Result, as_json
from tests.support.procs import wait_for_log

# A model whose fits take a moment (so a signal finds a trial under way), a clearly bad half
# of a decision tree's space (a leaf needs 250 of ~300 rows: no split, the majority class), and
# their search spaces, all from the project's own model.py.
MODEL_PY = """
import time

from sklearn.tree import DecisionTreeClassifier


class Sleepy(DecisionTreeClassifier):
    def fit(self, X, y, **kwargs):
        time.sleep(0.2)
        return super().fit(X, y, **kwargs)


def models():
    return {"sleepy": Sleepy(random_state=0)}


def search_space(name, trial):
    if name == "decision_tree":
        bad = trial.suggest_float("bad", 0.0, 1.0) < 0.5
        return {"min_samples_leaf": 250 if bad else 1, "max_depth": 4}
    if name == "sleepy":
        return {"max_depth": trial.suggest_int("max_depth", 1, 6)}
    return None
"""


STOPPED = ["--trials", "200", "--cv", "2", "--study", "stopped"]


def _tune(haj: Callable[..., Result], *args: str) -> dict[str, Any]:
    return as_json(haj("tune", "cancer", *args, "--json"))  # type: ignore[return-value]


def _runs_of(haj: Callable[..., Result], study: str) -> dict[str, dict[str, Any]]:
    """run label -> run (with its tags) of every run tagged with `study`."""
    from engine.store import Store

    home = Path(os.environ["HAJ_HOME"])
    with Store(home / "cancer" / "haj.db", readonly=True) as store:
        tags = store.tags()
        runs = store.runs()
    return {
        run.label: {**run.to_dict(), "label": run.label, "tags": tags[run.id]}
        for run in runs
        if tags.get(run.id, {}).get("study") == study
    }


def _journal_trials(project: Path, study: str) -> list[Any]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = project / "studies" / f"{study}.journal"
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def test_a_tune_records_its_trials_and_a_refit_that_can_be_crowned(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    result = _tune(haj, "-m", "logistic_regression", "--trials", "10", "--cv", "3")
    study = result["study"]
    assert study == "logistic_regression-1" and result["cv"] == 3
    assert result["new_trials"] == len(result["trials"]) == 10
    assert (result["train_rows"], result["test_rows"]) == (455, 114)
    runs = _runs_of(haj, study)
    trials = {label: run for label, run in runs.items() if run["tags"]["trial"] != "refit"}
    assert sorted(int(run["tags"]["trial"]) for run in trials.values()) == list(range(10))
    for run in trials.values():
        # scored by CV of the training split only: no model file, no holdout score
        assert run["model_path"] is None and not run["test_rows"]
        assert run["status"] in ("finished", "cancelled")
        assert set(run["metrics_std"]) == set(run["metrics"]) and run["cv_folds"] <= 3
        if run["status"] == "finished":
            assert run["cv_folds"] == 3
        else:
            assert run["error"].startswith("pruned at fold 2 of 3")
    finished = [r for r in trials.values() if r["status"] == "finished"]
    best = max(finished, key=lambda r: r["metrics"]["acc"])
    assert result["best"]["value"] == pytest.approx(best["metrics"]["acc"])
    # every trial that ran two folds reported its running mean after each
    for trial in _journal_trials(trained_home / "cancer", study):
        assert set(trial.intermediate_values) >= {1} if trial.state.name != "COMPLETE" else True
        assert trial.user_attrs["run_id"] in {r["id"] for r in trials.values()}
    (refit,) = [run for run in runs.values() if run["tags"]["trial"] == "refit"]
    assert refit["status"] == "finished" and refit["test_rows"] == 114 and not refit["cv_folds"]
    assert refit["id"] == result["refit"]["run_id"] and refit["model_path"]
    assert result["refit"]["metrics"]["acc"] == refit["metrics"]["acc"] > 0.9
    import joblib

    bundle = joblib.load(trained_home / "cancer" / refit["model_path"])
    assert bundle["pipeline"][-1].get_params()["C"] == pytest.approx(result["best"]["params"]["C"])
    crowned = haj("evaluate", "cancer", "--run", refit["label"], "--json")
    assert crowned.code == 0, crowned.text
    assert json.loads(crowned.out)["champion"]["run_id"] == refit["id"]
    # a trial keeps no model: crowning by score never picks one
    assert haj("evaluate", "cancer").code == 0


def test_a_study_resumes_where_it_stopped_and_prunes_a_bad_half_of_its_space(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    (trained_home / "cancer" / "model.py").write_text(MODEL_PY)
    first = _tune(haj, "-m", "decision_tree", "--trials", "4", "--cv", "3", "--study", "dt")
    assert [t["trial"] for t in first["trials"]] == [0, 1, 2, 3]
    second = _tune(haj, "-m", "decision_tree", "--trials", "6", "--study", "dt")
    assert second["cv"] == 3 and second["new_trials"] == 6  # the study keeps its folds
    assert [t["trial"] for t in second["trials"]] == list(range(10))
    assert len(_journal_trials(trained_home / "cancer", "dt")) == 10
    runs = _runs_of(haj, "dt")
    assert len([r for r in runs.values() if r["tags"]["trial"] != "refit"]) == 10
    # model.py's space: its bad half (no split possible) stops after two folds of three
    statuses = [t["status"] for t in second["trials"]]
    assert "pruned" in statuses and "finished" in statuses, statuses
    for trial in second["trials"]:
        run = runs[trial["label"]]
        if trial["status"] == "pruned":
            assert trial["params"]["min_samples_leaf"] == 250
            assert run["status"] == "cancelled" and run["cv_folds"] == 2
            assert run["error"].startswith("pruned at fold 2 of 3: acc ")
    assert second["best"]["params"]["min_samples_leaf"] == 1
    # a study is one model on one data version by one metric
    other = haj("tune", "cancer", "-m", "knn", "--study", "dt")
    assert other.code == 2
    assert other.err.strip().splitlines()[-1] == (
        "haj: error: study dt tunes decision_tree, you asked for knn: resume it as it was or "
        "give another --study"
    )


@pytest.mark.e2e
def test_a_tune_stopped_by_sigterm_keeps_its_trials_and_resumes(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    project = trained_home / "cancer"
    (project / "model.py").write_text(MODEL_PY)
    env = {**os.environ, "HAJ_HOME": str(trained_home), "COLUMNS": "200", "NO_COLOR": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "engine", "tune", "cancer", "-m", "sleepy", *STOPPED],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        wait_for_log(project, "(sleepy-3) proc-0001] trial 2 finished", timeout=60)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, out + err
    assert err.strip().splitlines()[-1] == (
        "haj: error: tune cancelled; unfinished work was recorded as cancelled"
    )
    runs = _runs_of(haj, "stopped")
    statuses = sorted(run["status"] for run in runs.values())
    assert set(statuses) <= {"finished", "cancelled"} and statuses.count("cancelled") <= 1
    for run in runs.values():
        if run["status"] == "cancelled":
            assert run["error"].startswith("cancelled by the user at fold")
    trials = _journal_trials(project, "stopped")
    assert "RUNNING" not in {t.state.name for t in trials}  # nothing half-written
    assert len(trials) == len(runs)
    assert not list((project / "studies").glob("*.lock"))
    resumed = _tune(haj, "-m", "sleepy", "--trials", "2", "--study", "stopped")
    assert resumed["new_trials"] == 2 and len(resumed["trials"]) == len(trials) + 2
    assert resumed["refit"]["status"] == "finished"


def test_bad_models_and_options_are_one_line_errors(
    haj: Callable[..., Result], trained_home: Path
) -> None:
    unknown = haj("tune", "cancer", "-m", "nope", "--trials", "2")
    assert unknown.code == 2
    assert (
        unknown.err.strip()
        .splitlines()[-1]
        .startswith(
            "haj: error: unknown model 'nope' for classification: choose from logistic_regression"
        )
    )
    for args, message in [
        (["--trials", "0"], "--trials needs at least 1 trial (got 0)"),
        (["--trials", "-3"], "--trials needs at least 1 trial (got -3)"),
        (["--jobs", "0"], "--jobs needs at least 1 (got 0)"),
        (["--timeout", "0"], "--timeout needs a positive number of seconds (got 0.0)"),
        (["--cv", "1"], "--cv needs at least 2 folds (got 1)"),
        (["--metric", "rmse"], "metric 'rmse' is for regression, but this project does"),
    ]:
        result = haj("tune", "cancer", "-m", "knn", *args)
        assert result.code == 2, (args, result.text)
        assert result.err.count("\n") == 1 and result.err.startswith(f"haj: error: {message}")
    assert not (trained_home / "cancer" / "studies").exists()  # nothing was started


def test_crowning_by_score_compares_only_runs_with_a_model(tmp_path: Path) -> None:
    """A trial is scored by CV and keeps no model: the best score among the runs a crowning
    compares is never one (it could not be served)."""
    from engine.store import Store

    with Store(tmp_path / "haj.db") as store:
        trial, trained = store.start_runs(
            session="s",
            models=[("knn", {}), ("svc", {})],
            prediction="classification",
            data_version="proc-0001",
        )
        store.finish_run(trial.id, status="finished", metrics={"acc": 0.99}, cv_folds=5)
        store.finish_run(
            trained.id, status="finished", metrics={"acc": 0.9}, model_path="models/m.joblib"
        )
        best = store.best_runs("acc", higher_is_better=True, prediction="classification")
        assert [run_id for run_id, _, _ in best] == [trained.id]
        assert store.count_scoring("acc", 0.99, prediction="classification") == 0


# ---- the app's Tune mode (the Train tab), over the fake engine ---------------------------------
@pytest.mark.integration  # the whole app (seconds), though on the fake engine
async def test_the_train_tabs_tune_mode_shows_trials_and_the_best_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """T shows the Train tab's Tune mode (the footer keeps T; x while tuning); there T tunes
    the chosen model: a row per trial as it finishes, the best so far in the chart and the
    log; x cancels a tune; u goes back to the training view, and t from the Tune mode too."""
    import threading

    from haj_tui.app import HajApp
    from haj_tui.screens.project import ProjectScreen
    from haj_tui.tabs.tune import TunePanel
    from haj_tui.widgets.charts import TimeChart
    from haj_tui.widgets.log_view import LogView
    from tests.tui_fake import FakeWorkspace
    from tests.tui_support import footer_shows, no_cursor_blink, show_tab, wait_for, workers_done

    no_cursor_blink(monkeypatch)
    fake = FakeWorkspace.populated()
    project = fake.project("cancer")
    app = HajApp(fake)  # type: ignore[arg-type]
    async with app.run_test(size=(100, 30)) as pilot:
        await app.push_screen(ProjectScreen(project))  # type: ignore[arg-type]
        screen = app.screen
        await show_tab(pilot, screen, "train")

        await footer_shows(pilot, "T Tune")
        await pilot.press("T")
        panel = screen.query_one("#tune-panel", TunePanel)
        await wait_for(pilot, lambda: panel.display, what="the Tune mode")
        await footer_shows(pilot, "T Tune", hidden=("a All/none",))
        await pilot.press("u")  # back, and there again
        await wait_for(pilot, lambda: not panel.display, what="the training view")
        await pilot.press("T")
        await wait_for(pilot, lambda: panel.display, what="the Tune mode")
        assert not [c for c in fake.calls if c[0] == "tune"]  # T showed it, nothing more
        assert panel.chosen() == ("logistic_regression", 20)  # the catalog's first, 20 trials
        await pilot.press("T")
        await wait_for(pilot, lambda: not panel.busy and panel._trials, what="the tune's end")
        assert [c[2:] for c in fake.calls if c[0] == "tune"] == [("logistic_regression", 20)]
        table = panel.query_one("#tune-table")
        assert table.row_count == 20  # type: ignore[attr-defined]
        chart = panel.query_one("#tune-chart", TimeChart)
        xs, best = chart.series["best so far"]
        assert best == sorted(best) and best[-1] == pytest.approx(0.89)  # never worse
        assert 3.0 not in xs  # pruned trials have no final score
        said = " ".join(panel.query_one("#tune-log", LogView).plain_lines)
        assert "best trial 17 acc=0.8900 ± 0.0100 (CV); refit logistic_regression-21" in said
        # a tune held at its first trial: x cancels it, and the state says so
        project.train_gate = threading.Event()
        await pilot.press("T")
        await wait_for(pilot, lambda: panel.busy, what="tuning")
        await footer_shows(pilot, "x Cancel", hidden=("T Tune",))
        await pilot.press("x")
        await wait_for(pilot, lambda: not panel.busy, what="the cancel")
        log = panel.query_one("#tune-log", LogView).plain_lines
        assert log[-1] == "tune cancelled; unfinished work was recorded as cancelled"
        project.train_gate.set()
        await pilot.press("t")  # train, from the Tune mode: back to the training view
        await wait_for(pilot, lambda: not panel.display, what="the training view")
        await workers_done(app)
