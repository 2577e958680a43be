"""The run registry on real SQLite files: schema versions and migration, WAL, orphan reaping,
champion history and the order in which runs are crowned."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine import store as store_module
from engine.errors import HajError
from engine.store import SCHEMA_VERSION, DataVersion, Recipe, Store


def finished(store: Store, prediction: str, scores: dict[str, dict[str, float]]) -> dict[str, str]:
    """Record one finished run per model with the given metrics (and a model file, as every
    trained run has: crowning compares only those); returns model -> run id."""
    runs = store.start_runs(
        session="s1",
        models=[(model, {"alpha": 1}) for model in scores],
        prediction=prediction,
        data_version="proc-0001",
    )
    for run in runs:
        path = f"models/{run.id}.joblib"
        store.finish_run(run.id, status="finished", metrics=scores[run.model], model_path=path)
    return {run.model: run.id for run in runs}


def dead_pid() -> int:
    """A pid no process has: one above the kernel's pid_max (no subprocess needed)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


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
    """A haj.db written at the current version is upgraded by the next haj (here: one more
    version that adds a column) without losing runs; the migration runs once."""
    path = tmp_path / "haj.db"
    with Store(path) as store:
        ids = finished(store, "regression", {"ridge": {"rmse": 3.0}})
    after = SCHEMA_VERSION + 1
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", after)
    monkeypatch.setitem(
        store_module._MIGRATIONS, after, "ALTER TABLE runs ADD COLUMN note TEXT DEFAULT 'migrated'"
    )
    with Store(path) as store:
        assert store.schema_version() == after
        run = store.run(ids["ridge"])
        assert run is not None and run.metrics == {"rmse": 3.0}
    with Store(path) as store:  # a second open does not re-run the migration (it would fail)
        assert store.schema_version() == after
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT note FROM runs").fetchone()[0] == "migrated"


def version_1_database(path: Path) -> None:
    """A haj.db as haj wrote it at schema version 1: two raw versions (raw-0002 retrieved
    last), one processed version and a finished run."""
    db = sqlite3.connect(path)
    for statement in store_module._split_sql(store_module._MIGRATIONS[1]):
        db.execute(statement)
    columns = (
        "id, kind, seq, sha256, bytes, format, rows, columns, source, parent, path, created_at"
    )
    for row in (
        ("raw-0001", "raw", 1, "a1", 10, "csv", 3, 2, "x.csv", None, "data/raw/v0001-a1.csv"),
        ("raw-0002", "raw", 2, "b2", 12, "csv", 4, 2, "x.csv", None, "data/raw/v0002-b2.csv"),
        ("proc-0001", "processed", 1, "c3", 9, "csv", 3, 2, "p", "raw-0001", "data/p/v1.csv"),
    ):
        stamp = f"2025-01-0{row[2]}T10:00:00.000+00:00"
        db.execute(
            f"INSERT INTO data_versions ({columns}) VALUES ({', '.join('?' * 12)})", (*row, stamp)
        )
    db.execute(
        "INSERT INTO runs (id, session, model, seq, status, prediction, data_version, params, "
        "started_at) VALUES ('r1', 's', 'ridge', 1, 'finished', 'regression', 'proc-0001', "
        "'{}', '2025-01-03T10:00:00')"
    )
    db.execute("INSERT INTO metrics VALUES ('r1', 'rmse', 2.5)")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_a_version_1_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    """Version 2 records when each raw version was last retrieved and how each processed version
    was derived; an existing haj.db gets both, its data intact, its raw versions dated."""
    path = tmp_path / "haj.db"
    version_1_database(path)
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 9
        assert [v.id for v in store.data_versions()] == ["raw-0001", "raw-0002", "proc-0001"]
        raw1 = store.data_version("raw-0001")
        assert raw1 is not None and raw1.last_retrieved_at == raw1.created_at
        assert store.data_version("proc-0001").last_retrieved_at is None  # type: ignore[union-attr]
        assert store.current_raw_version().id == "raw-0002"  # type: ignore[union-attr]
        assert store.run("r1").metrics == {"rmse": 2.5}  # type: ignore[union-attr]
        assert store.derivation("raw-0001") is None  # how proc-0001 was made is not known
        # the new table works on the migrated file
        recipe = Recipe("f" * 64, "y", "regression")
        proc, created = add_processed(store, "c3", "raw-0001", recipe)
        assert (proc.id, created) == ("proc-0001", False)
        assert store.derivation("raw-0001", recipe).processed.id == "proc-0001"  # type: ignore[union-attr]
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "derivations" in tables


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


def add_raw(store: Store, sha: str, written: list[str] | None = None) -> tuple[DataVersion, bool]:
    return _add(store, "raw", sha, None, written=written)


def add_processed(store: Store, sha: str, parent: str, recipe: Recipe) -> tuple[DataVersion, bool]:
    return _add(store, "processed", sha, parent, recipe=recipe)


def _add(
    store: Store,
    kind: str,
    sha: str,
    parent: str | None,
    written: list[str] | None = None,
    **extra: object,
) -> tuple[DataVersion, bool]:
    return store.add_data_version(
        kind=kind,
        sha256=sha,
        size=3,
        fmt="csv",
        rows=1,
        columns=2,
        source=f"processor.py({parent})" if parent else "x",
        parent=parent,
        path_for=lambda seq: f"data/{kind}/v{seq:04d}.csv",
        write=(written if written is not None else []).append,
        **extra,
    )


def test_data_versions_are_deduplicated_by_content(tmp_path: Path) -> None:
    written: list[str] = []
    with Store(tmp_path / "haj.db") as store:
        first, created = add_raw(store, "aaa", written)
        assert created and first.id == "raw-0001"
        again, created = add_raw(store, "aaa", written)
        assert not created and again.id == "raw-0001"
        second, created = add_raw(store, "bbb", written)
        assert created and second.id == "raw-0002"
        assert written == ["data/raw/v0001.csv", "data/raw/v0002.csv"]


def test_the_current_raw_version_is_the_one_retrieved_last(tmp_path: Path) -> None:
    """Retrieving known content again makes that version current: a newer, bad version does not
    stay current just because its number is higher."""
    with Store(tmp_path / "haj.db") as store:
        assert store.current_raw_version() is None
        add_raw(store, "good")
        add_raw(store, "bad")
        assert store.current_raw_version().id == "raw-0002"  # type: ignore[union-attr]
        again, created = add_raw(store, "good")
        assert not created and again.last_retrieved_at
        assert store.current_raw_version().id == "raw-0001"  # type: ignore[union-attr]
        assert store.latest_data_version("raw").id == "raw-0002"  # type: ignore[union-attr]
        reread = store.data_version("raw-0001")
        assert reread is not None and reread.last_retrieved_at == again.last_retrieved_at
        assert reread.last_retrieved_at > reread.created_at


def test_processed_versions_are_found_by_raw_version_and_recipe(tmp_path: Path) -> None:
    old = Recipe("a" * 64, "target", "classification")
    new_target = Recipe("a" * 64, "age", "classification")
    with Store(tmp_path / "haj.db") as store:
        add_raw(store, "r1")
        add_raw(store, "r2")
        proc, created = add_processed(store, "p1", "raw-0001", old)
        assert created and proc.id == "proc-0001"
        assert store.derivation("raw-0001", old).processed.id == "proc-0001"  # type: ignore[union-attr]
        assert store.derivation("raw-0001", new_target) is None  # the target changed: stale
        assert store.derivation("raw-0002", old) is None
        # raw-0002 processes to the same content: linked to proc-0001, no new version
        same, created = add_processed(store, "p1", "raw-0002", old)
        assert not created and same.id == "proc-0001"
        assert store.derivation("raw-0002", old).processed.id == "proc-0001"  # type: ignore[union-attr]
        assert [v.id for v in store.data_versions("processed")] == ["proc-0001"]
        # a new recipe gives a new version; the latest derivation of raw-0001 says what it used
        add_processed(store, "p2", "raw-0001", new_target)
        latest = store.derivation("raw-0001")
        assert latest is not None and latest.processed.id == "proc-0002"
        assert latest.recipe == new_target
        assert new_target.changes_since(old) == "the target ('target' -> 'age')"
        assert Recipe("b" * 64, "target", "regression").changes_since(old) == (
            "processor.py and the prediction type (classification -> regression)"
        )


def test_a_run_records_when_its_worker_really_started(tmp_path: Path) -> None:
    with Store(tmp_path / "haj.db") as store:
        (run,) = store.start_runs(
            session="s", models=[("knn", {})], prediction="regression", data_version=None
        )
        store.finish_run(run.id, status="finished", started_at="2099-01-01T00:00:00.000+00:00")
        assert store.run(run.id).started_at == "2099-01-01T00:00:00.000+00:00"  # type: ignore[union-attr]
        (other,) = store.start_runs(
            session="s", models=[("knn", {})], prediction="regression", data_version=None
        )
        store.finish_run(other.id, status="failed", error="boom")  # no start known: kept
        assert store.run(other.id).started_at == other.started_at  # type: ignore[union-attr]


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
