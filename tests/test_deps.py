"""A project's own dependencies, installed for real into its own virtualenv, offline: a tiny wheel
built here is the only package pip may find (PIP_NO_INDEX + PIP_FIND_LINKS)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Result, run_haj

PACKAGE = "hajtinypkg"


def build_wheel(folder: Path, name: str = PACKAGE, version: str = "0.1") -> Path:
    """A minimal, valid pure-Python wheel written by hand (no build backend, no network)."""
    files = {
        f"{name}/__init__.py": f'VALUE = 42\nVERSION = "{version}"\n',
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: haj-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_name = f"{name}-{version}.dist-info/RECORD"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{record_name},,")
    files[record_name] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def offline_pip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    wheels = tmp_path_factory.mktemp("wheels")
    build_wheel(wheels)
    return {
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    }


def imports_from(python: Path | str, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__file__)"],
        capture_output=True,
        text=True,
    )


def requirement_lines(project: Path) -> list[str]:
    lines = (project / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_dependency_installs_into_the_project_venv_and_retriever_uses_it(
    home: Path, offline_pip: dict[str, str]
) -> None:
    def haj(*args: str) -> Result:
        return run_haj(home, *args, env=offline_pip)

    assert haj("init", "p", "-p", "classification").code == 0
    project = home / "p"
    result = haj("config", "p", "-d", PACKAGE)
    assert result.code == 0, result.text
    assert f"Successfully installed {PACKAGE}-0.1" in result.out  # pip's own output, streamed
    assert f"requirements.txt: added {PACKAGE}" in result.out
    assert requirement_lines(project) == [PACKAGE]

    venv_python = project / ".venv" / "bin" / "python"
    found = imports_from(venv_python, PACKAGE)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip().startswith(str(project / ".venv"))
    assert imports_from(sys.executable, PACKAGE).returncode != 0  # haj's environment untouched
    assert imports_from(venv_python, "sklearn").returncode == 0  # haj's packages still visible

    # the same package again through `haj impl`, spelled differently: no duplicate line
    impl = haj("impl", "p", "retriever", "-d", "HajTinyPkg==0.1", "hajtinypkg", "--no-edit")
    assert impl.code == 0, impl.text
    assert "added nothing new" in impl.out
    assert impl.out.strip().endswith(str(project / "retriever.py"))
    assert requirement_lines(project) == [PACKAGE]

    # user code runs with the project's interpreter, so it can import what was installed
    (project / "retriever.py").write_text(
        "import hajtinypkg\n\n\n"
        "def retrieve(config, secrets):\n"
        "    rows = [f'{i},{hajtinypkg.VALUE + i},{i % 2}' for i in range(20)]\n"
        "    return 'a,b,target\\n' + '\\n'.join(rows) + '\\n'\n"
    )
    retrieved = haj("retrieve", "p")
    assert retrieved.code == 0, retrieved.text
    (raw,) = list((project / "data" / "raw").glob("*.csv"))
    assert raw.read_text().splitlines()[1] == "0,42,0"


def test_a_failed_install_restores_requirements_txt(
    home: Path, offline_pip: dict[str, str], haj: Callable[..., Result]
) -> None:
    assert haj("init", "p", "-p", "regression").code == 0
    requirements = home / "p" / "requirements.txt"
    before = requirements.read_bytes()
    result = run_haj(home, "config", "p", "-d", "no-such-package-for-haj", env=offline_pip)
    assert result.code == 9, result.text
    assert result.err.startswith("haj: error: pip failed") and result.err.count("\n") == 1
    assert "Traceback" not in result.text
    assert requirements.read_bytes() == before
