"""The Deploy tab: target settings, the dry-run plan, deploy with live progress, the deployment's
state and resources, undeploy after a confirmation.

The plan is computed without any AWS call (engine.deploy.sagemaker.plan), so it is shown as
soon as the tab opens and after every settings change. Deploy and undeploy run in thread workers;
their engine events stream into the log. When a deploy must build the image, it builds with the
Container tab's settings (once that tab was opened), else as the project's last build was made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from engine import events
from engine.container import progress_text
from engine.errors import HajError
from engine.project import Project
from haj_tui.messages import EngineEvent, WorkFailed, WorkFinished
from haj_tui.widgets.log_view import LogView
from haj_tui.widgets.modals import ConfirmModal
from haj_tui.widgets.work import ReportsWorkerErrors

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


class DeployTab(ReportsWorkerErrors, Vertical):
    """Plan (v), deploy (d), undeploy (u)."""

    BINDINGS = [
        Binding("v", "plan", "Dry-run plan"),
        Binding("u", "undeploy", "Undeploy"),
    ]

    def __init__(self, root: Path, project: Project) -> None:
        super().__init__()
        self.root = root
        self.project = project
        self.record: dict[str, Any] | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Button("Deploy (d)", id="deploy-run", compact=True, variant="primary")
            yield Button("Plan (v)", id="deploy-plan", compact=True)
            yield Button("Undeploy (u)", id="deploy-remove", compact=True, variant="error")
            yield Label("", id="deploy-state", classes="tab-state")
        with Horizontal(id="deploy-settings"):
            yield Label("target sagemaker  region", classes="setting-label")
            yield Input(
                os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "",
                placeholder="eu-west-1",
                id="deploy-region",
                compact=True,
            )
            yield Label("registry", classes="setting-label")
            yield Input(placeholder="ECR (default)", id="deploy-registry", compact=True)
            yield Label("instance", classes="setting-label")
            yield Input("ml.t2.medium", id="deploy-instance", compact=True)
        with Horizontal(id="deploy-panels"):
            with VerticalScroll(id="deploy-plan-box") as plan:
                plan.border_title = "Plan (dry run: nothing is called)"
                yield Static("", id="deploy-plan-view")
            with VerticalScroll(id="deploy-record-box") as record:
                record.border_title = "Deployment"
                yield Static("", id="deploy-record-view")
        log = LogView(id="deploy-log")
        log.border_title = "Progress"
        yield log

    def on_mount(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        from engine.deploy import records

        if self.busy or not self.query("#deploy-state"):
            return  # busy, or not composed yet (on_mount calls this again)
        self.record = records.load(self.project)
        self._show()
        self.action_plan()

    # ---- settings and plan -------------------------------------------------------------------
    def _options(self) -> Any:
        from engine.deploy.plan import Options

        region = self.query_one("#deploy-region", Input).value.strip() or None
        if self.record and not region:
            region = self.record.get("region")
        build = self._container_settings()
        return Options(
            region=region,
            registry=self.query_one("#deploy-registry", Input).value.strip() or None,
            instance_type=self.query_one("#deploy-instance", Input).value.strip() or "ml.t2.medium",
            base_image=build.get("base_image"),
            wheelhouse=build.get("wheelhouse"),
            build_network=build.get("network"),
        )

    def _container_settings(self) -> dict[str, Any]:
        """The Container tab's build settings if it was opened; else none given, and the engine
        builds as the project's last build was made."""
        from haj_tui.tabs.container import ContainerTab

        finder = getattr(self.screen, "tab", None)
        container = finder("container") if callable(finder) else None
        return container.build_settings() if isinstance(container, ContainerTab) else {}

    @on(Button.Pressed, "#deploy-plan")
    def action_plan(self) -> None:
        self._plan(self._options())

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy-plan", name="plan")
    def _plan(self, options: Any) -> Any:
        """In a worker: the plan reads no AWS, but resolving the region imports boto3."""
        from engine.deploy import sagemaker

        try:
            return sagemaker.plan(self.project, options)
        except HajError as exc:
            return exc.message

    def _show_plan(self, plan: Any) -> None:
        view = self.query_one("#deploy-plan-view", Static)
        if isinstance(plan, str):
            view.update(Text(plan, style="italic"))
            return
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for step in plan.steps:
            table.add_row(step.action, step.kind, step.name)
        view.update(table)
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
        view = self.query_one("#deploy-record-view", Static)
        if not self.record:
            if not self.busy:
                state.update(Text("○ not deployed", style="dim"))
            view.update(Text("Nothing deployed. Press d to deploy the champion.", style="italic"))
            return
        record = self.record
        if not self.busy:
            status = record.get("status", "?")
            style = {"InService": "bold green", "failed": "bold red"}.get(status, "yellow")
            state.update(
                Text.assemble(
                    (f"● {status} ", style),
                    f"{record.get('endpoint_name')} in {record.get('region')}, "
                    f"run {record.get('run_id')}",
                )
            )
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, label in RESOURCE_KEYS:
            value = record.get(key)
            if isinstance(value, list):
                value = ", ".join(value)
            if value:
                table.add_row(label, str(value))
        table.add_row("deployed", str(record.get("deployed_at", "-"))[:19])
        view.update(table)

    # ---- deploy / undeploy ---------------------------------------------------------------------
    @on(Button.Pressed, "#deploy-run")
    def action_deploy(self) -> None:
        """Deploying costs money: always asked first, even from the screen-wide key."""
        if self.busy:
            return
        options = self._options()
        where = options.region or "the default region"
        message = (
            f"Deploy {self.project.name}'s champion to SageMaker in {where} "
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
            f"Delete the endpoint {self.record.get('endpoint_name')} in "
            f"{self.record.get('region')} and everything haj created for it?"
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

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy", name="deploy")
    def _deploy(self, options: Any) -> dict[str, Any]:
        from engine.deploy import sagemaker

        return sagemaker.deploy(self.project, options, on_event=self._relay)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy", name="undeploy")
    def _undeploy(self) -> list[str]:
        from engine.deploy import sagemaker

        return sagemaker.undeploy(self.project, on_event=self._relay)

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
        if message.task == "plan":
            message.stop()
            self._show_plan(message.result)
            return
        if message.task not in ("deploy", "undeploy"):
            return
        message.stop()
        self.busy = False
        log = self.query_one("#deploy-log", LogView)
        if message.task == "deploy":
            result: Any = message.result
            log.write_line(
                f"Endpoint {result['endpoint_name']} is {result['status']}.", style="bold green"
            )
            self.app.notify(f"Deployed: {result['endpoint_name']} is {result['status']}")
        else:
            log.write_line(f"Removed {len(message.result or [])} resource(s).", style="green")
            self.app.notify("Undeployed")
        self.refresh_data()

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        if message.task not in ("deploy", "undeploy"):
            return
        message.stop()
        self.busy = False
        error = message.error
        text = error.message if isinstance(error, HajError) else str(error)
        self.query_one("#deploy-log", LogView).write_line(text, style="bold red")
        self.refresh_data()
