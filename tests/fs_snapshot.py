"""A workspace's files and their content hashes, to prove a failed command changed nothing."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> 'dir', 'link:<target>' or '<mode> <sha256>' for every entry under root."""
    entries: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = f"link:{os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = "dir"
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[rel] = f"{stat.S_IMODE(info.st_mode):o} {digest}"
    return entries


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """What differs, for a readable assertion message."""
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "modified": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    }
