"""A deployment's names and steps, computed from the project alone: no AWS or Docker call.

`haj deploy --dry-run` prints this plan; a real deploy follows the same steps, so what the dry run
shows is what happens.

Names: every resource is named after the project's name and id, `<slug>-<id8>` (the slug: the name
in lowercase letters, digits and '-', at most 24 characters; id8: the first 8 digits of the
project's id), so projects of the same name in different workspaces never share one: the endpoint
`haj-<slug>-<id8>`, the role `haj-sagemaker-<slug>-<id8>`, the ECR repository `haj/<slug>-<id8>`
and the S3 prefix `haj/<slug>-<id8>/`. They are SageMaker-safe (letters, digits, '-'; within the
63-character limit of endpoints, models and configs, and IAM's 64 for roles). The model and
endpoint config add the champion's run id and a timestamp, so a new deployment creates new ones
and moves the stable endpoint to them. A project that is already deployed keeps the names its
deployment record lists (a rename does not strand its endpoint).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.project import Project

DEFAULT_INSTANCE = "ml.t2.medium"
ACCOUNT_PLACEHOLDER = "<account>"


@dataclass
class Options:
    target: str = "sagemaker"
    region: str | None = None
    registry: str | None = None  # push here instead of ECR
    bucket: str | None = None
    role_arn: str | None = None
    instance_type: str = DEFAULT_INSTANCE
    instance_count: int = 1
    # for the image build a deploy may need; None: as the project's last build
    base_image: str | None = None
    wheelhouse: bool | None = None
    build_network: str | None = None
    timeout: float = 1800


@dataclass
class Step:
    action: str  # create | update | use | upload | push | build | wait | delete
    kind: str
    name: str
    detail: str = ""

    def line(self) -> str:
        detail = f"  ({self.detail})" if self.detail else ""
        return f"{self.action:<7} {self.kind:<24} {self.name}{detail}"


@dataclass
class Plan:
    project: str
    project_id: str
    target: str
    region: str
    account: str
    run_id: str
    model: str
    local_image: str
    image_uri: str
    repository: str
    bucket: str
    s3_key: str
    role_name: str
    role_arn: str
    model_name: str
    endpoint_config_name: str
    endpoint_name: str
    instance_type: str
    instance_count: int
    build: dict[str, Any] = field(default_factory=dict)  # the settings of a build, if needed
    stale_s3_bucket: str = ""  # the previous deployment's bundles, deleted once it has moved
    stale_s3_keys: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.s3_key}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["s3_uri"] = self.s3_uri
        return data


def slug(name: str, limit: int = 24) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:limit].strip("-") or "project"


def resource_base(project: Project) -> str:
    """`<slug>-<id8>`: what every AWS name of the project is built from."""
    return f"{slug(project.name)}-{project.uid[:8]}"


def resource_tags(plan: Plan) -> list[dict[str, str]]:
    """The tags on everything a deployment creates."""
    return [
        {"Key": "haj:project", "Value": plan.project},
        {"Key": "haj:project-id", "Value": plan.project_id},
    ]


def build_settings(options: Options, image_record: dict[str, Any] | None) -> dict[str, Any]:
    """How a deploy builds the image when it must: as the command line says, else as the
    project's last build was made (its record), else haj build's defaults."""
    from engine.container.settings import build_defaults

    return build_defaults(
        image_record,
        base_image=options.base_image,
        wheelhouse=options.wheelhouse,
        network=options.build_network,
    )


def make_plan(
    project: Project,
    options: Options,
    *,
    region: str,
    account: str = ACCOUNT_PLACEHOLDER,
    champion: dict[str, Any],
    image_record: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    stamp: str | None = None,
) -> Plan:
    """The plan for deploying `champion`; `previous` is the current deployment record, if any."""
    run_id = str(champion["run_id"])
    built = image_record if image_record and image_record.get("run_id") == run_id else None
    plan = _named_plan(project, options, region, account, champion, built, previous, stamp)
    _add_image_steps(plan, options, built, image_record)
    _add_sagemaker_steps(plan, options, previous)
    _add_cleanup_steps(plan, previous)
    return plan


def _named_plan(
    project: Project,
    options: Options,
    region: str,
    account: str,
    champion: dict[str, Any],
    built: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    stamp: str | None,
) -> Plan:
    """The plan's names, without steps. A deployed project keeps the names its record lists
    (so a rename does not strand its endpoint); the model and endpoint config are new for each
    deployment (run id + timestamp), so the stable endpoint can move to them."""
    from engine.container.image import default_tag

    run_id = str(champion["run_id"])
    base = resource_base(project)
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    versioned = f"haj-{base}-{run_id[:8]}-{stamp}"
    kept = previous or {}
    repository = kept.get("ecr_repository") or f"haj/{base}"
    registry = options.registry or f"{account}.dkr.ecr.{region}.amazonaws.com"
    role_name = kept.get("role_name") or f"haj-sagemaker-{base}"
    return Plan(
        project=project.name,
        project_id=project.uid,
        target=options.target,
        region=region,
        account=account,
        run_id=run_id,
        model=str(champion.get("model", "")),
        local_image=built["image"] if built else default_tag(project, run_id),
        image_uri=f"{registry}/{repository}:{run_id}",
        repository=repository,
        bucket=options.bucket or f"haj-{account}-{region}",
        s3_key=f"haj/{base}/{run_id}/model.tar.gz",
        role_name=role_name,
        role_arn=options.role_arn or f"arn:aws:iam::{account}:role/{role_name}",
        model_name=versioned,
        endpoint_config_name=versioned,
        endpoint_name=kept.get("endpoint_name") or f"haj-{base}",
        instance_type=options.instance_type,
        instance_count=options.instance_count,
    )


def _add_image_steps(
    plan: Plan, options: Options, built: dict[str, Any] | None, image_record: dict[str, Any] | None
) -> None:
    """Use the image built for this champion, or build one (with the settings a dry run shows);
    then push it to ECR (creating the repository) or to the registry given."""
    add = plan.steps.append
    if built:
        add(Step("use", "docker image", plan.local_image, "built for this champion"))
    else:
        plan.build = build_settings(options, image_record)
        how = f"from {plan.build['base_image']}" + (
            ", wheelhouse" if plan.build["wheelhouse"] else ""
        )
        if plan.build["network"]:
            how += f", network {plan.build['network']}"
        add(Step("build", "docker image", plan.local_image, f"none for this champion yet; {how}"))
    if options.registry:
        add(Step("push", "image", plan.image_uri, f"to the registry {options.registry}"))
    else:
        add(Step("create", "ecr repository", plan.repository, "if missing"))
        add(Step("push", "image", plan.image_uri))


def _add_sagemaker_steps(plan: Plan, options: Options, previous: dict[str, Any] | None) -> None:
    """The bundle in S3, the execution role, then model, endpoint config and endpoint: created,
    or (same endpoint name as the last deployment) updated in place, and waited for."""
    add = plan.steps.append
    add(Step("create", "s3 bucket", plan.bucket, "if missing"))
    add(Step("upload", "s3 object", plan.s3_uri, "champion.joblib, champion.json, config.toml"))
    if options.role_arn:
        add(Step("use", "iam role", options.role_arn))
    else:
        add(
            Step(
                "create",
                "iam role",
                plan.role_name,
                "if missing; SageMaker pulls the image with it",
            )
        )
    add(Step("create", "sagemaker model", plan.model_name, plan.image_uri))
    add(
        Step(
            "create",
            "sagemaker endpoint config",
            plan.endpoint_config_name,
            f"{options.instance_count} x {options.instance_type}",
        )
    )
    if previous and previous.get("endpoint_name") == plan.endpoint_name:
        add(Step("update", "sagemaker endpoint", plan.endpoint_name, "to the new config"))
    else:
        add(Step("create", "sagemaker endpoint", plan.endpoint_name))
    add(Step("wait", "sagemaker endpoint", plan.endpoint_name, "until InService"))


def _add_cleanup_steps(plan: Plan, previous: dict[str, Any] | None) -> None:
    """What the previous deployment leaves behind once the endpoint has moved: its model and
    endpoint config (same endpoint only), and its S3 bundles (kept in the plan for the deploy)."""
    add = plan.steps.append
    if previous and previous.get("endpoint_name") == plan.endpoint_name:
        for kind, key in (
            ("sagemaker endpoint config", "endpoint_config_name"),
            ("sagemaker model", "model_name"),
        ):
            if previous.get(key):
                add(Step("delete", kind, previous[key], "the previous deployment's"))
    if previous and previous.get("bucket"):
        plan.stale_s3_bucket = str(previous["bucket"])
        plan.stale_s3_keys = [k for k in previous.get("s3_objects", []) if k != plan.s3_key]
        for key in plan.stale_s3_keys:
            add(
                Step(
                    "delete",
                    "s3 object",
                    f"s3://{previous['bucket']}/{key}",
                    "the previous deployment's bundle",
                )
            )
