"""`haj deploy NAME --target sagemaker` and `haj undeploy NAME`.

The image already holds the champion and answers SageMaker's contract (`serve`, GET /ping, POST
/invocations on 8080). A deployment pushes it (ECR by default), uploads the model bundle to S3 (the
auditable copy SageMaker also mounts at /opt/ml/model), makes sure an execution role exists,
creates a SageMaker model and endpoint config named after the champion's run, then creates the
stable endpoint or moves it to the new config, and waits for InService. The previous model and
config are deleted once the endpoint has moved.

Every created resource is written to the deployment record as soon as it exists; undeploy removes
what the record lists, and only what haj itself created or added (a bucket, repository or role
that existed before is left, minus the objects, images and inline policy haj put there). A deploy
that fails is recorded as "failed" with its one-line error, so `haj status` says so.
Everything created is tagged with the project's name and id (`haj:project`, `haj:project-id`).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from typing import Any
from urllib.parse import urlencode

from engine import events
from engine.container import WAITING
from engine.deploy import records
from engine.deploy.aws import (
    LINE,
    Aws,
    aws_failures,
    call,
    error_code,
    errors,
    is_missing,
    resolve_region,
)
from engine.deploy.plan import Options, Plan, build_settings, make_plan, resource_tags
from engine.errors import DeployError, HajError, Hint, one_line
from engine.project import Project
from engine.store import now_iso

POLL_ENV = "HAJ_DEPLOY_POLL_SECONDS"
VARIANT = "main"
ROLE_POLICY = "haj-endpoint"  # the inline policy haj puts on the execution role

TRUST_POLICY = {  # SageMaker may assume the execution role
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def plan(project: Project, options: Options) -> Plan:
    """The dry-run plan: reads the project only, never AWS (the account shows as <account>)."""
    from engine.container.context import champion_info
    from engine.container.image import last_build

    _check_target(options)
    champion = champion_info(project)
    return make_plan(
        project,
        options,
        region=resolve_region(options.region),
        champion=champion,
        image_record=last_build(project),
        previous=records.load(project),
    )


def _check_target(options: Options) -> None:
    if options.target != "sagemaker":
        raise DeployError(f"unknown target {options.target!r}: haj deploys to sagemaker")


def deploy(
    project: Project, options: Options, *, on_event: events.Callback = events.ignore
) -> dict[str, Any]:
    """Deploy (or move the endpoint to) the current champion; returns the deployment record."""
    from engine.container.context import champion_info
    from engine.container.image import last_build

    _check_target(options)
    champion = champion_info(project)
    region = resolve_region(options.region)
    previous = records.load(project)
    if previous and previous.get("region") != region:
        raise DeployError(
            f"{project.name!r} is deployed in {previous.get('region')}, not {region}",
            Hint("undeploy", project.name),
        )
    aws = Aws(region)
    account = aws.account_id()
    project.ensure_uid()  # every resource is named after the id: record it before creating any
    image_record = last_build(project)
    the_plan = make_plan(
        project,
        options,
        region=region,
        account=account,
        champion=champion,
        image_record=image_record,
        previous=previous,
    )
    record: dict[str, Any] = {
        "target": "sagemaker",
        "project": project.name,
        "models": [],
        "endpoint_configs": [],
        "pushed_images": [],
        "s3_objects": [],
        **(previous or {}),
        "project_id": the_plan.project_id,
        "region": region,
        "account": account,
        "status": "deploying",
    }
    record.pop("error", None)
    saved = previous is not None

    def save() -> None:
        nonlocal saved
        records.save(project, record)
        saved = True

    try:
        local_image = _ensure_image(project, the_plan, options, image_record, on_event)
        _push(aws, the_plan, local_image, options, record, save, on_event)
        _upload_bundle(aws, project, the_plan, record, save, on_event)
        role_arn = _ensure_role(aws, the_plan, options, record, save, on_event)
        _create_model(aws, the_plan, role_arn, record, save, on_event)
        _create_endpoint_config(aws, the_plan, record, save, on_event)
        _create_or_update_endpoint(aws, the_plan, record, save, on_event)
        status = wait_in_service(aws, the_plan.endpoint_name, options.timeout, on_event)
    except BaseException as exc:
        if saved:  # something exists (or existed before): the record says this deploy failed
            record.update(status="failed", error=failure_text(exc), failed_at=now_iso())
            save()
        raise
    record.update(
        status=status,
        run_id=the_plan.run_id,
        model=the_plan.model,
        image_uri=the_plan.image_uri,
        s3_uri=the_plan.s3_uri,
        instance_type=the_plan.instance_type,
        instance_count=the_plan.instance_count,
        deployed_at=now_iso(),
    )
    record.pop("failed_at", None)
    save()
    _delete_stale(aws, the_plan, record, save, on_event)
    return record


def failure_text(exc: BaseException) -> str:
    """What went wrong, in one line, for the deployment record."""
    if isinstance(exc, HajError):
        text = exc.message.splitlines()[0] if exc.message else type(exc).__name__
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return one_line(text, LINE)


# ---- steps ---------------------------------------------------------------------------------------
def _ensure_image(
    project: Project,
    plan: Plan,
    options: Options,
    image_record: dict[str, Any] | None,
    on_event: events.Callback,
) -> str:
    """The local image of the champion to push: the project's own (by its id label), or built
    now with the deploy's build options, else those of the project's last build."""
    from engine.container import image

    if image.project_image(project, plan.local_image) is not None:
        on_event(events.Log(f"using the image {plan.local_image}"))
        return plan.local_image
    settings = build_settings(options, image_record)
    on_event(events.Log(f"no image of run {plan.run_id} yet: building it"))
    built = image.build(
        project,
        base_image=settings["base_image"],
        wheelhouse=settings["wheelhouse"],
        network=settings["network"],
        on_event=on_event,
    )
    return built.image


def _push(
    aws: Aws,
    plan: Plan,
    local_image: str,
    options: Options,
    record: dict[str, Any],
    save: Any,
    on_event: events.Callback,
) -> None:
    from engine.deploy import registry

    auth = None
    if options.registry:
        record["registry"] = options.registry
    else:
        ecr = aws.client("ecr")
        record["registry"] = None
        record["ecr_repository"] = plan.repository
        try:
            ecr.describe_repositories(repositoryNames=[plan.repository])
        except aws_failures() as exc:
            if error_code(exc) != "RepositoryNotFoundException":
                with errors(f"looking up the ECR repository {plan.repository}"):
                    raise
            call(
                f"creating the ECR repository {plan.repository}",
                ecr.create_repository,
                repositoryName=plan.repository,
                imageScanningConfiguration={"scanOnPush": True},
                tags=resource_tags(plan),
            )
            record["ecr_repository_created"] = True
            save()
            on_event(events.Log(f"created the ECR repository {plan.repository}"))
        auth = registry.ecr_auth(ecr)
    registry.push(local_image, plan.image_uri, auth_config=auth, on_event=on_event)
    if plan.image_uri not in record["pushed_images"]:
        record["pushed_images"].append(plan.image_uri)
    save()


def bundle_bytes(project: Project) -> bytes:
    """model.tar.gz: champion.joblib, champion.json (as the image's, with crowned_at),
    config.toml; fixed mtimes, so the same champion gives the same bytes."""
    from engine.container.context import champion_info, champion_json

    buffer = io.BytesIO()
    files = {
        "models/champion.joblib": project.champion_path.read_bytes(),
        "models/champion.json": champion_json(champion_info(project)).encode(),
        "config.toml": project.config_path.read_bytes(),
    }
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _upload_bundle(
    aws: Aws,
    project: Project,
    plan: Plan,
    record: dict[str, Any],
    save: Any,
    on_event: events.Callback,
) -> None:
    s3 = aws.client("s3")
    record["bucket"] = plan.bucket
    try:
        s3.head_bucket(Bucket=plan.bucket)
    except aws_failures() as exc:
        if error_code(exc) not in ("404", "NoSuchBucket"):
            with errors(f"checking the S3 bucket {plan.bucket}"):
                raise
        kwargs: dict[str, Any] = {"Bucket": plan.bucket}
        if plan.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": plan.region}
        call(f"creating the S3 bucket {plan.bucket}", s3.create_bucket, **kwargs)
        record["bucket_created"] = True
        save()
        on_event(events.Log(f"created the S3 bucket {plan.bucket}"))
    call(
        f"uploading {plan.s3_uri}",
        s3.put_object,
        Bucket=plan.bucket,
        Key=plan.s3_key,
        Body=bundle_bytes(project),
        ContentType="application/gzip",
        Tagging=urlencode({t["Key"]: t["Value"] for t in resource_tags(plan)}),
    )
    if plan.s3_key not in record["s3_objects"]:
        record["s3_objects"].append(plan.s3_key)
    save()
    on_event(events.Log(f"uploaded the model bundle to {plan.s3_uri}"))


def _role_policy(plan: Plan) -> dict[str, Any]:
    """Least privilege for the endpoint: pull its image, read its bundle, write its logs."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                "Resource": f"arn:aws:ecr:{plan.region}:{plan.account}:repository/"
                f"{plan.repository}",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": f"arn:aws:s3:::{plan.bucket}/{plan.s3_key.rsplit('/', 2)[0]}/*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "cloudwatch:PutMetricData",
                ],
                "Resource": "*",
            },
        ],
    }


def _ensure_role(
    aws: Aws,
    plan: Plan,
    options: Options,
    record: dict[str, Any],
    save: Any,
    on_event: events.Callback,
) -> str:
    if options.role_arn:
        record["role_arn"] = options.role_arn
        return options.role_arn
    iam = aws.client("iam")
    record["role_name"] = plan.role_name
    try:
        arn = iam.get_role(RoleName=plan.role_name)["Role"]["Arn"]
    except aws_failures() as exc:
        if not is_missing(exc):
            with errors(f"looking up the IAM role {plan.role_name}"):
                raise
        arn = call(
            f"creating the IAM role {plan.role_name}",
            iam.create_role,
            RoleName=plan.role_name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description=f"haj: SageMaker endpoint of project {plan.project}",
            Tags=resource_tags(plan),
        )["Role"]["Arn"]
        record["role_created"] = True
        record["role_arn"] = arn
        save()
        on_event(events.Log(f"created the IAM role {plan.role_name}"))
    call(
        f"setting the policy of the IAM role {plan.role_name}",
        iam.put_role_policy,
        RoleName=plan.role_name,
        PolicyName=ROLE_POLICY,
        PolicyDocument=json.dumps(_role_policy(plan)),
    )
    record["role_policy_added"] = True  # undeploy removes it, even from a role haj did not create
    record["role_arn"] = arn
    save()
    return str(arn)


def _create_model(
    aws: Aws,
    plan: Plan,
    role_arn: str,
    record: dict[str, Any],
    save: Any,
    on_event: events.Callback,
) -> None:
    sm = aws.client("sagemaker")
    deadline = time.monotonic() + 90
    while True:
        try:
            with errors(f"creating the SageMaker model {plan.model_name}"):
                answer = sm.create_model(
                    ModelName=plan.model_name,
                    ExecutionRoleArn=role_arn,
                    PrimaryContainer={
                        "Image": plan.image_uri,
                        "ModelDataUrl": plan.s3_uri,
                        "Environment": {"HAJ_PROJECT": plan.project, "HAJ_RUN_ID": plan.run_id},
                    },
                    Tags=resource_tags(plan),
                )
            break
        except DeployError as exc:
            # a role created seconds ago may not be assumable yet (IAM is eventually consistent)
            if "role" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(5)
    record["models"].append(plan.model_name)
    record["model_arn"] = answer.get("ModelArn")
    save()
    on_event(events.Log(f"created the SageMaker model {plan.model_name}"))


def _create_endpoint_config(
    aws: Aws, plan: Plan, record: dict[str, Any], save: Any, on_event: events.Callback
) -> None:
    answer = call(
        f"creating the endpoint config {plan.endpoint_config_name}",
        aws.client("sagemaker").create_endpoint_config,
        EndpointConfigName=plan.endpoint_config_name,
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": plan.model_name,
                "InitialInstanceCount": plan.instance_count,
                "InstanceType": plan.instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
        Tags=resource_tags(plan),
    )
    record["endpoint_configs"].append(plan.endpoint_config_name)
    record["endpoint_config_arn"] = answer.get("EndpointConfigArn")
    save()
    on_event(events.Log(f"created the endpoint config {plan.endpoint_config_name}"))


def _create_or_update_endpoint(
    aws: Aws, plan: Plan, record: dict[str, Any], save: Any, on_event: events.Callback
) -> None:
    sm = aws.client("sagemaker")
    exists = True
    try:
        sm.describe_endpoint(EndpointName=plan.endpoint_name)
    except aws_failures() as exc:
        if not is_missing(exc):
            with errors(f"looking up the endpoint {plan.endpoint_name}"):
                raise
        exists = False
    record["endpoint_name"] = plan.endpoint_name
    if exists:
        answer = call(
            f"updating the endpoint {plan.endpoint_name}",
            sm.update_endpoint,
            EndpointName=plan.endpoint_name,
            EndpointConfigName=plan.endpoint_config_name,
        )
        on_event(events.Log(f"moving the endpoint {plan.endpoint_name} to run {plan.run_id}"))
    else:
        answer = call(
            f"creating the endpoint {plan.endpoint_name}",
            sm.create_endpoint,
            EndpointName=plan.endpoint_name,
            EndpointConfigName=plan.endpoint_config_name,
            Tags=resource_tags(plan),
        )
        on_event(events.Log(f"creating the endpoint {plan.endpoint_name}"))
    record["endpoint_arn"] = answer.get("EndpointArn")
    save()


def wait_in_service(
    aws: Aws, endpoint: str, timeout: float, on_event: events.Callback = events.ignore
) -> str:
    """Poll until InService (or Failed): a real endpoint takes minutes; progress each poll."""
    sm = aws.client("sagemaker")
    poll = float(os.environ.get(POLL_ENV, "15"))
    started = time.monotonic()
    last = None
    while True:
        answer = call(
            f"describing the endpoint {endpoint}", sm.describe_endpoint, EndpointName=endpoint
        )
        status = answer["EndpointStatus"]
        waited = time.monotonic() - started
        if status != last:
            on_event(events.Log(f"endpoint {endpoint}: {status} ({waited:.0f}s)"))
            last = status
        if status == "InService":
            return status
        on_event(
            events.Progress(
                int(waited), int(timeout), f"{WAITING} the endpoint {endpoint} ({status})"
            )
        )
        if status in ("Failed", "OutOfService", "RollingBack"):
            reason = one_line(answer.get("FailureReason") or "no reason given", LINE)
            raise DeployError(
                f"the endpoint {endpoint} is {status}: {reason} (see its CloudWatch logs)",
                Hint("undeploy"),
            )
        if waited > timeout:
            raise DeployError(
                f"the endpoint {endpoint} is still {status} after {timeout:.0f}s: check it in "
                "the SageMaker console, run `haj deploy` again to wait, or `haj undeploy`"
            )
        time.sleep(poll)


def _delete_stale(
    aws: Aws, plan: Plan, record: dict[str, Any], save: Any, on_event: events.Callback
) -> None:
    """Once the endpoint runs the new config, the older models, configs and bundles go."""
    sm = aws.client("sagemaker")
    for key, current, delete, kind in (
        (
            "endpoint_configs",
            plan.endpoint_config_name,
            sm.delete_endpoint_config,
            "endpoint config",
        ),
        ("models", plan.model_name, sm.delete_model, "model"),
    ):
        for name in [n for n in record[key] if n != current]:
            arg = "EndpointConfigName" if key == "endpoint_configs" else "ModelName"
            _delete(f"deleting the {kind} {name}", delete, **{arg: name})
            record[key].remove(name)
            save()
            on_event(events.Log(f"deleted the previous {kind} {name}"))
    s3 = aws.client("s3")
    for key in plan.stale_s3_keys:
        uri = f"s3://{plan.stale_s3_bucket}/{key}"
        _delete(f"deleting {uri}", s3.delete_object, Bucket=plan.stale_s3_bucket, Key=key)
        if key in record["s3_objects"]:
            record["s3_objects"].remove(key)
        save()
        on_event(events.Log(f"deleted the previous model bundle {uri}"))
    record["model_name"] = plan.model_name
    record["endpoint_config_name"] = plan.endpoint_config_name
    save()


def _delete(doing: str, function: Any, **kwargs: Any) -> bool:
    """Delete one resource; True if it was there, False if it was already gone."""
    with errors(doing):
        try:
            function(**kwargs)
        except aws_failures() as exc:
            if is_missing(exc):
                return False
            raise
    return True


# ---- undeploy ------------------------------------------------------------------------------------
def undeploy(project: Project, *, on_event: events.Callback = events.ignore) -> list[str]:
    """Remove everything the deployment record lists; returns what was removed."""
    record = records.load(project)
    if not record:
        return []
    aws = Aws(str(record["region"]))
    removed: list[str] = []
    problems: list[str] = []

    def step(label: str, doing: str, function: Any, **kwargs: Any) -> bool:
        try:
            if _delete(doing, function, **kwargs):
                removed.append(label)
                on_event(events.Log(f"deleted {label}"))
            return True
        except DeployError as exc:
            problems.append(str(exc))
            on_event(events.Log(str(exc), level="error"))
            return False

    sm = aws.client("sagemaker")
    if record.get("endpoint_name") and step(
        f"endpoint {record['endpoint_name']}",
        f"deleting the endpoint {record['endpoint_name']}",
        sm.delete_endpoint,
        EndpointName=record["endpoint_name"],
    ):
        record["endpoint_name"] = None
    for name in list(record.get("endpoint_configs", [])):
        if step(
            f"endpoint config {name}",
            f"deleting the endpoint config {name}",
            sm.delete_endpoint_config,
            EndpointConfigName=name,
        ):
            record["endpoint_configs"].remove(name)
    for name in list(record.get("models", [])):
        if step(f"model {name}", f"deleting the model {name}", sm.delete_model, ModelName=name):
            record["models"].remove(name)
    _undeploy_s3(aws, record, step)
    _undeploy_images(aws, record, step, on_event)
    _undeploy_role(aws, record, step)
    if problems:
        record["status"] = "undeploy incomplete"
        records.save(project, record)
        raise DeployError(
            f"some resources could not be removed ({'; '.join(problems)}); fix that and "
            "undeploy again",
            Hint("undeploy", project.name),
        )
    records.delete(project)
    return removed


def _undeploy_s3(aws: Aws, record: dict[str, Any], step: Any) -> None:
    bucket = record.get("bucket")
    if not bucket:
        return
    s3 = aws.client("s3")
    for key in list(record.get("s3_objects", [])):
        if step(
            f"s3://{bucket}/{key}",
            f"deleting s3://{bucket}/{key}",
            s3.delete_object,
            Bucket=bucket,
            Key=key,
        ):
            record["s3_objects"].remove(key)
    if record.get("bucket_created") and not record.get("s3_objects"):
        with errors(f"listing the S3 bucket {bucket}"):
            try:
                left = s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount", 0)
            except aws_failures() as exc:
                if not is_missing(exc):
                    raise
                left = 0
        if left == 0 and step(
            f"bucket {bucket}", f"deleting the S3 bucket {bucket}", s3.delete_bucket, Bucket=bucket
        ):
            record["bucket_created"] = False


def _undeploy_images(aws: Aws, record: dict[str, Any], step: Any, on_event: Any) -> None:
    if record.get("registry"):
        if record.get("pushed_images"):
            on_event(
                events.Log(
                    f"left in {record['registry']} (haj does not delete from other registries): "
                    + ", ".join(record["pushed_images"]),
                    level="warning",
                )
            )
        record["pushed_images"] = []
        return
    repository = record.get("ecr_repository")
    if not repository:
        return
    ecr = aws.client("ecr")
    if record.get("ecr_repository_created"):
        if step(
            f"ECR repository {repository}",
            f"deleting the ECR repository {repository}",
            ecr.delete_repository,
            repositoryName=repository,
            force=True,
        ):
            record["pushed_images"] = []
            record["ecr_repository_created"] = False
        return
    tags = [uri.rpartition(":")[2] for uri in record.get("pushed_images", [])]
    if tags and step(
        f"images {', '.join(tags)} in {repository}",
        f"deleting images from {repository}",
        ecr.batch_delete_image,
        repositoryName=repository,
        imageIds=[{"imageTag": t} for t in tags],
    ):
        record["pushed_images"] = []


def _undeploy_role(aws: Aws, record: dict[str, Any], step: Any) -> None:
    """The role if haj created it (with every policy on it, or IAM refuses); on a role that
    existed before, only the inline policy haj added."""
    name = record.get("role_name")
    if not name:
        return
    iam = aws.client("iam")
    if not record.get("role_created"):
        if record.get("role_policy_added") and step(
            f"role policy {ROLE_POLICY} of {name}",
            f"deleting the role policy {ROLE_POLICY} of {name}",
            iam.delete_role_policy,
            RoleName=name,
            PolicyName=ROLE_POLICY,
        ):
            record["role_policy_added"] = False
        return
    try:
        policies = iam.list_role_policies(RoleName=name).get("PolicyNames", [])
        attached = iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])
    except aws_failures() as exc:
        if is_missing(exc):
            record.update(role_created=False, role_policy_added=False)
            return
        # Not allowed to list them (e.g. no iam:ListRolePolicies): the role's deletion is
        # still tried, and if IAM refuses it, its error is reported as a problem below.
        policies, attached = [], []
    for policy in policies:
        step(
            f"role policy {policy}",
            f"deleting the role policy {policy}",
            iam.delete_role_policy,
            RoleName=name,
            PolicyName=policy,
        )
    for policy in attached:
        step(
            f"attached policy {policy['PolicyName']}",
            "detaching a role policy",
            iam.detach_role_policy,
            RoleName=name,
            PolicyArn=policy["PolicyArn"],
        )
    if step(f"IAM role {name}", f"deleting the IAM role {name}", iam.delete_role, RoleName=name):
        record.update(role_created=False, role_policy_added=False)


def invoke_hint(record: dict[str, Any], example: dict[str, Any] | None = None) -> list[str]:
    """How to call the endpoint (AWS CLI and boto3)."""
    body = json.dumps({"instances": [example or {"feature": 1.0}]})
    endpoint, region = record["endpoint_name"], record["region"]
    return [
        f"aws sagemaker-runtime invoke-endpoint --region {region} --endpoint-name {endpoint} "
        f"--content-type application/json --cli-binary-format raw-in-base64-out "
        f"--body '{body}' /dev/stdout",
        f"python: boto3.client('sagemaker-runtime', region_name='{region}').invoke_endpoint("
        f"EndpointName='{endpoint}', ContentType='application/json', Body=json.dumps(...))",
    ]
