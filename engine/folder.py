"""Data from a folder: every file a retriever names (a directory, or a glob such as
`data/incoming/*.csv`) read and combined into one raw version, with a record of each file.

Why combined by haj and not by the retriever: the record (each file's sha256, size, rows, and
whether it was used) belongs with the version, and the same files must always give the same
version: files are read in name order, columns aligned by name on the first file's order, so an
unchanged folder gives identical bytes and no new version, and any new or changed file does.
A file whose columns do not fit is left out and named (a folder that collects exports may hold
one from another source); `[data] dedupe = true` drops rows repeated across files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import events
from engine.errors import DataError
from engine.fsutil import atomic_write_text, sha256_file

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass
class FileRecord:
    """One file of a folder version: what it was and whether it went in."""

    file: str
    sha256: str
    bytes: int
    rows: int | None
    used: bool
    reason: str | None = None


@dataclass
class IngestRecord:
    """The files of a raw version made from a folder, and what combining them did."""

    files: list[FileRecord] = field(default_factory=list)
    rows: int = 0
    duplicates_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_file_list(result: object) -> bool:
    """A retriever's result that names several files (a list or tuple of paths)."""
    import os

    return (
        isinstance(result, list | tuple)
        and bool(result)
        and all(isinstance(item, os.PathLike) for item in result)
    )


def combine(
    paths: list[Path],
    dedupe: bool,
    load_frame: Callable[[Path, str], Any],
    emit: events.Callback = events.ignore,
) -> tuple[Any, IngestRecord]:
    """(the combined DataFrame, the record) of `paths`, read in name order by `load_frame`
    (engine.data's, which reads a stored version)."""
    import pandas as pd

    record = IngestRecord()
    frames = []
    columns: list[str] | None = None
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        if not path.is_file():
            raise DataError(f"retrieve() named {path}, which is not a file")
        entry = FileRecord(
            file=str(path), sha256=sha256_file(path), bytes=path.stat().st_size, rows=None,
            used=False,
        )  # fmt: skip
        record.files.append(entry)
        fmt = "json" if path.suffix.lower() in JSON_SUFFIXES else "csv"
        try:
            frame = load_frame(path, fmt)
        except DataError as exc:
            entry.reason = f"unreadable: {exc}"
            emit(events.Log(f"left out {path.name}: {entry.reason}", level="warning"))
            continue
        frame.columns = [str(c).strip() for c in frame.columns]
        entry.rows = len(frame)
        if columns is None:
            columns = list(frame.columns)
        elif set(frame.columns) != set(columns):
            missing = [c for c in columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in columns]
            parts = []
            if missing:
                parts.append(f"lacks {', '.join(missing[:5])}")
            if extra:
                parts.append(f"has {', '.join(extra[:5])} that the first file has not")
            entry.reason = "columns do not fit: it " + " and ".join(parts)
            emit(events.Log(f"left out {path.name}: {entry.reason}", level="warning"))
            continue
        frames.append(frame[columns])
        entry.used = True
    if not frames:
        raise DataError("no file could be read: " + "; ".join(
            f"{Path(f.file).name}: {f.reason}" for f in record.files
        ))  # fmt: skip
    combined = pd.concat(frames, ignore_index=True)
    if dedupe:
        before = len(combined)
        combined = combined.drop_duplicates(ignore_index=True)
        record.duplicates_dropped = before - len(combined)
    record.rows = len(combined)
    used = sum(1 for f in record.files if f.used)
    dropped = (
        f", {record.duplicates_dropped} duplicate rows dropped" if record.duplicates_dropped else ""
    )
    emit(events.Log(f"combined {used} of {len(record.files)} files: {record.rows} rows{dropped}"))
    return combined, record


def sidecar(version_file: Path) -> Path:
    """Where a version's record lives: beside it, <version>.meta.json (how long retrieving or
    processing took; for a folder, its files)."""
    stem = version_file.with_suffix("")
    return stem.with_name(stem.name + ".meta.json")


def save(version_file: Path, info: dict[str, Any]) -> None:
    """Write (or update: keys are merged) a version's record."""
    merged = {**(load(version_file) or {}), **info}
    atomic_write_text(sidecar(version_file), json.dumps(merged, indent=2) + "\n", sync=False)


def load(version_file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(sidecar(version_file).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
