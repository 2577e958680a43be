"""Import hygiene: what the engine may import, checked statically and in fresh interpreters.

- The CLI starts fast because `import engine.cli` loads no heavy library (as Harlequin's
  tests/unit_tests/test_import_hygiene.py checks for its core): checked in a fresh interpreter,
  since this test process has long imported everything.
- The layers hold: the contracts in pyproject.toml ([tool.importlinter], run here with
  import-linter's own entry point) and the checks below read every import statement, including
  those inside functions: lazy imports once hid a nine-module cycle (store -> status -> container
  -> serving -> status ...), invisible to a check that only imports modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("textual", "sklearn", "pandas", "fastapi", "numpy", "uvicorn", "docker", "boto3")
INTERFACES = ("engine.cli", "engine.__main__")  # the engine modules that are not its core


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
        "engine.catalog, engine.status, engine.runs, engine.champion, engine.configure, "
        "engine.procs",
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


# ---- the layers --------------------------------------------------------------------------------
def test_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    """pyproject.toml's [tool.importlinter] contracts: the core imports no interface (engine.cli,
    haj_tui, textual, rich); serving reaches neither container, deploy nor status; status sits
    above deploy, container, serving and the store, and procs below them all."""
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def _engine_modules() -> list[str]:
    modules = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(".".join(parts))
    return modules


def _is_core(module: str) -> bool:
    return module != "engine" and not any(
        module == i or module.startswith(f"{i}.") for i in INTERFACES
    )


def test_the_no_interface_contract_covers_every_core_module() -> None:
    """A new engine module cannot escape the contract by not being listed in it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "core-has-no-interface"]
    listed = contract["source_modules"]
    uncovered = [
        m
        for m in _engine_modules()
        if _is_core(m) and not any(m == s or m.startswith(f"{s}.") for s in listed)
    ]
    assert uncovered == [], f"add these to the core-has-no-interface contract: {uncovered}"


@pytest.fixture(scope="module")
def engine_imports() -> dict[str, set[str]]:
    """Every engine module -> the engine modules it imports, function-level imports included."""
    import grimp

    graph = grimp.build_graph("engine", cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def test_procs_is_a_leaf(engine_imports: dict[str, set[str]]) -> None:
    """engine.procs (process liveness) imports nothing from engine: the store, serving, status
    and the workspace all use it, so it must pull none of them in."""
    assert engine_imports["engine.procs"] == set()


def test_the_engine_core_has_no_import_cycle(engine_imports: dict[str, set[str]]) -> None:
    core = {m: {i for i in imports if _is_core(i)} for m, imports in engine_imports.items()}
    core = {m: imports for m, imports in core.items() if _is_core(m)}
    cycles = _strongly_connected(core)
    assert cycles == [], f"import cycles in the engine core: {cycles}"


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other (directly or around a loop), iteratively
    (Tarjan's algorithm): the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups
