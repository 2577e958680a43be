"""The run registry on real SQLite files: schema versions and migration, WAL, orphan reaping,
champion history and the order in which runs are crowned."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine import store as store_module
from engine.errors import HajError
from engine.store import SCHEMA_VERSION, Store


def finished(store: Store, prediction: str, scores: dict[str, dict[str, float]]) -> dict[str, str]:
    """Record one finished run per model with the given metrics; returns model -> run id."""
    runs = store.start_runs(
        session="s1",
        models=[(model, {"alpha": 1}) for model in scores],
        prediction=prediction,
        data_version="proc-0001",
    )
    for run in runs:
        store.finish_run(run.id, status="finished", metrics=scores[run.model])
    return {run.model: run.id for run in runs}


def dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_new_database_records_schema_version_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "haj.db"
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "metrics", "champions", "data_versions", "records"} <= tables


def test_older_schema_is_migrated_in_place_keeping_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A haj.db written at version 1 is upgraded by the next haj (here: a version 2 that adds a
    column) without losing runs; the migration runs once."""
    path = tmp_path / "haj.db"
    with Store(path) as store:
        ids = finished(store, "regression", {"ridge": {"rmse": 3.0}})
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(
        store_module._MIGRATIONS, 2, "ALTER TABLE runs ADD COLUMN note TEXT DEFAULT 'migrated'"
    )
    with Store(path) as store:
        assert store.schema_version() == 2
        run = store.run(ids["ridge"])
        assert run is not None and run.metrics == {"rmse": 3.0}
    with Store(path) as store:  # a second open does not re-run the migration (it would fail)
        assert store.schema_version() == 2
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT note FROM runs").fetchone()[0] == "migrated"


def test_empty_file_from_before_any_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "haj.db"
    sqlite3.connect(path).close()  # user_version 0
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.runs() == []


def test_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "haj.db"
    with Store(path):
        pass
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(HajError, match="newer than this haj"):
        Store(path)


def test_readonly_store_reads_a_workspace_path_with_uri_characters(tmp_path: Path) -> None:
    """Regression: the read-only URI was not quoted, so '#' or '?' in the path opened (and
    created) another file and `haj list` showed 'no such table'."""
    path = tmp_path / "my projects #1?x" / "p" / "haj.db"
    with Store(path) as store:
        finished(store, "regression", {"ridge": {"rmse": 3.0}})
    with Store(path, readonly=True) as store:
        assert store.summary()["runs"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my projects #1?x"]


def test_reap_marks_runs_of_dead_processes_failed_and_leaves_live_ones(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        orphans = store.start_runs(
            session="dead",
            models=[("knn", {}), ("ridge", {})],
            prediction="regression",
            data_version=None,
            pid=dead_pid(),
        )
        (alive,) = store.start_runs(
            session="alive", models=[("lasso", {})], prediction="regression", data_version=None
        )
        assert store.reap_orphans() == 2
        assert store.reap_orphans() == 0
        for run in orphans:
            reaped = store.run(run.id)
            assert reaped is not None
            assert reaped.status == "failed"
            assert "died" in (reaped.error or "")
            assert reaped.finished_at
        assert store.run(alive.id).status == "running"  # type: ignore[union-attr]


def test_failed_write_leaves_the_run_running_not_half_written(tmp_path: Path) -> None:
    """finish_run is one transaction: if a metric cannot be stored, the status is not changed
    either (a later reap then marks it failed)."""
    with Store(tmp_path / "haj.db") as store:
        (run,) = store.start_runs(
            session="s", models=[("knn", {})], prediction="regression", data_version=None
        )
        with pytest.raises(ValueError):
            store.finish_run(run.id, status="finished", metrics={"rmse": "not a number"})  # type: ignore[dict-item]
        again = store.run(run.id)
        assert again is not None and again.status == "running" and again.metrics == {}


def test_run_labels_number_each_models_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        first = finished(store, "regression", {"knn": {"rmse": 1}, "ridge": {"rmse": 2}})
        second = finished(store, "regression", {"knn": {"rmse": 1}})
        assert store.run(first["knn"]).label == "knn-1"  # type: ignore[union-attr]
        assert store.run(first["ridge"]).label == "ridge-1"  # type: ignore[union-attr]
        assert store.run(second["knn"]).label == "knn-2"  # type: ignore[union-attr]


def test_crowning_follows_the_metric_direction_and_skips_unfinished_runs(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        ids = finished(
            store,
            "regression",
            {
                "ridge": {"rmse": 2.0, "r2": 0.7},
                "knn": {"rmse": 1.5, "r2": 0.6},
                "lasso": {"rmse": 3.0, "r2": 0.9},
            },
        )
        (failed,) = store.start_runs(
            session="s2", models=[("svr", {})], prediction="regression", data_version=None
        )
        store.finish_run(failed.id, status="failed", metrics={"rmse": 0.1}, error="boom")
        classification = finished(store, "classification", {"knn": {"acc": 0.9}})
        lower = store.best_runs("rmse", higher_is_better=False, prediction="regression", limit=3)
        assert [r[0] for r in lower] == [ids["knn"], ids["ridge"], ids["lasso"]]
        higher = store.best_runs("r2", higher_is_better=True, prediction="regression", limit=2)
        assert [r[0] for r in higher] == [ids["lasso"], ids["ridge"]]
        assert store.best_runs("acc", higher_is_better=True, prediction="regression") == []
        best = store.best_runs("acc", higher_is_better=True, prediction="classification")
        assert best[0][0] == classification["knn"]
        board = store.runs(metric="rmse", higher_is_better=False)
        assert [r.model for r in board][:3] == ["svr", "knn", "ridge"]  # the leaderboard shows all
        assert board[-1].id == classification["knn"]  # a run without the metric comes last


def test_ties_go_to_the_run_that_finished_first(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        first = finished(store, "regression", {"ridge": {"rmse": 1.0}})
        finished(store, "regression", {"knn": {"rmse": 1.0}})
        best = store.best_runs("rmse", higher_is_better=False, prediction="regression")
        assert best[0][0] == first["ridge"]


def test_champion_history_keeps_every_crowning_and_clearing(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        ids = finished(store, "regression", {"ridge": {"rmse": 2.0}, "knn": {"rmse": 1.0}})
        assert store.champion() is None
        store.crown(ids["ridge"], "rmse", 2.0)
        crowned = store.crown(ids["knn"], "rmse", 1.0)
        assert crowned.run_id == ids["knn"] and crowned.previous_run_id == ids["ridge"]
        assert crowned.model == "knn"
        store.clear_champion("prediction type changed")
        assert store.champion() is None
        store.clear_champion("again")  # clearing nothing records nothing
        history = store.champion_history()
        assert [(e.run_id, e.previous_run_id, e.reason) for e in history] == [
            (None, ids["knn"], "prediction type changed"),
            (ids["knn"], ids["ridge"], "evaluate"),
            (ids["ridge"], None, "evaluate"),
        ]
        assert history[1].model == "knn" and history[1].value == 1.0
        assert store.summary()["champion"] is None


def test_data_versions_are_deduplicated_by_content(tmp_path: Path) -> None:
    written: list[str] = []
    with Store(tmp_path / "haj.db") as store:

        def add(sha: str) -> tuple[object, bool]:
            return store.add_data_version(
                kind="raw",
                sha256=sha,
                size=3,
                fmt="csv",
                rows=1,
                columns=2,
                source="x",
                parent=None,
                path_for=lambda seq: f"data/raw/v{seq:04d}.csv",
                write=written.append,
            )

        first, created = add("aaa")
        assert created and first.id == "raw-0001"  # type: ignore[attr-defined]
        again, created = add("aaa")
        assert not created and again.id == "raw-0001"  # type: ignore[attr-defined]
        second, created = add("bbb")
        assert created and second.id == "raw-0002"  # type: ignore[attr-defined]
        assert written == ["data/raw/v0001.csv", "data/raw/v0002.csv"]


def test_a_failed_data_write_records_no_version(tmp_path: Path) -> None:
    def fail(_: str) -> None:
        raise OSError("disk full")

    with Store(tmp_path / "haj.db") as store:
        with pytest.raises(OSError):
            store.add_data_version(
                kind="raw",
                sha256="aaa",
                size=3,
                fmt="csv",
                rows=1,
                columns=2,
                source="x",
                parent=None,
                path_for=lambda seq: "f.csv",
                write=fail,
            )
        assert store.data_versions() == []


def test_readers_see_a_consistent_store_while_a_writer_holds_a_transaction(
    tmp_path: Path,
) -> None:
    """WAL: the TUI or `haj list` reads while a runner writes, without 'database is locked'."""
    path = tmp_path / "haj.db"
    with Store(path) as store:
        finished(store, "regression", {"ridge": {"rmse": 2.0}})
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET status = 'failed'")
    try:
        with Store(path, readonly=True) as reader:
            assert reader.summary()["runs_by_status"] == {"finished": 1}
    finally:
        writer.execute("ROLLBACK")
        writer.close()
