"""The deploy tests' helpers: fake AWS credentials, moto's server (patched so SageMaker endpoints
pass through Creating/Updating as AWS's do), boto3 clients against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.procs import free_port, stop_process, wait_http

REGION = "us-east-1"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/haj-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/haj-test-aws-credentials",
    "HAJ_DEPLOY_POLL_SECONDS": "0.1",
}

MOTO_SERVER = r"""
import sys
from moto.core.responses import ActionResult
from moto.sagemaker import models, responses

backend = models.SageMakerModelBackend
pending = {}
create_endpoint = backend.create_endpoint
describe_endpoint = backend.describe_endpoint

def create(self, endpoint_name, endpoint_config_name, tags):
    endpoint = create_endpoint(self, endpoint_name, endpoint_config_name, tags)
    endpoint.endpoint_status = "Creating"
    pending[endpoint_name] = 1
    return endpoint

def update(self, endpoint_name, endpoint_config_name):
    endpoint = self.endpoints[endpoint_name]
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"])
    endpoint.endpoint_status = "Updating"
    pending[endpoint_name] = 1
    return endpoint

def describe(self, endpoint_name):
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is not None and endpoint.endpoint_status in ("Creating", "Updating"):
        if pending.get(endpoint_name, 0) > 0:
            pending[endpoint_name] -= 1
        else:
            endpoint.endpoint_status = "InService"
    return describe_endpoint(self, endpoint_name)

def update_response(self):
    endpoint = self.sagemaker_backend.update_endpoint(
        self._get_param("EndpointName"), self._get_param("EndpointConfigName"))
    return ActionResult({"EndpointArn": endpoint.arn})

backend.create_endpoint = create
backend.update_endpoint = update
backend.describe_endpoint = describe
responses.SageMakerResponse.update_endpoint = update_response

from moto.server import main
main(sys.argv[1:])
"""


def run_moto(program: list[str], log: Path) -> Iterator[str]:
    """Start moto's server (`python PROGRAM -H 127.0.0.1 -p PORT`), yield its URL, stop it."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, *program, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_AWS},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/moto-api/", process, log)
        yield url
    finally:
        stop_process(process)


def boto(service: str, moto_url: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION, endpoint_url=moto_url)


def crown_another(home: Path) -> None:
    """Crown a different finished run, as `haj evaluate` would had it won (the fast classifiers
    all lose to the same run on every metric, so the store is asked directly)."""
    from engine.champion import _publish
    from engine.project import Project
    from engine.store import Store

    project_dir = home / "cancer"
    before = json.loads((project_dir / "models" / "champion.json").read_text())["run_id"]
    with Store(project_dir / "haj.db") as store:
        run = next(r for r in store.runs(status="finished") if r.id != before)
        _publish(
            Project("cancer", project_dir),
            project_dir / str(run.model_path),
            run.to_dict(),
            "acc",
            run.metrics["acc"],
        )
        store.crown(run.id, "acc", run.metrics["acc"], reason="test")
