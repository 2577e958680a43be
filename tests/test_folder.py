"""Data from a folder: overlapping CSVs combined into one recorded version, duplicates dropped,
a misfit file named, and no new version when nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.api import Workspace
from tests.support import call_haj

pytestmark = pytest.mark.integration


def write(folder: Path, name: str, rows: list[tuple[int, float, str]]) -> None:
    lines = ["x,y,label"] + [f"{x},{y},{label}" for x, y, label in rows]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_three_overlapping_csvs_make_one_recorded_version_without_duplicates(
    tmp_path: Path,
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rows = [(i, i * 0.5, "a" if i % 2 else "b") for i in range(30)]
    write(incoming, "jan.csv", rows[:12])
    write(incoming, "feb.csv", rows[10:22])  # two rows repeat jan's
    write(incoming, "mar.csv", rows[20:])  # two rows repeat feb's
    home = tmp_path / "home"
    assert call_haj(home, "init", "f", "-p", "classification", "--url",
                    str(incoming / "*.csv"), "--target", "label").code == 0  # fmt: skip
    config = home / "f" / "config.toml"
    config.write_text(config.read_text().replace("dedupe = false", "dedupe = true", 1))
    first = call_haj(home, "retrieve", "f")
    assert first.code == 0, first.text
    assert "combined 3 of 3 files: 30 rows, 4 duplicate rows dropped" in first.out
    project = Workspace(home).project("f")
    (version,) = project.versions("raw")
    assert version["rows"] == 30
    record = json.loads(next((home / "f" / "data" / "raw").glob("*.meta.json")).read_text())
    files = record["ingest"]["files"]
    assert [Path(f["file"]).name for f in files] == ["feb.csv", "jan.csv", "mar.csv"]
    assert [f["rows"] for f in files] == [12, 12, 10] and all(f["used"] for f in files)
    assert all(len(f["sha256"]) == 64 for f in files) and record["seconds"] >= 0
    shown = call_haj(home, "data", "f", "--show", version["id"])
    assert "jan.csv" in shown.out and "sha256" in shown.out

    again = call_haj(home, "retrieve", "f")  # nothing changed: no new version
    assert "unchanged: same content as raw-0001" in again.out
    write(incoming, "apr.csv", [(99, 1.0, "a")])
    (incoming / "notes.csv").write_text("when,who\n2026-01-01,ana\n")
    third = call_haj(home, "retrieve", "f")
    assert third.code == 0, third.text
    assert "left out notes.csv: columns do not fit: it lacks x, y, label" in third.out
    assert "new raw version raw-0002" in third.out
