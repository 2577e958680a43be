"""A project's own dependencies: requirements.txt and a virtualenv of its own.

Why a bridge instead of a full copy: the project's venv sees haj's packages (scikit-learn, pandas,
...) through a .pth file appended after its own site-packages, so it needs to install only what the
project adds, and anything it installs shadows haj's copy without touching haj's environment. pip
runs with `--python` pointing at the project's interpreter, so the venv needs no pip of its own.
"""

from __future__ import annotations

import re
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from engine import events
from engine.errors import DependencyError, UsageError
from engine.fsutil import atomic_write_text
from engine.project import Project

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([<>=!~].*)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> str:
    """The canonical project name of a requirement such as 'xgboost>=2' (UsageError if not one)."""
    match = _REQUIREMENT.match(text)
    if not match or text.strip().startswith("-"):
        raise UsageError(f"not a package requirement: {text!r}")
    return canonical(match.group(1))


def requirements(project: Project) -> list[str]:
    if not project.requirements_path.exists():
        return []
    lines = project.requirements_path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def add_requirements(project: Project, packages: Iterable[str]) -> list[str]:
    """Append the packages not already listed (by canonical name); returns those added."""
    packages = [p.strip() for p in packages if p.strip()]
    names = [parse_requirement(p) for p in packages]  # all validated before any write
    present = {parse_requirement(r) for r in requirements(project) if _REQUIREMENT.match(r)}
    added = []
    for package, name in zip(packages, names, strict=True):
        if name not in present:
            added.append(package)
            present.add(name)
    if added:
        text = (
            project.requirements_path.read_text(encoding="utf-8")
            if project.requirements_path.exists()
            else ""
        )
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write_text(project.requirements_path, text + "".join(f"{a}\n" for a in added))
    return added


def venv_python(project: Project) -> Path:
    return project.venv_dir / "bin" / "python"


def ensure_venv(project: Project) -> Path:
    """Create the project's virtualenv (no pip, bridged to haj's packages) if it is missing."""
    python = venv_python(project)
    if python.exists():
        return python
    result = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project.venv_dir)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DependencyError(f"could not create {project.venv_dir}: {result.stderr.strip()}")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    haj_sites = [
        p for p in [*site.getsitepackages(), sysconfig.get_paths()["purelib"]] if Path(p).is_dir()
    ]
    bridge = "import site; " + "; ".join(
        f"site.addsitedir({p!r})" for p in dict.fromkeys(haj_sites)
    )
    Path(purelib, "_haj_bridge.pth").write_text(bridge + "\n", encoding="utf-8")
    return python


def install(
    project: Project, packages: Iterable[str] = (), on_event: events.Callback = events.ignore
) -> list[str]:
    """Add `packages` to requirements.txt and install requirements.txt into the project's venv.

    pip's output is streamed as events. If pip fails, requirements.txt is restored as it was.
    """
    before = (
        project.requirements_path.read_text(encoding="utf-8")
        if project.requirements_path.exists()
        else None
    )
    added = add_requirements(project, packages)
    if not requirements(project):
        on_event(events.Log("requirements.txt lists no packages: nothing to install"))
        return added
    try:
        python = ensure_venv(project)
        command = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--disable-pip-version-check",
            "-r",
            str(project.requirements_path),
        ]
        on_event(
            events.Log(f"installing into {project.venv_dir}: {', '.join(requirements(project))}")
        )
        tail: list[str] = []
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=project.path
        ) as child:
            assert child.stdout
            for line in child.stdout:
                line = line.rstrip()
                tail = ([*tail, line])[-5:]
                on_event(events.Output(line=line, stream="pip"))
        if child.returncode != 0:
            last = next((t for t in reversed(tail) if "ERROR" in t), tail[-1] if tail else "")
            raise DependencyError(f"pip failed (exit {child.returncode}): {last.strip()}")
    except BaseException:
        if before is None:
            project.requirements_path.unlink(missing_ok=True)
        else:
            atomic_write_text(project.requirements_path, before)
        raise
    on_event(events.Log(f"installed into {project.venv_dir}"))
    return added
