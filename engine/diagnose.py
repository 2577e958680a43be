"""A project's health at a glance (`haj diagnose`): missing values, step timings, outdated
dependencies, the champion's age and predictions per day.

Every section is computed on its own and says why when it has nothing to show ("no data yet",
"no live traffic"), so a diagnosis never fails on a young project. What each reads:

- missing values: the current raw version, read by engine.data's own reader (as processing and
  training read it), and live traffic: a running server's `GET /diagnostics` (a short timeout;
  an absent endpoint or a server that does not answer is "no live traffic");
- step timings: the seconds each data version's record keeps (engine.folder's sidecar, written
  by retrieve and process) and the runs of the last training session (fit and total seconds);
- dependencies: `pip list --outdated --format=json` run for the project's interpreter (its own
  virtualenv, else haj's), restricted to requirements.txt and haj's serving packages. Offline
  (pip fails, times out, or its log shows the index was not reached) a note and the installed
  versions (`pip list --format=json`, which needs no network) stand in;
- the champion's age: since the current champion was crowned (the champion history: a run
  crowned again without a break keeps its first crowning);
- predictions per day: the prediction logs (logs/predictions*.jsonl and their rotations, and the
  batch log's sample, logs/batch-predictions.jsonl*) counted per UTC day over the last 7 days.
  Files last written before the window are skipped, and a line is parsed only when its time
  stamp (the first field the log writes) falls in the window.

Nothing here writes to the project.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import HajError
from engine.project import Project

LIVE_TIMEOUT = 1.0  # seconds to wait for a running server's /diagnostics
INDEX_TIMEOUT = 30.0  # seconds for the whole `pip list --outdated`
REQUEST_TIMEOUT = 5  # seconds pip waits for one answer of the package index
DAYS = 7
NO_LIVE = "no live traffic"

LiveSource = Callable[[], Mapping[str, Any] | None]


# ---- the records -------------------------------------------------------------------------------
@dataclass
class ColumnMissing:
    column: str
    count: int
    share: float | None  # count / rows; None when there are no rows


@dataclass
class MissingValues:
    """Missing values per column of one source: a data version, or live traffic."""

    source: str  # the data version's id, or where live figures came from
    rows: int
    columns: list[ColumnMissing]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepTiming:
    """One step's time: `retrieve` and `process` (a data version), `train` (a run, or the
    session as a whole: `subject` "session")."""

    step: str
    subject: str
    seconds: float | None
    fit_seconds: float | None = None  # train: the model's fit alone
    status: str | None = None  # train: finished, failed, cancelled, running

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Package:
    package: str
    installed: str | None
    latest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Dependencies:
    """The project's environment: requirements.txt and haj's serving packages, as installed for
    its interpreter; `outdated` when the package index answered (`index_checked`)."""

    python: str
    packages: list[Package]  # every package considered, with its installed version
    outdated: list[Package]
    index_checked: bool
    note: str | None = None  # why the index was not checked (offline...)
    not_installed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChampionAge:
    run_id: str
    label: str
    metric: str | None
    value: float | None
    crowned_at: str
    age_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DayCount:
    """One UTC day of the prediction logs: rows scored by the server (`served`, in `requests`),
    and rows of the batch log, which keeps a sample of `haj predict`'s rows (`batch_logged`)."""

    day: str
    served: int = 0
    requests: int = 0
    batch_logged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diagnosis:
    project: str
    at: str  # when it was made (UTC, ISO)
    data_missing: MissingValues | None
    live_missing: MissingValues | None
    timings: list[StepTiming]
    dependencies: Dependencies
    champion: ChampionAge | None
    predictions: list[DayCount]
    notes: dict[str, str] = field(default_factory=dict)  # section -> why it is empty

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "at": self.at,
            "missing": {
                "data": self.data_missing.to_dict() if self.data_missing else None,
                "live": self.live_missing.to_dict() if self.live_missing else None,
            },
            "timings": [t.to_dict() for t in self.timings],
            "dependencies": self.dependencies.to_dict(),
            "champion": self.champion.to_dict() if self.champion else None,
            "predictions": [d.to_dict() for d in self.predictions],
            "notes": dict(self.notes),
        }


# ---- the whole diagnosis -----------------------------------------------------------------------
def diagnose(
    project: Project,
    *,
    live: LiveSource | None = None,
    index_timeout: float = INDEX_TIMEOUT,
    now: datetime | None = None,
) -> Diagnosis:
    """Every section of the diagnosis. `live` supplies live traffic's figures ({"rows": N,
    "missing": {feature: count}}, or None for none); by default a running server is asked."""
    project.read_config()  # a broken config is said at once
    now = now or datetime.now(UTC)
    notes: dict[str, str] = {}
    data_missing, note = data_missing_values(project)
    if note:
        notes["data"] = note
    live_missing, note = live_missing_values(project, live)
    if note:
        notes["live"] = note
    timings = step_timings(project)
    if not timings:
        notes["timings"] = "nothing retrieved, processed or trained yet"
    champion = champion_age(project, now)
    if champion is None:
        notes["champion"] = "no champion"
    predictions = predictions_per_day(project, now=now)
    if not any(d.served or d.batch_logged for d in predictions):
        notes["predictions"] = f"no predictions logged in the last {DAYS} days"
    return Diagnosis(
        project=project.name,
        at=now.isoformat(timespec="seconds"),
        data_missing=data_missing,
        live_missing=live_missing,
        timings=timings,
        dependencies=dependencies(project, timeout=index_timeout),
        champion=champion,
        predictions=predictions,
        notes=notes,
    )


# ---- missing values ----------------------------------------------------------------------------
def _columns_missing(counts: Mapping[str, int], rows: int) -> list[ColumnMissing]:
    return [
        ColumnMissing(str(column), int(count), (int(count) / rows) if rows else None)
        for column, count in counts.items()
    ]


def data_missing_values(project: Project) -> tuple[MissingValues | None, str | None]:
    """(missing values per column of the current raw version, or None with the reason)."""
    from engine import data

    current = [v for v in data.versions(project, "raw") if v.get("current")]
    if not current:
        return None, "no data yet"
    version = current[0]
    try:
        frame = data.load_frame(
            project.path / version["path"], version["format"], version["reading"]
        )
    except HajError as exc:
        return None, f"{version['id']} cannot be read: {exc}"
    counts = frame.isna().sum()
    return MissingValues(
        version["id"], len(frame), _columns_missing(dict(counts.items()), len(frame))
    ), None


def live_missing_values(
    project: Project, live: LiveSource | None = None
) -> tuple[MissingValues | None, str | None]:
    """(missing values per feature of live traffic, or None with the reason)."""
    if live is not None:
        source, payload, reason = "given", live(), NO_LIVE
    else:
        source, payload, reason = server_diagnostics(project)
    figures = live_figures(payload) if isinstance(payload, Mapping) else None
    if figures is None:
        return None, reason
    rows, counts = figures
    return MissingValues(source, rows, _columns_missing(counts, rows)), None


def server_diagnostics(
    project: Project, timeout: float = LIVE_TIMEOUT
) -> tuple[str, dict[str, Any] | None, str]:
    """(the server's URL, its /diagnostics answer or None, why there is none)."""
    from engine.serving.control import live_server, url_of

    record = live_server(project)
    if record is None:
        return "", None, f"{NO_LIVE} (no server is running)"
    url = record.get("url") or url_of(str(record.get("host", "127.0.0.1")), int(record["port"]))
    import httpx

    try:
        answer = httpx.get(f"{url}/diagnostics", timeout=timeout)
    except httpx.HTTPError as exc:
        return url, None, f"{NO_LIVE} (the server at {url} does not answer: {type(exc).__name__})"
    if answer.status_code != 200:
        return (
            url,
            None,
            f"{NO_LIVE} (the server at {url} answers /diagnostics with {answer.status_code})",
        )
    try:
        payload = answer.json()
    except ValueError:
        return url, None, f"{NO_LIVE} (the server at {url} answers /diagnostics with no JSON)"
    if not isinstance(payload, dict) or live_figures(payload) is None:
        return url, None, f"{NO_LIVE} (the server's /diagnostics has no missing counts)"
    return url, payload, NO_LIVE


def live_figures(payload: Mapping[str, Any]) -> tuple[int, dict[str, int]] | None:
    """(rows, {feature: missing count}) from a /diagnostics answer, or None when it has none.
    A feature's figure may be a count or {"count": n, ...}."""
    missing = payload.get("missing")
    if not isinstance(missing, Mapping):
        return None
    counts: dict[str, int] = {}
    for feature, value in missing.items():
        if isinstance(value, Mapping):
            value = value.get("count")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        counts[str(feature)] = int(value)
    rows = payload.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int | float):
        return None
    return int(rows), counts


# ---- step timings ------------------------------------------------------------------------------
def step_timings(project: Project) -> list[StepTiming]:
    """retrieve (the current raw version), process (its processed version) and train (each run
    of the last training session, then the session from its first start to its last end)."""
    from engine import data

    found = data.versions(project)
    raw = next((v for v in found if v["kind"] == "raw" and v.get("current")), None)
    timings = []
    if raw is not None:
        timings.append(StepTiming("retrieve", raw["id"], raw.get("seconds")))
        processed = [v for v in found if v["kind"] == "processed"]
        chosen = next((v for v in processed if v.get("current")), None) or next(
            (v for v in reversed(processed) if v.get("parent") == raw["id"]), None
        )
        if chosen is not None:
            timings.append(
                StepTiming(
                    "process", f"{chosen['id']} from {chosen['parent']}", chosen.get("seconds")
                )
            )
    timings.extend(_train_timings(project))
    return timings


def _train_timings(project: Project) -> list[StepTiming]:
    from engine.sessions import last_session
    from engine.store import Store

    session = last_session(project)
    if session is None:
        return []
    with Store(project.db_path) as store:
        runs = store.runs(session=session.session)
    runs.sort(key=lambda r: (r.started_at, r.model))
    timings = [
        StepTiming("train", r.label, r.duration_seconds, r.fit_seconds, r.status) for r in runs
    ]
    ended = [r.finished_at for r in runs if r.finished_at]
    if runs and ended:
        wall = _seconds_between(min(r.started_at for r in runs), max(ended))
        live = any(r.status == "running" for r in runs)
        timings.append(
            StepTiming(
                "train",
                f"session ({len(runs)} runs on {session.data_version or '?'})",
                wall,
                status="running" if live else "finished",
            )
        )
    return timings


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return round(
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3
        )
    except ValueError:
        return None


# ---- dependencies ------------------------------------------------------------------------------
def wanted_packages(project: Project) -> list[str]:
    """The canonical names of the project's environment: requirements.txt, then haj's serving
    packages (what a server of the project imports)."""
    from engine import deps
    from engine.container.context import SERVING_PACKAGES
    from engine.errors import UsageError

    names = []
    for line in deps.requirements(project):
        with contextlib.suppress(UsageError):  # -r other.txt, a URL: not one package
            names.append(deps.parse_requirement(line))
    names.extend(deps.canonical(spec.split("[", 1)[0]) for spec in SERVING_PACKAGES)
    return list(dict.fromkeys(names))


def parse_installed(answer: str) -> dict[str, Package]:
    """`pip list --format=json`'s answer: canonical name -> Package (name as pip spells it)."""
    from engine.deps import canonical

    return {
        canonical(str(entry["name"])): Package(str(entry["name"]), str(entry["version"]))
        for entry in json.loads(answer)
    }


def parse_outdated(answer: str, packages: Iterable[str] | None = None) -> list[Package]:
    """`pip list --outdated --format=json`'s answer as (package, installed, latest), sorted by
    name; only `packages` (canonical names) when given. ValueError when it is not pip's JSON."""
    from engine.deps import canonical

    entries = json.loads(answer)
    if not isinstance(entries, list):
        raise ValueError("pip's answer is not a list")
    keep = None if packages is None else {canonical(p) for p in packages}
    found = [
        Package(str(e["name"]), str(e["version"]), str(e["latest_version"]))
        for e in entries
        if keep is None or canonical(str(e["name"])) in keep
    ]
    return sorted(found, key=lambda p: canonical(p.package))


def unreachable_index(log_lines: Iterable[str]) -> str | None:
    """The first package-index page pip could not reach, from its `--log` (pip skips such a page
    quietly and reports the package as up to date): "URL: connection error", or None."""
    import re

    pattern = re.compile(r"Could not fetch URL (https?://\S+): (connection error|timed out)")
    for line in log_lines:
        if "Could not fetch URL" in line:
            match = pattern.search(line)
            if match:  # the index, not the package's page: .../simple/numpy/ -> .../simple
                index = match[1].rstrip(":").rstrip("/").rsplit("/", 1)[0]
                return f"{index}: {match[2]}"
    return None


def _pip(python: str, args: list[str], timeout: float, log: Path | None = None) -> str:
    """pip's stdout for `args`, run by haj's pip for `python`; raises subprocess.TimeoutExpired
    or RuntimeError (pip's last error line). pip runs in its own session and is killed with its
    children (`--python` re-runs pip under that interpreter) on a timeout or Ctrl-C."""
    from engine.procs import kill_group

    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    if Path(python) != Path(sys.executable):
        command += ["--python", python]
    command += args
    if log is not None:
        command += ["--log", str(log)]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except BaseException:
        kill_group(child.pid)
        child.communicate()
        raise
    if child.returncode != 0:
        lines = [line.strip() for line in err.splitlines() if line.strip()]
        last = next(
            (line for line in reversed(lines) if "ERROR" in line), lines[-1] if lines else ""
        )
        raise RuntimeError(
            f"exit {child.returncode}: {last}" if last else f"exit {child.returncode}"
        )
    return out


def _installed_here() -> dict[str, Package]:
    """haj's own distributions (importlib.metadata): what a project without a virtualenv runs."""
    import importlib.metadata

    from engine.deps import canonical

    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), Package(name, dist.version))
    return found


def dependencies(project: Project, timeout: float = INDEX_TIMEOUT) -> Dependencies:
    """The project's packages with their installed versions, and those the package index has a
    newer release of (offline: a note instead)."""
    from engine.deps import canonical
    from engine.runner_client import project_python

    python = project_python(project)
    wanted = wanted_packages(project)
    try:
        installed = parse_installed(_pip(python, ["list", "--format=json"], timeout))
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError, OSError):
        installed = _installed_here()
    packages = [installed[name] for name in wanted if name in installed]
    result = Dependencies(
        python=python,
        packages=packages,
        outdated=[],
        index_checked=False,
        not_installed=[name for name in wanted if name not in installed],
    )
    if not packages:
        result.note = "none of the project's packages is installed"
        return result
    others = [p.package for name, p in installed.items() if name not in wanted]
    args = ["list", "--outdated", "--format=json", "--retries", "0"]
    args += ["--timeout", str(REQUEST_TIMEOUT)]
    for name in others:  # pip then asks the index about the project's packages alone
        args += ["--exclude", name]
    with tempfile.TemporaryDirectory(prefix="haj-pip-") as scratch:
        log = Path(scratch) / "pip.log"
        try:
            answer = _pip(python, args, timeout, log)
        except subprocess.TimeoutExpired:
            result.note = f"the package index did not answer within {timeout:g} s"
            return _offline(result)
        except (RuntimeError, OSError) as exc:
            result.note = f"pip could not ask the package index ({exc})"
            return _offline(result)
        with contextlib.suppress(OSError), open(log, encoding="utf-8", errors="replace") as lines:
            unreachable = unreachable_index(lines)
            if unreachable:
                result.note = f"the package index is unreachable ({unreachable})"
                return _offline(result)
    try:
        result.outdated = parse_outdated(answer, wanted)
    except (ValueError, KeyError, TypeError) as exc:
        result.note = f"pip's answer could not be read ({exc})"
        return _offline(result)
    result.index_checked = True
    newer = {canonical(p.package): p.latest for p in result.outdated}
    for package in result.packages:  # the rest are at the index's latest
        package.latest = newer.get(canonical(package.package), package.installed)
    return result


def _offline(result: Dependencies) -> Dependencies:
    result.note = f"{result.note}; installed versions only"
    return result


# ---- the champion ------------------------------------------------------------------------------
def champion_age(project: Project, now: datetime | None = None) -> ChampionAge | None:
    """The current champion and how long it has been champion (None without one)."""
    if not project.db_path.exists():
        return None
    from engine.store import Store

    with Store(project.db_path) as store:
        history = store.champion_history()  # newest first
        if not history or history[0].run_id is None:
            return None
        current = history[0]
        since = current.crowned_at
        for event in history[1:]:  # crowned again without a break: since the first crowning
            if event.run_id != current.run_id:
                break
            since = event.crowned_at
        run = store.run(current.run_id)
    label = run.label if run else (current.model or current.run_id)
    crowned = datetime.fromisoformat(since)
    if crowned.tzinfo is None:
        crowned = crowned.replace(tzinfo=UTC)
    age = max(0.0, ((now or datetime.now(UTC)) - crowned).total_seconds())
    return ChampionAge(current.run_id, label, current.metric, current.value, since, age)


# ---- predictions per day -----------------------------------------------------------------------
_TIME_PREFIX = b'{"time":"'  # how the prediction log's writer starts every line (orjson)


def prediction_logs(project: Project) -> list[Path]:
    """The server's prediction logs (one per worker, with their rotations) and the batch log."""
    logs = project.logs_dir
    if not logs.is_dir():
        return []
    return sorted(logs.glob("predictions*.jsonl*")) + sorted(logs.glob("batch-predictions.jsonl*"))


def predictions_per_day(
    project: Project, days: int = DAYS, now: datetime | None = None
) -> list[DayCount]:
    """Rows scored per UTC day over the last `days` days (today last), from the logs."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    counts = [DayCount((first + timedelta(days=i)).isoformat()) for i in range(days)]
    window = {c.day.encode(): c for c in counts}
    start = datetime.combine(first, datetime.min.time(), UTC).timestamp()
    for path in prediction_logs(project):
        try:
            if path.stat().st_mtime < start:
                continue  # last written before the window: nothing of it is in the window
        except OSError:
            continue
        count_log(path, window, batch=path.name.startswith("batch-"))
    return counts


def count_log(path: Path, window: Mapping[bytes, DayCount], batch: bool = False) -> None:
    """Add one log file's rows to the days of `window` ({b"2026-12-02": DayCount})."""
    try:
        import orjson

        loads: Callable[[bytes], Any] = orjson.loads
    except ImportError:  # pragma: no cover - orjson is one of haj's dependencies
        loads = json.loads
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; a file rotated away is skipped
    except OSError:
        return
    with handle:
        for line in handle:
            if line.startswith(_TIME_PREFIX):
                day = line[9:19]
                if day not in window:
                    continue
            else:
                day = None
            try:
                record = loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if not isinstance(record, dict):
                continue
            if day is None:
                day = str(record.get("time", ""))[:10].encode()
            target = window.get(day)
            if target is None:
                continue
            outputs = record.get("outputs")
            rows = len(outputs) if isinstance(outputs, list) else 1
            if batch:
                target.batch_logged += rows
            else:
                target.served += rows
                target.requests += 1
