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
import io
import json
import threading
import time
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
    from engine.intake import Intake
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
        found = store.data_versions(kind)
    from engine import folder

    return [
        {
            **v.to_dict(),
            "reading": reading_of(v.reading) or None,
            "current": v.id in current,
            "seconds": (folder.load(project.path / v.path) or {}).get("seconds"),
        }
        for v in found
    ]


def preview(project: Project, version_id: str, rows: int = 20) -> dict[str, Any]:
    """The first rows of a version and a per-column summary (for `haj data --show` and the TUI)."""
    with open_store(project) as store:
        version = store.data_version(version_id)
    if version is None:
        raise DataError(f"no data version {version_id!r} in {project.name!r}")
    from engine import folder

    frame = load_frame(project.path / version.path, version.format, version.reading)
    return {
        "version": version.to_dict(),
        "head": frame.head(rows),
        "summary": summarize(frame),
        "record": folder.load(project.path / version.path),  # seconds taken; a folder's files
    }


def sample_record(project: Project, index: int = 0) -> dict[str, Any]:
    """One real row, without the target, in the shape the champion's server accepts: a request
    body for /predict.

    The data is the champion's training version when there is one, else the latest processed
    version. When models trained on it take raw rows (engine.intake), the row comes from its raw
    parent, in the data's own shape; else from the processed data. Values are JSON-safe (NaN ->
    None)."""
    from engine import intake

    target = project.read_config()["data"]["target"]
    with open_store(project) as store:
        champion = store.champion()
        run = store.run(champion.run_id) if champion else None
        version = store.data_version(run.data_version) if run and run.data_version else None
        if version is None:
            version = store.latest_data_version("processed")
        taken = intake.load(project.path / version.path) if version is not None else None
        parent = store.data_version(version.parent) if version and version.parent else None
    if version is None:
        raise DataError("no processed data yet", Hint("process", project.name))
    columns: list[str] | None = None
    if taken is not None and taken.accepts_raw and parent is not None:
        columns = [item["name"] for item in taken.inputs]
        version = parent
    frame = load_frame(project.path / version.path, version.format, version.reading)
    if frame.empty:
        raise DataError(f"{version.id} has no rows")
    frame = frame.drop(columns=[target], errors="ignore")
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    row = frame.iloc[index % len(frame)]
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


# ---- format sniffing (engine.ingest decides while the data streams in) --------------------------
def sniff(
    data: bytes, declared: dict[str, str] | None = None
) -> tuple[str, int | None, int | None]:
    """('csv' | 'json' | 'txt' | 'html' | 'binary', rows, columns) of content in memory: csv
    and json only when the content parses as such (what retrieve decides on a streamed file)."""
    from engine import ingest

    seen = ingest.examine(ingest.Scan.of_bytes(data), lambda: io.BytesIO(data), declared)
    return seen.format, seen.rows, seen.columns


def reading_of(reading: str | dict[str, str] | None) -> dict[str, str]:
    """A version's recorded reading (encoding, sep, decimal, thousands) as a dict."""
    if isinstance(reading, str):
        try:
            value = json.loads(reading)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return dict(reading or {})


def load_frame(path: Path, fmt: str, reading: str | dict[str, str] | None = None) -> Any:
    """A stored version as a DataFrame, read as recorded when it was retrieved (`reading`: its
    encoding, CSV separator and decimal mark; DataVersion.reading); plain text becomes one
    'line' column for processor.py. A version recorded before haj kept readings (None) loads as
    it always did: UTF-8, the separator sniffed, a decimal point."""
    import pandas as pd

    from engine import ingest

    options = reading_of(reading)
    encoding = options.get("encoding", "utf-8-sig")
    try:
        if fmt == "csv":
            sep = options.get("sep")
            if sep is None:
                with open(path, encoding="utf-8-sig", newline="") as handle:
                    sep = ingest._csv_delimiter(handle.read(ingest.SNIFF)) or ","
            return pd.read_csv(
                path,
                sep=sep,
                encoding=encoding,
                decimal=options.get("decimal", "."),
                thousands=options.get("thousands"),
            )
        if fmt == "json":
            text = path.read_text(encoding=encoding).strip()
            try:
                document = json.loads(text)
            except ValueError:
                document = [json.loads(line) for line in text.splitlines() if line.strip()]
            return pd.json_normalize(ingest.records_of(document))
        text = path.read_text(encoding=options.get("encoding", "utf-8"), errors="replace")
        return pd.DataFrame({"line": text.splitlines()})
    except FileNotFoundError:
        raise DataError(f"the data file {path} is missing") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot read {path.name} as {encoding}: byte {exc.start} does not decode"
        ) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path.name} as {fmt}: {exc}") from None


def repeated_columns(
    path: Path, fmt: str, reading: str | dict[str, str] | None = None
) -> list[str]:
    """The names a CSV version's header holds more than once (pandas renames the copies
    NAME.1, NAME.2 when it loads them, which would otherwise pass unnoticed)."""
    if fmt != "csv":
        return []
    from engine import ingest

    options = reading_of(reading)
    try:
        with open(path, encoding=options.get("encoding", "utf-8-sig"), newline="") as handle:
            head = handle.read(ingest.SNIFF)
    except (OSError, UnicodeDecodeError):
        return []
    sep = options.get("sep") or ingest._csv_delimiter(head) or ","
    header = next(csv.reader(io.StringIO(head), delimiter=sep), [])
    names = [name.strip() for name in header]
    return sorted({name for name in names if name and names.count(name) > 1})


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
    """The function `function` of the project's `which`.py."""
    module = _user_module(project, which)
    func = getattr(module, function, None)
    if not callable(func):
        raise ConfigError(f"{project.code_path(which).name} must define {function}()")
    return func


def _user_module(project: Project, which: str) -> ModuleType:
    """The project's `which`.py, loaded from its file (not importable by name: each project has
    its own)."""
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
    return module


def retrieve_in_process(project: Project, emit: events.Callback) -> dict[str, Any]:
    """`haj retrieve`: run retriever.py and stream what it returns into a raw version.

    Whatever comes back (bytes, str, a DataFrame, a pathlib.Path, a binary file object, an
    iterator of bytes) is hashed and looked at chunk by chunk (engine.ingest), never held whole
    in memory by haj; a retriever that takes a `progress` argument reports its download as it
    goes. An HTML page or binary data is refused before anything is stored. The reading found
    (encoding, CSV separator, decimal mark) is recorded with the version.
    """
    from engine import folder, ingest
    from engine.store import Store

    config = project.read_config()
    secrets = project.read_secrets()
    declared = ingest.declared_reading(config["data"], where=str(project.config_path))
    url = config["data"]["url"]
    source = redact_url(url) if url else "retriever.py"
    retrieve_fn = _load_user_module(project, "retriever", "retrieve")
    emit(events.Log(f"retrieving from {source}"))
    started = time.perf_counter()
    with ingest.scratch(project.path):  # a failed retrieve leaves the project as it was
        received, files = _receive(project, retrieve_fn, config, secrets, emit)
        try:
            if received.scan.blank:
                raise DataError("retrieve() returned no data")
            seen = ingest.examine(received.scan, received.open, declared)
            _refuse_unreadable(seen, source)
            if seen.detected:
                emit(
                    events.Log(
                        f"detected {', '.join(seen.detected)} ([data] encoding, sep and "
                        "decimal in config.toml override)"
                    )
                )
            fmt, rows, columns, size = seen.format, seen.rows, seen.columns, received.scan.size
            digest = _identity(received, seen, declared)
            reading = json.dumps(seen.reading, sort_keys=True) if seen.reading else None
            with Store(project.db_path) as store:
                previous = store.current_raw_version()
                version, created = store.add_data_version(
                    kind="raw",
                    sha256=digest,
                    size=size,
                    fmt=fmt,
                    rows=rows,
                    columns=columns,
                    source=source,
                    parent=None,
                    path_for=lambda seq: f"data/raw/v{seq:04d}-{digest[:8]}.{fmt}",
                    write=lambda rel: received.place(project.path / rel),
                    reading=reading,
                )
        finally:
            received.discard()
    info: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 3)}
    if files is not None:
        info["ingest"] = files.to_dict()
    folder.save(project.path / version.path, info)
    shape = f", {rows} rows x {columns} columns" if rows is not None else ""
    if created:
        emit(events.Log(f"new raw version {version.id}: {version.path} ({size} bytes{shape})"))
    else:
        again = (
            f"; {version.id} is the current version again (instead of {previous.id})"
            if previous is not None and previous.id != version.id
            else ""
        )
        emit(events.Log(f"unchanged: same content as {version.id} ({version.path}){again}"))
    emit(events.DataVersionAdded(version=version.to_dict(), created=created))
    return {"version": version.to_dict(), "created": created}


def _receive(
    project: Project,
    retrieve_fn: Callable[..., Any],
    config: dict[str, Any],
    secrets: dict[str, str],
    emit: events.Callback,
) -> Any:
    """What retrieve() returns, as a file under the project with its scan (engine.ingest);
    and, when it named several files (a folder), the record of combining them."""
    from engine import folder, ingest

    download = ingest.Meter(emit, "downloading")
    try:
        result = _call_retriever(retrieve_fn, config, secrets, download)
    except Exception as exc:
        from engine.errors import TransientError, is_transient

        error = TransientError if is_transient(exc) else DataError
        raise error(_scrub(f"retriever.py failed: {type(exc).__name__}: {exc}", secrets)) from None
    files = None
    if folder.is_file_list(result):
        result, files = folder.combine(
            [Path(p) for p in result], bool(config["data"].get("dedupe")), load_frame, emit
        )
    try:
        return ingest.receive(result, project.path, emit), files
    except DataError:
        raise
    except Exception as exc:  # a stream the retriever returned broke while it was read
        message = f"reading what retrieve() returned failed: {type(exc).__name__}: {exc}"
        raise DataError(_scrub(message, secrets)) from None


def _call_retriever(
    retrieve_fn: Callable[..., Any],
    config: dict[str, Any],
    secrets: dict[str, str],
    meter: Any,
) -> Any:
    """retrieve(config, secrets), or retrieve(config, secrets, progress=...) when it takes a
    `progress` argument: progress(done_bytes, total_bytes_or_None) reports a download."""
    import inspect

    def progress(done: int, total: int | None = None) -> None:
        meter.update(int(done), int(total) if total else None)

    try:
        params = list(inspect.signature(retrieve_fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    takes = any(p.name == "progress" or p.kind is p.VAR_KEYWORD for p in params)
    if takes:
        result = retrieve_fn(config, secrets, progress=progress)
    else:
        result = retrieve_fn(config, secrets)
    if meter.done:
        meter.finish()
    return result


def _refuse_unreadable(seen: Any, source: str) -> None:
    """An HTML page or binary data is not stored: it would only fail later, less clearly."""
    if seen.format == "html":
        raise DataError(
            f"{source} returned an HTML page, not data (a login or error page is the usual "
            "cause: check [data] url and the API key)"
        )
    if seen.format == "binary":
        raise DataError(
            f"{source} returned {seen.problem}, not CSV, JSON or text: read it in retriever.py "
            "and return a DataFrame"
        )


def _identity(received: Any, seen: Any, declared: dict[str, str]) -> str:
    """The raw version's sha256: the content's; or, when [data] encoding/sep/decimal make haj
    read it otherwise than it would on its own, the content's with that reading (the same bytes
    read another way are another version, so setting data.sep and retrieving again applies it)."""
    from engine import ingest

    content_sha256 = received.scan.sha256
    if not declared:
        return content_sha256
    try:
        detected = ingest.examine(received.scan, received.open, None)
    except DataError:
        detected = None
    if detected is not None and (detected.format, detected.reading) == (
        seen.format,
        seen.reading,
    ):
        return content_sha256
    return sha256_bytes(f"{content_sha256}\0{json.dumps(seen.reading, sort_keys=True)}".encode())


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
    from engine import folder, intake

    recipe = recipe_of(project, config)
    with open_store(project) as store:
        raw = store.data_version(raw_id)
        same = store.derivation(raw_id, recipe)
        last = store.derivation(raw_id)
    assert raw is not None
    if reuse and same is not None and intake.exists(project.path / same.processed.path):
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
    started = time.perf_counter()
    result, taken = _run_processor(project, raw, recipe, emit)
    seconds = round(time.perf_counter() - started, 3)
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
    intake.save(project.path / version.path, taken)
    folder.save(project.path / version.path, {"seconds": seconds, "from": raw.id})
    _report_processed(emit, version, created, raw.id, same, result.shape)
    return {"version": version.to_dict(), "created": created, "parent": raw.id}


def _run_processor(
    project: Project, raw: DataVersion, recipe: Recipe, emit: events.Callback
) -> tuple[Any, Intake]:
    """processor.py fitted on the raw version and applied to it (engine.intake), checked: a
    DataFrame with the target and at least one feature, and enough rows to train on; and what
    the models trained on it will accept at serving time. Its failures are DataErrors naming
    the cause, so `haj process` and `haj train` say what to fix in the user's code."""
    import pandas as pd

    from engine import intake

    target = recipe.target
    module = _user_module(project, "processor")
    frame = load_frame(project.path / raw.path, raw.format, raw.reading)
    emit(events.Log(f"processing {raw.id} ({len(frame)} rows x {frame.shape[1]} columns)"))
    repeated = repeated_columns(project.path / raw.path, raw.format, raw.reading)
    if repeated:
        emit(
            events.Log(
                f"the header of {raw.id} repeats column names: {', '.join(repeated)} (the copies "
                "are read as NAME.1, NAME.2, ...): rename them in the source or in retriever.py",
                level="warning",
            )
        )
    try:
        with _lines_to(emit):
            result, taken = intake.fit(module, frame, target, recipe.prediction)
    except DataError:
        raise
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
    if raw.format == "csv":
        taken.missing_text = list(intake.CSV_MISSING_TEXT)
    if not taken.accepts_raw:
        emit(
            events.Log(
                f"models trained on this data will take the processed columns, not raw rows: "
                f"{taken.reason} (give processor.py a Processor class: see the README)",
                level="warning",
            )
        )
    return result, taken


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
