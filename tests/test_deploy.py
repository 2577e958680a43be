"""`haj deploy` / `haj undeploy` against real stand-ins: moto's server on 127.0.0.1 (S3, ECR, IAM,
STS, SageMaker) through HAJ_AWS_ENDPOINT_URL, and the Debian `docker-registry` on 127.0.0.1 for the
image push. Fake credentials only: no test reads real ones or reaches AWS.

moto answers CreateEndpoint with InService at once and has no UpdateEndpoint; the server started
here adds both behaviours of real SageMaker (one poll of Creating/Updating, then InService, and
UpdateEndpoint moving the endpoint to a new config) so waiting and redeploying are exercised.
The real AWS path (a SageMaker instance pulling from ECR) is not exercised by these tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.deploy import sagemaker
from tests.support import FAST_CLASSIFIERS, ROOT, build_trained, call_haj, run_haj
from tests.support.aws import FAKE_AWS, REGION, boto, crown_another
from tests.support.docker import BASE_IMAGE, Built, docker_or_skip, project_id
from tests.support.procs import free_port


# ---- no AWS at all -------------------------------------------------------------------------------
def test_dry_run_prints_the_plan_without_calling_aws(
    trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAJ_BASE_IMAGE", raising=False)  # haj's own defaults, not a local base
    # an endpoint nobody listens on and no credentials: any AWS call would fail
    env = {
        **FAKE_AWS,
        "HAJ_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "DOCKER_HOST": "unix:///nonexistent",
    }
    result = call_haj(
        trained_home, "deploy", "cancer", "--dry-run", "--region", "eu-west-1", env=env
    )
    assert result.code == 0, result.text
    out = result.out
    id8 = project_id(trained_home / "cancer")[:8]
    assert "dry run: nothing was called" in out
    for needle in (
        f"ecr repository           haj/cancer-{id8}",
        f"s3://haj-<account>-eu-west-1/haj/cancer-{id8}/",
        f"iam role                 haj-sagemaker-cancer-{id8}",
        f"sagemaker model          haj-cancer-{id8}-",
        "sagemaker endpoint config",
        f"create  sagemaker endpoint       haj-cancer-{id8}\n",
        "until InService",
        "none for this champion yet; from python:3.11-slim",  # no build yet: haj's defaults
    ):
        assert needle in out, needle
    as_json = json.loads(
        call_haj(
            trained_home,
            "deploy",
            "cancer",
            "--dry-run",
            "--json",
            "--registry",
            "127.0.0.1:5000",
            env=env,
        ).out
    )
    assert as_json["image_uri"].startswith(f"127.0.0.1:5000/haj/cancer-{id8}:")
    assert as_json["region"] == REGION
    assert not any(s["kind"] == "ecr repository" for s in as_json["steps"])


def test_plan_names_are_sagemaker_safe_and_a_redeploy_cleans_up(haj: Any, home: Path) -> None:
    import re

    from engine.deploy.plan import Options, make_plan
    from engine.workspace import get_project

    name = "My_Very_Long_Project_Name_With_Underscores_And_More-0123456789ab"  # 64: the most
    assert haj("init", name, "-p", "classification").code == 0
    project = get_project(home, name)
    plan = make_plan(
        project,
        Options(),
        region="eu-central-1",
        account="123456789012",
        champion={"run_id": "0123456789ab", "model": "knn"},
        image_record=None,
        previous=None,
    )
    for sagemaker_name in (plan.model_name, plan.endpoint_config_name, plan.endpoint_name):
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", sagemaker_name), sagemaker_name
    assert len(plan.role_name) <= 64 and plan.role_name.startswith("haj-sagemaker-my-very-long")
    id8 = project.uid[:8]
    assert plan.endpoint_name.endswith(f"-{id8}") and plan.repository.endswith(f"-{id8}")
    assert plan.s3_key.startswith(f"haj/my-very-long-project-nam-{id8}/")  # 24 + id8
    assert plan.steps[0].action == "build"
    assert [s.action for s in plan.steps if "endpoint" in s.kind][:2] == ["create", "create"]

    previous = {
        "endpoint_name": plan.endpoint_name,
        "model_name": plan.model_name,
        "endpoint_config_name": plan.endpoint_config_name,
        "bucket": plan.bucket,
        "s3_objects": [plan.s3_key],
    }
    again = make_plan(
        project,
        Options(),
        region="eu-central-1",
        account="123456789012",
        champion={"run_id": "ba9876543210", "model": "svc"},
        image_record=None,
        previous=previous,
    )
    assert [s.action for s in again.steps if "endpoint" in s.kind][:2] == ["create", "update"]
    deleted = {(s.kind, s.name) for s in again.steps if s.action == "delete"}
    assert deleted == {
        ("sagemaker model", plan.model_name),
        ("sagemaker endpoint config", plan.endpoint_config_name),
        ("s3 object", plan.s3_uri),  # the previous bundle goes with them
    }


def test_missing_credentials_and_region_are_explained(trained_home: Path, moto_url: str) -> None:
    env = {
        **FAKE_AWS,
        "HAJ_AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
    }
    # boto3 treats empty variables as unset only for some keys: drop them instead
    full = {k: v for k, v in {**os.environ, **env}.items() if v != ""}
    result = _run_without(trained_home, full, "deploy", "cancer", "--registry", "127.0.0.1:1")
    assert result.returncode == 12, result.stderr
    assert "no AWS credentials found" in result.stderr and "never stores" in result.stderr
    assert "Traceback" not in result.stderr
    no_region = {k: v for k, v in full.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = _run_without(trained_home, no_region, "deploy", "cancer", "--dry-run")
    assert result.returncode == 12 and "no AWS region: pass --region" in result.stderr


def _run_without(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        if env.get(key, "") == "":
            env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**env, "HAJ_HOME": str(home), "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
    )


def test_undeploy_without_deployment_is_a_no_op(trained_home: Path) -> None:
    result = call_haj(trained_home, "undeploy", "cancer", "--yes")
    assert result.code == 0 and "nothing to remove" in result.out


# ---- moto + docker-registry ----------------------------------------------------------------------
@pytest.mark.docker
def test_deploy_redeploy_and_undeploy(
    deployable: Built, aws_env: dict[str, str], registry: str, moto_url: str
) -> None:
    home = deployable.home
    id8 = project_id(home / "cancer")[:8]
    endpoint_name = f"haj-cancer-{id8}"
    common = ["--registry", registry, "--base-image", BASE_IMAGE, "--wheelhouse"]
    result = run_haj(home, "deploy", "cancer", *common, env=aws_env, timeout=600)
    assert result.code == 0, result.text
    assert f"endpoint {endpoint_name}: Creating" in result.out
    assert f"endpoint {endpoint_name}: InService" in result.out
    # progress, as plain lines when not on a terminal: the push per layer, the wait with its time
    assert re.search(rf"  pushing {registry}/haj/cancer-{id8}:\S+ \(\d+/\d+ layers\): ", result.out)
    assert f"  waiting for the endpoint {endpoint_name} (Creating): 0s elapsed" in result.out
    assert "aws sagemaker-runtime invoke-endpoint" in result.out
    assert "testing" not in result.text  # the (fake) credentials never appear

    from engine.deploy import records
    from engine.project import Project

    project = Project("cancer", home / "cancer")
    first = records.load(project)
    assert first and first["status"] == "InService" and first["region"] == REGION
    assert first["image_uri"] == f"{registry}/haj/cancer-{id8}:{first['run_id']}"
    # the image is in the registry
    tags = httpx.get(f"http://{registry}/v2/haj/cancer-{id8}/tags/list", timeout=5).json()["tags"]
    assert first["run_id"] in tags
    # and everything else in (fake) AWS, tagged with the project's id
    sm = boto("sagemaker", moto_url)
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == first["endpoint_config_name"]
    tags_of = sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    assert {"Key": "haj:project-id", "Value": project.uid} in tags_of
    model = sm.describe_model(ModelName=first["model_name"])
    assert model["PrimaryContainer"]["Image"] == first["image_uri"]
    assert model["ExecutionRoleArn"] == first["role_arn"]
    s3 = boto("s3", moto_url)
    assert first["s3_objects"] == [f"haj/cancer-{id8}/{first['run_id']}/model.tar.gz"]
    bundle = s3.get_object(Bucket=first["bucket"], Key=first["s3_objects"][0])
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(bundle["Body"].read())) as tar:
        assert sorted(tar.getnames()) == [
            "config.toml",
            "models/champion.joblib",
            "models/champion.json",
        ]
        member = tar.extractfile("models/champion.json")
        assert member is not None
        shipped = json.loads(member.read())
    assert shipped["run_id"] == first["run_id"] and shipped["crowned_at"]
    assert boto("iam", moto_url).get_role(RoleName=f"haj-sagemaker-cancer-{id8}")
    status = run_haj(home, "status", "cancer")
    assert "deployment" in status.out and endpoint_name in status.out
    assert "InService" in status.out

    # a new champion: deploying again builds its image, as the last build was made (the local
    # base image and the wheelhouse: haj's default python:3.11-slim cannot be pulled here),
    # moves the endpoint to it and removes the previous model, config and bundle
    crown_another(home)
    plan = run_haj(home, "deploy", "cancer", "--registry", registry, "--dry-run", env=aws_env)
    assert f"none for this champion yet; from {BASE_IMAGE}, wheelhouse" in plan.out
    assert "delete  s3 object" in plan.out and first["s3_objects"][0] in plan.out
    again = run_haj(home, "deploy", "cancer", "--registry", registry, env=aws_env, timeout=600)
    assert again.code == 0, again.text
    assert "building haj/cancer:" in again.out and f"from {BASE_IMAGE}" in again.out
    assert f"moving the endpoint {endpoint_name}" in again.out
    second = records.load(project)
    assert second and second["run_id"] != first["run_id"]
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    assert endpoint["EndpointConfigName"] == second["endpoint_config_name"]
    names = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert names == [second["model_name"]]  # the previous model and config were deleted
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [second["endpoint_config_name"]]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=second["bucket"]).get("Contents", [])]
    assert keys == second["s3_objects"] == [f"haj/cancer-{id8}/{second['run_id']}/model.tar.gz"]

    gone = run_haj(home, "undeploy", "cancer", "--yes", env=aws_env)
    assert gone.code == 0, gone.text
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    buckets = s3.list_buckets()["Buckets"]
    assert first["bucket"] not in [b["Name"] for b in buckets]
    assert f"haj-sagemaker-cancer-{id8}" not in [
        r["RoleName"] for r in boto("iam", moto_url).list_roles()["Roles"]
    ]
    assert records.load(project) is None
    assert "deployment" not in run_haj(home, "status", "cancer").out


@pytest.mark.docker
def test_deploy_through_ecr_creates_and_removes_the_repository(
    deployable: Built, aws_env: dict[str, str], moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ECR path: repository created, login token fetched and handed to the push (moto's ECR
    has no registry to receive layers, so the push itself is the one thing recorded here; the
    real push is exercised against docker-registry above)."""
    from engine.deploy import plan, registry, sagemaker
    from engine.project import Project

    pushed: list[tuple[str, str, dict[str, str] | None]] = []
    monkeypatch.setattr(
        registry,
        "push",
        lambda local, uri, auth_config=None, on_event=None: pushed.append(
            (local, uri, auth_config)
        ),
    )
    project = Project("cancer", deployable.home / "cancer")
    record = sagemaker.deploy(project, plan.Options(region=REGION))
    ecr = boto("ecr", moto_url)
    repos = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    repository = f"haj/cancer-{project.uid[:8]}"
    assert repos == [repository] and record["ecr_repository_created"]
    _local, uri, auth = pushed[0]
    registry_host = f"{record['account']}.dkr.ecr.{REGION}.amazonaws.com"
    assert uri == f"{registry_host}/{repository}:{record['run_id']}"
    assert auth and auth["username"] == "AWS" and auth["password"]
    removed = sagemaker.undeploy(project)
    assert f"ECR repository {repository}" in removed
    assert ecr.describe_repositories()["repositories"] == []


# ---- projects of the same name, failures, a role that existed ----------------------------------
@pytest.mark.docker
def test_projects_of_the_same_name_in_two_workspaces_keep_apart(
    deployable: Built,
    aws_env: dict[str, str],
    registry: str,
    moto_url: str,
    tmp_path: Path,
) -> None:
    """Two workspaces, each with its own project `cancer`: built, started and deployed in both,
    nothing is shared, and undeploying one leaves the other's endpoint serving."""
    from engine.container.image import remove_images
    from engine.deploy import records
    from engine.project import Project

    client = docker_or_skip()
    first = deployable.home
    (tmp_path / "other").mkdir()
    second = build_trained(tmp_path / "other", "cancer", "breast_cancer", FAST_CLASSIFIERS[:1])
    homes = (first, second)
    ids = [project_id(home / "cancer") for home in homes]
    assert ids[0] != ids[1]
    # the host's wheel cache (no second download); the image is built from this project alone
    shutil.copytree(
        first / "cancer" / "build" / "wheelhouse", second / "cancer" / "build" / "wheelhouse"
    )
    try:
        built = run_haj(
            second, "build", "cancer", "--base-image", BASE_IMAGE, "--wheelhouse", timeout=900
        )
        assert built.code == 0, built.text[-3000:]
        runs = [json.loads((h / "cancer" / "models" / "champion.json").read_text()) for h in homes]
        listed = [
            {
                row["run_id"]
                for row in json.loads(run_haj(h, "container", "images", "cancer", "--json").out)
            }
            for h in homes
        ]
        assert listed[1] == {runs[1]["run_id"]}  # only its own image...
        assert runs[0]["run_id"] in listed[0] and runs[1]["run_id"] not in listed[0]  # ...each

        ports = [free_port(), free_port()]
        try:
            for home, port in zip(homes, ports, strict=True):
                started = run_haj(
                    home, "container", "start", "cancer", "--network", "host", "--port", str(port)
                )
                assert started.code == 0, started.text
            for champion, port in zip(runs, ports, strict=True):
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                assert health["run_id"] == champion["run_id"]  # each serves its own champion
            for uid, port in zip(ids, ports, strict=True):
                [mine] = client.containers.list(filters={"label": f"haj.project-id={uid}"})
                assert mine.name == f"haj-cancer-{uid[:8]}"
                assert mine.labels["haj.url"] == f"http://127.0.0.1:{port}"
        finally:
            for home in homes:
                run_haj(home, "container", "stop", "cancer")

        for home in homes:
            deployed = run_haj(home, "deploy", "cancer", "--registry", registry, env=aws_env)
            assert deployed.code == 0, deployed.text
        sm = boto("sagemaker", moto_url)
        names = [f"haj-cancer-{uid[:8]}" for uid in ids]
        assert sorted(e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]) == sorted(names)

        gone = run_haj(first, "undeploy", "cancer", "--yes", env=aws_env)
        assert gone.code == 0, gone.text
        assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [names[1]]
        endpoint = sm.describe_endpoint(EndpointName=names[1])
        assert endpoint["EndpointStatus"] == "InService"
        other = records.load(Project("cancer", second / "cancer"))
        assert other and endpoint["EndpointConfigName"] == other["endpoint_config_name"]
        assert boto("s3", moto_url).head_object(Bucket=other["bucket"], Key=other["s3_objects"][0])
        assert boto("iam", moto_url).get_role(RoleName=other["role_name"])
        status = run_haj(second, "status", "cancer").out
        assert names[1] in status and "InService" in status
        assert run_haj(second, "undeploy", "cancer", "--yes", env=aws_env).code == 0
    finally:
        remove_images(Project("cancer", second / "cancer"))


@pytest.mark.docker
def test_a_role_that_existed_loses_only_what_haj_added(
    deployable: Built, aws_env: dict[str, str], registry: str, moto_url: str
) -> None:
    iam = boto("iam", moto_url)
    role = f"haj-sagemaker-cancer-{project_id(deployable.home / 'cancer')[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(sagemaker.TRUST_POLICY))
    team = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=role, PolicyName="team-policy", PolicyDocument=json.dumps(team))
    home = deployable.home
    result = run_haj(home, "deploy", "cancer", "--registry", registry, env=aws_env)
    assert result.code == 0, result.text
    assert sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]) == [
        "haj-endpoint",
        "team-policy",
    ]
    gone = run_haj(home, "undeploy", "cancer", "--yes", env=aws_env)
    assert gone.code == 0, gone.text
    assert f"role policy haj-endpoint of {role}" in gone.out
    assert iam.get_role(RoleName=role)["Role"]["RoleName"] == role  # haj did not create it
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["team-policy"]


@pytest.mark.docker
def test_a_failed_deploy_is_recorded_with_its_error_in_one_line(
    deployable: Built, registry: str, stock_moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.deploy import records
    from engine.project import Project

    home = deployable.home
    env = {**FAKE_AWS, "HAJ_AWS_ENDPOINT_URL": stock_moto}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    endpoint = f"haj-cancer-{project_id(home / 'cancer')[:8]}"
    deploy = ["deploy", "cancer", "--registry", registry]
    assert run_haj(home, *deploy, env=env).code == 0
    project = Project("cancer", home / "cancer")

    again = run_haj(home, *deploy, env=env)  # moves the endpoint: UpdateEndpoint answers 500
    assert again.code == 12, again.text
    assert again.err == (
        f"haj: error: updating the endpoint {endpoint}: 500: 500 Internal Server Error\n"
    )
    record = records.load(project)
    assert record and record["status"] == "failed"
    assert record["error"] == f"updating the endpoint {endpoint}: 500: 500 Internal Server Error"
    status = run_haj(home, "status", "cancer").out
    assert "(failed: updating the endpoint" in status and "deploying" not in status

    bogus = run_haj(home, *deploy, "--instance-type", "ml.bogus", env=env)
    assert bogus.code == 12, bogus.text
    [line] = bogus.err.splitlines()  # the service's message lists every instance type: cut
    assert line.startswith("haj: error: creating the endpoint config ")
    assert "ValidationException: Value 'ml.bogus' at 'instanceType'" in line
    assert len(line) <= 320 and line.endswith("…")
    assert "(failed: creating the endpoint config" in run_haj(home, "status", "cancer").out

    gone = run_haj(home, "undeploy", "cancer", "--yes", env=env)
    assert gone.code == 0, gone.text
    sm = boto("sagemaker", stock_moto)
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
