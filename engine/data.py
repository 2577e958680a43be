"""Data: run the project's retriever and processor, sniff formats, keep content-addressed versions.

A raw version is created only when its sha256 is new, so retrieving the same data twice changes
nothing. Files are never overwritten: data/raw/v0003-1a2b3c4d.csv. Processed versions point at their
raw parent. The *_in_process functions run inside `engine.runner` (user code, project interpreter);
`retrieve()` and `process()` are what the CLI and TUI call.
"""

from __future__ import annotations

import csv
import importlib.util
import inspect
import io
import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine import events
from engine.errors import ConfigError, DataError
from engine.fsutil import atomic_write_bytes, sha256_bytes
from engine.project import Project

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
    """Run processor.py on a raw version (default: the latest); returns the processed version."""
    from engine import runner_client

    project.read_config()
    require_raw_data(project)
    return runner_client.run(project, "process", {"version": version}, on_event, cancel)


def require_raw_data(project: Project) -> None:
    """Raise DataError at once when there is no raw version yet.

    Why here: the store answers in a millisecond, while starting a runner (which checks again)
    costs a second or more before it could say the same.
    """
    if project.db_path.exists():
        from engine.store import Store

        # Not read-only: a read-only connection would leave haj.db-wal and -shm behind.
        with Store(project.db_path) as store:
            if store.latest_data_version("raw") is not None:
                return
    raise DataError(f"no data yet: run `haj retrieve {project.name}` first")


def versions(project: Project, kind: str | None = None) -> list[dict[str, Any]]:
    if not project.db_path.exists():
        return []
    from engine.store import Store

    with Store(project.db_path) as store:
        return [v.to_dict() for v in store.data_versions(kind)]


def preview(project: Project, version_id: str, rows: int = 20) -> dict[str, Any]:
    """The first rows of a version and a per-column summary (for `haj data --show` and the TUI)."""
    from engine.store import Store

    with Store(project.db_path) as store:
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
    from engine.store import Store

    target = project.read_config()["data"]["target"]
    if not project.db_path.exists():
        raise DataError(f"no data yet: run `haj retrieve {project.name}` first")
    with Store(project.db_path) as store:
        champion = store.champion()
        run = store.run(champion.run_id) if champion else None
        version = store.data_version(run.data_version) if run and run.data_version else None
        if version is None:
            version = store.latest_data_version("processed")
    if version is None:
        raise DataError(f"no processed data yet: run `haj process {project.name}` first")
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
    delimiter = _csv_delimiter(text[:65536])
    if delimiter is None:
        return None
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [row for row in rows if row]
    if len(rows) < 2:
        return None
    width = len(rows[0])
    if width < 2:
        return None
    consistent = sum(1 for row in rows if len(row) == width)
    if consistent < 0.9 * len(rows):
        return None
    return len(rows) - 1, width


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
        emit(events.Log(f"unchanged: same content as {version.id} ({version.path})"))
    emit(events.DataVersionAdded(version=version.to_dict(), created=created))
    return {"version": version.to_dict(), "created": created}


def process_in_process(
    project: Project, version_id: str | None, emit: events.Callback
) -> dict[str, Any]:
    from engine.store import Store

    config = project.read_config()
    if not project.db_path.exists():  # checked first: opening the store would create haj.db
        raise DataError(f"no data yet: run `haj retrieve {project.name}` first")
    with Store(project.db_path) as store:
        raw = store.data_version(version_id) if version_id else store.latest_data_version("raw")
    if raw is None:
        if version_id:
            raise DataError(f"no raw data version {version_id!r}: see `haj data {project.name}`")
        raise DataError(f"no data yet: run `haj retrieve {project.name}` first")
    if raw.kind != "raw":
        raise DataError(f"{raw.id} is a processed version: give a raw one")
    return process_version(project, config, raw.id, emit)


def process_version(
    project: Project, config: dict[str, Any], raw_id: str, emit: events.Callback
) -> dict[str, Any]:
    import pandas as pd

    from engine.store import Store

    with Store(project.db_path) as store:
        raw = store.data_version(raw_id)
    assert raw is not None
    target = config["data"]["target"]
    process_fn = _load_user_module(project, "processor", "process")
    frame = load_frame(project.path / raw.path, raw.format)
    emit(events.Log(f"processing {raw.id} ({len(frame)} rows x {frame.shape[1]} columns)"))
    try:
        params = inspect.signature(process_fn).parameters
        prediction = config["project"]["prediction"]
        args = (frame, target, prediction)[: max(1, min(len(params), 3))]
        result = process_fn(*args)
    except Exception as exc:
        raise DataError(f"processor.py failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(result, pd.DataFrame):
        raise DataError(f"process() returned {type(result).__name__}: return a DataFrame")
    if target not in result.columns:
        raise DataError(
            f"target column {target!r} is missing from the processed data; columns: "
            f"{', '.join(map(str, list(result.columns)[:20]))} "
            f"(set it with `haj config {project.name} --target COLUMN`)"
        )
    if result.shape[1] < 2:
        raise DataError("the processed data has no feature column besides the target")
    if len(result) < 5:
        raise DataError(f"the processed data has {len(result)} rows: too few to train on")
    payload = result.to_csv(index=False).encode("utf-8")
    digest = sha256_bytes(payload)
    with Store(project.db_path) as store:
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
        )
    if created:
        emit(
            events.Log(
                f"new processed version {version.id} from {raw.id}: {result.shape[0]} "
                f"rows x {result.shape[1]} columns"
            )
        )
    else:
        emit(events.Log(f"processed data unchanged: {version.id}"))
    emit(events.DataVersionAdded(version=version.to_dict(), created=created))
    return {"version": version.to_dict(), "created": created, "parent": raw.id}


def _scrub(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
