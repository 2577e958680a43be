"""The workspace: the directory holding every project.

Where: `--home`, else $HAJ_HOME, else ~/ml_projects. A project is a sub-directory with a
config.toml; anything else in the workspace is ignored.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path
from typing import Any

from engine.errors import Hint, ProjectExists, ProjectNotFound, UsageError
from engine.names import humanize, validate_name
from engine.procs import server_process_alive
from engine.project import PREDICTION_TYPES, Project, default_metric, new_project_id

EXAMPLES: dict[str, tuple[str, str]] = {
    # name -> (prediction type, target column) for scikit-learn's bundled (offline) datasets
    "breast_cancer": ("classification", "target"),
    "iris": ("classification", "target"),
    "wine": ("classification", "target"),
    "digits": ("classification", "target"),
    "diabetes": ("regression", "target"),
}


def home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        root = Path(explicit).expanduser()
    elif os.environ.get("HAJ_HOME"):
        root = Path(os.environ["HAJ_HOME"]).expanduser()
    else:
        root = Path.home() / "ml_projects"
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"the workspace {root} is a file, not a directory", Hint("choose-workspace")
        )
    return root


def project_names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in os.scandir(root)
        if entry.is_dir()
        and not entry.name.startswith(".")
        and os.path.exists(os.path.join(entry.path, "config.toml"))
    )


def get_project(root: Path, name: str) -> Project:
    """The existing project `name`, or ProjectNotFound (listing close names)."""
    validate_name(name)
    path = root / name
    if not (path / "config.toml").is_file():
        names = project_names(root)
        hint = f"; projects: {', '.join(names)}" if names else ""
        raise ProjectNotFound(f"no project named {name!r} in {root}{hint}")
    return Project(name=name, path=path)


def create_project(
    root: Path,
    name: str,
    prediction: str,
    *,
    example: str | None = None,
    url: str | None = None,
    target: str | None = None,
    title: str | None = None,
) -> Project:
    """Create a project from templates/<prediction>/. Nothing is left behind if it fails."""
    from engine import templates

    validate_name(name)
    if prediction not in PREDICTION_TYPES:
        raise UsageError(f"prediction must be one of {', '.join(PREDICTION_TYPES)}")
    if example is not None:
        if example not in EXAMPLES:
            raise UsageError(f"unknown example {example!r}: choose from {', '.join(EXAMPLES)}")
        example_type, example_target = EXAMPLES[example]
        if example_type != prediction:
            raise UsageError(f"example {example!r} is a {example_type} dataset, not {prediction}")
        url = f"example:{example}"
        target = target or example_target
    path = root / name
    if path.exists():
        raise ProjectExists(f"a project named {name!r} already exists in {root}")
    if url:
        from engine.data import absolute_source

        url = absolute_source(url)
    values = {
        "name": name,
        "title": title or humanize(name),
        "prediction": prediction,
        "url": url or "",
        "target": target or "target",
        "metric": default_metric(prediction),
        "id": new_project_id(),
    }
    files = templates.render(prediction, values)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.creating"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        for rel, (text, mode) in files.items():
            target_path = staging / rel
            target_path.write_text(text, encoding="utf-8")
            os.chmod(target_path, mode)
        for sub in ("data/raw", "data/processed", "models", "logs"):
            (staging / sub).mkdir(parents=True)
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Project(name=name, path=path)


def rename_project(root: Path, name: str, new_name: str, title: str | None = None) -> Project:
    """Move the directory and set the title (`title`, else one made from the new name); runs,
    data and champion move with it."""
    project = get_project(root, name)
    validate_name(new_name)
    if new_name == name:
        raise UsageError(f"the project is already named {name!r}")
    target = root / new_name
    if target.exists():
        raise ProjectExists(f"a project named {new_name!r} already exists in {root}")
    _refuse_if_serving(project, "rename")
    os.rename(project.path, target)
    moved = Project(name=new_name, path=target)
    try:
        moved.update_config({"project": {"title": title or humanize(new_name)}})
    except BaseException:
        os.rename(target, project.path)
        raise
    return moved


def delete_project(root: Path, name: str) -> None:
    project = get_project(root, name)
    _refuse_if_serving(project, "delete")
    trash = root / f".{name}.deleting"
    os.rename(project.path, trash)  # atomic: the project disappears at once, whole
    shutil.rmtree(trash, ignore_errors=True)


def _refuse_if_serving(project: Project, verb: str) -> None:
    import sqlite3

    from engine.errors import StoreError
    from engine.serving.control import live_server

    try:
        server = live_server(project)
    except (StoreError, sqlite3.DatabaseError):
        return  # a damaged haj.db records no server: it must not stop a delete
    if server:
        raise UsageError(
            f"cannot {verb} {project.name!r} while its server runs (pid {server['pid']})",
            Hint("stop-server", project.name),
        )


def summarize(project: Project) -> dict[str, Any]:
    """One row of `haj list`: cheap (tomllib + a read-only SQLite query), never raises."""
    row: dict[str, Any] = {
        "name": project.name,
        "title": project.name,
        "prediction": "?",
        "data_versions": 0,
        "runs": 0,
        "champion": None,
        "metric": None,
        "score": None,
        "error": None,
        "server": None,
        "schedule": None,
        "pipeline": None,
    }
    try:
        config = tomllib.loads(project.config_path.read_text(encoding="utf-8"))
        row["title"] = config.get("project", {}).get("title") or project.name
        row["prediction"] = config.get("project", {}).get("prediction", "?")
        row["schedule"] = _schedule_text(config.get("pipeline"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        row["error"] = f"config.toml: {exc}"
    if project.db_path.exists():
        from engine.store import Store

        try:
            with Store(project.db_path, readonly=True) as store:
                summary = store.summary()
        except Exception as exc:  # a broken db must not break the whole listing
            row["error"] = f"haj.db: {exc}"
        else:
            row["data_versions"] = summary["raw_versions"]
            row["runs"] = summary["runs"]
            server = summary["server"]
            if server and server_process_alive(int(server.get("pid") or 0)):
                row["server"] = f"{server.get('host', '127.0.0.1')}:{server.get('port')}"
            row["pipeline"] = pipeline_brief(summary.get("last_pipeline"))
            champion = summary["champion"]
            if champion:
                row["champion"] = champion["model"]
                row["champion_run"] = champion["run_id"]
                row["metric"] = champion["metric"]
                row["score"] = champion["value"]
    return row


def pipeline_brief(last: dict[str, Any] | None) -> str | None:
    """The last pipeline run in a few words, for listings: "✓ 12-02 03:00", "✗ 12-02 03:00"."""
    if not last:
        return None
    from datetime import datetime

    mark = {"finished": "✓", "failed": "✗", "cancelled": "cancelled", "running": "running"}
    when = datetime.fromisoformat(last["started_at"]).astimezone().strftime("%m-%d %H:%M")
    return f"{mark.get(last['status'], last['status'])} {when}"


def _schedule_text(section: object) -> str | None:
    """`[pipeline] schedule` as written, for listings (not parsed: `haj list` stays fast)."""
    from engine.cron import is_off  # a leaf: cronsim is not imported

    value = section.get("schedule") if isinstance(section, dict) else None
    if not isinstance(value, str) or is_off(value):
        return None
    return " ".join(value.split())


def list_projects(root: Path) -> list[dict[str, Any]]:
    return [summarize(Project(name=n, path=root / n)) for n in project_names(root)]
