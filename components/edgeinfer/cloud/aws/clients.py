"""The AWS clients the tooling uses, injected as one object.

``GreengrassV2Api`` is the project's interface to the Greengrass v2 control plane: exactly the boto3
``greengrassv2`` client's methods that edgeinfer calls, with boto3's keyword arguments and response
dictionaries. A boto3 client satisfies it as is; tests pass an in-memory fake that validates every
request against botocore's service model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class GreengrassV2Api(Protocol):
    def create_component_version(self, **kwargs: Any) -> dict[str, Any]: ...
    def describe_component(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_component(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_component_versions(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_deployment(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_deployment(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_deployments(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_core_devices(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_core_device(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_effective_deployments(self, **kwargs: Any) -> dict[str, Any]: ...
    def list_installed_components(self, **kwargs: Any) -> dict[str, Any]: ...
    def cancel_deployment(self, **kwargs: Any) -> dict[str, Any]: ...
    def tag_resource(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AwsClients:
    s3: Any
    sagemaker: Any
    iot: Any
    sts: Any
    greengrass: GreengrassV2Api
    region: str
    kms: Any = None  # signing model packages with --kms-key
    cloudwatch: Any = None  # rollouts: devices' rollbacks counted by the CDK stack's topic rule

    @classmethod
    def from_session(cls, session: Any) -> AwsClients:
        """Clients from a ``boto3.Session`` (its region and credentials)."""
        region = session.region_name
        if not region:
            from .errors import AwsError

            raise AwsError("no AWS region configured", "pass --region or set AWS_REGION / a profile region")
        return cls(s3=session.client("s3"), sagemaker=session.client("sagemaker"), iot=session.client("iot"),
                   sts=session.client("sts"), greengrass=session.client("greengrassv2"), region=region,
                   kms=session.client("kms"), cloudwatch=session.client("cloudwatch"))

    def account(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])


def paginate(call: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a ``nextToken``-paginated list call (boto3's and the fake's alike)."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        items.extend(page.get(key, []))
        token = page.get("nextToken")
        if not token:
            return items
