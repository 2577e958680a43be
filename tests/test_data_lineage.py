"""Which data `haj process` and `haj train` use, through the CLI on real files and haj.db:
the current raw version is the one the source returned most recently, `--data` picks another,
processed data is reused only for the same raw version, processor.py, target and prediction type,
processor.py's notes are shown (and logged) however processing runs, and an error on a project
without data changes nothing on disk."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fs_snapshot import changes, snapshot
from tests.support import Result, as_json


def customers(count: int = 80, extra: dict[str, str] | None = None) -> str:
    """A small CRM table: an id (dropped by the template processor), two features, a second
    categorical column (a target too), the label (missing on every eighth row)."""
    rng = random.Random(3)
    out = io.StringIO()
    rows = []
    for i in range(count):
        age = rng.randint(18, 80)
        plan = rng.choice(["basic", "pro", "team"])
        rows.append(
            {
                "customer_id": f"C{1000 + i}",
                "age": str(age),
                "plan": plan,
                "segment": "senior" if age > 50 else "junior",
                "label": ("yes" if (age < 40) != (plan == "team") else "no") if i % 8 else "",
                **(extra or {}),
            }
        )
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def ok(result: Result) -> Result:
    assert result.code == 0, result.text
    return result


def one_line_error(result: Result) -> str:
    assert result.code != 0, result.text
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("haj: error: "), result.err
    assert "Traceback" not in result.text
    return lines[0]


@pytest.fixture
def crm(haj: Callable[..., Result], home: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Project 'crm' reading tmp_path/crm.csv, one training worker; returns (project, csv)."""
    source = tmp_path / "crm.csv"
    source.write_text(customers())
    ok(haj("init", "crm", "-p", "classification", "--url", str(source), "--target", "label"))
    config = home / "crm" / "config.toml"
    config.write_text(config.read_text().replace("n_jobs = -1", "n_jobs = 1", 1))
    return home / "crm", source


def test_a_bad_newer_raw_version_does_not_block_training(
    haj: Callable[..., Result], crm: tuple[Path, Path], tmp_path: Path
) -> None:
    project, source = crm
    assert "new raw version raw-0001" in ok(haj("retrieve", "crm")).out
    notes = tmp_path / "notes.txt"
    notes.write_text("Quarterly notes, first draft\nNothing to add yet, really\n")
    ok(haj("config", "crm", "--url", str(notes)))
    assert "new raw version raw-0002: data/raw/v0002-" in ok(haj("retrieve", "crm")).out
    ok(haj("config", "crm", "--url", str(source)))
    again = ok(haj("retrieve", "crm")).out
    assert "unchanged: same content as raw-0001" in again
    assert "raw-0001 is the current version again (instead of raw-0002)" in again

    versions = as_json(haj("data", "crm", "--json"))
    assert [(v["id"], v["format"], v["current"]) for v in versions] == [  # type: ignore[union-attr]
        ("raw-0001", "csv", True),
        ("raw-0002", "txt", False),  # two lines of prose with a comma each are no table
    ]
    table = ok(haj("data", "crm")).out
    assert "Current: raw-0001 (retrieved most recently)" in table
    status = as_json(haj("status", "crm", "--json"))
    assert status["data"]["current_raw"]["id"] == "raw-0001"  # type: ignore[index]
    assert "current raw-0001 (csv, 80 rows)" in ok(haj("status", "crm")).out

    # train uses the current raw version, processing it first; processor.py's notes are shown
    # and logged exactly as `haj process` shows them
    trained = ok(haj("train", "crm", "-m", "decision_tree"))
    assert "no processed data for raw-0001 yet: processing it first" in trained.out
    assert "processor: dropped identifier columns: customer_id" in trained.out
    assert "1 finished on proc-0001" in trained.out
    log = (project / "logs" / "train.log").read_text()
    assert "(process) raw-0001] processor: dropped identifier columns: customer_id" in log
    assert ok(haj("data", "crm")).out.count("✓") == 2  # raw-0001 and proc-0001

    # --data: a raw version (processed first), a processed one (as is), an unknown one. A raw
    # version that processor.py cannot read is an error that changes nothing, train.log included.
    before = snapshot(project.parent)
    error = one_line_error(haj("train", "crm", "-m", "decision_tree", "--data", "raw-0002"))
    assert "processor.py failed" in error and "target column 'label' not found" in error
    assert snapshot(project.parent) == before, changes(before, snapshot(project.parent))
    on_processed = ok(haj("train", "crm", "-m", "gaussian_nb", "--data", "proc-0001"))
    assert "1 finished on proc-0001" in on_processed.out and "process" not in on_processed.out
    error = one_line_error(haj("train", "crm", "--data", "raw-0099"))
    assert "no data version 'raw-0099'" in error
    # `haj process` without --version takes the current version too
    assert "processing raw-0001 (80 rows" in ok(haj("process", "crm")).out


def test_processed_data_is_reused_only_for_the_same_processor_and_target(
    haj: Callable[..., Result], crm: tuple[Path, Path]
) -> None:
    project, source = crm
    ok(haj("retrieve", "crm"))
    processed = ok(haj("process", "crm")).out
    assert "processor: dropped identifier columns: customer_id" in processed
    assert "new processed version proc-0001 from raw-0001" in processed

    # new raw data that processes to the same content (its extra column is constant): linked
    source.write_text(customers(extra={"exported_by": "crm"}))
    assert "new raw version raw-0002" in ok(haj("retrieve", "crm")).out
    first = ok(haj("train", "crm", "-m", "decision_tree")).out
    assert "processor: dropped empty or constant columns: exported_by" in first
    assert "processed data unchanged: proc-0001 (now linked to raw-0002" in first
    assert "1 finished on proc-0001" in first
    # ...so the next train does not run processor.py again
    second = ok(haj("train", "crm", "-m", "decision_tree")).out
    assert "reusing proc-0001 (raw-0002 processed with the same processor.py and target)" in second
    assert "processing" not in second and "processor:" not in second

    # a new target: the old processed data (with the new target among its features) is stale
    ok(haj("config", "crm", "--target", "segment"))
    retargeted = ok(haj("train", "crm", "-m", "decision_tree")).out
    assert (
        "processing raw-0002: the target ('label' -> 'segment') changed since proc-0001"
        in retargeted
    )
    assert "new processed version proc-0002 from raw-0002" in retargeted  # rows kept now
    assert "1 finished on proc-0002" in retargeted
    versions = {v["id"]: v for v in as_json(haj("data", "crm", "--json"))}  # type: ignore[union-attr]
    assert [i for i, v in versions.items() if v["current"]] == ["raw-0002", "proc-0002"]
    header = (project / versions["proc-0002"]["path"]).read_text().splitlines()[0].split(",")
    assert {"segment", "label"} <= set(header)  # the old target is a feature now...
    assert versions["proc-0002"]["rows"] > versions["proc-0001"]["rows"]  # ...missing or not
    runs = as_json(haj("runs", "crm", "--json"))["runs"]  # type: ignore[index]
    newest = max(runs, key=lambda run: run["started_at"])
    assert [r["data_version"] for r in runs].count("proc-0002") == 1
    assert newest["data_version"] == "proc-0002"

    # an edited processor.py is a new recipe too (same output here: linked, not a new version)
    with open(project / "processor.py", "a") as handle:
        handle.write("\n# tuned\n")
    edited = ok(haj("process", "crm")).out
    assert "processing raw-0002: processor.py changed since proc-0002" in edited
    assert "processed data unchanged: proc-0002 (now linked to raw-0002" in edited
    assert len([v for v in versions.values() if v["kind"] == "processed"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "empty", "--show", "raw-9"], "no data yet"),
        (["process", "empty", "--version", "raw-1"], "no data yet"),
        (["train", "empty", "--data", "raw-1"], "no data yet"),
        (["train", "empty"], "no data yet"),
    ],
)
def test_an_error_on_a_project_without_data_creates_nothing(
    haj: Callable[..., Result], home: Path, args: list[str], message: str
) -> None:
    ok(haj("init", "empty", "-p", "classification"))
    before = snapshot(home)
    assert message in one_line_error(haj(*args))
    assert "No data yet" in ok(haj("data", "empty")).out  # reading creates nothing either
    assert snapshot(home) == before, changes(before, snapshot(home))
    assert not (home / "empty" / "haj.db").exists()
