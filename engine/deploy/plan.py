"""A deployment's names and steps, computed from the project alone: no AWS or Docker call.

`haj deploy --dry-run` prints this plan; a real deploy follows the same steps, so what the dry run
shows is what happens. Names are SageMaker-safe (letters, digits, '-'; at most 63 characters); the
model and endpoint config carry the champion's run id and a timestamp, so a new deployment creates
new ones and moves the stable endpoint to them.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.container import image_repository
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
    base_image: str | None = None
    wheelhouse: bool = False
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
    steps: list[Step] = field(default_factory=list)

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.s3_key}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["s3_uri"] = self.s3_uri
        return data


def slug(name: str, limit: int = 32) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:limit].strip("-") or "project"


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
    base = slug(project.name)
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    versioned = f"haj-{base}-{run_id[:8]}-{stamp}"
    repository = f"haj/{base}"
    registry = options.registry or f"{account}.dkr.ecr.{region}.amazonaws.com"
    role_name = f"haj-sagemaker-{base}"
    role_arn = options.role_arn or f"arn:aws:iam::{account}:role/{role_name}"
    bucket = options.bucket or f"haj-{account}-{region}"
    plan = Plan(
        project=project.name,
        target=options.target,
        region=region,
        account=account,
        run_id=run_id,
        model=str(champion.get("model", "")),
        local_image=f"{image_repository(project.name)}:{run_id}",
        image_uri=f"{registry}/{repository}:{run_id}",
        repository=repository,
        bucket=bucket,
        s3_key=f"haj/{base}/{run_id}/model.tar.gz",
        role_name=role_name,
        role_arn=role_arn,
        model_name=versioned,
        endpoint_config_name=versioned,
        endpoint_name=f"haj-{base}",
        instance_type=options.instance_type,
        instance_count=options.instance_count,
    )
    add = plan.steps.append
    if image_record and image_record.get("run_id") == run_id:
        add(Step("use", "docker image", plan.local_image, "built for this champion"))
    else:
        add(Step("build", "docker image", plan.local_image, "no image of this champion yet"))
    if options.registry:
        add(Step("push", "image", plan.image_uri, f"to the registry {options.registry}"))
    else:
        add(Step("create", "ecr repository", repository, "if missing"))
        add(Step("push", "image", plan.image_uri))
    add(Step("create", "s3 bucket", bucket, "if missing"))
    add(Step("upload", "s3 object", plan.s3_uri, "champion.joblib, champion.json, config.toml"))
    if options.role_arn:
        add(Step("use", "iam role", options.role_arn))
    else:
        add(Step("create", "iam role", role_name, "if missing; SageMaker pulls the image with it"))
    add(Step("create", "sagemaker model", plan.model_name, plan.image_uri))
    add(
        Step(
            "create",
            "sagemaker endpoint config",
            plan.endpoint_config_name,
            f"{options.instance_count} x {options.instance_type}",
        )
    )
    same_endpoint = previous and previous.get("endpoint_name") == plan.endpoint_name
    if same_endpoint:
        add(Step("update", "sagemaker endpoint", plan.endpoint_name, "to the new config"))
    else:
        add(Step("create", "sagemaker endpoint", plan.endpoint_name))
    add(Step("wait", "sagemaker endpoint", plan.endpoint_name, "until InService"))
    if same_endpoint and previous:
        for kind, key in (
            ("sagemaker endpoint config", "endpoint_config_name"),
            ("sagemaker model", "model_name"),
        ):
            if previous.get(key):
                add(Step("delete", kind, previous[key], "the previous deployment's"))
    return plan
