"""The project's registry: one SQLite file (haj.db) per project, written only through this module.

What it holds: data versions, training runs with their params and metrics, the champion and its
history, and small state records (a detached server, a container, a deployment).

Why SQLite and one module: one real store kept good beats two kept in step (MLflow dropped its file
store for this reason). WAL lets the TUI read while a training runner writes; every finished model
is recorded in one transaction, so a crash leaves a run "running" (then reaped as failed), never
half-written. SQL appears nowhere else, so a shared server-backed store can replace this one behind
the same methods.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.procs import pid_alive

SCHEMA_VERSION = 9
NOTES_KEY = "_haj_notes"  # a run's notes, inside its params JSON (see Run.notes)

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE data_versions (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('raw', 'processed')),
        seq         INTEGER NOT NULL,
        sha256      TEXT NOT NULL,
        bytes       INTEGER NOT NULL,
        format      TEXT NOT NULL,
        rows        INTEGER,
        columns     INTEGER,
        source      TEXT NOT NULL,
        parent      TEXT REFERENCES data_versions(id),
        path        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        UNIQUE (kind, seq),
        UNIQUE (kind, sha256)
    );
    CREATE TABLE runs (
        id                TEXT PRIMARY KEY,
        session           TEXT NOT NULL,
        model             TEXT NOT NULL,
        seq               INTEGER NOT NULL,
        status            TEXT NOT NULL
                          CHECK (status IN ('running', 'finished', 'failed', 'cancelled')),
        prediction        TEXT NOT NULL,
        data_version      TEXT,
        params            TEXT NOT NULL DEFAULT '{}',
        error             TEXT,
        started_at        TEXT NOT NULL,
        finished_at       TEXT,
        fit_seconds       REAL,
        duration_seconds  REAL,
        model_path        TEXT,
        model_sha256      TEXT,
        pid               INTEGER
    );
    CREATE INDEX runs_status ON runs (status);
    CREATE INDEX runs_model ON runs (model, seq);
    CREATE TABLE metrics (
        run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        value   REAL NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX metrics_key_value ON metrics (key, value);
    CREATE TABLE champions (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id           TEXT,
        metric           TEXT,
        value            REAL,
        previous_run_id  TEXT,
        reason           TEXT,
        crowned_at       TEXT NOT NULL
    );
    CREATE TABLE records (
        kind        TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    """,
    # 2: the current raw version is the one the source returned most recently (a retrieve that
    # finds known content makes that version current again), and how each processed version was
    # derived: (raw version, recipe) -> processed version, so stale processed data is never used
    # and identical results are linked instead of re-processed.
    2: """
    ALTER TABLE data_versions ADD COLUMN last_retrieved_at TEXT;
    UPDATE data_versions SET last_retrieved_at = created_at WHERE kind = 'raw';
    CREATE INDEX data_versions_retrieved ON data_versions (kind, last_retrieved_at);
    CREATE TABLE derivations (
        raw_id            TEXT NOT NULL REFERENCES data_versions(id),
        recipe            TEXT NOT NULL,
        processed_id      TEXT NOT NULL REFERENCES data_versions(id),
        processor_sha256  TEXT NOT NULL,
        target            TEXT NOT NULL,
        prediction        TEXT NOT NULL,
        derived_at        TEXT NOT NULL,
        PRIMARY KEY (raw_id, recipe)
    );
    """,
    # 3: model selection. A metric's `value` stays what ranks (the cross-validation mean when
    # the run was cross-validated, else the test score); `std` is the folds' standard deviation
    # and `test` the held-out test score of a cross-validated run. A run records its folds and
    # its test rows (how noisy its test score is), and a finalized run the run it refits.
    3: """
    ALTER TABLE metrics ADD COLUMN std REAL;
    ALTER TABLE metrics ADD COLUMN test REAL;
    ALTER TABLE runs ADD COLUMN cv_folds INTEGER;
    ALTER TABLE runs ADD COLUMN test_rows INTEGER;
    ALTER TABLE runs ADD COLUMN refit_of TEXT;
    CREATE INDEX runs_data_version ON runs (data_version, status);
    """,
    # 4: how a raw version is read (JSON: encoding, CSV separator, decimal mark, found when it
    # was retrieved or said in [data]), so a version always loads the same way. NULL: a version
    # from before, read as UTF-8 with a sniffed separator, as it always was.
    4: """
    ALTER TABLE data_versions ADD COLUMN reading TEXT;
    """,
    # 5: runs scored again on labelled data (`haj score`, `haj check`): what was scored (a data
    # version id or a file with its sha256), how many rows, the metrics and the details (a
    # confusion matrix or a residual summary, JSON).
    5: """
    CREATE TABLE evaluations (
        id          TEXT PRIMARY KEY,
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        data        TEXT NOT NULL,
        data_sha256 TEXT,
        rows        INTEGER NOT NULL,
        metrics     TEXT NOT NULL,
        details     TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX evaluations_run ON evaluations (run_id, created_at);
    """,
    # 6: gated retraining (`haj retrain`, engine.retrain): when, what triggered it, how it ended
    # (status) and what it decided (promoted / rejected / skipped) with why; the champion and the
    # challenger with their scores on the same holdout; the data versions; each step with its
    # seconds and outcome (JSON), and the options it ran with (details, JSON).
    6: """
    CREATE TABLE retrains (
        id                TEXT PRIMARY KEY,
        started_at        TEXT NOT NULL,
        finished_at       TEXT,
        trigger           TEXT NOT NULL,
        status            TEXT NOT NULL,
        decision          TEXT,
        reason            TEXT,
        metric            TEXT,
        champion_run      TEXT,
        champion_score    REAL,
        challenger_run    TEXT,
        challenger_score  REAL,
        raw_version       TEXT,
        data_version      TEXT,
        steps             TEXT NOT NULL DEFAULT '[]',
        details           TEXT
    );
    CREATE INDEX retrains_started ON retrains (started_at);
    """,
    # 7: drift and quality reports (`haj monitor`, engine.monitor): which run's reference, what
    # was compared (live, the log, a data version or a file) over which window, the headline
    # figures for trends (drift share, missing share, dataset drift) and the whole report (JSON).
    7: """
    CREATE TABLE monitor_reports (
        id             TEXT PRIMARY KEY,
        created_at     TEXT NOT NULL,
        run_id         TEXT NOT NULL,
        source         TEXT NOT NULL,
        window         TEXT NOT NULL,
        rows           INTEGER NOT NULL,
        too_small      INTEGER NOT NULL,
        dataset_drift  INTEGER NOT NULL,
        drift_share    REAL NOT NULL,
        missing_share  REAL NOT NULL,
        quality_issues INTEGER NOT NULL,
        report         TEXT NOT NULL
    );
    CREATE INDEX monitor_reports_created ON monitor_reports (created_at);
    """,
    # 8: pipeline runs (`haj pipeline run`, engine.pipeline): when, by whom (manual or the
    # schedule), how it ended, a one-line summary, and each step with its attempts, seconds,
    # outcome and reason (JSON); and every notification sent or not (engine.notify).
    8: """
    CREATE TABLE pipeline_runs (
        id          TEXT PRIMARY KEY,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        trigger     TEXT NOT NULL,
        status      TEXT NOT NULL,
        summary     TEXT,
        steps       TEXT NOT NULL DEFAULT '[]',
        pid         INTEGER
    );
    CREATE INDEX pipeline_runs_started ON pipeline_runs (started_at);
    CREATE TABLE notifications (
        id          TEXT PRIMARY KEY,
        created_at  TEXT NOT NULL,
        event       TEXT NOT NULL,
        text        TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        error       TEXT,
        pipeline_id TEXT
    );
    CREATE INDEX notifications_created ON notifications (created_at);
    """,
    # 9: experiment depth. Tags per run, set by the user (`haj tag`) or by haj (user, host,
    # haj version, git commit, code hashes, study and trial); artifacts per run: files under
    # the run's folder (a confusion matrix, curves, importances, the environment), listed here.
    9: """
    CREATE TABLE run_tags (
        run_id  TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        source  TEXT NOT NULL DEFAULT 'user',
        PRIMARY KEY (run_id, key)
    );
    CREATE INDEX run_tags_key ON run_tags (key, value);
    CREATE TABLE run_artifacts (
        run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        path       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    """,
}
_RETRAIN_COLUMNS = (
    "id", "started_at", "finished_at", "trigger", "status", "decision", "reason", "metric",
    "champion_run", "champion_score", "challenger_run", "challenger_score", "raw_version",
    "data_version", "steps", "details",
)  # fmt: skip
_RETRAIN_JSON = ("steps", "details")

# How equal scores are ordered, in the leaderboard and when crowning (said in the README and by
# `haj evaluate` when it matters): the SQL below is this sentence.
TIE_RULE = (
    "equal scores go to the lower CV std, then to a finalized refit, then to the shorter fit, "
    "then to the run that finished first"
)
_TIE_ORDER = (
    "m.std IS NULL, m.std ASC, r.refit_of IS NULL, r.fit_seconds IS NULL, r.fit_seconds ASC, "
    "r.finished_at ASC"
)


@dataclass
class Evaluation:
    """A run scored again on labelled data (`haj score` / `haj check`)."""

    id: str
    run_id: str
    data: str  # a data version id, or a file's path
    data_sha256: str | None
    rows: int
    metrics: dict[str, float]
    details: dict[str, Any] | None  # {"confusion": {...}} or {"residuals": {...}}
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class DataVersion:
    id: str
    kind: str
    seq: int
    sha256: str
    bytes: int
    format: str
    rows: int | None
    columns: int | None
    source: str
    parent: str | None
    path: str
    created_at: str
    last_retrieved_at: str | None = None  # raw versions: when the source last returned it
    reading: str | None = None  # raw versions: how to read the file (JSON; engine.ingest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Recipe:
    """How raw data becomes processed data: processor.py's bytes, the target and the prediction
    type. The same raw version and the same recipe give the same processed version."""

    processor_sha256: str
    target: str
    prediction: str

    @property
    def key(self) -> str:
        text = f"{self.processor_sha256}\0{self.target}\0{self.prediction}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def changes_since(self, other: Recipe) -> str:
        """What differs from `other`, in words: "processor.py and the target ('a' -> 'b')"."""
        changed = []
        if self.processor_sha256 != other.processor_sha256:
            changed.append("processor.py")
        if self.target != other.target:
            changed.append(f"the target ({other.target!r} -> {self.target!r})")
        if self.prediction != other.prediction:
            changed.append(f"the prediction type ({other.prediction} -> {self.prediction})")
        return " and ".join(changed) or "nothing"


@dataclass
class Derivation:
    """raw version + recipe -> processed version, recorded each time processing gives a version."""

    raw_id: str
    recipe: Recipe
    processed: DataVersion
    derived_at: str


@dataclass
class Run:
    id: str
    session: str
    model: str
    seq: int
    status: str
    prediction: str
    data_version: str | None
    params: dict[str, Any]
    error: str | None
    started_at: str
    finished_at: str | None
    fit_seconds: float | None
    duration_seconds: float | None
    model_path: str | None
    model_sha256: str | None
    pid: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    # why a metric is missing ({"roc_auc": "roc_auc not computed: ..."}); kept in the params
    # column under NOTES_KEY (no schema change), and never shown among the params
    notes: dict[str, str] = field(default_factory=dict)
    cv_folds: int | None = None  # cross-validated: `metrics` are the folds' means
    test_rows: int | None = None  # rows of the test split its test scores were measured on
    refit_of: str | None = None  # finalized: the run whose pipeline was refit on all rows
    metrics_std: dict[str, float] = field(default_factory=dict)  # the folds' std (CV runs)
    test_metrics: dict[str, float] = field(default_factory=dict)  # held-out scores (CV runs)

    @property
    def label(self) -> str:
        """MODEL-# as in the training log: the nth run of this model in the project."""
        return f"{self.model}-{self.seq}"

    @property
    def finalized(self) -> bool:
        """Refit on every row of its data version: its metrics are its source run's."""
        return self.refit_of is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Champion:
    run_id: str
    metric: str
    value: float
    previous_run_id: str | None
    crowned_at: str
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CrownEvent:
    """One row of the champion history; run_id is None when the champion was cleared."""

    run_id: str | None
    metric: str | None
    value: float | None
    previous_run_id: str | None
    reason: str | None
    crowned_at: str
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_RUN_COLUMNS_V2 = (
    "id, session, model, seq, status, prediction, data_version, params, error, started_at, "
    "finished_at, fit_seconds, duration_seconds, model_path, model_sha256, pid"
)
_RUN_COLUMNS = _RUN_COLUMNS_V2 + ", cv_folds, test_rows, refit_of"


def unreadable(path: Path, error: Exception) -> StoreError:
    """The one message for a damaged registry, wherever it is found."""
    return StoreError(
        f"the project's registry ({path.name}) cannot be read: {error} "
        "(restore it from a backup, or delete the project)"
    )


class Store:
    """A connection to one project's haj.db. Use as a context manager or call close()."""

    def __init__(self, db_path: Path, *, readonly: bool = False) -> None:
        self.path = Path(db_path)
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:  # damaged, or not a database at all
            raise unreadable(self.path, exc) from None

    def _open(self, readonly: bool) -> None:
        if readonly:
            from urllib.parse import quote

            # Quoted: a workspace path with '?', '#' or '%' would otherwise open another file.
            uri = f"file:{quote(str(self.path.absolute()))}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 10000")
            # reads the header (damage shows); a reader of an older file reads its columns
            older = int(self._db.execute("PRAGMA user_version").fetchone()[0]) < 3
            self._run_columns = _RUN_COLUMNS_V2 if readonly and older else _RUN_COLUMNS
            self._metric_columns = "NULL, NULL" if readonly and older else "std, test"
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    # ---- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            from engine.errors import HajError

            self._db.close()
            raise HajError(
                f"{self.path} has schema version {current}, newer than this haj understands "
                f"({SCHEMA_VERSION}): upgrade haj"
            )
        if current == SCHEMA_VERSION:
            return
        with self._transaction() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(_MIGRATIONS[version]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")

    # ---- data versions -----------------------------------------------------------------------
    def add_data_version(
        self,
        *,
        kind: str,
        sha256: str,
        size: int,
        fmt: str,
        rows: int | None,
        columns: int | None,
        source: str,
        parent: str | None,
        path_for: Callable[[int], str],
        write: Callable[[str], None],
        recipe: Recipe | None = None,
        reading: str | None = None,
    ) -> tuple[DataVersion, bool]:
        """Record a version unless the same content exists; returns (version, created).

        `path_for(seq)` names the file (relative to the project) of a new version and `write(path)`
        writes it inside the transaction: if writing fails, no version is recorded.

        A raw version, new or found again, becomes the current one (its last_retrieved_at is
        now). A processed version made from `parent` with `recipe` is linked to it, new or found
        again, so that raw data is not processed again with the same recipe.
        """
        with self._transaction() as db:
            stamp = _retrieval_stamp(db) if kind == "raw" else now_iso()
            row = db.execute(
                "SELECT * FROM data_versions WHERE kind = ? AND sha256 = ?", (kind, sha256)
            ).fetchone()
            if row is not None:
                version, created = DataVersion(**dict(row)), False
                if kind == "raw":  # found again: the current raw version from now on
                    db.execute(
                        "UPDATE data_versions SET last_retrieved_at = ? WHERE id = ?",
                        (stamp, version.id),
                    )
                    version.last_retrieved_at = stamp
            else:
                version = _insert_version(
                    db,
                    kind=kind,
                    sha256=sha256,
                    size=size,
                    fmt=fmt,
                    rows=rows,
                    columns=columns,
                    source=source,
                    parent=parent,
                    path_for=path_for,
                    stamp=stamp,
                    reading=reading,
                )
                created = True
            if recipe is not None and parent is not None:
                _link_derivation(db, parent, recipe, version.id, stamp)
            if created:
                write(version.path)
            return version, created

    def data_versions(self, kind: str | None = None) -> list[DataVersion]:
        if kind:
            rows = self._db.execute(
                "SELECT * FROM data_versions WHERE kind = ? ORDER BY seq", (kind,)
            )
        else:
            rows = self._db.execute("SELECT * FROM data_versions ORDER BY kind DESC, seq")
        return [DataVersion(**dict(r)) for r in rows]

    def data_version(self, version_id: str) -> DataVersion | None:
        row = self._db.execute("SELECT * FROM data_versions WHERE id = ?", (version_id,)).fetchone()
        return DataVersion(**dict(row)) if row else None

    def latest_data_version(self, kind: str) -> DataVersion | None:
        """The version of `kind` created last (highest number). For the raw data to use, see
        current_raw_version()."""
        row = self._db.execute(
            "SELECT * FROM data_versions WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)
        ).fetchone()
        return DataVersion(**dict(row)) if row else None

    def current_raw_version(self) -> DataVersion | None:
        """The raw version the source returned most recently: what process and train use."""
        row = self._db.execute(
            "SELECT * FROM data_versions WHERE kind = 'raw' "
            "ORDER BY last_retrieved_at DESC, seq DESC LIMIT 1"
        ).fetchone()
        return DataVersion(**dict(row)) if row else None

    def derivation(self, raw_id: str, recipe: Recipe | None = None) -> Derivation | None:
        """The processed version `raw_id` gave with `recipe`; without one, the latest with any."""
        sql = (
            "SELECT d.processor_sha256, d.target, d.prediction, d.derived_at, v.* "
            "FROM derivations d JOIN data_versions v ON v.id = d.processed_id WHERE d.raw_id = ?"
        )
        args: list[Any] = [raw_id]
        if recipe is not None:
            sql += " AND d.recipe = ?"
            args.append(recipe.key)
        row = self._db.execute(sql + " ORDER BY d.derived_at DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        values = dict(row)
        found = Recipe(
            values.pop("processor_sha256"), values.pop("target"), values.pop("prediction")
        )
        derived_at = values.pop("derived_at")
        return Derivation(raw_id, found, DataVersion(**values), derived_at)

    # ---- runs --------------------------------------------------------------------------------
    def start_runs(
        self,
        *,
        session: str,
        models: Iterable[tuple[str, dict[str, Any]]],
        prediction: str,
        data_version: str | None,
        pid: int | None = None,
        refit_of: str | None = None,
    ) -> list[Run]:
        """Record one 'running' run per model, numbering each model's runs (MODEL-#).

        Their started_at is the time they are queued, until finish_run records the real start.
        `refit_of`: these runs refit that run's pipeline on all rows (haj finalize).
        """
        started = now_iso()
        created: list[Run] = []
        with self._transaction() as db:
            for model, params in models:
                seq = (
                    db.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM runs WHERE model = ?", (model,)
                    ).fetchone()[0]
                    + 1
                )
                run = Run(
                    id=new_run_id(),
                    session=session,
                    model=model,
                    seq=seq,
                    status="running",
                    prediction=prediction,
                    data_version=data_version,
                    params=params,
                    error=None,
                    started_at=started,
                    finished_at=None,
                    fit_seconds=None,
                    duration_seconds=None,
                    model_path=None,
                    model_sha256=None,
                    pid=pid or os.getpid(),
                    refit_of=refit_of,
                )
                row = _run_row(run)
                db.execute(
                    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * len(row))})",
                    row,
                )
                created.append(run)
        return created

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        fit_seconds: float | None = None,
        duration_seconds: float | None = None,
        model_path: str | None = None,
        model_sha256: str | None = None,
        started_at: str | None = None,
        notes: dict[str, str] | None = None,
        metrics_std: dict[str, float] | None = None,
        test_metrics: dict[str, float] | None = None,
        cv_folds: int | None = None,
        test_rows: int | None = None,
    ) -> None:
        """Record a run's outcome and metrics in one transaction.

        `started_at` is when its worker really began (start_runs recorded when it was queued);
        `notes` say why a metric is missing (Run.notes). A cross-validated run gives its folds'
        means as `metrics`, their std as `metrics_std` and its held-out scores as
        `test_metrics`; `test_rows` is the size of the test split.
        """
        with self._transaction() as db:
            if notes:
                row = db.execute("SELECT params FROM runs WHERE id = ?", (run_id,)).fetchone()
                params = json.loads(row[0] or "{}") if row else {}
                params[NOTES_KEY] = {**params.get(NOTES_KEY, {}), **notes}
                db.execute(
                    "UPDATE runs SET params = ? WHERE id = ?",
                    (json.dumps(params, default=str), run_id),
                )
            db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, fit_seconds = ?, "
                "duration_seconds = ?, model_path = ?, model_sha256 = ?, "
                "started_at = COALESCE(?, started_at), cv_folds = ?, test_rows = ? WHERE id = ?",
                (
                    status,
                    error,
                    now_iso(),
                    fit_seconds,
                    duration_seconds,
                    model_path,
                    model_sha256,
                    started_at,
                    cv_folds,
                    test_rows,
                    run_id,
                ),
            )
            if metrics:
                std, test = metrics_std or {}, test_metrics or {}
                db.executemany(
                    "INSERT OR REPLACE INTO metrics (run_id, key, value, std, test) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            k,
                            float(v),
                            _float_or_none(std.get(k)),
                            _float_or_none(test.get(k)),
                        )
                        for k, v in metrics.items()
                    ],
                )

    def close_unfinished(self, session: str, status: str, error: str) -> int:
        """Mark a session's still-running runs cancelled or failed; returns how many."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? "
                "WHERE session = ? AND status = 'running'",
                (status, error, now_iso(), session),
            )
            return cur.rowcount

    def close_runs_of(self, pid: int, status: str, error: str) -> int:
        """Close the still-running runs of one (dead) runner process; returns how many."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? "
                "WHERE pid = ? AND status = 'running'",
                (status, error, now_iso(), pid),
            ).rowcount

    def reap_orphans(self) -> int:
        """Runs left 'running' by a process that no longer exists are marked failed."""
        rows = self._db.execute("SELECT DISTINCT pid FROM runs WHERE status = 'running'")
        dead = [r[0] for r in rows if r[0] is None or not pid_alive(r[0])]
        if not dead:
            return 0
        with self._transaction() as db:
            count = 0
            for pid in dead:
                count += db.execute(
                    "UPDATE runs SET status = 'failed', error = ?, finished_at = ? "
                    "WHERE status = 'running' AND pid IS ?",
                    ("the training process died before this run finished", now_iso(), pid),
                ).rowcount
            return count

    def runs(
        self,
        *,
        metric: str | None = None,
        higher_is_better: bool = True,
        status: str | None = None,
        session: str | None = None,
        limit: int | None = None,
        data_version: str | None = None,
    ) -> list[Run]:
        """Runs with their metrics (of one `data_version`, when given); sorted by `metric` in
        its direction (runs without it last), ties as crowning breaks them (TIE_RULE)."""
        where, args = [], []
        if status:
            where.append("r.status = ?")
            args.append(status)
        if session:
            where.append("r.session = ?")
            args.append(session)
        if data_version:
            where.append("r.data_version = ?")
            args.append(data_version)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cols = ", ".join(f"r.{c.strip()}" for c in self._run_columns.split(","))
        if metric:
            order = "DESC" if higher_is_better else "ASC"
            sql = (
                f"SELECT {cols} FROM runs r LEFT JOIN metrics m ON m.run_id = r.id AND m.key = ? "
                f"{clause} ORDER BY m.value IS NULL, m.value {order}, {_TIE_ORDER}, "
                "r.started_at DESC"
            )
            args.insert(0, metric)
        else:
            sql = f"SELECT {cols} FROM runs r {clause} ORDER BY r.started_at DESC, r.model"
        if limit:
            sql += f" LIMIT {int(limit)}"
        runs = [_run_from_row(row) for row in self._db.execute(sql, args)]
        self._attach_metrics(runs)
        return runs

    def run(self, run_id: str) -> Run | None:
        row = self._db.execute(
            f"SELECT {self._run_columns} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        run = _run_from_row(row)
        self._attach_metrics([run])
        return run

    def find_run(self, ref: str) -> Run | None:
        """The run with id `ref`, or labelled `ref` (MODEL-#, as the leaderboard shows it)."""
        run = self.run(ref)
        model, _, seq = ref.rpartition("-")
        if run is None and model and seq.isdigit():
            row = self._db.execute(
                "SELECT id FROM runs WHERE model = ? AND seq = ?", (model, int(seq))
            ).fetchone()
            run = self.run(row[0]) if row else None
        return run

    def _attach_metrics(self, runs: list[Run]) -> None:
        if not runs:
            return
        by_id = {r.id: r for r in runs}
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._db.execute(
                f"SELECT run_id, key, value, {self._metric_columns} FROM metrics WHERE run_id IN "
                f"({', '.join('?' * len(chunk))})",
                chunk,
            )
            for run_id, key, value, std, test in rows:
                run = by_id[run_id]
                run.metrics[key] = value
                if std is not None:
                    run.metrics_std[key] = std
                if test is not None:
                    run.test_metrics[key] = test

    # ---- champion ----------------------------------------------------------------------------
    def best_runs(
        self,
        metric: str,
        *,
        higher_is_better: bool,
        prediction: str,
        limit: int = 2,
        data_version: str | None = None,
    ) -> list[tuple[str, str, float]]:
        """(run id, model, value) of the best finished runs by `metric` (of one `data_version`,
        when given), best first; equal scores ordered by TIE_RULE."""
        order = "DESC" if higher_is_better else "ASC"
        where, args = _finished_where(metric, prediction, data_version)
        rows = self._db.execute(
            "SELECT m.run_id, r.model, m.value FROM metrics m JOIN runs r ON r.id = m.run_id "
            f"WHERE {where} ORDER BY m.value {order}, {_TIE_ORDER} LIMIT ?",
            (*args, limit),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def count_scoring(
        self, metric: str, value: float, *, prediction: str, data_version: str | None = None
    ) -> int:
        """How many finished runs score exactly `value` on `metric` (ties with a champion)."""
        where, args = _finished_where(metric, prediction, data_version)
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM metrics m JOIN runs r ON r.id = m.run_id "
                f"WHERE {where} AND m.value = ?",
                (*args, value),
            ).fetchone()[0]
        )

    def run_counts_by_data_version(self, prediction: str) -> dict[str | None, int]:
        """How many runs of `prediction` each data version has (None: runs without one)."""
        rows = self._db.execute(
            "SELECT data_version, COUNT(*) FROM runs WHERE prediction = ? GROUP BY data_version",
            (prediction,),
        )
        return {row[0]: row[1] for row in rows}

    def crown(self, run_id: str, metric: str, value: float, reason: str = "evaluate") -> Champion:
        with self._transaction() as db:
            previous = _current_champion_row(db)
            previous_id = previous["run_id"] if previous else None
            crowned_at = now_iso()
            db.execute(
                "INSERT INTO champions (run_id, metric, value, previous_run_id, reason, "
                "crowned_at) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, metric, value, previous_id, reason, crowned_at),
            )
        return self.champion()  # type: ignore[return-value]

    def clear_champion(self, reason: str) -> None:
        with self._transaction() as db:
            previous = _current_champion_row(db)
            if previous is None or previous["run_id"] is None:
                return
            db.execute(
                "INSERT INTO champions (run_id, metric, value, previous_run_id, reason, "
                "crowned_at) VALUES (NULL, NULL, NULL, ?, ?, ?)",
                (previous["run_id"], reason, now_iso()),
            )

    def champion(self) -> Champion | None:
        row = _current_champion_row(self._db)
        if row is None or row["run_id"] is None:
            return None
        model = self._db.execute("SELECT model FROM runs WHERE id = ?", (row["run_id"],)).fetchone()
        return Champion(
            run_id=row["run_id"],
            metric=row["metric"],
            value=row["value"],
            previous_run_id=row["previous_run_id"],
            crowned_at=row["crowned_at"],
            model=model[0] if model else "",
        )

    def champion_history(self) -> list[CrownEvent]:
        rows = self._db.execute(
            "SELECT c.run_id, c.metric, c.value, c.previous_run_id, c.reason, c.crowned_at, "
            "r.model FROM champions c LEFT JOIN runs r ON r.id = c.run_id ORDER BY c.id DESC"
        )
        return [CrownEvent(*tuple(r)) for r in rows]

    # ---- evaluations (`haj score`, `haj check`) -----------------------------------------------
    def add_evaluation(
        self,
        run_id: str,
        data: str,
        data_sha256: str | None,
        rows: int,
        metrics: dict[str, float],
        details: dict[str, Any] | None,
    ) -> Evaluation:
        evaluation = Evaluation(
            id=uuid.uuid4().hex[:12],
            run_id=run_id,
            data=data,
            data_sha256=data_sha256,
            rows=rows,
            metrics=metrics,
            details=details,
            created_at=now_iso(),
        )
        with self._transaction() as db:
            db.execute(
                "INSERT INTO evaluations (id, run_id, data, data_sha256, rows, metrics, details, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    evaluation.id,
                    run_id,
                    data,
                    data_sha256,
                    rows,
                    json.dumps(metrics),
                    json.dumps(details) if details is not None else None,
                    evaluation.created_at,
                ),
            )
        return evaluation

    def evaluations(self, run_id: str | None = None) -> list[Evaluation]:
        """Evaluations, newest first (of one run when given)."""
        sql = "SELECT * FROM evaluations"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            args = (run_id,)
        rows = self._db.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [
            Evaluation(
                id=row["id"],
                run_id=row["run_id"],
                data=row["data"],
                data_sha256=row["data_sha256"],
                rows=row["rows"],
                metrics=json.loads(row["metrics"]),
                details=json.loads(row["details"]) if row["details"] else None,
                created_at=row["created_at"],
            )
            for row in rows
        ]

    # ---- drift reports (`haj monitor`) -------------------------------------------------------
    def add_monitor_report(self, record: dict[str, Any]) -> str:
        """Store one report (engine.monitor's record: headline figures and the report as a
        dict); returns its id."""
        report_id = uuid.uuid4().hex[:12]
        with self._transaction() as db:
            db.execute(
                "INSERT INTO monitor_reports (id, created_at, run_id, source, window, rows, "
                "too_small, dataset_drift, drift_share, missing_share, quality_issues, report) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    record.get("created_at") or now_iso(),
                    record["run_id"],
                    record["source"],
                    record["window"],
                    int(record["rows"]),
                    int(bool(record["too_small"])),
                    int(bool(record["dataset_drift"])),
                    float(record["drift_share"]),
                    float(record["missing_share"]),
                    int(record["quality_issues"]),
                    json.dumps(record["report"]),
                ),
            )
        return report_id

    def monitor_reports(self, limit: int | None = None, full: bool = False) -> list[dict[str, Any]]:
        """Stored reports, oldest first (the last `limit`); the whole report only when `full`."""
        columns = (
            "id, created_at, run_id, source, window, rows, too_small, dataset_drift, "
            "drift_share, missing_share, quality_issues" + (", report" if full else "")
        )
        sql = f"SELECT {columns} FROM monitor_reports ORDER BY created_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        out = []
        for row in reversed(self._db.execute(sql, args).fetchall()):
            record = dict(row)
            record["too_small"] = bool(record["too_small"])
            record["dataset_drift"] = bool(record["dataset_drift"])
            if full:
                record["report"] = json.loads(record["report"])
            out.append(record)
        return out

    # ---- run tags and artifacts ----------------------------------------------------------------
    def set_tags(self, run_id: str, tags: dict[str, str], source: str = "user") -> None:
        """Set (or replace) tags of a run; an empty value removes the tag."""
        with self._transaction() as db:
            for key, value in tags.items():
                if value == "":
                    db.execute("DELETE FROM run_tags WHERE run_id = ? AND key = ?", (run_id, key))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO run_tags (run_id, key, value, source) "
                        "VALUES (?, ?, ?, ?)",
                        (run_id, key, str(value), source),
                    )

    def tags(self, run_ids: list[str] | None = None) -> dict[str, dict[str, str]]:
        """run id -> {key: value} (of the given runs, else of every run)."""
        sql = "SELECT run_id, key, value FROM run_tags"
        args: tuple[Any, ...] = ()
        if run_ids is not None:
            if not run_ids:
                return {}
            sql += f" WHERE run_id IN ({', '.join('?' for _ in run_ids)})"
            args = tuple(run_ids)
        out: dict[str, dict[str, str]] = {}
        for row in self._db.execute(sql + " ORDER BY key", args).fetchall():
            out.setdefault(row["run_id"], {})[row["key"]] = row["value"]
        return out

    def add_artifact(self, run_id: str, name: str, kind: str, path: str) -> None:
        """List a file (relative to the project) as one of a run's artifacts."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO run_artifacts (run_id, name, kind, path, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (run_id, name, kind, path, now_iso()),
            )

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT name, kind, path, created_at FROM run_artifacts WHERE run_id = ? ORDER BY name",
            (run_id,),
        ).fetchall()
        return [dict(row) for row in rows]

    # ---- pipeline runs and notifications ----------------------------------------------------
    def record_pipeline_run(self, record: dict[str, Any]) -> None:
        """Insert or replace one pipeline run (steps: a list, stored as JSON)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pipeline_runs (id, started_at, finished_at, trigger, "
                "status, summary, steps, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["id"],
                    record["started_at"],
                    record.get("finished_at"),
                    record["trigger"],
                    record["status"],
                    record.get("summary"),
                    json.dumps(record.get("steps") or []),
                    record.get("pid"),
                ),
            )

    def pipeline_runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Pipeline runs, newest first."""
        sql = "SELECT * FROM pipeline_runs ORDER BY started_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        out = []
        for row in self._db.execute(sql, args).fetchall():
            record = dict(row)
            record["steps"] = json.loads(record["steps"] or "[]")
            out.append(record)
        return out

    def add_notification(self, record: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO notifications (id, created_at, event, text, status, attempts, "
                "error, pipeline_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex[:12],
                    record.get("created_at") or now_iso(),
                    record["event"],
                    record["text"],
                    record["status"],
                    int(record["attempts"]),
                    record.get("error"),
                    record.get("pipeline_id"),
                ),
            )

    def notifications(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Notifications, newest first."""
        sql = "SELECT * FROM notifications ORDER BY created_at DESC, rowid DESC"
        args: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        return [dict(row) for row in self._db.execute(sql, args).fetchall()]

    # ---- retrains (`haj retrain`) -------------------------------------------------------------
    def record_retrain(self, record: dict[str, Any]) -> None:
        """Insert or replace one retrain, as engine.retrain made it (steps and details: JSON)."""
        values = [
            json.dumps(record.get(c)) if c in _RETRAIN_JSON else record.get(c)
            for c in _RETRAIN_COLUMNS
        ]
        marks = ", ".join("?" for _ in _RETRAIN_COLUMNS)
        with self._transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO retrains ({', '.join(_RETRAIN_COLUMNS)}) VALUES ({marks})",
                values,
            )

    def retrains(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Retrains, newest first (at most `limit`)."""
        sql = f"SELECT {', '.join(_RETRAIN_COLUMNS)} FROM retrains ORDER BY started_at DESC"
        rows = self._db.execute(sql + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [
            {
                c: (json.loads(row[c]) if row[c] else None) if c in _RETRAIN_JSON else row[c]
                for c in _RETRAIN_COLUMNS
            }
            for row in rows.fetchall()
        ]

    # ---- records (server, container, deployment state) ---------------------------------------
    def set_record(self, kind: str, value: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO records (kind, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (kind) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (kind, json.dumps(value), now_iso()),
            )

    def get_record(self, kind: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM records WHERE kind = ?", (kind,)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_record(self, kind: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM records WHERE kind = ?", (kind,))

    # ---- summary -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts and champion for `haj list` / `haj status`, in a handful of cheap queries."""
        counts = dict(
            self._db.execute("SELECT kind, COUNT(*) FROM data_versions GROUP BY kind").fetchall()
        )
        status_counts = dict(
            self._db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        )
        champion = self.champion()
        return {
            "raw_versions": counts.get("raw", 0),
            "processed_versions": counts.get("processed", 0),
            "runs": sum(status_counts.values()),
            "runs_by_status": status_counts,
            "champion": champion.to_dict() if champion else None,
            "server": self.get_record("server"),
            "last_pipeline": self._last_pipeline(),
        }

    def _last_pipeline(self) -> dict[str, Any] | None:
        """The latest pipeline run's headline (None: none yet, or a store from before them)."""
        try:
            row = self._db.execute(
                "SELECT started_at, trigger, status, summary FROM pipeline_runs "
                "ORDER BY started_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        except sqlite3.OperationalError:  # a read-only look at a store older than schema 8
            return None
        return dict(row) if row else None


def _later_than(previous: str | None, stamp: str) -> str:
    """`stamp`, or 1 ms after `previous` when the clock has not moved past it (same millisecond,
    or a clock set back): retrievals stay in the order they happened."""
    if previous is None or stamp > previous:
        return stamp
    moved = datetime.fromisoformat(previous) + timedelta(milliseconds=1)
    return moved.isoformat(timespec="milliseconds")


def _retrieval_stamp(db: sqlite3.Connection) -> str:
    """The time of a raw retrieval, strictly after the last one, so the current raw version
    (the one retrieved last) is never ambiguous."""
    last = db.execute(
        "SELECT MAX(last_retrieved_at) FROM data_versions WHERE kind = 'raw'"
    ).fetchone()[0]
    return _later_than(last, now_iso())


def _insert_version(
    db: sqlite3.Connection,
    *,
    kind: str,
    sha256: str,
    size: int,
    fmt: str,
    rows: int | None,
    columns: int | None,
    source: str,
    parent: str | None,
    path_for: Callable[[int], str],
    stamp: str,
    reading: str | None = None,
) -> DataVersion:
    """Insert a new version numbered after the last of its kind (raw-0003, proc-0002), in the
    caller's transaction."""
    seq = (
        db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM data_versions WHERE kind = ?", (kind,)
        ).fetchone()[0]
        + 1
    )
    prefix = "raw" if kind == "raw" else "proc"
    version = DataVersion(
        id=f"{prefix}-{seq:04d}",
        kind=kind,
        seq=seq,
        sha256=sha256,
        bytes=size,
        format=fmt,
        rows=rows,
        columns=columns,
        source=source,
        parent=parent,
        path=str(path_for(seq)),
        created_at=stamp,
        last_retrieved_at=stamp if kind == "raw" else None,
        reading=reading,
    )
    d = version.to_dict()
    db.execute(
        f"INSERT INTO data_versions ({', '.join(d)}) VALUES ({', '.join('?' * len(d))})",
        tuple(d.values()),
    )
    return version


def _link_derivation(
    db: sqlite3.Connection, raw_id: str, recipe: Recipe, processed_id: str, stamp: str
) -> None:
    """Record raw version + recipe -> processed version (new or found again), so the same raw
    data is not processed again with the same recipe."""
    db.execute(
        "INSERT OR REPLACE INTO derivations (raw_id, recipe, processed_id, "
        "processor_sha256, target, prediction, derived_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            raw_id,
            recipe.key,
            processed_id,
            recipe.processor_sha256,
            recipe.target,
            recipe.prediction,
            stamp,
        ),
    )


def _finished_where(
    metric: str, prediction: str, data_version: str | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (over metrics m JOIN runs r) of the finished runs crowning compares:
    those with a model file (a tuning trial is scored by CV only and keeps no model)."""
    where = "m.key = ? AND r.status = 'finished' AND r.prediction = ? AND r.model_path IS NOT NULL"
    args: tuple[Any, ...] = (metric, prediction)
    if data_version:
        where += " AND r.data_version = ?"
        args += (data_version,)
    return where, args


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _current_champion_row(db: sqlite3.Connection) -> sqlite3.Row | None:
    return db.execute(
        "SELECT run_id, metric, value, previous_run_id, crowned_at FROM champions "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()


def _run_row(run: Run) -> tuple[Any, ...]:
    return (
        run.id,
        run.session,
        run.model,
        run.seq,
        run.status,
        run.prediction,
        run.data_version,
        json.dumps(run.params, default=str),
        run.error,
        run.started_at,
        run.finished_at,
        run.fit_seconds,
        run.duration_seconds,
        run.model_path,
        run.model_sha256,
        run.pid,
        run.cv_folds,
        run.test_rows,
        run.refit_of,
    )


def _run_from_row(row: sqlite3.Row) -> Run:
    values = dict(row)
    values["params"] = json.loads(values["params"] or "{}")
    values["notes"] = values["params"].pop(NOTES_KEY, {})
    return Run(**values)
