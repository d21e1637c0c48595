"""Typed errors of the AWS tooling. Each names what to fix; when something was already created before
the failure, the message lists it (nothing half-created goes unreported)."""

from __future__ import annotations

from typing import Any

from ...core.errors import EdgeInferError


class AwsError(EdgeInferError):
    """An AWS call failed or AWS holds something other than what the tool expected."""


class RegistryError(AwsError):
    """The SageMaker model registry has no usable package (missing, not approved, no artifact)."""


class ArtifactError(AwsError):
    """An artifact is missing, corrupt, or an immutable S3 key already holds different bytes."""


class ComponentError(AwsError):
    """A Greengrass component version cannot be created or conflicts with an existing one."""


class DeploymentError(AwsError):
    """A deployment target does not exist or a deployment failed."""


def client_error(exc: Exception) -> tuple[str, str]:
    """(code, message) of a botocore ClientError; ('', str) for anything else."""
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    err = response.get("Error", {})
    return str(err.get("Code", "")), str(err.get("Message", "")) or str(exc)


def is_not_found(exc: Exception) -> bool:
    code, msg = client_error(exc)
    return code in ("ResourceNotFoundException", "ResourceNotFound", "NoSuchKey", "404", "NotFound") or (
        code == "ValidationException" and ("does not exist" in msg or "not found" in msg))
