"""`haj deploy NAME --target sagemaker` and `haj undeploy NAME`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from engine.cli.command import ProjectCommand

if TYPE_CHECKING:
    from engine.api import DeploymentRecord


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "deploy",
        parents=[common],
        help="deploy the champion's image to AWS SageMaker",
        description="Push the image (to ECR, creating the repository if needed, or to "
        "--registry), upload the model bundle to S3, create or update the SageMaker model, "
        "endpoint config and endpoint, and wait for InService. Deploying again moves the "
        "endpoint to the new champion. Credentials come from the standard AWS chain; haj never "
        "writes them. HAJ_AWS_ENDPOINT_URL points every AWS client at another endpoint "
        "(e.g. a local moto server).",
    )
    p.add_argument("name")
    p.add_argument("--target", choices=("sagemaker",), default="sagemaker")
    p.add_argument("--region", help="AWS region (default: AWS_REGION / the profile's region)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; call nothing")
    p.add_argument("--registry", metavar="HOST[:PORT]", help="push here instead of ECR")
    p.add_argument("--bucket", help="S3 bucket for the model bundle (default haj-ACCOUNT-REGION)")
    p.add_argument("--role", metavar="ARN", help="SageMaker execution role (default: create one)")
    p.add_argument("--instance-type", default="ml.t2.medium")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="base image if an image must be built (default: as the last `haj build`, else as "
        "`haj build` defaults)",
    )
    p.add_argument(
        "--wheelhouse",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="if an image must be built, install wheels downloaded on the host (see `haj "
        "build`; default: as the last build)",
    )
    p.add_argument(
        "--network",
        choices=("bridge", "host"),
        default=None,
        help="network for the RUN steps if an image must be built (default: as the last build)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for InService (default 1800)"
    )
    p.add_argument("--json", action="store_true", help="print the plan or record as JSON")
    p.set_defaults(func=CmdDeploy)

    p = subparsers.add_parser(
        "undeploy",
        parents=[common],
        help="remove everything `haj deploy` created",
        description="Delete the endpoint, endpoint configs, models, uploaded bundle, and the "
        "bucket, ECR repository and role if haj created them, so nothing is left running.",
    )
    p.add_argument("name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=CmdUndeploy)


class CmdDeploy(ProjectCommand):
    """`--dry-run`: the plan (nothing is called); else the deployment record."""

    def options(self) -> Any:
        from engine.errors import UsageError

        args = self.args
        if args.instance_count < 1:
            raise UsageError("--instance-count must be at least 1")
        # what was said about a build, should an image be needed; the engine fills in the rest
        # by the same rule as `haj build` and the app (engine.container.settings)
        return self.project.deploy_options(
            target=args.target,
            region=args.region,
            registry=args.registry,
            bucket=args.bucket,
            role_arn=args.role,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            base_image=args.base_image,
            wheelhouse=args.wheelhouse,
            build_network=args.network,
            timeout=args.timeout,
        )

    def result(self) -> Any:
        from engine.cli.container_cmds import ProgressPrinter

        options = self.options()
        if self.args.dry_run:
            return self.project.deploy_plan(options)
        if self.json:
            return self.project.deploy(options)
        with ProgressPrinter(quiet=True) as printer:  # build steps, push, the wait for InService
            return self.project.deploy(options, on_event=printer)

    def show(self, result: Any) -> None:
        if self.args.dry_run:
            self._show_plan(result)
            return
        name, console = self.project.name, self.console
        console.print(
            f"Deployed {name}'s champion {result.model} (run {result.run_id}): "
            f"endpoint {result.endpoint_name} in {result.region} is {result.status}.",
            markup=False,
        )
        console.print("Invoke it:", markup=False)
        for line in self.project.invoke_example(result):
            console.print(f"  {line}", markup=False, soft_wrap=True)
        console.print(f"Remove it with `haj undeploy {name}`.", markup=False)

    def _show_plan(self, plan: Any) -> None:
        console = self.console
        console.print(
            f"Plan: deploy {self.project.name}'s champion {plan.model} (run {plan.run_id}) to "
            f"SageMaker in {plan.region} (dry run: nothing was called)",
            markup=False,
        )
        for number, step in enumerate(plan.steps, 1):
            console.print(f"  {number:>2}. {step.line()}", markup=False)
        console.print(f"Endpoint: {plan.endpoint_name}", markup=False)


class CmdUndeploy(ProjectCommand):
    def run(self) -> int:
        from engine.cli import output
        from engine.errors import UsageError

        name, console = self.project.name, self.console
        record: DeploymentRecord | None = self.project.deployment()
        if not record:
            console.print(f"{name} has no deployment: nothing to remove.", markup=False)
            return 0
        if not self.args.yes:
            if not sys.stdin.isatty():
                raise UsageError("refusing to undeploy without confirmation: add --yes")
            answer = input(
                f"Delete the endpoint {record.endpoint_name} in {record.region} "
                "and everything haj created for it? [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                console.print("Nothing removed.")
                return 1
        removed = self.project.undeploy(on_event=output.event_printer(verbose=False))
        console.print(f"Removed {len(removed)} resource(s) of {name}'s deployment.", markup=False)
        return 0
