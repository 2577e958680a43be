"""Model selection that compares like with like (issue 9, section 2): runs ranked only against
runs on the same processed data version, a champion of older data said so, cross-validation
(mean ± std), ties and margins within the noise said, a chosen run or the previous champion
crowned, and a champion refit on all its rows (finalize)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.api import Workspace
from engine.data import recipe_of
from engine.errors import NoChampion, UsageError
from engine.fsutil import sha256_file
from engine.store import _MIGRATIONS, SCHEMA_VERSION, TIE_RULE, Store, _split_sql
from tests.support import as_json, call_haj


# ---- a project whose store holds data versions and runs, written directly (unit tier) -----------
@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    workspace.create("churn", "classification", example="breast_cancer")
    return workspace


def _raw(store: Store, sha: str) -> str:
    version, _ = store.add_data_version(
        kind="raw",
        sha256=sha,
        size=1,
        fmt="csv",
        rows=1,
        columns=1,
        source="x",
        parent=None,
        path_for=lambda seq: f"data/raw/v{seq:04d}.csv",
        write=lambda rel: None,
    )
    return version.id


def _processed(store: Store, project_path: Path, sha: str, raw_id: str) -> str:
    """A processed version of `raw_id` made with the project's current recipe."""
    from engine.project import Project

    project = Project(project_path.name, project_path)
    version, _ = store.add_data_version(
        kind="processed",
        sha256=sha,
        size=1,
        fmt="csv",
        rows=1,
        columns=1,
        source="p",
        parent=raw_id,
        path_for=lambda seq: f"data/processed/v{seq:04d}.csv",
        write=lambda rel: None,
        recipe=recipe_of(project, project.read_config()),
    )
    return version.id


def _runs(
    project_path: Path, data_version: str | None, scores: dict[str, dict], **finish: object
) -> dict[str, str]:
    """Finished runs with a model file each; scores: model -> finish_run keyword arguments
    (metrics=..., metrics_std=..., fit_seconds=..., test_rows=...). Returns model -> run id."""
    ids = {}
    with Store(project_path / "haj.db") as store:
        runs = store.start_runs(
            session="s",
            models=[(model, {}) for model in scores],
            prediction="classification",
            data_version=data_version,
        )
        for run in runs:
            path = project_path / "models" / f"{run.id}.joblib"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(run.id.encode())
            store.finish_run(
                run.id,
                status="finished",
                model_path=str(path.relative_to(project_path)),
                model_sha256=sha256_file(path),
                **{**finish, **scores[run.model]},
            )
            ids[run.model] = run.id
    return ids


@pytest.fixture
def two_versions(ws: Workspace) -> dict[str, str]:
    """raw-0001 -> proc-0001 (an old run scoring best), then raw-0002 -> proc-0002, the current
    data (two runs scoring less on its other test set)."""
    path = ws.project("churn").path
    with Store(path / "haj.db") as store:
        old = _processed(store, path, "p1", _raw(store, "r1"))
        new = _processed(store, path, "p2", _raw(store, "r2"))
    assert (old, new) == ("proc-0001", "proc-0002")
    return {
        **_runs(path, old, {"svc": {"metrics": {"acc": 0.99}}}),
        **_runs(path, new, {"knn": {"metrics": {"acc": 0.90}}, "tree": {"metrics": {"acc": 0.85}}}),
    }


def test_only_runs_on_the_current_data_are_ranked_and_crowned(
    ws: Workspace, two_versions: dict[str, str]
) -> None:
    project = ws.project("churn")
    board = project.leaderboard()
    assert [r["model"] for r in board.runs] == ["knn", "tree"]  # not svc, on proc-0001
    assert board.data_version == "proc-0002" and board.other_runs == 1
    assert board.scope == "on proc-0002 (the current data)"
    crowned = project.crown()
    assert crowned.run.model == "knn" and crowned.data_version == "proc-0002"
    assert crowned.stale is None
    # --any-data: every run, each with its version; --data: another version
    everything = project.leaderboard(any_data=True)
    first = everything.runs[0]
    assert (first["model"], first["data_version"]) == ("svc", "proc-0001")
    assert [r["model"] for r in project.leaderboard(data="proc-0001").runs] == ["svc"]
    assert [r["model"] for r in project.leaderboard(data="raw-0001").runs] == ["svc"]
    assert project.crown(any_data=True).run.model == "svc"
    with pytest.raises(UsageError, match="contradict"):
        project.leaderboard(data="proc-0001", any_data=True)


def test_a_champion_of_older_data_is_said_by_status_evaluate_and_runs(
    ws: Workspace, two_versions: dict[str, str], home_of: Path
) -> None:
    project = ws.project("churn")
    crowned = project.crown_run(two_versions["svc"])
    notice = "the champion svc-1 was trained on proc-0001, but the current data is proc-0002"
    assert crowned.stale is not None and notice in crowned.stale
    assert project.status().champion_notice and notice in project.status().champion_notice
    assert project.leaderboard().stale and notice in project.leaderboard().stale
    for args in (["status", "churn"], ["runs", "churn"], ["evaluate", "churn", "--run", "svc-1"]):
        result = call_haj(home_of, *args)
        assert result.code == 0 and notice in " ".join(result.out.split()), result.text
    assert as_json(call_haj(home_of, "status", "churn", "--json"))["champion_notice"]  # type: ignore[index]
    project.crown()  # a champion of the current data: nothing to say
    assert project.status().champion_notice is None and project.leaderboard().stale is None
    assert "champion_notice" not in as_json(call_haj(home_of, "status", "churn", "--json"))  # type: ignore[operator]


@pytest.fixture
def home_of(ws: Workspace) -> Path:
    return ws.root


def test_no_run_on_the_current_data_is_an_error_naming_the_others(
    ws: Workspace, two_versions: dict[str, str], home_of: Path
) -> None:
    path = ws.project("churn").path
    with Store(path / "haj.db") as store:
        _raw(store, "r3")  # retrieved, not processed yet
    with pytest.raises(NoChampion, match="raw-0003 is not processed"):
        ws.project("churn").crown()
    result = call_haj(home_of, "evaluate", "churn")
    assert result.code != 0 and result.out == "" and len(result.err.splitlines()) == 1
    assert "3 run(s) are on other data versions" in result.err
    runs = call_haj(home_of, "runs", "churn")
    assert runs.code == 0 and "--any-data" in runs.out and "not processed yet" in runs.out


def test_ties_are_broken_by_the_stated_rule_and_said(ws: Workspace, home_of: Path) -> None:
    path = ws.project("churn").path
    ids = _runs(
        path,
        None,
        {
            "slow": {"metrics": {"acc": 1.0}, "metrics_std": {"acc": 0.01}, "fit_seconds": 9.0},
            "steady": {"metrics": {"acc": 1.0}, "metrics_std": {"acc": 0.01}, "fit_seconds": 1.0},
            "shaky": {"metrics": {"acc": 1.0}, "metrics_std": {"acc": 0.05}, "fit_seconds": 0.1},
            "worse": {"metrics": {"acc": 0.5}},
        },
        cv_folds=5,
        test_rows=69,
    )
    crowned = ws.project("churn").crown()
    # the lowest CV std first, then the shorter fit: not the fastest, nor the first recorded
    assert crowned.run.id == ids["steady"] and crowned.ties == 2 and crowned.margin == 0
    assert (
        crowned.caveat == f"3 runs tie at acc = 1.0000: steady-1 wins by the tie rule ({TIE_RULE})"
    )
    board = ws.project("churn").leaderboard()
    assert [r["model"] for r in board.runs] == ["steady", "slow", "shaky", "worse"]
    out = " ".join(call_haj(home_of, "evaluate", "churn").out.split())
    assert "3 runs tie at acc = 1.0000" in out and "lower CV std" in out


def test_a_margin_within_the_noise_of_a_small_test_set_is_said(ws: Workspace) -> None:
    path = ws.project("churn").path
    # one test row apart on 69 rows: less than one standard error of the accuracy
    _runs(
        path,
        None,
        {"a": {"metrics": {"acc": 68 / 69}}, "b": {"metrics": {"acc": 67 / 69}}},
        test_rows=69,
    )
    crowned = ws.project("churn").crown()
    assert crowned.run.model == "a" and crowned.noise is not None and crowned.noise > 1 / 69
    assert crowned.caveat and "within the noise" in crowned.caveat
    assert "one standard error on 69 test rows" in crowned.caveat
    # the same margin on 10,000 rows is clear
    other = Workspace(path.parent)
    other.create("big", "classification", example="breast_cancer")
    big = other.project("big")
    _runs(
        big.path,
        None,
        {"a": {"metrics": {"acc": 0.99}}, "b": {"metrics": {"acc": 0.975}}},
        test_rows=10_000,
    )
    assert big.crown().caveat is None


def test_a_chosen_run_and_the_previous_champion_are_crowned(ws: Workspace, home_of: Path) -> None:
    project = ws.project("churn")
    ids = _runs(
        project.path, None, {"best": {"metrics": {"acc": 0.9}}, "other": {"metrics": {"acc": 0.8}}}
    )
    assert project.crown().run.id == ids["best"]
    chosen = call_haj(home_of, "evaluate", "churn", "--run", "other-1")
    assert chosen.code == 0 and "crowned as chosen" in chosen.out
    assert project.status().champion.run_id == ids["other"]  # type: ignore[union-attr]
    assert (project.path / "models" / "champion.joblib").resolve().name == f"{ids['other']}.joblib"
    back = call_haj(home_of, "evaluate", "churn", "--rollback")
    assert back.code == 0 and "rolled back" in back.out
    assert project.status().champion.run_id == ids["best"]  # type: ignore[union-attr]
    assert project.rollback().run.id == ids["other"]  # twice: back again, as `cd -`
    reasons = [e["reason"] for e in project.champion_history()]
    assert reasons == ["rollback", "rollback", "chosen", "evaluate"]
    for args, message in (
        (["--run", "nope-3"], "no run 'nope-3'"),
        (["--run", "best-1", "--rollback"], "not allowed with"),
        (["--run", "best-1", "--any-data"], "not with --run"),
    ):
        result = call_haj(home_of, "evaluate", "churn", *args)
        assert result.code != 0 and message in result.err and len(result.err.splitlines()) == 1


def test_rollback_without_a_previous_champion_is_an_error(ws: Workspace, home_of: Path) -> None:
    project = ws.project("churn")
    _runs(project.path, None, {"only": {"metrics": {"acc": 0.9}}})
    result = call_haj(home_of, "evaluate", "churn", "--rollback")
    assert result.code != 0 and "no champion" in result.err
    project.crown()
    result = call_haj(home_of, "evaluate", "churn", "--rollback")
    assert result.code != 0 and "no previous champion" in result.err


# ---- the store: an older haj.db keeps opening ----------------------------------------------------
def test_a_version_2_store_opens_read_only_and_is_migrated_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "haj.db"
    db = sqlite3.connect(path)
    for version in (1, 2):
        for statement in _split_sql(_MIGRATIONS[version]):
            db.execute(statement)
    db.execute(
        "INSERT INTO runs (id, session, model, seq, status, prediction, data_version, params, "
        "started_at) VALUES ('r1', 's', 'knn', 1, 'finished', 'classification', NULL, '{}', 't')"
    )
    db.execute("INSERT INTO metrics VALUES ('r1', 'acc', 0.9)")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Store(path, readonly=True) as reader:  # a server or `haj list` of an older project
        run = reader.run("r1")
        assert run is not None and run.metrics == {"acc": 0.9} and run.cv_folds is None
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 3
        run = store.run("r1")
        assert run is not None and run.metrics == {"acc": 0.9} and not run.finalized
        store.finish_run("r1", status="finished", metrics={"acc": 0.8}, metrics_std={"acc": 0.1})
        assert store.run("r1").metrics_std == {"acc": 0.1}  # type: ignore[union-attr]


# ---- cross-validation, in-process on real scikit-learn -------------------------------------------
def test_a_cv_fold_fits_the_training_pipeline_so_missing_values_and_text_work() -> None:
    """Each fold is fitted with make_pipeline (imputation + one-hot): a bare estimator would
    refuse these rows (NaN and text)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from engine.features import feature_spec, to_matrix
    from engine.training import _fit, _score
    from engine.validation import cross_validate

    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n), "colour": rng.choice(["red", "blue"], size=n)})
    frame.loc[::7, "x"] = np.nan
    y = np.where(frame["colour"] == "red", "yes", "no")
    spec = feature_spec(frame)
    task = {"spec": spec, "estimator": LogisticRegression(), "prediction": "classification"}
    means, stds, _ = cross_validate(task, to_matrix(frame, spec), y, 4, 0, _fit, _score)
    assert means["acc"] == pytest.approx(1.0) and stds["acc"] == pytest.approx(0.0)
    assert set(means) >= {"acc", "f1", "roc_auc"} and set(stds) == set(means)


# ---- training with --cv and finalize, through the runner (integration) ---------------------------
@pytest.mark.integration
def test_train_cv_records_mean_and_std_and_ranks_by_the_mean(home: Path) -> None:
    assert call_haj(home, "init", "iris", "--example", "iris").code == 0
    assert call_haj(home, "retrieve", "iris").code == 0
    bad = call_haj(home, "train", "iris", "--cv", "1")
    assert bad.code == 2 and "at least 2 folds" in bad.err and len(bad.err.splitlines()) == 1
    trained = call_haj(home, "train", "iris", "-m", "knn", "logistic_regression", "--cv", "3")
    assert trained.code == 0, trained.text
    assert "(mean±std of 3 CV folds)" in trained.out
    board = as_json(call_haj(home, "runs", "iris", "--json"))
    runs = board["runs"]  # type: ignore[index]
    assert len(runs) == 2 and all(r["cv_folds"] == 3 and r["test_rows"] == 30 for r in runs)
    for run in runs:
        assert set(run["metrics_std"]) == set(run["metrics"]) and run["metrics_std"]["acc"] >= 0
        assert set(run["test_metrics"]) >= {"acc"}  # the held-out score is kept beside
    assert runs[0]["metrics"]["acc"] >= runs[1]["metrics"]["acc"]  # ranked by the CV mean
    table = call_haj(home, "runs", "iris")
    assert f"{runs[0]['metrics']['acc']:.4f} ± {runs[0]['metrics_std']['acc']:.4f}" in table.out
    assert "(3-fold CV)" in table.out


@pytest.mark.integration
def test_finalize_refits_the_champion_on_all_rows_and_crowns_it(trained_home: Path) -> None:
    import joblib

    project = Workspace(trained_home).project("cancer")
    source = project.status().champion
    assert source is not None
    result = call_haj(trained_home, "finalize", "cancer")
    assert result.code == 0, result.text
    assert "finalized: a refit of run" in " ".join(result.out.split())
    board = project.leaderboard()
    refit = next(r for r in board.runs if r["refit_of"])
    original = next(r for r in board.runs if r["id"] == source.run_id)
    assert board.champion_id == refit["id"] and refit["refit_of"] == source.run_id
    assert (
        refit["metrics"] == original["metrics"]
        and refit["data_version"] == original["data_version"]
    )
    assert project.champion_history()[0]["reason"] == "finalize"
    # its own model file, recorded by sha256, fitted on every row (train + test)
    path = trained_home / "cancer" / refit["model_path"]
    assert (
        sha256_file(path) == refit["model_sha256"]
        and path != trained_home / "cancer" / original["model_path"]
    )
    bundle, first = joblib.load(path), joblib.load(trained_home / "cancer" / original["model_path"])
    assert bundle["refit_of"] == source.run_id
    rows = project.versions("processed")[0]["rows"]
    assert bundle["pipeline"].n_features_in_ == first["pipeline"].n_features_in_
    assert _fitted_rows(bundle["pipeline"]) == rows > _fitted_rows(first["pipeline"])
    table = call_haj(trained_home, "runs", "cancer")
    assert "(finalized)" in table.out and "no test set is left" in table.out
    again = call_haj(trained_home, "finalize", "cancer")
    assert again.code != 0 and "already finalized" in again.err
    # evaluate keeps the refit: it ties with its source and the tie rule prefers the refit
    assert project.crown().run.id == refit["id"]


def _fitted_rows(pipeline: object) -> int:
    """How many rows the pipeline was fitted on: its StandardScaler counts them."""
    for step in _steps(pipeline):
        if hasattr(step, "n_samples_seen_"):
            return int(step.n_samples_seen_)  # type: ignore[attr-defined]
    raise AssertionError("no scaler in the pipeline")


def _steps(node: object) -> list[object]:
    found = [node]
    for _, child in getattr(node, "steps", []):
        found += _steps(child)
    for _, child, _ in getattr(node, "transformers_", []):
        found += _steps(child)
    return found


@pytest.mark.e2e
def test_finalize_and_rollback_switch_a_running_server(trained_home: Path) -> None:
    """The refit's bundle serves (its sha256 verified), and rolling back switches the running
    server back to the champion before it, as crowning does."""
    import time

    import httpx

    from tests.support.serving import sample_record, start_server

    project_dir = trained_home / "cancer"
    project = Workspace(trained_home).project("cancer")
    before = project.status().champion
    assert before is not None
    server = start_server(project_dir)

    def served_after(action: object) -> str:
        deadline = time.monotonic() + 10
        health = httpx.get(f"{server.url}/health").json()
        while health["run_id"] == action and time.monotonic() < deadline:
            time.sleep(0.05)
            health = httpx.get(f"{server.url}/health").json()
        return health["run_id"]

    try:
        refit = project.finalize().run
        assert served_after(before.run_id) == refit.id
        answer = httpx.post(f"{server.url}/predict", json=sample_record(project_dir))
        assert answer.status_code == 200 and answer.json()["run_id"] == refit.id
        assert not httpx.get(f"{server.url}/health").json()["switch_error"]
        assert project.rollback().run.id == before.run_id
        assert served_after(refit.id) == before.run_id
    finally:
        server.stop()


# ---- the app's Runs tab: the same scope and notice as the CLI -----------------------------------
@pytest.mark.integration
async def test_the_runs_tab_ranks_the_current_data_and_says_the_champion_is_older(
    ws: Workspace, two_versions: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import DataTable, Label

    from haj_tui.app import HajApp
    from haj_tui.screens.project import ProjectScreen
    from tests.tui_support import wait_for

    monkeypatch.setenv("TEXTUAL_CURSOR_BLINK", "0")
    with Store(ws.project("churn").path / "haj.db") as store:  # CV scores on the current data
        store.finish_run(
            two_versions["knn"],
            status="finished",
            metrics={"acc": 0.9},
            metrics_std={"acc": 0.02},
            cv_folds=5,
        )
    ws.project("churn").crown_run(two_versions["svc"])  # a champion of proc-0001
    app = HajApp(ws)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(ProjectScreen(app.workspace.project("churn")))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProjectScreen)
        screen.action_show_tab("runs")
        await wait_for(pilot, lambda: screen.shown_tab == "runs", what="the runs tab")
        tab = screen.tab("runs")
        assert tab is not None
        board = tab.query_one("#runs-board", DataTable)
        await wait_for(pilot, lambda: board.row_count == 2, what="the leaderboard")
        rows = [board.get_row_at(i) for i in range(board.row_count)]
        # the run (★ marks the champion), then the sorting metric
        assert [str(row[0]).lstrip("★ ") for row in rows] == ["knn-1", "tree-1"]  # svc-1: proc-0001
        assert str(rows[0][1]) == "0.9000 ± 0.0200"
        assert "on proc-0002 (the current data)" in str(board.border_title)
        assert "1 on other data" in str(board.border_title)
        notice = tab.query_one("#runs-notice", Label)
        assert notice.display and "was trained on proc-0001" in str(notice.render())
