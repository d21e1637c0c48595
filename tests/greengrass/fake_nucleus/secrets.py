"""``aws.greengrass#GetSecretValue`` as the secret manager component (aws.greengrass.SecretManager) answers it.

Followed from the component's SecretManagerIPCAgent / SecretManager: the secret id (an ARN, or a name the
manager maps to its ARN) must be one it synced (else ResourceNotFoundError "Secret not found <id>", resource
type ``secret``); then the caller is authorized against its ``accessControl`` under aws.greengrass.SecretManager,
on the ARN (else UnauthorizedError); versionId and versionStage together are a ServiceError; a version id or
stage it does not hold is ResourceNotFoundError; no version asked for means AWSCURRENT. The response carries
the ARN as ``secretId``, the version id, all its stages, and ``secretValue`` with secretBinary or secretString.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from awsiot.greengrasscoreipc import model

if TYPE_CHECKING:
    from .handlers import Result
    from .nucleus import FakeNucleus
    from .server import Stream

SECRET_MANAGER = "aws.greengrass.SecretManager"
OPERATION = "aws.greengrass#GetSecretValue"
LATEST = "AWSCURRENT"
ARN = re.compile(r"arn:([^:]+):secretsmanager:[a-z0-9\-]+:[0-9]{12}:secret:([a-zA-Z0-9\\]+/)*"
                 r"[a-zA-Z0-9/_+=,.@\-]+(-[a-zA-Z0-9]+)?")
NOT_FOUND = "Secret not found "


@dataclass
class SecretVersion:
    value: bytes | str
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stages: list[str] = field(default_factory=lambda: [LATEST])


@dataclass
class SecretStore:
    """The secrets the manager synced from the cloud: ARN -> versions."""

    versions: dict[str, list[SecretVersion]] = field(default_factory=dict)

    def add(self, arn: str, value: bytes | str, stages: list[str] | None = None) -> SecretVersion:
        """A new version of ``arn`` (it takes the stages given, AWSCURRENT by default, from older versions)."""
        assert ARN.fullmatch(arn), f"not a Secrets Manager ARN: {arn}"
        version = SecretVersion(value, stages=list(stages or [LATEST]))
        for old in self.versions.get(arn, []):
            old.stages = [s for s in old.stages if s not in version.stages]
        self.versions.setdefault(arn, []).append(version)
        return version

    def arn_of(self, secret_id: str) -> str | None:
        if ARN.fullmatch(secret_id):
            return secret_id if secret_id in self.versions else None
        return next((arn for arn in self.versions if name_of(arn) == secret_id), None)


def name_of(arn: str) -> str:
    """The secret's name: the ARN's last part without the 6-character suffix Secrets Manager appends."""
    tail = arn.split(":secret:", 1)[1]
    return re.sub(r"-[a-zA-Z0-9]{6}$", "", tail)


def get_secret_value(n: FakeNucleus, s: Stream, r: model.GetSecretValueRequest) -> Result:
    store: SecretStore = n.secrets
    secret_id = r.secret_id
    if not secret_id:
        raise model.ServiceError(message="SecretId absent in the request")
    arn = store.arn_of(secret_id)
    if arn is None:
        raise model.ResourceNotFoundError(message=NOT_FOUND + secret_id, resource_type="secret")
    n.authorize(s.component, SECRET_MANAGER, OPERATION, arn)
    if r.version_id and r.version_stage:
        raise model.ServiceError(message="Both versionId and Stage are set in the request")
    versions = store.versions[arn]
    if r.version_id:
        found = next((v for v in versions if v.version_id == r.version_id), None)
        missing = f"Version Id {r.version_id} not found for secret {secret_id}"
    else:
        stage = r.version_stage or LATEST
        found = next((v for v in versions if stage in v.stages), None)
        missing = (f"Version stage {stage} not found for secret {secret_id}" if r.version_stage
                   else NOT_FOUND + secret_id)
    if found is None:
        raise model.ResourceNotFoundError(message=missing, resource_type="secret")
    value = (model.SecretValue(secret_binary=found.value) if isinstance(found.value, bytes)
             else model.SecretValue(secret_string=found.value))
    return model.GetSecretValueResponse(secret_id=arn, version_id=found.version_id, version_stage=list(found.stages),
                                        secret_value=value), None
