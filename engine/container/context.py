"""The build context: everything `docker build` needs, written into <project>/build/context/.

Layout:
    Dockerfile
    requirements.txt     haj's serving packages pinned to the versions that trained the model,
                         then the project's own requirements
    wheels/              with --wheelhouse: every wheel, downloaded on the host (offline build)
    haj/engine/          haj's engine (pure Python; serving needs no CLI, TUI, boto3 or docker)
    project/             config.toml, the project's code, requirements.txt and
                         models/champion.{joblib,json}: the champion, verified by its sha256
    build-info.json      what went in: champion, requirements, wheels with their sha256, and
                         the build's settings (base image, wheelhouse, network)

Why pinned to the host's versions: a joblib pickle of a scikit-learn pipeline is only guaranteed to
load under the scikit-learn (and numpy) that wrote it. Never copied: .env (secrets), haj.db, data/,
.venv/, logs/. Wheels are cached in <project>/build/wheelhouse/ between builds and hard-linked
into the context, so a second --wheelhouse build downloads nothing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import events
from engine.container import LABEL_PROJECT, LABEL_PROJECT_ID, LABEL_RUN, dockerfile
from engine.errors import ContainerError, Hint, NoChampion
from engine.fsutil import atomic_write_text, sha256_bytes, sha256_file
from engine.project import CODE_FILES, Project
from engine.serving.packages import SERVING_PACKAGES  # re-exported: what the server imports
from engine.store import now_iso

_IMAGE_PYTHON = "3.11"  # python:3.11-slim and Debian bookworm's python3


@dataclass
class BuildContext:
    path: Path
    project: str
    champion: dict[str, Any]
    requirements: list[str]
    wheelhouse: bool
    base_image: str | None = None
    network: str | None = None
    wheels: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def build_dir(project: Project) -> Path:
    return project.path / "build"


def serving_requirements() -> list[str]:
    """The serving packages pinned to the versions installed beside haj (unpinned if missing)."""
    pinned = []
    for spec in SERVING_PACKAGES:
        name = spec.split("[", 1)[0]
        try:
            pinned.append(f"{spec}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(spec)
    return pinned


def champion_info(project: Project) -> dict[str, Any]:
    """models/champion.json, after checking champion.joblib still hashes to its sha256, with
    the crowning time from the store (`crowned_at`): what an image or a model bundle ships as its
    champion.json, so a server without haj.db reports it too."""
    info_path = project.models_dir / "champion.json"
    if not project.champion_path.exists() or not info_path.exists():
        raise NoChampion(
            f"project {project.name!r} has no champion to put in an image",
            Hint("crown", project.name),
        )
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        expected = str(info["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ContainerError(f"{info_path} is not a valid champion record: {exc}") from None
    if sha256_file(project.champion_path) != expected:
        raise ContainerError(
            f"{project.champion_path} does not match the sha256 in champion.json",
            Hint("crown", project.name),
        )
    if project.db_path.exists():
        from engine.store import Store

        with Store(project.db_path, readonly=True) as store:
            crowned = store.champion()
        if crowned is not None and crowned.run_id == info.get("run_id"):
            info["crowned_at"] = crowned.crowned_at
    return info


def champion_json(info: dict[str, Any]) -> str:
    """The champion.json shipped in an image or a model bundle."""
    return json.dumps(info, indent=2) + "\n"


def write_context(
    project: Project,
    *,
    wheelhouse: bool = False,
    base_image: str | None = None,
    network: str | None = None,
    on_event: events.Callback = events.ignore,
) -> BuildContext:
    """Write a fresh build context (the wheel cache survives) and return what is in it."""
    from engine import deps

    champion = champion_info(project)
    context = build_dir(project) / "context"
    if context.exists():
        shutil.rmtree(context)
    (context / "project" / "models").mkdir(parents=True)
    requirements = serving_requirements() + [
        r for r in deps.requirements(project) if not r.startswith("-")
    ]
    atomic_write_text(
        context / "requirements.txt",
        "# Written by haj: serving packages pinned to the versions that trained the model,\n"
        "# then the project's own requirements.txt.\n" + "".join(f"{r}\n" for r in requirements),
    )
    _copy_engine(context / "haj" / "engine")
    _copy_project(project, context / "project", champion)
    _readable(context / "haj")
    _readable(context / "project")
    labels = {
        LABEL_PROJECT: project.name,
        LABEL_PROJECT_ID: project.uid,
        LABEL_RUN: str(champion["run_id"]),
        "haj.model": str(champion.get("model", "")),
        "haj.model-sha256": str(champion["sha256"]),
        "org.opencontainers.image.title": f"haj {project.name}",
        "org.opencontainers.image.description": (
            f"champion {champion.get('model')} of {project.name}"
        ),
    }
    built = BuildContext(
        path=context,
        project=project.name,
        champion=champion,
        requirements=requirements,
        wheelhouse=wheelhouse,
        base_image=base_image,
        network=network,
        labels=labels,
    )
    if wheelhouse:
        built.wheels = _fill_wheelhouse(project, context, on_event)
    atomic_write_text(
        context / "Dockerfile",
        dockerfile.render(wheelhouse=wheelhouse, labels=labels, project_name=project.name),
    )
    atomic_write_text(context / ".dockerignore", "**/__pycache__\n**/*.pyc\n")
    info = {**built.to_dict(), "written_at": now_iso()}
    atomic_write_text(context / "build-info.json", json.dumps(info, indent=2) + "\n")
    on_event(events.Log(f"build context written to {context}"))
    return built


def _readable(root: Path) -> None:
    """World-readable, as COPY keeps modes: the server runs as a user that owns none of it (model
    files are written 0600 on the host)."""
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _copy_engine(target: Path) -> None:
    import engine

    source = Path(engine.__file__).parent
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_templates", "cli"),
    )


def _copy_project(project: Project, target: Path, champion: dict[str, Any]) -> None:
    shutil.copy2(project.config_path, target / "config.toml")
    for name in (*(f"{c}.py" for c in CODE_FILES), "requirements.txt"):
        source = project.path / name
        if source.is_file():
            shutil.copy2(source, target / name)
    shutil.copy2(project.champion_path, target / "models" / "champion.joblib")
    atomic_write_text(target / "models" / "champion.json", champion_json(champion))


def _download_flags() -> list[str]:
    """Ask pip for the image's platform when the host is not Linux x86_64 CPython 3.11."""
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.platform == "linux" and platform.machine() == "x86_64" and host == _IMAGE_PYTHON:
        return []
    return [
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        _IMAGE_PYTHON,
        "--implementation",
        "cp",
    ]


_SAVED = re.compile(r"^(?:Saved|File was already downloaded) (.+\.whl)\s*$")


def _fill_wheelhouse(
    project: Project, context: Path, on_event: events.Callback
) -> list[dict[str, Any]]:
    """`pip download` every wheel on the host; link exactly those into context/wheels/."""
    cache = build_dir(project) / "wheelhouse"
    cache.mkdir(parents=True, exist_ok=True)
    requirements = (context / "requirements.txt").read_text(encoding="utf-8")
    key = sha256_bytes((requirements + " ".join(_download_flags())).encode())
    manifest_path = cache / "manifest.json"
    files = _cached_wheels(manifest_path, key, cache)
    if files is None:
        files = _pip_download(cache, context, on_event)
        atomic_write_text(
            manifest_path, json.dumps({"key": key, "files": [p.name for p in files]}, indent=2)
        )
    else:
        on_event(events.Log(f"wheelhouse: {len(files)} wheels cached for these requirements"))
    target = context / "wheels"
    target.mkdir()
    wheels = []
    for path in sorted(set(files)):
        destination = target / path.name
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
        wheels.append(
            {"file": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        )
    on_event(events.Log(f"wheelhouse: {len(wheels)} wheels"))
    return wheels


def _cached_wheels(manifest_path: Path, key: str, cache: Path) -> list[Path] | None:
    """The wheels a previous download found for the same requirements, if all are still there
    (pip takes seconds to resolve even when every file is present)."""
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key:
        return None
    files = [cache / name for name in manifest.get("files", [])]
    return files if files and all(f.is_file() for f in files) else None


def _pip_download(cache: Path, context: Path, on_event: events.Callback) -> list[Path]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--dest",
        str(cache),
        "-r",
        str(context / "requirements.txt"),
        *_download_flags(),
    ]
    on_event(events.Log("downloading wheels on the host (pip download)"))
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PIP_PROGRESS_BAR": "off"},
    )
    assert proc.stdout is not None
    files: list[Path] = []
    tail: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        tail = [*tail[-19:], line]
        on_event(events.Output(line, stream="stdout"))
        match = _SAVED.match(line.strip())
        if match:
            files.append(cache / Path(match.group(1)).name)
    if proc.wait() != 0:
        raise ContainerError(
            "pip download failed (a package with no wheel for Linux x86_64 / Python 3.11?): "
            + " | ".join(t for t in tail[-3:] if t.strip())
        )
    return files
