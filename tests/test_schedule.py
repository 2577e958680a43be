"""Schedules (engine.cron, engine.schedule, `haj schedule`): cron expressions checked and
iterated with a fixed clock, the scheduler's passes with an injected clock and spawner, the
crontab line kept by a stand-in `crontab` program, and the detached scheduler firing a real
pipeline run."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine import cron, schedule
from engine.api import Workspace
from engine.errors import ConfigError, UsageError
from engine.workspace import create_project
from tests.support import Result, as_json, run_haj
from tests.support.procs import alive, descendants, stop_pid

# ---- cron expressions ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0 3 * * *", "0 3 * * *"),
        ("  */5   * * * * ", "*/5 * * * *"),
        ("@Daily", "@daily"),
        ("0 6 * jul-aug mon-fri", "0 6 * jul-aug mon-fri"),
        ("0 0 * * WED", "0 0 * * WED"),  # a W in a day's name is no Quartz W
    ],
)
def test_cron_accepts_what_cron_reads(given: str, stored: str) -> None:
    assert cron.check(given) == stored


@pytest.mark.unit
@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("61 * * * *", "bad minute field (a minute is 0-59"),
        ("0 24 * * *", "bad hour field"),
        ("0 0 31 2 *", "bad day-of-month field"),
        ("* * *", "5 fields (minute hour day-of-month month day-of-week), '* * *' has 3"),
        ("0 0 * * * *", "has 6"),  # cronsim's seconds field: cron has none
        ("0 0 L * *", "the day-of-month field 'L' uses L, W, # or ?, which cron does not"),
        ("0 0 * * 5#2", "the day-of-week field '5#2'"),
        ("0 0 * * 5L", "the day-of-week field '5L'"),
        ("@reboot", "runs at boot"),
        ("@often", "not a cron @-word"),
        ("", "has 0"),
    ],
)
def test_cron_refuses_in_one_line(given: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        cron.check(given)
    assert says in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.unit
def test_next_three_times_with_a_fixed_clock() -> None:
    friday_noon = datetime(2026, 1, 2, 12, 0, 30)
    assert cron.next_times("0 3 * * mon-fri", friday_noon) == [
        datetime(2026, 1, 5, 3, 0),
        datetime(2026, 1, 6, 3, 0),
        datetime(2026, 1, 7, 3, 0),
    ]
    assert cron.next_times("*/15 * * * *", datetime(2026, 1, 2, 12, 7, 30)) == [
        datetime(2026, 1, 2, 12, 15),
        datetime(2026, 1, 2, 12, 30),
        datetime(2026, 1, 2, 12, 45),
    ]
    assert cron.next_times("@hourly", datetime(2026, 1, 2, 23, 0)) == [
        datetime(2026, 1, 3, 0, 0),
        datetime(2026, 1, 3, 1, 0),
        datetime(2026, 1, 3, 2, 0),
    ]
    # strictly after: a time exactly on the schedule is not its own next time
    assert cron.next_time("* * * * *", datetime(2026, 1, 2, 12, 0)) == datetime(2026, 1, 2, 12, 1)
    assert cron.explain("0 3 * * *") == "At 03:00 every day"


# ---- the config ---------------------------------------------------------------------------------
@pytest.mark.unit
def test_the_config_refuses_a_bad_schedule_and_keeps_the_file(tmp_path: Path) -> None:
    project = create_project(tmp_path, "p", "regression")
    before = project.config_path.read_text()
    with pytest.raises(ConfigError) as caught:
        project.update_config({"pipeline": {"schedule": "61 * * * *"}})
    assert caught.value.message.endswith(
        "config.toml: pipeline.schedule: '61 * * * *': bad minute field (a minute is 0-59, with "
        "* , - /)"
    )
    assert project.config_path.read_text() == before
    project.update_config({"pipeline": {"schedule": "0 3 * * *"}})
    assert project.read_config()["pipeline"]["schedule"] == "0 3 * * *"
    project.update_config({"pipeline": {"schedule": "off"}})  # off, by hand, is no schedule
    assert schedule.configured(project.path) == ""
    text = project.config_path.read_text()
    project.config_path.write_text(text.replace('schedule = "off"', 'schedule = "0 0 L * *"'))
    with pytest.raises(ConfigError, match=r"pipeline\.schedule: .* cron does not understand"):
        project.read_config()


@pytest.mark.unit
def test_list_rows_carry_the_schedule_as_written(tmp_path: Path) -> None:
    create_project(tmp_path, "a", "regression")
    create_project(tmp_path, "c", "regression").update_config(
        {"pipeline": {"schedule": "30 2 * * *"}}
    )
    create_project(tmp_path, "b", "regression").update_config({"pipeline": {"schedule": "off"}})
    rows = {row.name: row for row in Workspace(tmp_path).projects()}
    assert {name: row.schedule for name, row in rows.items()} == {
        "a": None,
        "b": None,
        "c": "30 2 * * *",
    }
    assert rows["c"].to_dict()["schedule"] == "30 2 * * *"


# ---- the crontab line and the status ------------------------------------------------------------
@pytest.mark.unit
def test_the_crontab_line_runs_the_pipeline_and_ends_with_its_tag(tmp_path: Path) -> None:
    root = tmp_path / "50%"  # cron reads a bare % as a newline
    line = schedule.cron_line(root, "churn", "*/10 * * * *")
    expr, command, tag = line[:12], line[12 : line.index(" # haj:")], line[line.index("# haj:") :]
    assert expr == "*/10 * * * *"
    assert "--home" in command and "pipeline run churn --trigger schedule >> " in command
    assert command.endswith("/50\\%/churn/logs/pipeline.log 2>&1")
    assert tag == f"# haj:{tmp_path.resolve()}/50\\%:churn" == schedule.tag(root, "churn")
    assert "%" not in line.replace("\\%", "")


@pytest.mark.unit
def test_status_json_from_a_given_crontab_and_clock(tmp_path: Path) -> None:
    create_project(tmp_path, "p", "regression").update_config(
        {"pipeline": {"schedule": "0 3 * * *"}}
    )
    create_project(tmp_path, "q", "regression")
    now = datetime(2026, 1, 2, 12, 0)
    other = "MAILTO=me\n5 4 * * * /usr/bin/backup\n"
    installed = schedule.cron_line(tmp_path, "p", "0 3 * * *")
    status = schedule.status(tmp_path, "p", table=other + installed + "\n", now=now)
    assert json.loads(json.dumps(status.to_dict())) == {
        "name": "p",
        "schedule": "0 3 * * *",
        "explain": "At 03:00 every day",
        "next": [
            schedule.local_iso(datetime(2026, 1, 3, 3, 0)),
            schedule.local_iso(datetime(2026, 1, 4, 3, 0)),
            schedule.local_iso(datetime(2026, 1, 5, 3, 0)),
        ],
        "crontab": {
            "checked": True,
            "installed": True,
            "current": True,
            "line": installed,
            "error": None,
        },
        "scheduler": None,
        "runs_by": ["cron"],
        "last_run": None,
        "warning": None,
    }
    # the line of another schedule, nothing that runs it, a line without a schedule
    stale = schedule.status(
        tmp_path, "p", table=schedule.cron_line(tmp_path, "p", "0 4 * * *"), now=now
    )
    assert stale.to_dict()["crontab"]["current"] is False
    assert "another schedule than config.toml's" in (stale.warning or "")
    alone = schedule.status(tmp_path, "p", table=other, now=now)
    assert alone.warning == (
        "nothing runs it: `haj schedule install p` (cron) or `haj schedule run --detach`"
    )
    unread = schedule.status(tmp_path, "p", now=now)  # the crontab not read: no verdict on it
    assert unread.to_dict()["crontab"]["checked"] is False and unread.warning is None
    orphan = schedule.status(tmp_path, "q", table=schedule.cron_line(tmp_path, "q", "@daily"))
    assert orphan.schedule is None and "has no schedule" in (orphan.warning or "")


# ---- the scheduler's passes ---------------------------------------------------------------------
class FakeRun:
    """A started pipeline run the test ends by hand (never a real process: no signal is sent
    to its pid)."""

    pids = iter(range(10_000_000, 10_001_000))

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = next(self.pids)
        self.code: int | None = None
        self.terminated = False

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.terminated = True
        self.code = -15

    def kill(self) -> None:
        self.code = -9

    def wait(self, timeout: float | None = None) -> int:
        assert self.code is not None
        return self.code


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.mark.unit
def test_the_scheduler_starts_each_due_project_once_with_an_injected_clock(
    tmp_path: Path,
) -> None:
    every_minute = create_project(tmp_path, "a", "regression")
    every_minute.update_config({"pipeline": {"schedule": "* * * * *"}})
    create_project(tmp_path, "b", "regression").update_config(
        {"pipeline": {"schedule": "0 12 * * *"}}
    )
    create_project(tmp_path, "c", "regression")  # no schedule: never started
    clock = Clock(datetime(2026, 1, 2, 11, 59, 30))
    started: list[FakeRun] = []
    lines: list[str] = []

    def spawn(name: str) -> FakeRun:
        started.append(FakeRun(name))
        return started[-1]

    scheduler = schedule.Scheduler(tmp_path, now=clock, spawn=spawn, say=lines.append)
    assert scheduler.check() == 30.0  # nothing due yet; 12:00 is 30 s away
    assert started == []
    clock.at = datetime(2026, 1, 2, 12, 0, 0, 200_000)  # woken just after 12:00
    scheduler.check()
    assert sorted(run.name for run in started) == ["a", "b"]
    clock.at += timedelta(seconds=20)
    assert scheduler.check() == pytest.approx(39.8)  # nothing new within the same minute
    assert len(started) == 2
    first_a = next(run for run in started if run.name == "a")
    clock.at = datetime(2026, 1, 2, 12, 1, 0, 100_000)
    scheduler.check()  # a is due again, but its 12:00 run still runs: not started twice
    assert len(started) == 2
    assert lines[-1] == f"a: due at 12:01, but its last run (pid {first_a.pid}) still runs: " + (
        "not started twice"
    )
    first_a.code = 0
    for run in started:
        if run.name == "b":
            run.code = 13
    clock.at = datetime(2026, 1, 2, 12, 2, 0, 100_000)
    scheduler.check()
    assert [run.name for run in started] == ["a", "b", "a"]
    assert f"a: pipeline run (pid {first_a.pid}) finished" in lines
    assert any("refused: another run holds the project (exit code 13)" in line for line in lines)
    # the schedules are read again at every pass: a new one counts, a bad one is said once
    every_minute.config_path.write_text(
        every_minute.config_path.read_text().replace('schedule = "* * * * *"', 'schedule = "61"')
    )
    clock.at = datetime(2026, 1, 2, 12, 3, 0, 100_000)
    scheduler.check()
    scheduler.check()
    assert sum("a: not scheduled:" in line for line in lines) == 1
    assert len(started) == 3  # a is no longer scheduled
    scheduler.shutdown(grace=0.1)  # the run still going is stopped
    assert started[2].terminated and scheduler.running == {}
    assert f"a: pipeline run (pid {started[2].pid}) was cancelled (exit code -15)" in lines


@pytest.mark.unit
def test_the_scheduler_clock_and_tick_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAJ_SCHEDULER_TICK", "0.5")
    monkeypatch.setenv("HAJ_SCHEDULER_CLOCK_OFFSET", "3600")
    assert schedule.tick() == 0.5
    assert abs((schedule.clock()() - datetime.now()).total_seconds() - 3600) < 5
    monkeypatch.setenv("HAJ_SCHEDULER_TICK", "0")
    with pytest.raises(UsageError, match="HAJ_SCHEDULER_TICK must be a number of seconds above 0"):
        schedule.tick()


# ---- the crontab, through a stand-in `crontab` program -------------------------------------------
STAND_IN = """#!/bin/sh
# a stand-in for crontab(1): the table lives in {table}; each write is counted in {writes}
case "$1" in
  -l) if [ -f "{table}" ]; then cat "{table}"; else echo "no crontab for tester" >&2; exit 1; fi ;;
  -) cat > "{table}"; echo write >> "{writes}" ;;
  *) echo "crontab: unknown option $1" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `crontab` program named so ($HAJ_CRONTAB); returns its table's path."""
    folder = tmp_path / "bin"
    folder.mkdir()
    table, writes = tmp_path / "table", tmp_path / "writes"
    program = folder / "crontab"
    program.write_text(STAND_IN.format(table=table, writes=writes))
    program.chmod(0o755)
    monkeypatch.setenv("HAJ_CRONTAB", str(program))
    return table


def _writes(table: Path) -> int:
    path = table.parent / "writes"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.integration
def test_install_and_remove_touch_only_the_project_line(
    haj: Callable[..., Result], home: Path, crontab: Path
) -> None:
    for name in ("p", "q"):
        assert haj("init", name, "-p", "regression").code == 0
        assert haj("schedule", "set", name, "0 3 * * *").code == 0
    assert not crontab.exists()  # no crontab yet: `crontab -l` said so, and that is fine
    result = haj("schedule", "install", "p")
    assert result.code == 0, result.text
    (line,) = crontab.read_text().splitlines()
    assert line.startswith("0 3 * * * ") and line.endswith(f"# haj:{home.resolve()}:p")
    assert (home / "p" / "logs").is_dir()

    mine = "MAILTO=me@example.com\n# my backups\n5 4 * * * /usr/bin/backup --all # nightly\n"
    crontab.write_text(crontab.read_text() + mine)
    assert haj("schedule", "install", "p").code == 0  # again: replaced where it stands
    assert crontab.read_text() == line + "\n" + mine
    assert haj("schedule", "install", "q").code == 0
    q_line = crontab.read_text().splitlines()[-1]
    assert q_line.endswith(f"# haj:{home.resolve()}:q")
    assert crontab.read_text() == line + "\n" + mine + q_line + "\n"

    result = haj("schedule", "remove", "p")
    assert result.code == 0 and "Removed from your crontab" in result.out
    assert crontab.read_text() == mine + q_line + "\n"
    writes = _writes(crontab)
    result = haj("schedule", "remove", "p")
    assert result.code == 0 and "No crontab line runs p: nothing changed." in result.out
    assert _writes(crontab) == writes  # nothing to remove: the table is not written
    assert crontab.read_text() == mine + q_line + "\n"


@pytest.mark.integration
def test_set_makes_an_installed_line_follow(
    haj: Callable[..., Result], home: Path, crontab: Path
) -> None:
    assert haj("init", "p", "-p", "regression").code == 0
    result = haj("schedule", "install", "p")
    assert result.code == 2 and "p has no schedule: `haj schedule set p" in result.err
    assert haj("schedule", "set", "p", "0 3 * * *").code == 0
    assert haj("schedule", "install", "p").code == 0
    crontab.write_text("# mine\n" + crontab.read_text())

    result = haj("schedule", "set", "p", "*/30 * * * *")
    assert result.code == 0, result.text
    assert "p: its crontab line now runs the new schedule" in result.out
    assert crontab.read_text().splitlines()[1].startswith("*/30 * * * * ")

    before = (home / "p" / "config.toml").read_text()
    result = haj("schedule", "set", "p", "61 * * * *")
    assert (result.code, result.err) == (
        2,
        "haj: error: '61 * * * *': bad minute field (a minute is 0-59, with * , - /)\n",
    )
    assert (home / "p" / "config.toml").read_text() == before

    result = haj("schedule", "set", "p", "off")
    assert result.code == 0 and "p has no schedule now." in result.out
    assert "its crontab line was removed" in result.out
    assert crontab.read_text() == "# mine\n"
    assert schedule.configured(home / "p") == ""


@pytest.mark.integration
def test_status_list_and_project_status_show_the_schedule(
    haj: Callable[..., Result], home: Path, crontab: Path
) -> None:
    for name in ("p", "q"):
        assert haj("init", name, "-p", "regression").code == 0
    result = haj("schedule", "set", "p", "0 3 * * mon-fri", "--json")
    assert as_json(result)["schedule"] == "0 3 * * mon-fri"  # type: ignore[index]
    assert haj("schedule", "install", "p").code == 0

    answer = as_json(haj("schedule", "status", "--json"))
    assert answer["scheduler"] is None  # type: ignore[index]
    p, q = answer["projects"]  # type: ignore[index]
    assert (p["name"], p["schedule"], p["runs_by"], p["last_run"]) == (
        "p",
        "0 3 * * mon-fri",
        ["cron"],
        None,
    )
    assert len(p["next"]) == 3 and p["crontab"]["installed"] and p["crontab"]["current"]
    assert (q["schedule"], q["crontab"]["installed"], q["warning"]) == (None, False, None)
    text = haj("schedule", "status", "p").out
    assert "p: 0 3 * * mon-fri  (At 03:00 on Monday through Friday)" in text
    assert "crontab   line installed" in text and "Scheduler of" in text

    listing = haj("list")
    assert "Schedule" in listing.out and "0 3 * * mon-fri" in listing.out
    rows = {row["name"]: row for row in as_json(haj("list", "--json"))}  # type: ignore[union-attr]
    assert (rows["p"]["schedule"], rows["q"]["schedule"]) == ("0 3 * * mon-fri", None)
    status = haj("status", "p")
    assert "schedule   0 3 * * mon-fri (At 03:00 on Monday through Friday); next " in status.out
    brief = as_json(haj("status", "p", "--json"))["schedule"]  # type: ignore[index]
    assert brief["schedule"] == "0 3 * * mon-fri" and len(brief["next"]) == 3
    assert "schedule   none (`haj schedule set NAME CRON`)" in haj("status", "q").out


@pytest.mark.integration
def test_no_crontab_command_is_said_and_the_schedule_still_sets(
    haj: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAJ_CRONTAB", str(tmp_path / "no-such-crontab"))
    assert haj("init", "p", "-p", "regression").code == 0
    assert haj("schedule", "set", "p", "@hourly").code == 0
    result = haj("schedule", "install", "p")
    assert result.code == 1
    assert result.err.startswith("haj: error: there is no ")
    assert "`haj schedule run --detach`" in result.err and result.err.count("\n") == 1
    answer = as_json(haj("schedule", "status", "p", "--json"))
    (p,) = answer["projects"]  # type: ignore[index]
    assert p["crontab"]["checked"] is False and "there is no" in p["crontab"]["error"]
    assert haj("stop").code == 2 and haj("stop", "--scheduler").code == 1


# ---- the detached scheduler, for real ------------------------------------------------------------
def _pipeline_or_skip() -> None:
    from engine.api import ProjectAPI

    if importlib.util.find_spec("engine.cli.pipeline_cmds") is None or not hasattr(
        ProjectAPI, "pipeline_history"
    ):
        pytest.skip("`haj pipeline` is not registered yet: the scheduler has nothing to run")


def _wait(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _processes_naming(text: str) -> list[int]:
    """The live processes whose command line names `text` (the workspace: haj's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _seconds_to_just_before_a_minute() -> float:
    """A clock offset that puts the scheduler's clock 3 s before the next minute, so an
    every-minute schedule falls due 3 s after it starts."""
    return 60 - time.time() % 60 - 3


@pytest.mark.e2e
def test_the_detached_scheduler_fires_a_real_schedule_and_stops_with_nothing_left(
    home: Path,
) -> None:
    _pipeline_or_skip()
    assert run_haj(home, "init", "p", "--example", "iris").code == 0
    assert run_haj(home, "config", "p", "--set", 'pipeline.steps=["retrieve"]').code == 0
    assert run_haj(home, "schedule", "set", "p", "* * * * *").code == 0
    env = {
        "HAJ_SCHEDULER_TICK": "0.5",
        "HAJ_SCHEDULER_CLOCK_OFFSET": f"{_seconds_to_just_before_a_minute():.3f}",
    }
    started = run_haj(home, "schedule", "run", "--detach", env=env)
    assert started.code == 0, started.text
    record = json.loads((home / ".haj-scheduler.json").read_text())
    pid = int(record["pid"])
    try:
        assert f"(pid {pid})" in started.out and record["log"] == str(home / ".haj-scheduler.log")
        again = run_haj(home, "schedule", "run", "--detach")
        assert again.code == 2 and f"a scheduler already runs for {home} (pid {pid}" in again.err

        def scheduled_run() -> object:
            answer = run_haj(home, "pipeline", "history", "p", "--json")
            runs = json.loads(answer.out) if answer.code == 0 else []
            return [r for r in runs if r["trigger"] == "schedule" and r.get("finished_at")]

        (run,) = _wait("the scheduled pipeline run", scheduled_run, timeout=90)  # type: ignore[misc]
        assert run["status"] == "finished", run
        log = (home / ".haj-scheduler.log").read_text()
        assert f"scheduler of {home} started (pid {pid}): p (* * * * *)" in log
        assert "p: due at " in log
        _wait("the run's end in the log", lambda: ") finished" in _log(home), timeout=10)
        assert "haj's scheduler ----" in (home / "p" / "logs" / "pipeline.log").read_text()

        answer = as_json(run_haj(home, "schedule", "status", "p", "--json"))
        assert answer["scheduler"]["pid"] == pid  # type: ignore[index]
        (p,) = answer["projects"]  # type: ignore[index]
        assert p["runs_by"] == ["scheduler"] and p["last_run"]["trigger"] == "schedule"

        below = descendants(pid)
        stopped = run_haj(home, "schedule", "stop")
        assert stopped.code == 0 and f"(pid {pid})" in stopped.out, stopped.text
        assert [p for p in below if alive(p)] == []
        assert not alive(pid)
        assert not (home / ".haj-scheduler.json").exists()
        assert _processes_naming(str(home)) == []
        assert "scheduler stopped" in (home / ".haj-scheduler.log").read_text()
        assert run_haj(home, "schedule", "stop").code == 1  # none runs now
    finally:
        if alive(pid):
            stop_pid(pid, timeout=40)


def _log(home: Path) -> str:
    return (home / ".haj-scheduler.log").read_text()


SLOW_RETRIEVER = """
import time
from pathlib import Path


def retrieve(config, secrets):
    Path(__file__).with_name("retrieving").write_text("yes")
    time.sleep(120)
    return "a,target\\n1,2\\n"
"""


@pytest.mark.e2e
def test_stopping_the_scheduler_stops_the_pipeline_run_it_started(home: Path) -> None:
    _pipeline_or_skip()
    assert run_haj(home, "init", "p", "-p", "regression").code == 0
    (home / "p" / "retriever.py").write_text(SLOW_RETRIEVER)
    assert run_haj(home, "config", "p", "--set", 'pipeline.steps=["retrieve"]').code == 0
    assert run_haj(home, "schedule", "set", "p", "* * * * *").code == 0
    env = {
        "HAJ_SCHEDULER_TICK": "0.5",
        "HAJ_SCHEDULER_CLOCK_OFFSET": f"{_seconds_to_just_before_a_minute():.3f}",
    }
    assert run_haj(home, "schedule", "run", "--detach", env=env).code == 0
    pid = int(json.loads((home / ".haj-scheduler.json").read_text())["pid"])
    try:
        _wait("the pipeline run", lambda: "pipeline run started" in _log(home), timeout=30)
        _wait("the slow retriever", lambda: (home / "p" / "retrieving").exists(), timeout=60)
        below = descendants(pid)
        assert len(below) >= 2  # the pipeline run and the runner it started
        stopped = run_haj(home, "schedule", "stop")
        assert stopped.code == 0, stopped.text
        assert not alive(pid)
        assert [p for p in below if alive(p)] == [] and _processes_naming(str(home)) == []
        log = (home / ".haj-scheduler.log").read_text()
        assert "p: stopping its pipeline run (pid " in log and "was cancelled" in log
        (run,) = as_json(run_haj(home, "pipeline", "history", "p", "--json"))  # type: ignore[misc]
        assert (run["trigger"], run["status"]) == ("schedule", "cancelled")
    finally:
        if alive(pid):
            stop_pid(pid, timeout=40)
