"""Cheap change detection: has anything a view shows changed since it last looked?

A view (the app's Projects list, Runs and Train tabs) keeps a stamp and asks a few times a second
whether the project's files moved on. A stamp is the size and modification time (ns) of the
files that hold what views show: the SQLite store (`haj.db` and its write-ahead log
`haj.db-wal`, where every commit lands first), config.toml and .env, the code files and
logs/train.log. Taking one costs a handful of stat() calls: no SQLite connection, no parsing,
so it can run on the UI thread. Whoever wrote (this process, `haj train` in a shell, a schedule,
a crowning elsewhere) the stamp changes; the view then re-reads only what changed.

What no file records is not seen: a server process that dies without a word changes no file
(its record stays until the next `haj stop`; views that show a server check its pid).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# part -> files (relative to the project directory)
PARTS: dict[str, tuple[str, ...]] = {
    "store": ("haj.db", "haj.db-wal"),
    "config": ("config.toml", ".env"),
    "code": ("retriever.py", "processor.py", "model.py", "requirements.txt"),
    "log": ("logs/train.log",),
}

_Entry = tuple[str, int, int]  # (file, mtime_ns, size); (file, -1, -1) when absent


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


@dataclass(frozen=True)
class Stamp:
    """A project's files as they stand (see the module). `changed(older)` names the parts
    that differ: "store", "config", "code", "log"; every part when `older` is None."""

    parts: tuple[tuple[str, tuple[_Entry, ...]], ...]

    def changed(self, older: Stamp | None) -> frozenset[str]:
        mine = dict(self.parts)
        if older is None:
            return frozenset(mine)
        theirs = dict(older.parts)
        return frozenset(
            part for part in mine.keys() | theirs.keys() if mine.get(part) != theirs.get(part)
        )


def project_stamp(path: Path) -> Stamp:
    path = Path(path)
    return Stamp(
        tuple(
            (part, tuple((name, *_stat(path / name)) for name in names))
            for part, names in PARTS.items()
        )
    )


@dataclass(frozen=True)
class WorkspaceStamp:
    """The workspace folder's listing and each project's Stamp. `changed(older)` names the
    projects that changed, appeared or went away (all of them when `older` is None)."""

    listing: tuple[int, int]
    projects: tuple[tuple[str, Stamp], ...]

    def changed(self, older: WorkspaceStamp | None) -> frozenset[str]:
        mine = dict(self.projects)
        if older is None:
            return frozenset(mine)
        theirs = dict(older.projects)
        return frozenset(
            name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name)
        )


def workspace_stamp(root: Path, names: list[str]) -> WorkspaceStamp:
    root = Path(root)
    return WorkspaceStamp(
        _stat(root), tuple((name, project_stamp(root / name)) for name in sorted(names))
    )
