"""`haj deploy NAME --target sagemaker` and `haj undeploy NAME`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli import home_of


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
        help="base image if an image must be built (default: as the last `haj build`)",
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
        help="network for the RUN steps if an image must be built (default: as the last build)",
    )
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for InService (default 1800)"
    )
    p.add_argument("--json", action="store_true", help="print the plan or record as JSON")
    p.set_defaults(func=cmd_deploy)

    p = subparsers.add_parser(
        "undeploy",
        parents=[common],
        help="remove everything `haj deploy` created",
        description="Delete the endpoint, endpoint configs, models, uploaded bundle, and the "
        "bucket, ECR repository and role if haj created them, so nothing is left running.",
    )
    p.add_argument("name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_undeploy)


def _options(args: argparse.Namespace) -> Any:
    from engine.deploy.plan import Options
    from engine.errors import UsageError

    if args.instance_count < 1:
        raise UsageError("--instance-count must be at least 1")
    return Options(
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


def cmd_deploy(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output
    from engine.cli.container_cmds import ProgressPrinter
    from engine.deploy import sagemaker

    project = workspace.get_project(home_of(args), args.name)
    options = _options(args)
    console = output.console()
    if args.dry_run:
        plan = sagemaker.plan(project, options)
        if args.json:
            output.print_json(plan.to_dict())
            return 0
        console.print(
            f"Plan: deploy {project.name}'s champion {plan.model} (run {plan.run_id}) to "
            f"SageMaker in {plan.region} (dry run: nothing was called)",
            markup=False,
        )
        for number, step in enumerate(plan.steps, 1):
            console.print(f"  {number:>2}. {step.line()}", markup=False)
        console.print(f"Endpoint: {plan.endpoint_name}", markup=False)
        return 0

    with ProgressPrinter(quiet=True) as printer:  # build steps, push, the wait for InService
        record = sagemaker.deploy(project, options, on_event=printer)
    if args.json:
        output.print_json(record)
        return 0
    console.print(
        f"Deployed {project.name}'s champion {record['model']} (run {record['run_id']}): "
        f"endpoint {record['endpoint_name']} in {record['region']} is {record['status']}.",
        markup=False,
    )
    console.print("Invoke it:", markup=False)
    for line in sagemaker.invoke_hint(record, _example(project)):
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(f"Remove it with `haj undeploy {project.name}`.", markup=False)
    return 0


def _example(project: Any) -> dict[str, Any] | None:
    """The first processed row's features, as an example request body (None if unavailable)."""
    import csv

    try:
        config = project.read_config()
        files = sorted(project.processed_dir.glob("*.csv"))
        if not files:
            return None
        with open(files[-1], newline="", encoding="utf-8") as handle:
            row = next(csv.DictReader(handle))
        row.pop(config["data"]["target"], None)
        return {k: _number(v) for k, v in row.items()}
    except Exception:
        return None


def _number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def cmd_undeploy(args: argparse.Namespace) -> int:
    from engine import workspace
    from engine.cli import output
    from engine.deploy import records, sagemaker
    from engine.errors import UsageError

    project = workspace.get_project(home_of(args), args.name)
    record = records.load(project)
    console = output.console()
    if not record:
        console.print(f"{project.name} has no deployment: nothing to remove.", markup=False)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("refusing to undeploy without confirmation: add --yes")
        answer = input(
            f"Delete the endpoint {record.get('endpoint_name')} in {record.get('region')} and "
            "everything haj created for it? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            console.print("Nothing removed.")
            return 1
    removed = sagemaker.undeploy(project, on_event=output.event_printer(verbose=False))
    console.print(
        f"Removed {len(removed)} resource(s) of {project.name}'s deployment.", markup=False
    )
    return 0
