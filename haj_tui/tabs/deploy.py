"""The Deploy tab: target settings, the dry-run plan, deploy with live progress, the deployment's
state and resources, undeploy after a confirmation.

The plan is computed without any AWS call (the engine API's `deploy_plan`), so it is shown as
soon as the tab opens and after every settings change. The defaults (region, instance type) are
the engine's (`deploy_defaults()`), read in a worker since finding the region may import boto3.
Deploy and undeploy run in thread workers; their engine events stream into the log. When a
deploy must build the image, the engine builds it as `build_settings()` says: as the project's
last build was made, else haj's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, ScrollableContainer, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from engine import events
from engine.api import DeployDefaults, DeploymentRecord, progress_text
from engine.errors import HajError
from haj_tui import hints
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.modals import ConfirmModal
from haj_tui.widgets.work import ReportsWorkerErrors, haj_work

if TYPE_CHECKING:
    from engine.api import Options, Plan, ProjectAPI  # what deploy_options(), deploy_plan() return

RESOURCE_KEYS = (
    ("error", "failed"),
    ("endpoint_name", "endpoint"),
    ("endpoint_configs", "endpoint configs"),
    ("models", "models"),
    ("image_uri", "image"),
    ("s3_uri", "model bundle"),
    ("bucket", "bucket"),
    ("ecr_repository", "ECR repository"),
    ("role_arn", "role"),
)


# ---- worker outcomes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """The dry-run plan, or why there is none (no champion, no region...)."""

    plan: Plan | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Deployed:
    record: DeploymentRecord  # the deployment record (endpoint_name, status, ...)


@dataclass(frozen=True)
class Undeployed:
    removed: list[str]  # what was deleted


class DefaultsFailed(WorkFailed):
    """The defaults could not be read (the app has shown why): plan with what is typed."""


class DeployFailed(WorkFailed):
    """A deploy or an undeploy failed (the app has shown why; the log says it too)."""


class DeployTab(ReportsWorkerErrors, Vertical):
    """Plan (v), deploy (d), undeploy (u)."""

    BINDINGS = [
        Binding("v", "plan", "Dry-run plan"),
        Binding("u", "undeploy", "Undeploy"),
    ]

    def __init__(self, project: ProjectAPI) -> None:
        super().__init__()
        self.project = project
        self.record: DeploymentRecord | None = None
        self.defaults: DeployDefaults | None = None  # None until the worker has read them
        self._defaults_read = False  # read or failed: the plan can follow the settings
        self.planned: Planned | None = None  # the plan shown
        self.busy = False
        self._deploy_when_read = False  # d before the defaults were read: decide once they are

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Deploy (d)", id="deploy-run", compact=True, variant="primary")
            yield Button("Plan (v)", id="deploy-plan", compact=True)
            yield Button(
                "Undeploy (u)", id="deploy-remove", compact=True, variant="error", disabled=True
            )
            yield Label("", id="deploy-state", classes="tab-state")
        with Horizontal(id="deploy-settings"):
            yield Label("target sagemaker  region", classes="setting-label")
            yield Input(placeholder="none set: type one", id="deploy-region", compact=True)
            yield Label("registry", classes="setting-label")
            yield Input(placeholder="empty: ECR", id="deploy-registry", compact=True)
            yield Label("instance", classes="setting-label")
            yield Input(placeholder="empty: the default", id="deploy-instance", compact=True)
        with Horizontal(id="deploy-panels"):
            with ScrollableContainer(id="deploy-plan-box") as plan:  # long names: scroll
                plan.border_title = "Plan (dry run: nothing is called)"
                yield Static("", id="deploy-plan-view")
            with VerticalScroll(id="deploy-record-box") as record:
                record.border_title = "Deployment"
                yield Static("", id="deploy-record-view")
        log = LogView(id="deploy-log")
        log.border_title = "Progress"
        yield log

    def on_mount(self) -> None:
        self._read_defaults()
        self.refresh_data()

    def refresh_data(self) -> None:
        if self.busy or not self.query("#deploy-state"):
            return  # busy, or not composed yet (on_mount calls this again)
        try:
            self.record = self.project.deployment()
        except (HajError, OSError) as exc:  # an unreadable store: say so, keep what is shown
            self.app.report_error(exc)  # type: ignore[attr-defined]
            return
        self._show()
        if self._defaults_read:  # else the plan follows the defaults
            self.action_plan()

    # ---- settings and plan -------------------------------------------------------------------
    @haj_work(group="deploy-defaults", failed=DefaultsFailed)
    def _read_defaults(self) -> DeployDefaults:
        """In a worker: finding the region without AWS_REGION imports boto3."""
        return self.project.deploy_defaults()

    def _show_defaults(self, defaults: DeployDefaults) -> None:
        """Fill the fields with the defaults as values. A placeholder is never a value in
        disguise: it says in words what an empty field means."""
        self.defaults = defaults
        self._defaults_read = True
        region = self.query_one("#deploy-region", Input)
        region.placeholder = (
            "none set: type one" if defaults.region is None else "empty: the default region"
        )
        region.value = region.value or (defaults.region or "")
        instance = self.query_one("#deploy-instance", Input)
        instance.placeholder = "empty: the default"
        instance.value = instance.value or defaults.instance_type
        self.action_plan()
        if self._deploy_when_read:
            self._deploy_when_read = False
            self.action_deploy()

    def _options(self) -> Options:
        region = self.query_one("#deploy-region", Input).value.strip() or None
        if self.record and not region:
            region = self.record.region
        if not region and self.defaults is not None:
            region = self.defaults.region
        return self.project.deploy_options(
            region=region,
            registry=self.query_one("#deploy-registry", Input).value.strip() or None,
            instance_type=self.query_one("#deploy-instance", Input).value.strip() or None,
        )

    @on(Button.Pressed, "#deploy-plan")
    def action_plan(self) -> None:
        self._plan(self._options())

    @haj_work(group="deploy-plan")
    def _plan(self, options: Options) -> Planned:
        try:
            return Planned(self.project.deploy_plan(options))
        except HajError as exc:
            return Planned(problem=hints.render(exc))

    def _show_plan(self, planned: Planned) -> None:
        self.planned = planned
        view = self.query_one("#deploy-plan-view", Static)
        plan = planned.plan
        if plan is None:
            view.update(Text(planned.problem or "", style="italic"))
            return
        # never wrapped: a name cut mid-token reads as two names. The engine's own plan lines
        # (as `--dry-run` prints them), as wide as they are: the box scrolls sideways.
        lines = Text(no_wrap=True, overflow="ignore")
        for n, step in enumerate(plan.steps):
            line = step.line()
            lines.append("\n" if n else "")
            lines.append(line[: len(step.action)], style="bold")
            lines.append(line[len(step.action) :])
        view.update(lines)
        self.query_one(
            "#deploy-plan-box"
        ).border_title = f"Plan: run {plan.run_id} to {plan.region} (dry run: nothing is called)"

    @on(Input.Submitted)
    def _settings_changed(self) -> None:
        self.action_plan()

    # ---- state -------------------------------------------------------------------------------
    def _show(self) -> None:
        state = self.query_one("#deploy-state", Label)
        for button in ("#deploy-run", "#deploy-plan"):
            self.query_one(button, Button).disabled = self.busy
        self.query_one("#deploy-remove", Button).disabled = self.busy or not self.record
        self.refresh_bindings()  # u only while something is deployed
        view = self.query_one("#deploy-record-view", Static)
        if not self.record:
            if not self.busy:
                state.update(Text("○ not deployed", style="dim"))
            view.update(Text("Nothing deployed. Press d to deploy the champion.", style="italic"))
            return
        record = self.record
        if not self.busy:
            status = record.status or "?"
            style = {"InService": "bold green", "failed": "bold red"}.get(status, "yellow")
            state.update(
                Text.assemble(
                    (f"● {status} ", style),
                    f"{record.endpoint_name} in {record.region}, run {record.run_id}",
                )
            )
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, label in RESOURCE_KEYS:
            value = getattr(record, key)
            if isinstance(value, list):
                value = ", ".join(value)
            if value:
                table.add_row(label, str(value))
        table.add_row("deployed", str(record.deployed_at or "-")[:19])
        view.update(table)

    # ---- deploy / undeploy ---------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "undeploy":
            return self.record is not None and not self.busy
        if action in ("deploy", "plan"):
            return not self.busy
        return True

    @on(Button.Pressed, "#deploy-run")
    def action_deploy(self) -> None:
        """Deploying costs money: always asked first, even from the screen-wide key; refused
        before asking when there is no region to deploy to."""
        if self.busy:
            return
        if not self._defaults_read:  # d on a tab not shown yet: once the defaults are read
            self._deploy_when_read = True
            return
        options = self._options()
        if not options.region:
            region = self.query_one("#deploy-region", Input)
            region.focus()
            self.app.notify(
                "No region to deploy to: type one in the region field (e.g. eu-west-1), "
                "or set AWS_REGION before starting haj.",
                title="Deploy",
                severity="warning",
            )
            return
        message = (
            f"Deploy {self.project.name}'s champion to SageMaker in {options.region} "
            f"({options.instance_type})? The endpoint is billed until you undeploy it."
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._begin("deploying…")
                self._deploy(options)

        self.app.push_screen(ConfirmModal("Deploy", message, confirm="Deploy"), answered)

    @on(Button.Pressed, "#deploy-remove")
    def action_undeploy(self) -> None:
        if self.busy or not self.record:
            if not self.record:
                self.app.notify("Nothing deployed.")
            return
        message = (
            f"Delete the endpoint {self.record.endpoint_name} in "
            f"{self.record.region} and everything haj created for it?"
        )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._begin("undeploying…")
                self._undeploy()

        self.app.push_screen(ConfirmModal("Undeploy", message, confirm="Undeploy"), answered)

    def _begin(self, what: str) -> None:
        self.busy = True
        self.query_one("#deploy-log", LogView).clear()
        self.query_one("#deploy-state", Label).update(Text(what, style="yellow"))
        self._show()

    def _relay(self, event: events.Event) -> None:
        self.post_message(EngineEvent(event, task="deploy"))

    @haj_work(group="deploy", failed=DeployFailed)
    def _deploy(self, options: Options) -> Deployed:
        return Deployed(self.project.deploy(options, on_event=self._relay))

    @haj_work(group="deploy", failed=DeployFailed)
    def _undeploy(self) -> Undeployed:
        return Undeployed(self.project.undeploy(on_event=self._relay))

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        if message.task != "deploy":
            return
        message.stop()
        event = message.event
        if isinstance(event, events.Progress):
            self.query_one("#deploy-state", Label).update(
                Text(progress_text(event), style="yellow")
            )
            return
        self.query_one("#deploy-log", LogView).write_event(event)

    @on(WorkFinished)
    def _work_finished(self, message: WorkFinished) -> None:
        log = self.query_one("#deploy-log", LogView)
        match message.result:
            case DeployDefaults() as defaults:
                self._show_defaults(defaults)
            case Planned() as planned:
                self._show_plan(planned)
            case Deployed(record=record):
                self.busy = False
                log.write_line(
                    f"Endpoint {record.endpoint_name} is {record.status}.", style="bold green"
                )
                self.app.notify(f"Deployed: {record.endpoint_name} is {record.status}")
                self.refresh_data()
            case Undeployed(removed=removed):
                self.busy = False
                log.write_line(f"Removed {len(removed)} resource(s).", style="green")
                self.app.notify("Undeployed")
                self.refresh_data()
            case _:
                return
        message.stop()

    @on(DefaultsFailed)
    def _defaults_failed(self, message: DefaultsFailed) -> None:
        message.stop()
        self._defaults_read = True
        self.action_plan()
        if self._deploy_when_read:
            self._deploy_when_read = False
            self.action_deploy()

    @on(DeployFailed)
    def _deploy_failed(self, message: DeployFailed) -> None:
        message.stop()
        self.busy = False
        error = message.error
        text = hints.render(error) if isinstance(error, HajError) else str(error)
        self.query_one("#deploy-log", LogView).write_line(text, style="bold red")
        self.refresh_data()
