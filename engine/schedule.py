"""Schedules: when a project's pipeline runs by itself, and what runs it.

A project's schedule is `[pipeline] schedule` in its config.toml (a cron expression, checked by
engine.cron). Two things can run it, each `haj --home WORKSPACE pipeline run NAME --trigger
schedule`, its output appended to the project's logs/pipeline.log:

- the user's crontab: `haj schedule install` adds one line per project, tagged at its end with
  `# haj:WORKSPACE:NAME`, through the `crontab` command ($HAJ_CRONTAB names another one, for
  tests); installing again replaces the line, and no other line is ever touched;
- haj's own scheduler (`haj schedule run`), for machines and containers without cron: one
  process per workspace, recorded in WORKSPACE/.haj-scheduler.json (pid, started_at, log) like
  a server, so `haj schedule status` and `haj schedule stop` find it. It reads every project's
  schedule again at each pass, wakes when a run is due (at least every minute: $HAJ_SCHEDULER_TICK
  seconds), starts each due project's run as a subprocess (never two of one project at once),
  and on SIGTERM or SIGINT stops its running pipelines (SIGTERM, which haj records as cancelled)
  and itself. One scheduler per workspace: it holds WORKSPACE/.haj-scheduler.lock (flock) while
  it runs, which the kernel releases if it dies.

Times are local wall-clock times, as cron reads them. The scheduler's clock is `datetime.now`
(+ $HAJ_SCHEDULER_CLOCK_OFFSET seconds, a test hook) or any `now()` given to `Scheduler`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import cron
from engine.errors import HajError, UsageError, one_line
from engine.fsutil import atomic_write_text
from engine.procs import (
    forget_record,
    kill_group,
    live_record,
    read_record,
    start_in_background,
    terminate,
)

if TYPE_CHECKING:  # imported where used: `haj list` imports this module through engine.api
    import subprocess
    import threading

RECORD_NAME = ".haj-scheduler.json"
LOG_NAME = ".haj-scheduler.log"
LOCK_NAME = ".haj-scheduler.lock"
TICK = 60.0  # the longest the scheduler sleeps: it reads the schedules again at least this often
CHILD_GRACE = 20.0  # seconds a running pipeline gets to stop when the scheduler stops
STOP_TIMEOUT = CHILD_GRACE + 10.0  # `haj schedule stop` waits this long before SIGKILL
START_TIMEOUT = 30.0
MARKER = b"schedule\x00run"  # in the scheduler's command line: `... schedule run ...`
TAG = "# haj:"
_ENGINE_PARENT = str(Path(__file__).resolve().parent.parent)

Say = Callable[[str], None]


# ---- a project's schedule ----------------------------------------------------------------------
def configured(project_path: Path) -> str:
    """The project's `[pipeline] schedule` as written ("" when none, or off); a plain read of
    config.toml (tomllib), for listings and the scheduler. Raises OSError / TOMLDecodeError."""
    text = (project_path / "config.toml").read_text(encoding="utf-8")
    section = tomllib.loads(text).get("pipeline")
    value = section.get("schedule", "") if isinstance(section, dict) else ""
    if not isinstance(value, str) or cron.is_off(value):
        return ""
    return " ".join(value.split())


def pipeline_log(project_path: Path) -> Path:
    return project_path / "logs" / "pipeline.log"


def pipeline_argv(root: Path, name: str) -> list[str]:
    """`haj pipeline run NAME --trigger schedule` as the scheduler starts it: this interpreter,
    the workspace by its absolute path."""
    return [
        sys.executable,
        "-m",
        "engine",
        "--home",
        str(Path(root).absolute()),
        "pipeline",
        "run",
        name,
        "--trigger",
        "schedule",
    ]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ENGINE_PARENT, env.get("PYTHONPATH", "")) if p)
    return env


# ---- the user's crontab -------------------------------------------------------------------------
def crontab_command() -> list[str]:
    """The crontab program: $HAJ_CRONTAB (a command line) or `crontab`."""
    import shlex

    return shlex.split(os.environ.get("HAJ_CRONTAB") or "crontab") or ["crontab"]


def _crontab(*args: str, text: str | None = None) -> subprocess.CompletedProcess[str]:
    import shlex
    import subprocess

    command = [*crontab_command(), *args]
    try:
        return subprocess.run(
            command, input=text, capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise HajError(
            f"there is no {command[0]!r} command here: install cron (Debian: apt-get install "
            "cron), or let haj's own scheduler run the schedules: `haj schedule run --detach`"
        ) from None
    except subprocess.TimeoutExpired:
        raise HajError(f"`{shlex.join(command)}` did not answer within 30 s") from None


def read_crontab() -> str:
    """The user's crontab ("" when they have none yet: `crontab -l` says "no crontab for ...")."""
    done = _crontab("-l")
    if done.returncode == 0:
        return done.stdout
    if "no crontab" in done.stderr.lower():
        return ""
    raise HajError(
        f"`crontab -l` failed (exit code {done.returncode}): {one_line(done.stderr) or 'no output'}"
    )


def write_crontab(text: str) -> None:
    """Install `text` as the user's crontab (`crontab -`)."""
    done = _crontab("-", text=text)
    if done.returncode != 0:
        raise HajError(
            f"`crontab -` refused the new table (exit code {done.returncode}): "
            f"{one_line(done.stderr) or 'no output'}; your crontab is unchanged"
        )


def _escape(text: str) -> str:
    """cron reads an unescaped % in a command as a newline."""
    return text.replace("%", "\\%")


def tag(root: Path, name: str) -> str:
    """The comment that ends (and names) a project's crontab line."""
    return _escape(f"{TAG}{Path(root).resolve()}:{name}")


def haj_argv(root: Path) -> list[str]:
    """haj as cron should run it: the `haj` script beside this interpreter when there is one
    (a virtualenv's), else this interpreter with `-m engine`; the workspace by absolute path."""
    script = Path(sys.executable).parent / "haj"
    if script.is_file() and os.access(script, os.X_OK):
        base = [str(script)]
    else:
        base = [sys.executable, "-m", "engine"]
    return [*base, "--home", str(Path(root).resolve())]


def cron_line(root: Path, name: str, expr: str) -> str:
    """The crontab line that runs the project's pipeline on `expr`."""
    import shlex

    root = Path(root).resolve()
    command = shlex.join([*haj_argv(root), "pipeline", "run", name, "--trigger", "schedule"])
    if not (Path(sys.executable).parent / "haj").is_file():  # `-m engine` needs its folder
        command = f"cd {shlex.quote(_ENGINE_PARENT)} && {command}"
    log = shlex.quote(str(pipeline_log(root / name)))
    return f"{expr} {_escape(f'{command} >> {log} 2>&1')} {tag(root, name)}"


def _tagged(line: str, mark: str) -> bool:
    line = line.rstrip()
    return line == mark or line.endswith(f" {mark}")


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def installed_line(root: Path, name: str, table: str | None = None) -> str | None:
    """The project's line in the crontab (`table`, else read), or None."""
    mark = tag(root, name)
    table = read_crontab() if table is None else table
    return next((line for line in _lines(table) if _tagged(line, mark)), None)


def install(root: Path, name: str, expr: str) -> str:
    """Add the project's line to the crontab, or replace it where it stands; returns it."""
    expr = cron.check(expr)
    line = cron_line(root, name, expr)
    mark = tag(root, name)
    lines, placed = [], False
    for old in _lines(read_crontab()):
        if _tagged(old, mark):
            if not placed:  # the first tagged line is replaced in place, any other dropped
                lines.append(line)
                placed = True
            continue
        lines.append(old)
    if not placed:
        lines.append(line)
    pipeline_log(Path(root) / name).parent.mkdir(parents=True, exist_ok=True)
    write_crontab("\n".join(lines) + "\n")
    return line


def remove(root: Path, name: str) -> str | None:
    """Take the project's line out of the crontab; returns it, or None when there was none
    (then the crontab is not written at all)."""
    mark = tag(root, name)
    lines = _lines(read_crontab())
    kept = [line for line in lines if not _tagged(line, mark)]
    if len(kept) == len(lines):
        return None
    removed = next(line for line in lines if _tagged(line, mark))
    write_crontab("\n".join(kept) + "\n" if kept else "")
    return removed


# ---- the scheduler's record ---------------------------------------------------------------------
def record_path(root: Path) -> Path:
    return Path(root) / RECORD_NAME


def scheduler(root: Path) -> dict[str, Any] | None:
    """The workspace's scheduler record if its process is alive, else None (a pure read: a
    dead one's record is removed by the next start or stop)."""
    return live_record(record_path(root), MARKER)


def _prune(root: Path) -> None:
    record = read_record(record_path(root))
    if record is not None and scheduler(root) is None:
        record_path(root).unlink(missing_ok=True)


def _refuse_if_running(root: Path) -> None:
    running = scheduler(root)
    if running is not None:
        raise UsageError(
            f"a scheduler already runs for {root} (pid {running['pid']}, since "
            f"{local_text(running.get('started_at'))}): `haj schedule stop` stops it"
        )


def start_detached(root: Path) -> dict[str, Any]:
    """Start `haj schedule run` in the background (its own session, output to
    WORKSPACE/.haj-scheduler.log); returns its record once it has written it."""

    root = Path(root).absolute()
    _refuse_if_running(root)
    _prune(root)
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / LOG_NAME

    def recorded(child: subprocess.Popen[bytes]) -> dict[str, Any] | None:
        record = read_record(record_path(root))
        return record if record is not None and int(record.get("pid") or 0) == child.pid else None

    return start_in_background(
        [sys.executable, "-m", "engine", "schedule", "run", "--home", str(root), "--log",
         str(log_path)],
        cwd=root,
        env=_child_env(),
        log_path=log_path,
        ready=recorded,
        what="the scheduler",
        timeout=START_TIMEOUT,
        error=HajError,
    )  # fmt: skip


def stop(root: Path, timeout: float = STOP_TIMEOUT) -> dict[str, Any] | None:
    """Stop the workspace's scheduler (SIGTERM: it stops its running pipelines first; SIGKILL
    after `timeout`); its record, or None when none ran (a dead one's record is removed)."""
    record = scheduler(root)
    if record is None:
        _prune(root)
        return None
    pid = int(record["pid"])
    try:
        terminate(pid, timeout)
    except PermissionError:
        raise HajError(
            f"cannot stop the scheduler (pid {pid}): it belongs to another user"
        ) from None
    forget_record(record_path(root), pid)
    return record


# ---- the scheduler ------------------------------------------------------------------------------
def clock() -> Callable[[], datetime]:
    """The scheduler's clock: local time, moved by $HAJ_SCHEDULER_CLOCK_OFFSET seconds."""
    offset = _env_seconds("HAJ_SCHEDULER_CLOCK_OFFSET", 0.0, allow_negative=True)
    if not offset:
        return datetime.now
    return lambda: datetime.now() + timedelta(seconds=offset)


def tick() -> float:
    """The longest sleep between passes: $HAJ_SCHEDULER_TICK seconds, else 60."""
    return _env_seconds("HAJ_SCHEDULER_TICK", TICK)


def _env_seconds(key: str, default: float, allow_negative: bool = False) -> float:
    raw = os.environ.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${key} must be a number of seconds, not {raw!r}") from None
    if not allow_negative and not value > 0:
        raise UsageError(f"${key} must be a number of seconds above 0, not {raw!r}")
    return value


@dataclass
class Scheduler:
    """Runs every scheduled project of a workspace when it is due; `check()` is one pass.

    `now` is the clock; `spawn(name)` starts a project's pipeline run (default: a subprocess,
    output appended to its logs/pipeline.log); `say(line)` reports (default: stdout, stamped)."""

    root: Path
    now: Callable[[], datetime] = datetime.now
    spawn: Callable[[str], Any] | None = None
    say: Say | None = None
    running: dict[str, Any] = field(default_factory=dict)
    last: datetime | None = None  # runs due after this instant and up to now start at a pass
    _problems: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        if self.last is None:
            self.last = self.now()

    def report(self, text: str) -> None:
        if self.say is not None:
            self.say(text)
        else:
            print(f"[{datetime.now():%Y-%m-%d %H:%M:%S}] {text}", flush=True)

    def schedules(self) -> dict[str, str]:
        """Every scheduled project -> its expression, read afresh; a bad one is said once (and
        again once it changes) and skipped."""
        from engine.workspace import project_names

        found: dict[str, str] = {}
        for name in project_names(self.root):
            try:
                expr = configured(self.root / name)
                if expr:
                    expr = cron.check(expr)
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, UsageError) as exc:
                problem = one_line(str(exc))
                if self._problems.get(name) != problem:
                    self.report(f"{name}: not scheduled: {problem}")
                    self._problems[name] = problem
                continue
            self._problems.pop(name, None)
            if expr:
                found[name] = expr
        return found

    def check(self) -> float | None:
        """One pass: note the runs that ended, start those due since the last pass; returns
        the seconds until the next due time (None: nothing is scheduled)."""
        current = self.now()
        self._reap()
        soonest: datetime | None = None
        assert self.last is not None
        for name, expr in self.schedules().items():
            due = cron.next_time(expr, self.last)
            if due is not None and due <= current:
                self._fire(name, due)
            upcoming = cron.next_time(expr, current)
            if upcoming is not None and (soonest is None or upcoming < soonest):
                soonest = upcoming
        self.last = current
        return None if soonest is None else max((soonest - current).total_seconds(), 0.0)

    def _fire(self, name: str, due: datetime) -> None:
        child = self.running.get(name)
        if child is not None and child.poll() is None:
            self.report(
                f"{name}: due at {due:%H:%M}, but its last run (pid {child.pid}) still runs: "
                "not started twice"
            )
            return
        try:
            child = (self.spawn or self._start)(name)
        except OSError as exc:
            self.report(f"{name}: due at {due:%H:%M}, but could not start: {exc}")
            return
        self.running[name] = child
        self.report(f"{name}: due at {due:%H:%M}: pipeline run started (pid {child.pid})")

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        import subprocess

        log = pipeline_log(self.root / name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            handle.write(f"---- {datetime.now():%Y-%m-%d %H:%M:%S} haj's scheduler ----\n".encode())
            handle.flush()
            return subprocess.Popen(
                pipeline_argv(self.root, name),
                cwd=self.root,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the scheduler's terminal is not theirs
            )

    def _reap(self) -> None:
        for name, child in list(self.running.items()):
            code = child.poll()
            if code is None:
                continue
            del self.running[name]
            self.report(f"{name}: pipeline run (pid {child.pid}) {_ending(code)}")

    def shutdown(self, grace: float = CHILD_GRACE) -> None:
        """Stop the pipeline runs still going: SIGTERM (haj records them as cancelled), then
        SIGKILL to their process group after `grace` seconds."""
        import subprocess

        self._reap()
        for name, child in self.running.items():
            self.report(f"{name}: stopping its pipeline run (pid {child.pid})")
            if isinstance(child, subprocess.Popen):  # its own session: its runner goes too
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGTERM)
            else:  # what a test's `spawn` returned
                child.terminate()
        deadline = time.monotonic() + grace
        for child in self.running.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                if isinstance(child, subprocess.Popen):
                    kill_group(child.pid)
                else:
                    child.kill()
                child.wait()
        self._reap()


def _ending(code: int) -> str:
    if code == 0:
        return "finished"
    if code == 13:
        return "refused: another run holds the project (exit code 13)"
    if code in (130, 143, -signal.SIGTERM, -signal.SIGINT):
        return f"was cancelled (exit code {code})"
    return f"failed with exit code {code} (see logs/pipeline.log)"


def _take_lock(root: Path) -> int:
    """Hold WORKSPACE/.haj-scheduler.lock for this process's life (one scheduler per
    workspace); UsageError naming the holder when another one has it."""
    import fcntl

    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        running = read_record(record_path(root)) or {}
        raise UsageError(
            f"a scheduler already runs for {root} (pid {running.get('pid', '?')}): "
            "`haj schedule stop` stops it"
        ) from None
    return fd


def run(
    root: Path,
    *,
    log: str | None = None,
    say: Say | None = None,
    stop_event: threading.Event | None = None,
    now: Callable[[], datetime] | None = None,
    max_sleep: float | None = None,
) -> None:
    """Run the scheduler in this process until SIGTERM / SIGINT (or `stop_event`); recorded in
    WORKSPACE/.haj-scheduler.json while it runs."""
    import threading

    from engine.store import now_iso

    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    sleep_at_most = max_sleep if max_sleep is not None else tick()
    stop_event = stop_event or threading.Event()
    lock = _take_lock(root)
    scheduler_ = Scheduler(root, now=now or clock(), say=say)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop_event.set())
    pid = os.getpid()
    try:
        atomic_write_text(
            record_path(root),
            json.dumps(
                {
                    "pid": pid,
                    "started_at": now_iso(),
                    "home": str(root),
                    "log": log,
                    "tick": sleep_at_most,
                }
            ),
        )
        scheduled = scheduler_.schedules()
        scheduler_.report(
            f"scheduler of {root} started (pid {pid}): "
            + (
                ", ".join(f"{name} ({expr})" for name, expr in scheduled.items())
                if scheduled
                else "no project is scheduled yet (`haj schedule set NAME CRON`)"
            )
        )
        while not stop_event.is_set():
            until = scheduler_.check()
            delay = sleep_at_most if until is None else min(sleep_at_most, until + 0.05)
            stop_event.wait(max(delay, 0.05))
        scheduler_.report("stopping")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        try:
            scheduler_.shutdown()
        finally:
            forget_record(record_path(root), pid)
            os.close(lock)
    scheduler_.report("scheduler stopped")


# ---- status -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleStatus:
    """A project's schedule and what runs it (`haj schedule status`)."""

    name: str
    schedule: str | None  # the expression, None when not scheduled
    explain: str = ""  # in words: "At 03:00 every day"
    next: list[datetime] = field(default_factory=list)  # local times
    crontab_line: str | None = None  # the project's line in the crontab
    crontab_current: bool = False  # that line runs the schedule as configured now
    crontab_checked: bool = False  # False: the crontab was not read (or could not be)
    crontab_error: str | None = None
    scheduler: dict[str, Any] | None = None  # the workspace scheduler's record, when it runs
    last_run: dict[str, Any] | None = None  # the newest pipeline run
    error: str | None = None  # the config cannot be read, or its schedule is invalid

    @property
    def runs_by(self) -> list[str]:
        """What runs the schedule: "cron", "scheduler" (both is possible: each run once)."""
        found = []
        if self.schedule and self.crontab_line:
            found.append("cron")
        if self.schedule and self.scheduler:
            found.append("scheduler")
        return found

    @property
    def warning(self) -> str | None:
        """What is wrong with how the schedule runs, in one line (None: nothing)."""
        if self.error:
            return self.error
        if self.crontab_line and not self.schedule:
            return (
                f"a crontab line runs {self.name} but it has no schedule: "
                f"`haj schedule remove {self.name}`"
            )
        if self.crontab_line and not self.crontab_current:
            return (
                f"the crontab line runs another schedule than config.toml's: "
                f"`haj schedule install {self.name}` again"
            )
        if self.schedule and not self.runs_by and (self.crontab_checked or self.crontab_error):
            return (
                f"nothing runs it: `haj schedule install {self.name}` (cron) or "
                "`haj schedule run --detach`"
            )
        if "cron" in self.runs_by and "scheduler" in self.runs_by:
            return "both cron and the scheduler run it: the second run of each time is refused"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schedule": self.schedule,
            "explain": self.explain,
            "next": [local_iso(t) for t in self.next],
            "crontab": {
                "checked": self.crontab_checked,
                "installed": self.crontab_line is not None,
                "current": self.crontab_current,
                "line": self.crontab_line,
                "error": self.crontab_error,
            },
            "scheduler": self.scheduler,
            "runs_by": self.runs_by,
            "last_run": self.last_run,
            "warning": self.warning,
        }


def local_text(iso: str | None) -> str:
    """A stored UTC ISO time as local "2026-12-03 03:00" ("?" when there is none)."""
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def local_iso(moment: datetime) -> str:
    """A naive local time as ISO 8601 with its UTC offset: 2026-12-03T03:00+01:00."""
    return moment.astimezone().isoformat(timespec="minutes")


def status(
    root: Path,
    name: str,
    *,
    table: str | None = None,
    table_error: str | None = None,
    now: datetime | None = None,
    last_run: dict[str, Any] | None = None,
) -> ScheduleStatus:
    """The project's schedule: expression, next three times after `now`, its line in the
    crontab `table` (None: not read; `table_error`: why it could not be), the scheduler."""
    root = Path(root)
    error = None
    try:
        expr = configured(root / name)
        if expr:
            expr = cron.check(expr)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        expr, error = "", f"config.toml: {one_line(str(exc))}"
    except UsageError as exc:
        expr, error = "", f"pipeline.schedule: {exc}"
    line = installed_line(root, name, table) if table is not None else None
    return ScheduleStatus(
        name=name,
        schedule=expr or None,
        explain=cron.explain(expr) if expr else "",
        next=cron.next_times(expr, now) if expr else [],
        crontab_line=line,
        crontab_current=bool(line and expr and line.startswith(f"{expr} ")),
        crontab_checked=table is not None,
        crontab_error=table_error,
        scheduler=scheduler(root),
        last_run=last_run,
        error=error,
    )


def crontab_or_error() -> tuple[str | None, str | None]:
    """(the crontab, None) or (None, why it cannot be read): read once for many projects."""
    try:
        return read_crontab(), None
    except HajError as exc:
        return None, exc.message


def brief(project_path: Path, now: datetime | None = None) -> dict[str, Any] | None:
    """The schedule as `haj status` shows it, without reading the crontab (no subprocess):
    expression, words, next three times and the scheduler's pid; None when not scheduled."""
    expr = configured(project_path)
    if not expr:
        return None
    try:
        expr = cron.check(expr)
    except UsageError as exc:
        return {"schedule": expr, "error": str(exc), "explain": "", "next": [], "scheduler": None}
    running = scheduler(project_path.parent)
    return {
        "schedule": expr,
        "explain": cron.explain(expr),
        "next": [local_iso(t) for t in cron.next_times(expr, now)],
        "scheduler": {"pid": running["pid"]} if running else None,
        "error": None,
    }
