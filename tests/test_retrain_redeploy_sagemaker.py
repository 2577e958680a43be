"""`haj retrain --redeploy sagemaker` against real stand-ins, as tests/test_deploy.py does: moto's
server on 127.0.0.1 (patched so UpdateEndpoint moves an endpoint, see tests/support/aws.py) through
HAJ_AWS_ENDPOINT_URL, the Debian `docker-registry` on 127.0.0.1 for the push, and the Docker engine
for the new champion's image. Fake credentials only.

A deployed 'cancer' project (the session's image, conftest's `built`, copied by `deployable`),
given its own bucket, execution role, instance type and count: a retrain whose challenger wins
moves the endpoint to the new champion's model, with everything the last deploy was given; a
worse challenger makes no AWS call at all (the endpoint is unreachable then) and leaves the
deployment as it was.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import call_haj
from tests.support.aws import REGION, boto
from tests.support.docker import Built, docker_or_skip, project_id

pytestmark = pytest.mark.docker

BUCKET = "team-models"
ROLE_ARN = "arn:aws:iam::123456789012:role/team-sagemaker"
NOWHERE = "http://127.0.0.1:9"  # nothing listens: any AWS call would fail


def flip_labels(home: Path) -> None:
    """Point the project's source at its own raw table with every label flipped (0 <-> 1): the
    champion degrades, and a challenger trained on it wins."""
    (raw,) = (home / "cancer" / "data" / "raw").glob("*.csv")
    with open(raw, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["target"] = {"0": "1", "1": "0"}[row["target"]]
    flipped = home / "cancer-flipped.csv"
    with open(flipped, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert call_haj(home, "config", "cancer", "--url", str(flipped)).code == 0


def retrain(home: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = call_haj(home, "retrain", "cancer", *args, "--json", env=env)
    assert result.code == 0, result.text[-3000:]
    return json.loads(result.out)


@pytest.fixture
def project_images(deployable: Built) -> Iterator[Built]:
    """The images a test builds are removed afterwards, and `haj/cancer:latest` goes back to
    the session's image."""
    client = docker_or_skip()
    by_id = {"label": f"haj.project-id={project_id(deployable.home / 'cancer')}"}
    before = {image.id for image in client.images.list(filters=by_id)}
    yield deployable
    repository, _, _ = deployable.image.rpartition(":")
    client.images.get(deployable.image).tag(repository, "latest")
    for image in client.images.list(filters=by_id):
        if image.id not in before:
            client.images.remove(image.id, force=True)


def test_redeploy_sagemaker_moves_the_endpoint_and_a_rejected_challenger_calls_nothing(
    project_images: Built, aws_env: dict[str, str], registry: str, moto_url: str
) -> None:
    from engine.deploy import records
    from engine.project import Project

    home = project_images.home
    project = Project("cancer", home / "cancer")
    id8 = project.uid[:8]
    deployed = call_haj(
        home, "deploy", "cancer", "--registry", registry, "--bucket", BUCKET, "--role", ROLE_ARN,
        "--instance-type", "ml.m5.large", "--instance-count", "2",
    )  # fmt: skip
    assert deployed.code == 0, deployed.text[-3000:]
    first = records.load(project)
    assert first and first["run_id"] == project_images.record["run_id"]
    endpoint_name = first["endpoint_name"]

    flip_labels(home)
    planned = call_haj(home, "retrain", "cancer", "--dry-run", "--redeploy", "sagemaker")
    assert planned.code == 0, planned.text
    assert planned.out.splitlines()[-1].lstrip() == (
        "6. redeploy  if a new champion is crowned: build and push its image to the registry "
        f"{registry}, and move the endpoint {endpoint_name} in {REGION} to it "
        "(2 x ml.m5.large), as `haj deploy` does"
    ), planned.out

    done = retrain(home, "-m", "logistic_regression", "--redeploy", "sagemaker")
    assert done["status"] == "finished" and done["decision"] == "promoted", done
    new_run = done["challenger"]["run_id"]
    assert new_run != first["run_id"]
    redeploy = done["steps"][-1]
    assert redeploy["name"] == "redeploy" and redeploy["outcome"] == "done", redeploy
    assert redeploy["detail"] == (
        f"endpoint {endpoint_name} in {REGION} is InService with run {new_run}"
    )

    # the deployment record: the new champion, where the last deploy went, with what it was given
    second = records.load(project)
    assert second and second["status"] == "InService" and second["run_id"] == new_run
    assert second["endpoint_name"] == endpoint_name and second["registry"] == registry
    assert second["image_uri"] == f"{registry}/haj/cancer-{id8}:{new_run}"
    assert second["bucket"] == BUCKET and second["role_arn"] == ROLE_ARN
    assert (second["instance_type"], second["instance_count"]) == ("ml.m5.large", 2)
    # what moto reports: the endpoint runs the new model, the previous model and config are gone
    sm = boto("sagemaker", moto_url)
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == second["endpoint_config_name"]
    config = sm.describe_endpoint_config(EndpointConfigName=second["endpoint_config_name"])
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == second["model_name"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    model = sm.describe_model(ModelName=second["model_name"])
    assert model["PrimaryContainer"]["Image"] == second["image_uri"]
    assert model["PrimaryContainer"]["Environment"]["HAJ_RUN_ID"] == new_run
    s3_key = f"haj/cancer-{id8}/{new_run}/model.tar.gz"
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{BUCKET}/{s3_key}"
    assert model["ExecutionRoleArn"] == ROLE_ARN
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [second["model_name"]]
    s3 = boto("s3", moto_url)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [s3_key]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]  # no default bucket
    assert boto("iam", moto_url).list_roles()["Roles"] == []  # the given role: none was made
    tags = httpx.get(f"http://{registry}/v2/haj/cancer-{id8}/tags/list", timeout=5).json()["tags"]
    assert new_run in tags

    # a worse challenger (gaussian_nb on the same data): rejected, and no deploy is even tried
    rejected = retrain(
        home, "--when", "always", "-m", "gaussian_nb", "--redeploy", "sagemaker",
        env={"HAJ_AWS_ENDPOINT_URL": NOWHERE},
    )  # fmt: skip
    assert rejected["decision"] == "rejected", rejected
    assert rejected["champion"]["run_id"] == new_run
    assert rejected["steps"][-1]["outcome"] == "skipped"
    assert records.load(project) == second
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    assert endpoint["EndpointConfigName"] == second["endpoint_config_name"]
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [second["model_name"]]
