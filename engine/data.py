"""Data: run the project's retriever and processor, sniff formats, keep content-addressed versions.

A raw version is created only when its sha256 is new, so retrieving the same data twice adds
nothing; the *current* raw version is the one the source returned most recently (found again or
new). Files are never overwritten: data/raw/v0003-1a2b3c4d.csv. Processed versions point at their
raw parent, and the store records how each was derived: (raw version, recipe) -> processed version,
the recipe being processor.py's bytes + the target + the prediction type, so `haj train` reuses a
processed version only when both match. The *_in_process functions run inside `engine.runner`
(user code, project interpreter); `retrieve()` and `process()` are what the CLI and TUI call.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import inspect
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine import events
from engine.errors import ConfigError, DataError, Hint
from engine.fsutil import atomic_write_bytes, sha256_bytes
from engine.project import Project

if TYPE_CHECKING:
    from engine.store import DataVersion, Derivation, Recipe, Store

_SECRET_WORDS = ("key", "token", "secret", "password", "sig", "auth")


# ---- API for the CLI and the TUI ---------------------------------------------------------------
def retrieve(
    project: Project,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run retriever.py; returns {"version": {...}, "created": bool}."""
    from engine import runner_client

    project.read_config()  # a corrupt config fails here, before a process starts
    return runner_client.run(project, "retrieve", {}, on_event, cancel)


def process(
    project: Project,
    version: str | None = None,
    on_event: events.Callback = events.ignore,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run processor.py on a raw version (default: the current one); returns the processed
    version."""
    from engine import runner_client

    project.read_config()
    select_version(project, version, what="raw data")  # said at once, not by a runner
    return runner_client.run(project, "process", {"version": version}, on_event, cancel)


def open_store(project: Project) -> Store:
    """The project's store, or DataError when it has none yet.

    Why: opening a Store creates haj.db, and a command that fails (or only reads) must change
    nothing on disk. Every data and training path that needs existing data opens it this way.
    """
    from engine.store import Store

    if not project.db_path.exists():
        raise DataError("no data yet", Hint("retrieve", project.name))
    # Not read-only: a read-only connection would leave haj.db-wal and -shm behind.
    return Store(project.db_path)


def recipe_of(project: Project, config: dict[str, Any]) -> Recipe:
    """How processing would run now: processor.py's bytes, the target, the prediction type."""
    from engine.store import Recipe

    try:
        code = project.code_path("processor").read_bytes()
    except FileNotFoundError:
        code = b""  # processing fails on it, so no processed version is ever recorded for it
    return Recipe(sha256_bytes(code), config["data"]["target"], config["project"]["prediction"])


def versions(project: Project, kind: str | None = None) -> list[dict[str, Any]]:
    """Every version, oldest first, each with "current": the raw version process and train use
    (the one the source returned most recently), and the processed version train would use
    (that raw version processed with the current processor.py, target and prediction type)."""
    if not project.db_path.exists():
        return []
    recipe = recipe_of(project, project.read_config())
    with open_store(project) as store:
        raw = store.current_raw_version()
        derived = store.derivation(raw.id, recipe) if raw else None
        current = {raw.id if raw else None, derived.processed.id if derived else None}
        return [{**v.to_dict(), "current": v.id in current} for v in store.data_versions(kind)]


def preview(project: Project, version_id: str, rows: int = 20) -> dict[str, Any]:
    """The first rows of a version and a per-column summary (for `haj data --show` and the TUI)."""
    with open_store(project) as store:
        version = store.data_version(version_id)
    if version is None:
        raise DataError(f"no data version {version_id!r} in {project.name!r}")
    frame = load_frame(project.path / version.path, version.format)
    return {"version": version.to_dict(), "head": frame.head(rows), "summary": summarize(frame)}


def sample_record(project: Project, index: int = 0) -> dict[str, Any]:
    """One real row of the processed data, without the target: a request body for /predict.

    The data is the champion's training version when there is one (its columns are what the
    server expects), else the latest processed version. Values are JSON-safe (NaN -> None).
    """
    target = project.read_config()["data"]["target"]
    with open_store(project) as store:
        champion = store.champion()
        run = store.run(champion.run_id) if champion else None
        version = store.data_version(run.data_version) if run and run.data_version else None
        if version is None:
            version = store.latest_data_version("processed")
    if version is None:
        raise DataError("no processed data yet", Hint("process", project.name))
    frame = load_frame(project.path / version.path, version.format)
    if frame.empty:
        raise DataError(f"{version.id} has no rows")
    row = frame.drop(columns=[target], errors="ignore").iloc[index % len(frame)]
    return {str(k): _json_value(v) for k, v in row.items()}


def _json_value(value: Any) -> Any:
    """A pandas/numpy scalar as a plain JSON value."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def summarize(frame: Any) -> list[dict[str, Any]]:
    """Per column: type, missing %, min/mean/max for numbers or the top values otherwise."""
    import pandas as pd

    summary = []
    for name in frame.columns:
        column = frame[name]
        entry: dict[str, Any] = {
            "column": str(name),
            "type": str(column.dtype),
            "missing_pct": round(100.0 * float(column.isna().mean()), 2) if len(column) else 0.0,
            "unique": int(column.nunique(dropna=True)),
        }
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            entry.update(min=_num(column.min()), mean=_num(column.mean()), max=_num(column.max()))
        else:
            top = column.astype(str)[column.notna()].value_counts().head(3)
            entry["top"] = [f"{value} ({count})" for value, count in top.items()]
        summary.append(entry)
    return summary


def _num(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if result != result else result


# ---- format sniffing ---------------------------------------------------------------------------
def sniff(data: bytes) -> tuple[str, int | None, int | None]:
    """('csv' | 'json' | 'txt', rows, columns): csv/json only when the content parses as such."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "txt", None, None
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        shape = _json_shape(stripped)
        if shape is not None:
            return "json", *shape
    shape = _csv_shape(text)
    if shape is not None:
        return "csv", *shape
    return "txt", None, None


def _json_shape(text: str) -> tuple[int | None, int | None] | None:
    try:
        document = json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            records = [json.loads(line) for line in lines]
        except ValueError:
            return None
        return _records_shape(records)
    return _records_shape(_records_of(document))


def _records_of(document: Any) -> Any:
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return value
    return document


def _records_shape(records: Any) -> tuple[int | None, int | None]:
    if isinstance(records, list) and records and all(isinstance(r, dict) for r in records):
        keys: dict[str, None] = {}
        for record in records:
            keys.update(dict.fromkeys(record))
        return len(records), len(keys)
    return None, None


def _csv_delimiter(sample: str) -> str | None:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return None


def _csv_shape(text: str) -> tuple[int, int] | None:
    """(data rows, columns) when the text is a table, else None.

    A few lines of prose with a comma each also split evenly, so tiny or text-only content needs
    more evidence: one data row counts only under a header of column names with a number in the
    row, and rows whose every field is words (no number, no single-word value) are prose.
    """
    delimiter = _csv_delimiter(text[:65536])
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter)) if delimiter else []
    rows = [row for row in rows if row]
    width = len(rows[0]) if rows else 0
    if len(rows) < 2 or width < 2:
        return _single_column_shape(text)
    consistent = sum(1 for row in rows if len(row) == width)
    if consistent < 0.9 * len(rows):
        return None
    header, data = rows[0], rows[1:]
    if len(data) == 1:
        if not all(_column_name(field) for field in header):
            return None
        if not any(_NUMBER.fullmatch(value.strip()) for value in data[0]):
            return None
    if _prose(rows[:200]):
        return None
    return len(data), width


def _single_column_shape(text: str) -> tuple[int, int] | None:
    """A one-column CSV: a column-name header over at least two values, all numbers."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or not _column_name(lines[0]) or _NUMBER.fullmatch(lines[0]):
        return None
    if not all(_NUMBER.fullmatch(value) for value in lines[1:]):
        return None
    return len(lines) - 1, 1


_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _column_name(field: str) -> bool:
    """A header field that reads as a column name, not part of a sentence: no space around it,
    starts with a letter or '_', at most 4 words and 64 characters, no sentence punctuation."""
    return (
        field == field.strip()
        and 0 < len(field) <= 64
        and (field[0].isalpha() or field[0] == "_")
        and len(field.split()) <= 4
        and field[-1] not in ".,;:!?"
    )


def _prose(rows: list[list[str]]) -> bool:
    """Every field is several words and none a number: sentences cut at their commas."""
    fields = [field.strip() for row in rows for field in row if field.strip()]
    return bool(fields) and all(
        len(field.split()) > 1 and not _NUMBER.fullmatch(field) for field in fields
    )


def load_frame(path: Path, fmt: str) -> Any:
    """A stored version as a DataFrame; plain text becomes one 'line' column for processor.py."""
    import pandas as pd

    try:
        if fmt == "csv":
            with open(path, encoding="utf-8-sig", newline="") as handle:
                delimiter = _csv_delimiter(handle.read(65536)) or ","
            return pd.read_csv(path, sep=delimiter, encoding="utf-8-sig")
        if fmt == "json":
            text = path.read_text(encoding="utf-8-sig").strip()
            try:
                document = json.loads(text)
            except ValueError:
                document = [json.loads(line) for line in text.splitlines() if line.strip()]
            return pd.json_normalize(_records_of(document))
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return pd.DataFrame({"line": lines})
    except FileNotFoundError:
        raise DataError(f"the data file {path} is missing") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path.name} as {fmt}: {exc}") from None


def absolute_source(url: str) -> str:
    """A relative path given as the data source, made absolute against the current directory
    (where the user typed it), not the project's directory the retriever later runs in."""
    text = url.strip()
    if not text:
        return text
    scheme = urlsplit(text).scheme
    if scheme and len(scheme) > 1:  # http(s)://, file://, example:NAME ... (not C:\\)
        return text
    path = Path(text).expanduser()
    return text if path.is_absolute() else str(path.resolve())


def redact_url(url: str) -> str:
    """The source as recorded: no password, no key-like query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or parts.scheme in ("example", "file") or len(parts.scheme) == 1:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    query = urlencode(
        [
            (k, "***" if any(w in k.lower() for w in _SECRET_WORDS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# ---- inside the runner -------------------------------------------------------------------------
def _load_user_module(project: Project, which: str, function: str) -> Any:
    path = project.code_path(which)
    if not path.exists():
        raise ConfigError(f"{path.name} is missing in {project.name!r}")
    spec = importlib.util.spec_from_file_location(f"haj_project_{which}", path)
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigError(f"{path.name} failed to load: {type(exc).__name__}: {exc}") from None
    func = getattr(module, function, None)
    if not callable(func):
        raise ConfigError(f"{path.name} must define {function}()")
    return func


def retrieve_in_process(project: Project, emit: events.Callback) -> dict[str, Any]:
    import pandas as pd

    from engine.store import Store

    config = project.read_config()
    secrets = project.read_secrets()
    url = config["data"]["url"]
    source = redact_url(url) if url else "retriever.py"
    retrieve_fn = _load_user_module(project, "retriever", "retrieve")
    emit(events.Log(f"retrieving from {source}"))
    try:
        result = retrieve_fn(config, secrets)
    except Exception as exc:
        raise DataError(
            _scrub(f"retriever.py failed: {type(exc).__name__}: {exc}", secrets)
        ) from None
    if isinstance(result, pd.DataFrame):
        payload = result.to_csv(index=False).encode("utf-8")
    elif isinstance(result, str):
        payload = result.encode("utf-8")
    elif isinstance(result, bytes | bytearray):
        payload = bytes(result)
    else:
        raise DataError(
            f"retrieve() returned {type(result).__name__}: return bytes, str or a DataFrame"
        )
    if not payload.strip():
        raise DataError("retrieve() returned no data")
    fmt, rows, columns = sniff(payload)
    digest = sha256_bytes(payload)

    def write(rel: str) -> None:
        atomic_write_bytes(project.path / rel, payload)

    with Store(project.db_path) as store:
        previous = store.current_raw_version()
        version, created = store.add_data_version(
            kind="raw",
            sha256=digest,
            size=len(payload),
            fmt=fmt,
            rows=rows,
            columns=columns,
            source=source,
            parent=None,
            path_for=lambda seq: f"data/raw/v{seq:04d}-{digest[:8]}.{fmt}",
            write=write,
        )
    shape = f", {rows} rows x {columns} columns" if rows is not None else ""
    if created:
        emit(
            events.Log(
                f"new raw version {version.id}: {version.path} ({len(payload)} bytes{shape})"
            )
        )
    else:
        again = (
            f"; {version.id} is the current version again (instead of {previous.id})"
            if previous is not None and previous.id != version.id
            else ""
        )
        emit(events.Log(f"unchanged: same content as {version.id} ({version.path}){again}"))
    emit(events.DataVersionAdded(version=version.to_dict(), created=created))
    return {"version": version.to_dict(), "created": created}


def process_in_process(
    project: Project, version_id: str | None, emit: events.Callback
) -> dict[str, Any]:
    """`haj process`: run processor.py on a raw version (default: the current one)."""
    config = project.read_config()
    raw = select_version(project, version_id, what="raw data")
    if raw.kind != "raw":
        raise DataError(f"{raw.id} is a processed version: give a raw one")
    return process_version(project, config, raw.id, emit)


def select_version(project: Project, version_id: str | None, what: str = "data") -> DataVersion:
    """The version `haj train` (or `haj process`) starts from: `version_id`, else the current raw
    version. A raw one is then processed with process_version(..., reuse=True)."""
    with open_store(project) as store:
        chosen = store.data_version(version_id) if version_id else store.current_raw_version()
    if chosen is None:
        if version_id:
            raise DataError(f"no {what} version {version_id!r}", Hint("list-data", project.name))
        raise DataError("no data yet", Hint("retrieve", project.name))
    return chosen


def process_version(
    project: Project,
    config: dict[str, Any],
    raw_id: str,
    emit: events.Callback,
    *,
    reuse: bool = False,
) -> dict[str, Any]:
    """Run processor.py on raw version `raw_id` and store the result as a processed version.

    The processed version is linked to (raw version, recipe) even when its content already
    existed. With `reuse`, a version linked to this raw version and the current recipe is
    returned without running processor.py. What processor.py prints is reported as log lines.
    """
    recipe = recipe_of(project, config)
    with open_store(project) as store:
        raw = store.data_version(raw_id)
        same = store.derivation(raw_id, recipe)
        last = store.derivation(raw_id)
    assert raw is not None
    if reuse and same is not None:
        emit(
            events.Log(
                f"reusing {same.processed.id} ({raw.id} processed with the same processor.py "
                "and target)"
            )
        )
        return {"version": same.processed.to_dict(), "created": False, "parent": raw.id}
    if last is not None and last.recipe != recipe:
        emit(
            events.Log(
                f"processing {raw.id}: {recipe.changes_since(last.recipe)} changed since "
                f"{last.processed.id}"
            )
        )
    elif last is None and reuse:
        emit(events.Log(f"no processed data for {raw.id} yet: processing it first"))
    result = _run_processor(project, raw, recipe, emit)
    payload = result.to_csv(index=False).encode("utf-8")
    digest = sha256_bytes(payload)
    with open_store(project) as store:
        version, created = store.add_data_version(
            kind="processed",
            sha256=digest,
            size=len(payload),
            fmt="csv",
            rows=len(result),
            columns=result.shape[1],
            source=f"processor.py({raw.id})",
            parent=raw.id,
            path_for=lambda seq: f"data/processed/v{seq:04d}-{digest[:8]}.csv",
            write=lambda rel: atomic_write_bytes(project.path / rel, payload),
            recipe=recipe,
        )
    _report_processed(emit, version, created, raw.id, same, result.shape)
    return {"version": version.to_dict(), "created": created, "parent": raw.id}


def _run_processor(
    project: Project, raw: DataVersion, recipe: Recipe, emit: events.Callback
) -> Any:
    """processor.py's process() on the raw version, checked: a DataFrame with the target and at
    least one feature, and enough rows to train on. Its failures are DataErrors naming the cause,
    so `haj process` and `haj train` say what to fix in the user's code."""
    import pandas as pd

    target = recipe.target
    process_fn = _load_user_module(project, "processor", "process")
    frame = load_frame(project.path / raw.path, raw.format)
    emit(events.Log(f"processing {raw.id} ({len(frame)} rows x {frame.shape[1]} columns)"))
    try:
        # process(raw), process(raw, target) or process(raw, target, prediction)
        params = inspect.signature(process_fn).parameters
        args = (frame, target, recipe.prediction)[: max(1, min(len(params), 3))]
        with _lines_to(emit):
            result = process_fn(*args)
    except Exception as exc:  # user code may raise anything: reported as its own failure
        raise DataError(f"processor.py failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(result, pd.DataFrame):
        raise DataError(f"process() returned {type(result).__name__}: return a DataFrame")
    if target not in result.columns:
        raise DataError(
            f"target column {target!r} is missing from the processed data; columns: "
            f"{', '.join(map(str, list(result.columns)[:20]))}",
            Hint("set-target", project.name),
        )
    if result.shape[1] < 2:
        raise DataError("the processed data has no feature column besides the target")
    if len(result) < 5:
        raise DataError(f"the processed data has {len(result)} rows: too few to train on")
    return result


def _report_processed(
    emit: events.Callback,
    version: DataVersion,
    created: bool,
    raw_id: str,
    same: Derivation | None,
    shape: tuple[int, int],
) -> None:
    """Say whether processing gave a new version, the one this recipe gave before, or known
    content now linked to this raw version and recipe (so the next train reuses it)."""
    if created:
        emit(
            events.Log(
                f"new processed version {version.id} from {raw_id}: {shape[0]} "
                f"rows x {shape[1]} columns"
            )
        )
    elif same is not None and same.processed.id == version.id:
        emit(events.Log(f"processed data unchanged: {version.id}"))
    else:
        emit(
            events.Log(
                f"processed data unchanged: {version.id} (now linked to {raw_id} with this "
                "processor.py and target, so it is reused, not processed again)"
            )
        )
    emit(events.DataVersionAdded(version=version.to_dict(), created=created))


class _LineWriter(io.TextIOBase):
    """A text stream that reports each complete line it is given (for redirect_stdout)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        super().__init__()
        self._on_line = on_line
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._on_line(line.rstrip())
        return len(text)

    def finish(self) -> None:
        if self._pending.strip():
            self._on_line(self._pending.rstrip())
        self._pending = ""


@contextlib.contextmanager
def _lines_to(emit: events.Callback) -> Iterator[None]:
    """What user code prints becomes log lines (stderr ones as warnings), so `haj process` and
    `haj train` show processor.py's notes the same way and train can write them to its log."""
    out = _LineWriter(lambda line: emit(events.Log(line)))
    err = _LineWriter(lambda line: emit(events.Log(line, level="warning")))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.finish()
        err.finish()


def _scrub(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
