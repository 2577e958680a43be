"""The Config tab: the project's settings as a form, and its dependencies.

Saving builds an `engine.api.Changes` of the fields that changed and hands it to
`ProjectAPI.apply_changes`, the same path as `haj config`. Before that, each field is checked on
its own with the engine's validators, so a bad value is reported beside its field, and nothing is
written until every field is valid. The API key field is a password field that starts empty:
the key itself is never read back onto the screen, only whether one is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from engine.api import PREDICTION_TYPES, Changes, default_metric, metrics_for, validate_config
from engine.errors import HajError
from haj_tui.messages import EngineEvent, ProjectChanged, WorkFailed, WorkFinished
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import ProjectAPI

API_KEY = "HAJ_API_KEY"


@dataclass(frozen=True)
class Field:
    id: str
    label: str
    kind: str = "text"  # text | int | float | password | prediction | metric


FIELDS = (
    Field("name", "Name"),
    Field("prediction", "Prediction", "prediction"),
    Field("url", "Data URL"),
    Field("target", "Target column"),
    Field("api_key", "API key", "password"),
    Field("metric", "Metric", "metric"),
    Field("test_size", "Test size", "float"),
    Field("random_state", "Random state", "int"),
    Field("n_jobs", "Jobs (-1 = all)", "int"),
)
TRAINING_FIELDS = ("test_size", "random_state", "n_jobs")


@dataclass(frozen=True)
class Columns:
    """The current raw version's columns ([]: no data yet)."""

    names: list[str]


@dataclass(frozen=True)
class Installed:
    """The outcome of adding a dependency: the requirements newly listed."""

    added: list[str]


class InstallFailed(WorkFailed):
    """Adding a dependency failed (the app has reported why)."""


class FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ConfigTab(ReportsWorkerErrors, Horizontal):
    """Project settings (left) and dependencies with a live install log (right)."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", id="config.save")]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self._loaded: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="config-left"):
            with VerticalScroll(id="config-form"):
                yield Label("Project", classes="section-title")
                for field in FIELDS:
                    if field.id == "metric":
                        yield Label("Training", classes="section-title")
                    with Horizontal(classes="field-row"):
                        yield Label(field.label, classes="field-label")
                        yield self._make_input(field)
                        if field.id == "target":  # the data's columns, once there is data
                            yield Select([], id="cfg-target-choice", compact=True, allow_blank=True)
                    yield Static("", id=f"{field.id}-error", classes="field-error")
                    if field.id == "target":
                        yield Static("", id="target-hint", classes="hint field-hint")
            # under the scrolling form, so Save and Revert are on screen at any height
            with Horizontal(classes="toolbar", id="config-buttons"):
                yield Button("Save (ctrl+s)", id="config-save", variant="primary", compact=True)
                yield Button("Revert", id="config-revert", compact=True)
        with Vertical(id="config-side"):
            yield Label("Dependencies (requirements.txt)", classes="section-title")
            yield Static("", id="deps-list")
            with Horizontal(id="deps-add-row"):
                yield Input(placeholder="package, e.g. xgboost>=2", id="deps-input", compact=True)
                yield Button("Add", id="deps-add")
            yield Static("", id="deps-input-error", classes="field-error")
            yield LogView(id="deps-log")

    def _make_input(self, field: Field) -> Input | Select[str]:
        widget_id = f"cfg-{field.id}"
        if field.kind == "prediction":
            return Select(
                [(p, p) for p in PREDICTION_TYPES], allow_blank=False, id=widget_id, compact=True
            )
        if field.kind == "metric":
            return Select([("acc", "acc")], allow_blank=False, id=widget_id, compact=True)
        if field.kind == "password":
            return Input(password=True, id=widget_id, compact=True)
        return Input(id=widget_id, compact=True)

    def on_mount(self) -> None:
        self.query_one("#deps-log", LogView).border_title = "install log"
        self.load()

    def refresh_data(self) -> None:
        if not self.unsaved_changes():
            self.load()

    # ---- load ----------------------------------------------------------------------------
    def load(self) -> None:
        """Fill the form from the project (the API key field stays empty: see the docstring)."""
        config = self.project.config()
        self._loaded = {
            "name": self.project.name,
            "prediction": config["project"]["prediction"],
            "url": config["data"]["url"],
            "target": config["data"]["target"],
            "api_key": "",
            "metric": config["training"]["metric"],
            "test_size": str(config["training"]["test_size"]),
            "random_state": str(config["training"]["random_state"]),
            "n_jobs": str(config["training"]["n_jobs"]),
        }
        self._set_metric_options(self._loaded["prediction"], self._loaded["metric"])
        for key, value in self._loaded.items():
            widget = self.query_one(f"#cfg-{key}")
            if isinstance(widget, Select):
                with widget.prevent(Select.Changed):
                    widget.value = value
            else:
                assert isinstance(widget, Input)
                widget.value = value
        masked = self.project.secrets().get(API_KEY, "")
        self.query_one("#cfg-api_key", Input).placeholder = (
            f"{masked} (set; type to replace)" if masked else "not set"
        )
        for field in FIELDS:
            self._show_error(field.id, "")
        self._load_dependencies()
        self._read_columns()

    # ---- the target, chosen among the data's columns -------------------------------------------
    @haj_work(group="config-columns")
    def _read_columns(self) -> Columns:
        """The current raw version's columns (reading them may load the file: in a worker)."""
        try:
            return Columns(self.project.columns())
        except (HajError, OSError):
            return Columns([])

    def _show_columns(self, columns: list[str]) -> None:
        """With data: the target is one of its columns (a Select); without: typed."""
        field = self.query_one("#cfg-target", Input)
        choice: Select[str] = self.query_one("#cfg-target-choice", Select)
        target = field.value
        hint = self.query_one("#target-hint", Static)
        choice.display = bool(columns)
        field.display = not columns
        if not columns:
            hint.update("No data yet: type the target, or press r and pick it among the columns")
            return
        hint.update("")
        options = columns if target in columns or not target else [*columns, target]
        with choice.prevent(Select.Changed):
            choice.set_options([(name, name) for name in options])
            choice.value = target if target else Select.BLANK

    @on(Select.Changed, "#cfg-target-choice")
    def _target_chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK:
            self.query_one("#cfg-target", Input).value = str(event.value)

    def _load_dependencies(self) -> None:
        packages = self.project.requirements()
        self.query_one("#deps-list", Static).update(
            "\n".join(packages) if packages else "(none: the built-in packages only)"
        )

    def _set_metric_options(self, prediction: str, value: str) -> None:
        select: Select[str] = self.query_one("#cfg-metric", Select)
        names = metrics_for(prediction)
        with select.prevent(Select.Changed):
            select.set_options([(n, n) for n in names])
            select.value = value if value in names else default_metric(prediction)

    @on(Select.Changed, "#cfg-prediction")
    def _prediction_changed(self) -> None:
        """Offer the metrics of the chosen type, keeping the current one when it fits (the
        widgets' state, not the event's value: a Changed from mount may arrive after load)."""
        prediction = str(self.query_one("#cfg-prediction", Select).selection)
        metric = str(self.query_one("#cfg-metric", Select).selection)
        self._set_metric_options(prediction, metric)

    # ---- read and check the form -----------------------------------------------------------
    def _values(self) -> dict[str, str]:
        values = {}
        for field in FIELDS:
            widget = self.query_one(f"#cfg-{field.id}")
            if isinstance(widget, Select):
                # no selection yet: the Select is still taking the loaded value (a loaded
                # machine can show the tab first), which is not a change the user made
                selection = widget.selection
                values[field.id] = (
                    str(selection) if selection is not None else self._loaded.get(field.id, "")
                )
            else:
                assert isinstance(widget, Input)
                values[field.id] = widget.value
        return values

    def _changes(self) -> Changes:
        """The fields that differ from what was loaded, as engine Changes; FieldError if a
        value cannot even be read (a number that is not a number)."""
        values = self._values()
        loaded = self._loaded
        changes = Changes()
        if values["name"].strip() != loaded["name"]:
            changes.title = values["name"].strip()
        if values["prediction"] != loaded["prediction"]:
            changes.prediction = values["prediction"]
        if values["url"] != loaded["url"]:
            changes.url = values["url"].strip()
        if values["target"] != loaded["target"]:
            changes.target = values["target"]
        if values["api_key"]:
            changes.api_key = values["api_key"]
        if values["metric"] != loaded["metric"] or changes.prediction:
            changes.metric = values["metric"]
        for key in TRAINING_FIELDS:
            if values[key].strip() != loaded[key]:
                changes.training[key] = _number(key, values[key])
        return changes

    def _check(self, changes: Changes) -> None:
        """Each changed field alone through the engine's validators: FieldError names it."""
        single = {
            "name": (changes.title, Changes(title=changes.title)),
            "prediction": (changes.prediction, Changes(prediction=changes.prediction)),
            "target": (changes.target, Changes(target=changes.target)),
            "api_key": (changes.api_key, Changes(api_key=changes.api_key)),
            "metric": (
                changes.metric,
                Changes(
                    metric=changes.metric,
                    prediction=changes.prediction or self._loaded["prediction"],
                ),
            ),
        }
        for field_id, (value, change) in single.items():
            if value is None:
                continue
            try:
                self.project.validate_changes(change)
            except HajError as exc:
                raise FieldError(field_id, exc.message) from None
        config = self.project.config()
        for key, value in changes.training.items():
            trial = {**config, "training": {**config["training"], key: value}}
            try:
                validate_config(trial, where="config.toml")
            except HajError as exc:
                raise FieldError(key, exc.message.split(": ", 1)[-1]) from None

    def _show_error(self, field_id: str, message: str) -> None:
        error = self.query_one(f"#{field_id}-error", Static)
        error.update(message)
        error.set_class(bool(message), "shown")

    # ---- unsaved changes (asked by the Project screen before leaving) -----------------------
    def unsaved_changes(self) -> str | None:
        if not self._loaded:  # the form is not filled yet (shown and left at once): no change
            return None
        try:
            dirty = not self._changes().empty()
        except FieldError:
            dirty = True
        return "The Config form" if dirty else None

    def discard(self) -> None:
        self.load()

    # ---- save ----------------------------------------------------------------------------
    @on(Button.Pressed, "#config-save")
    def action_save(self) -> bool:
        return self.save()

    def save(self) -> bool:
        """Validate every field, then apply all changes at once. True when saved."""
        for field in FIELDS:
            self._show_error(field.id, "")
        try:
            changes = self._changes()
            if changes.empty():
                self.notify("Nothing to save", title="Config")
                return True
            self._check(changes)
        except FieldError as exc:
            self._show_error(exc.field, exc.message)
            # Focus the field without Textual's immediate scroll (it races the layout of the
            # message just shown); once laid out, bring the message below the field into view.
            widget = self.query_one(f"#cfg-{exc.field}")
            if exc.field == "target" and not widget.display:
                widget = self.query_one("#cfg-target-choice")
            widget.focus(scroll_visible=False)
            message = self.query_one(f"#{exc.field}-error")
            self.call_after_refresh(message.scroll_visible, animate=False)
            self.notify(f"Not saved: {exc.message}", title="Config", severity="error")
            return False
        old_name = self.project.name
        try:
            project, notes = self.project.apply_changes(changes)
        except HajError as exc:
            self.notify(f"Not saved: {exc.message}", title="Config", severity="error")
            return False
        self.project = project
        self.load()
        self.notify("\n".join(notes) or "Saved", title="Config saved")
        self.post_message(
            ProjectChanged(project, renamed_from=old_name if project.name != old_name else None)
        )
        return True

    @on(Button.Pressed, "#config-revert")
    def _revert(self) -> None:
        self.load()
        self.notify("Form reset to the saved config", title="Config")

    # ---- dependencies --------------------------------------------------------------------
    @on(Input.Submitted, "#deps-input")
    @on(Button.Pressed, "#deps-add")
    def action_add_dependency(self) -> None:
        field = self.query_one("#deps-input", Input)
        package = field.value.strip()
        self._show_error("deps-input", "")
        try:
            self.project.validate_changes(Changes(dependencies=[package]))
        except HajError as exc:
            self._show_error("deps-input", exc.message)
            return
        self.query_one("#deps-add", Button).disabled = True
        log = self.query_one("#deps-log", LogView)
        log.write_line(f"$ add {package}", style="bold")
        self._install(package)

    @haj_work(group="install", failed=InstallFailed)
    def _install(self, package: str) -> Installed:
        def on_event(event: Any) -> None:
            self.post_message(EngineEvent(event, task="install"))

        return Installed(self.project.install([package], on_event))

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task == "install":
            self.query_one("#deps-log", LogView).write_event(message.event)

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        match message.result:
            case Columns(names=names):
                message.stop()
                self._show_columns(names)
            case Installed(added=added):
                message.stop()
                self.query_one("#deps-add", Button).disabled = False
                self.query_one("#deps-input", Input).value = ""
                self._load_dependencies()
                self.notify(
                    f"Installed; added {', '.join(added)}"
                    if added
                    else "Installed (already listed)",
                    title="Dependencies",
                )

    @on(InstallFailed)
    def _install_failed(self, message: InstallFailed) -> None:
        message.stop()
        self.query_one("#deps-add", Button).disabled = False
        self.query_one("#deps-log", LogView).write_line(str(message.error), style="bold red")
        self._load_dependencies()


def _number(key: str, text: str) -> int | float:
    text = text.strip()
    try:
        return float(text) if key == "test_size" else int(text)
    except ValueError:
        kind = "a number between 0 and 1" if key == "test_size" else "a whole number"
        raise FieldError(key, f"must be {kind}") from None
