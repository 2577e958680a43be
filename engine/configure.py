"""Change a project's configuration: every option checked first, then applied, rename last.

One place for what `haj config` and the TUI's Config form do, so both behave the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import events
from engine.data import absolute_source, redact_url
from engine.errors import ProjectExists, UsageError
from engine.names import name_for_title
from engine.project import PREDICTION_TYPES, Project, default_metric


@dataclass
class Changes:
    title: str | None = None  # a new name or title: renames the directory (see name_for_title)
    prediction: str | None = None
    url: str | None = None
    target: str | None = None
    metric: str | None = None
    api_key: str | None = None
    notify_url: str | None = None  # a secret (a webhook's URL carries its token): .env only
    dependencies: list[str] = field(default_factory=list)
    training: dict[str, object] = field(default_factory=dict)  # test_size, random_state, n_jobs
    # any other key, "section.key" -> value (`haj config --set`), validated like the rest
    settings: dict[str, object] = field(default_factory=dict)

    def empty(self) -> bool:
        # `is not None`: an empty value given on purpose (`-t ""`) is an error, not "show config".
        return not any(
            (
                self.title is not None,
                self.prediction is not None,
                self.url is not None,
                self.target is not None,
                self.metric is not None,
                self.api_key is not None,
                self.notify_url is not None,
                self.dependencies,
                self.training,
                self.settings,
            )
        )


def validate(root: Path, project: Project, changes: Changes) -> None:
    config = project.read_config()
    check_changes(
        changes,
        name=project.name,
        prediction=config["project"]["prediction"],
        taken=lambda new_name: (root / new_name).exists(),
        where=f" in {root}",
    )


def check_changes(
    changes: Changes,
    *,
    name: str,
    prediction: str,
    taken: Callable[[str], bool],
    where: str = "",
) -> None:
    """The checks of `validate` on values alone: `taken(name)` says whether a project of that
    name exists (`where` names the workspace in the message)."""
    from engine.deps import parse_requirement
    from engine.metrics import check_metric

    if changes.title is not None and changes.title != name:
        new_name = name_for_title(changes.title)
        if new_name != name and taken(new_name):
            raise ProjectExists(f"a project named {new_name!r} already exists{where}")
    if changes.prediction is not None and changes.prediction not in PREDICTION_TYPES:
        raise UsageError(f"prediction must be one of {', '.join(PREDICTION_TYPES)}")
    if changes.metric is not None:
        check_metric(changes.metric, changes.prediction or prediction)
    if changes.target is not None and not changes.target.strip():
        raise UsageError("the target column cannot be empty")
    if changes.api_key is not None and (not changes.api_key or "\n" in changes.api_key):
        raise UsageError("the API key must be one non-empty line")
    if changes.notify_url is not None and not changes.notify_url.startswith(
        ("http://", "https://")
    ):
        raise UsageError("the notification URL must be an http:// or https:// webhook URL")
    for package in changes.dependencies:
        parse_requirement(package)


def apply(
    root: Path, project: Project, changes: Changes, on_event: events.Callback = events.ignore
) -> tuple[Project, list[str]]:
    """Apply the changes; returns the (possibly renamed) project and notes for the user."""
    from engine import champion, deps, workspace

    validate(root, project, changes)
    notes: list[str] = []
    config = project.read_config()
    section_changes: dict[str, dict[str, object]] = {}
    if changes.url is not None:
        url = absolute_source(changes.url)
        section_changes.setdefault("data", {})["url"] = url
        notes.append(f"data.url = {redact_url(url)}")
    if changes.target:
        section_changes.setdefault("data", {})["target"] = changes.target.strip()
        notes.append(f"data.target = {changes.target.strip()}")
    if changes.training:
        section_changes.setdefault("training", {}).update(changes.training)
        notes.extend(f"training.{k} = {v}" for k, v in changes.training.items())
    for dotted, value in changes.settings.items():
        section, key = dotted.split(".", 1)
        if "." in key:  # a key of a sub-table: pipeline.retries.retrieve
            table, sub = key.split(".", 1)
            current = section_changes.get(section, {}).get(table, config[section].get(table))
            if not isinstance(current, dict):
                raise UsageError(f"{section}.{table} is not a table: set {section}.{table} itself")
            section_changes.setdefault(section, {})[table] = {**current, sub: value}
        else:
            section_changes.setdefault(section, {})[key] = value
        notes.append(f"{dotted} = {value}")
    old_prediction = config["project"]["prediction"]
    switching = changes.prediction is not None and changes.prediction != old_prediction
    if changes.prediction is not None and not switching:
        notes.append(f"prediction is already {old_prediction}: nothing to switch")
    if switching:
        assert changes.prediction is not None
        section_changes.setdefault("project", {})["prediction"] = changes.prediction
        section_changes.setdefault("training", {})["metric"] = default_metric(changes.prediction)
    if changes.metric:
        section_changes.setdefault("training", {})["metric"] = changes.metric.lower()
        notes.append(f"training.metric = {changes.metric.lower()}")
    if section_changes:
        project.update_config(section_changes)
    if switching:
        assert changes.prediction is not None
        notes.append(_switch_model_file(project, old_prediction, changes.prediction))
        champion.clear(project, f"prediction type changed to {changes.prediction}")
        notes.append(
            f"prediction = {changes.prediction}; default metric "
            f"{default_metric(changes.prediction)}; champion cleared (old runs kept)"
        )
    if changes.api_key is not None:
        project.set_secret("HAJ_API_KEY", changes.api_key)
        notes.append("HAJ_API_KEY saved to .env")
    if changes.notify_url is not None:
        project.set_secret("HAJ_NOTIFY_URL", changes.notify_url)
        notes.append("HAJ_NOTIFY_URL saved to .env")
    if changes.dependencies:
        added = deps.install(project, changes.dependencies, on_event)
        notes.append(f"requirements.txt: added {', '.join(added) or 'nothing new'}")
    if changes.title is not None and changes.title != project.name:
        new_name = name_for_title(changes.title)
        title = None if new_name == changes.title else changes.title
        if new_name != project.name:
            project = workspace.rename_project(root, project.name, new_name, title=title)
            notes.append(f"renamed to {project.name} ({project.path})")
        if title is not None:
            project.update_config({"project": {"title": title}})
            notes.append(f"title = {title}")
    return project, notes


def _switch_model_file(project: Project, old: str, new: str) -> str:
    """model.py follows the type when the user has not edited it; otherwise it is kept."""
    from engine.fsutil import atomic_write_text
    from engine.templates import is_unedited, render_file

    path = project.code_path("model")
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if not current or is_unedited(old, "model.py", current):
        atomic_write_text(path, render_file(new, "model.py", {"name": project.name}))
        return f"model.py replaced by the {new} template"
    return f"model.py kept (you edited it): make sure its models() returns {new} estimators"


SETTABLE = ("data", "training", "serving", "monitoring", "pipeline")
# keys with a command of their own (they rename, switch templates or hold secrets)
_OWN_OPTION = {
    "project.name": "-t",
    "project.title": "-t",
    "project.prediction": "-p",
    "data.url": "--url",
    "data.target": "--target",
}


def parse_setting(text: str) -> tuple[str, object]:
    """'monitoring.drift_share=0.3' -> ("monitoring.drift_share", 0.3): the value read as TOML
    (numbers, true/false, quoted or bare strings)."""
    import tomllib

    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    section, dot, key = dotted.partition(".")
    if not sep or not dot or not key:
        raise UsageError(f"not a setting: {text!r} (use SECTION.KEY=VALUE)")
    if dotted in _OWN_OPTION:
        raise UsageError(f"{dotted} has its own option: {_OWN_OPTION[dotted]}")
    if section not in SETTABLE:
        raise UsageError(f"unknown section {section!r}: one of {', '.join(SETTABLE)}")
    raw = raw.strip()
    try:
        value: object = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    return dotted, value
