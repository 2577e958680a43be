"""How numbers read (engine.numbers), the change detector (engine.watch) and the training
session as views read it (engine.sessions): unit tests, no process."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from engine import sessions, training
from engine.numbers import MISSING, column_format, fit, metric_text, summary_texts
from engine.project import Project
from engine.store import Store
from engine.watch import project_stamp


# ---- numbers -------------------------------------------------------------------------------------
def test_one_precision_per_metric_whatever_the_value() -> None:
    # the issue: 52.94, 52.9372 and 56.293 for the same kind of value
    assert metric_text("rmse", 52.9372) == "52.94"
    assert metric_text("rmse", 56.2931) == "56.29"
    assert metric_text("mse", 2802.3455) == "2802"
    assert metric_text("acc", 0.98245) == "0.9825"  # bounded scores: always 4 decimals
    assert metric_text("r2", 0.5) == "0.5000"
    assert metric_text("rmse", 6.903e-06) == "6.903e-06"  # never 0.0000 for an error
    assert metric_text("acc", 0.965, 0.012) == "0.9650 ± 0.0120"
    assert metric_text("acc", None) == MISSING


def test_a_data_column_has_one_precision_and_noise_reads_zero() -> None:
    write = column_format([-0.1072, -2.512e-19, 0.1107, 0.0381])
    assert [write(v) for v in (-0.1072, -2.512e-19, 0.1107, 0.0381)] == [
        "-0.1072",
        "0.0000",  # float noise: not -2.512e-19, not -0.0000
        "0.1107",
        "0.0381",
    ]
    tiny = column_format([6.903e-06, 1.2e-05])
    assert tiny(6.903e-06) == "6.903e-06"  # not 6.90 (cut) nor 0.0000
    assert column_format([1, 2, 3])(2) == "2"
    assert column_format([1.5, None])(None) == MISSING
    assert column_format([1.5, float("nan")])(float("nan")) == MISSING
    assert column_format(["a", "b"])("a") == "a"


def test_the_summary_says_min_mean_max_at_the_columns_precision() -> None:
    entry = {"column": "s1", "min": -0.1268, "mean": -1.381e-17, "max": 0.1539}
    assert summary_texts(entry) == {"min": "-0.1268", "mean": "0.0000", "max": "0.1539"}
    assert summary_texts({"column": "c", "top": ["a"]}) == {}
    assert summary_texts({"column": "empty", "min": None, "mean": None, "max": None}) == {
        "min": MISSING,
        "mean": MISSING,
        "max": MISSING,
    }


def test_fit_never_cuts_a_number() -> None:
    assert fit("52.9372", 5) == "52.94"
    assert fit("6.903e-06", 6) == "7e-06"
    assert fit("123456789", 5) == "1e+08"
    assert fit("abc", 2) == "abc"  # not a number: the caller widens the column


# ---- the change detector -------------------------------------------------------------------------
def test_the_stamp_moves_when_a_writer_commits_and_not_when_a_view_reads(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "config.toml").write_text("[project]\n")
    with Store(project / "haj.db") as store:
        store.set_record("server", {"pid": 1})
    before = project_stamp(project)
    assert project_stamp(project).changed(before) == frozenset()
    with Store(project / "haj.db") as store:  # a view reads: nothing changes
        store.get_record("server")
    assert project_stamp(project).changed(before) == frozenset()
    with Store(project / "haj.db") as store:  # another process writes
        store.set_record("server", {"pid": 2})
    assert project_stamp(project).changed(before) == {"store"}
    (project / "logs").mkdir()
    (project / "logs" / "train.log").write_text("x\n")
    assert "log" in project_stamp(project).changed(before)


# ---- training sessions ---------------------------------------------------------------------------
def test_compact_prefix_for_the_app_full_prefix_in_the_file() -> None:
    line = "[2026-12-02 05:31:49 diabetes (gradient_boosting-1) proc-0001] finished in 0.17s"
    assert sessions.compact_line(line) == "05:31:49 gradient_boosting-1 finished in 0.17s"
    done = "[2026-12-02 05:31:49 diabetes (session) proc-0001] done: 12 finished, 0 failed"
    assert sessions.compact_line(done) == "05:31:49 done: 12 finished, 0 failed"
    assert sessions.compact_line("plain") == "plain"


def test_queued_and_running_runs_of_a_session_another_process_runs(tmp_path: Path) -> None:
    project = Project("p", tmp_path / "p")
    project.path.mkdir()
    with Store(project.db_path) as store:
        runs = store.start_runs(
            session="s1",
            models=[("knn", {}), ("svc", {}), ("ridge", {})],
            prediction="classification",
            data_version="proc-0001",
            pid=os.getpid(),
        )
    log = project.logs_dir / "train.log"
    log.parent.mkdir()
    log.write_text(
        f"[2026-12-02 05:31:49 p ({runs[0].label}) proc-0001] queued (run {runs[0].id})\n"
        f"[2026-12-02 05:31:50 p ({runs[0].label}) proc-0001] {sessions.STARTED}\n"
    )
    session = sessions.last_session(project)
    assert session is not None and session.live
    status = {run.model: run.status for run in session.runs}
    assert status == {"knn": "running", "svc": "queued", "ridge": "queued"}
    started = next(run for run in session.runs if run.model == "knn").started
    assert started == "2026-12-02T05:31:50"

    lines, offset = sessions.read_log(project)
    assert lines[-1] == f"05:31:50 {runs[0].label} {sessions.STARTED}"
    with open(log, "a") as handle:
        handle.write(f"[2026-12-02 05:31:52 p ({runs[0].label}) proc-0001] finished in 2s\n")
    assert sessions.read_log(project, offset)[0] == [f"05:31:52 {runs[0].label} finished in 2s"]


def test_the_time_left_spreads_the_queue_over_the_workers() -> None:
    # two workers: 4 s left on one, 1 s on the other; the queue (3 s, 3 s) goes to the first free
    assert sessions.remaining([(5.0, 1.0), (2.0, 1.0)], [3.0, 3.0], workers=2) == 7.0
    assert sessions.remaining([(None, 1.0)], [None], workers=1) is None
    assert sessions.remaining([(None, 1.0)], [2.0], workers=1) == 3.0


def test_a_warning_of_a_fit_is_one_line_without_its_source_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            warnings.warn("lbfgs failed to converge\nIncrease max_iter", UserWarning, stacklevel=1)
    assert training._warning_lines(caught) == ["UserWarning: lbfgs failed to converge"]
