"""The CLI starts fast because `import engine.cli` loads no heavy library (as Harlequin's
tests/unit_tests/test_import_hygiene.py checks for its core): checked in a fresh interpreter, since
this test process has long imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("textual", "sklearn", "pandas", "fastapi", "numpy", "uvicorn", "docker", "boto3")


def loaded_heavy_modules(code: str) -> list[str]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import engine.cli",
        "import engine.cli; engine.cli.build_parser()",  # every command module registered
        "import engine, engine.workspace, engine.store, engine.project, engine.metrics, "
        "engine.catalog, engine.status, engine.runs, engine.champion, engine.configure",
    ],
)
def test_engine_imports_load_no_heavy_library(code: str) -> None:
    assert loaded_heavy_modules(code) == []


def test_haj_list_runs_without_heavy_libraries(tmp_path) -> None:
    """`haj list` itself (not only the import) stays light: the 0.3 s budget depends on it."""
    code = (
        "from pathlib import Path\n"
        "from engine import workspace\n"
        "from engine.store import Store\n"
        f"project = workspace.create_project(Path({str(tmp_path)!r}), 'p', 'regression')\n"
        "with Store(project.db_path) as store:\n"
        "    run, = store.start_runs(session='s', models=[('ridge', {})],\n"
        "                            prediction='regression', data_version=None)\n"
        "    store.finish_run(run.id, status='finished', metrics={'rmse': 1.0})\n"
        "    store.crown(run.id, 'rmse', 1.0)\n"
        "from engine.cli import main\n"
        f"assert main(['--home', {str(tmp_path)!r}, 'list']) == 0\n"
        f"assert main(['--home', {str(tmp_path)!r}, 'list', '--json']) == 0\n"
    )
    assert loaded_heavy_modules(code) == []
