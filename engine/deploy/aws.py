"""boto3, the way haj uses it.

Credentials: only boto3's standard chain (environment, AWS_PROFILE / ~/.aws, SSO, instance and
container roles). haj never reads them itself, never prints them and never writes them.
Endpoint: HAJ_AWS_ENDPOINT_URL sends every client to one URL (moto's server in tests, LocalStack);
boto3's own AWS_ENDPOINT_URL works as well.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from engine.errors import DeployError, Hint, one_line

ENDPOINT_ENV = "HAJ_AWS_ENDPOINT_URL"
LINE = 300  # an error message's length at most (AWS lists every allowed value in some)
T = TypeVar("T")


def resolve_region(region: str | None) -> str:
    """--region, else the chain's region (AWS_REGION, AWS_DEFAULT_REGION, the profile): no call."""
    if region:
        return region
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return os.environ[variable]
    import boto3

    found = boto3.session.Session().region_name
    if not found:
        raise DeployError("no AWS region", Hint("set-region"))
    return found


class Aws:
    """Clients for one region, created on first use."""

    def __init__(self, region: str) -> None:
        import boto3

        self.region = region
        self.session = boto3.session.Session(region_name=region)
        self.endpoint_url = os.environ.get(ENDPOINT_ENV) or None
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            config = Config(retries={"max_attempts": 5, "mode": "standard"})
            kwargs: dict[str, Any] = {"config": config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[service] = self.session.client(service, **kwargs)
        return self._clients[service]

    def account_id(self) -> str:
        with errors("reading the AWS account (sts get-caller-identity)"):
            return str(self.client("sts").get_caller_identity()["Account"])


def aws_failures() -> tuple[type[Exception], ...]:
    """What a boto3 call raises when AWS (or the way to it) says no: ClientError (an answer
    with an error code) and BotoCoreError (no answer, no credentials...). Catch these, not
    Exception, so a bug in haj is not mistaken for an AWS refusal. Imported on use: boto3 is
    loaded only by the commands that need it."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_missing(exc: Exception) -> bool:
    """A "does not exist" answer from any of the services haj uses."""
    code = error_code(exc)
    message = str(exc).lower()
    return code in {
        "NoSuchEntity",
        "NoSuchBucket",
        "NoSuchKey",
        "404",
        "RepositoryNotFoundException",
        "ImageNotFoundException",
        "ResourceNotFound",
    } or (code == "ValidationException" and ("could not find" in message))


@contextmanager
def errors(doing: str) -> Iterator[None]:
    """Turn botocore's exceptions into one-line DeployErrors naming what haj was doing (an
    HTML error page becomes its title; a long message is cut)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise DeployError(
            f"{doing}: no AWS credentials found. Configure the standard AWS chain "
            "(AWS_PROFILE and `aws configure` or `aws sso login`, environment variables, or an "
            "instance role); haj never stores credentials"
        ) from None
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        prefix = f"{doing}: {error_code(exc)}: "
        raise DeployError(prefix + one_line(message, max(80, LINE - len(prefix)))) from None
    except BotoCoreError as exc:
        prefix = f"{doing}: "
        raise DeployError(prefix + one_line(str(exc), max(80, LINE - len(prefix)))) from None


def call(doing: str, function: Callable[..., T], **kwargs: Any) -> T:
    with errors(doing):
        return function(**kwargs)
