"""The model key from GetSecretValue, in-process against the fake nucleus through the real
GreengrassCoreIPCClientV2: the value forms the secret manager returns, and each refusal as one line."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ResourceNotFoundError, ServiceError

from edgeinfer.core.errors import EdgeInferError, ModelError
from edgeinfer.core.modelpkg.cryptconfig import DecryptionConfig
from edgeinfer.core.modelpkg.keys import key_provider
from edgeinfer.greengrass.secrets import SecretKeys

from .fake_nucleus import FakeNucleus

COMPONENT = "com.edgeinfer.Inference"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:edgeinfer/model-key-AbC123"
OTHER = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:someone-else-XyZ789"


def grant(*arns: str) -> dict:
    return {"aws.greengrass.SecretManager": {f"{COMPONENT}:secrets:1": {
        "policyDescription": "the model key", "operations": ["aws.greengrass#GetSecretValue"],
        "resources": list(arns)}}}


@pytest.fixture
def ipc(nucleus: FakeNucleus, monkeypatch: pytest.MonkeyPatch) -> Iterator[GreengrassCoreIPCClientV2]:
    nucleus.add_component(COMPONENT, {"accessControl": grant(ARN)})
    for k, v in nucleus.environment(COMPONENT).items():
        monkeypatch.setenv(k, v)
    client = GreengrassCoreIPCClientV2()
    yield client
    client.close()


def test_the_key_comes_as_binary_or_text_by_arn_or_name(nucleus: FakeNucleus, ipc: GreengrassCoreIPCClientV2) -> None:
    key = os.urandom(32)
    nucleus.secrets.add(ARN, key)
    keys = SecretKeys(ipc)
    provider = key_provider(DecryptionConfig(greengrass_secret=ARN), keys)
    assert provider("kid") == key
    assert keys.fetch("edgeinfer/model-key") == key, "a name resolves to its ARN, as the secret manager does"
    request = nucleus.requests("GetSecretValue", COMPONENT)[0]
    assert request.secret_id == ARN and request.version_id is None and request.version_stage is None
    newer = os.urandom(32)
    nucleus.secrets.add(ARN, base64.b64encode(newer).decode())  # a new version as a string: AWSCURRENT moves
    assert provider("kid") == newer, "the key is asked for at each load: a rotated secret takes effect"
    nucleus.secrets.add(ARN, newer.hex())
    assert provider("kid") == newer
    assert SecretKeys(ipc)(DecryptionConfig()) is None, "no greengrass_secret: not this source"


def test_refusals_are_one_line_with_the_fix(nucleus: FakeNucleus, ipc: GreengrassCoreIPCClientV2) -> None:
    keys = SecretKeys(ipc)
    with pytest.raises(ModelError, match=f"secret {ARN} is not on this device .*ResourceNotFoundError: Secret "
                       "not found .* -> deploy aws.greengrass.SecretManager with the secret's ARN in its cloudSecrets"):
        keys.fetch(ARN)
    nucleus.secrets.add(OTHER, os.urandom(32))
    with pytest.raises(ModelError, match=f"the nucleus refused secret {OTHER} to this component .*is not authorized "
                       "to perform aws.greengrass.SecretManager:aws.greengrass#GetSecretValue .* -> grant"):
        keys.fetch(OTHER)
    nucleus.secrets.add(ARN, b"not a key")
    with pytest.raises(EdgeInferError, match="does not hold a 32-byte AES-256 key"):
        keys.fetch(ARN)


def test_fake_secret_manager_answers_as_the_real_one(nucleus: FakeNucleus, ipc: GreengrassCoreIPCClientV2) -> None:
    first = nucleus.secrets.add(ARN, b"\x01" * 32)
    second = nucleus.secrets.add(ARN, "second")
    r = ipc.get_secret_value(secret_id="edgeinfer/model-key")
    assert (r.secret_id, r.version_id, r.version_stage) == (ARN, second.version_id, ["AWSCURRENT"])
    assert r.secret_value.secret_string == "second" and r.secret_value.secret_binary is None
    old = ipc.get_secret_value(secret_id=ARN, version_id=first.version_id)
    assert old.secret_value.secret_binary == b"\x01" * 32 and old.version_stage == []
    with pytest.raises(ServiceError) as both:  # the SDK's errors carry the text in .message, str() is empty
        ipc.get_secret_value(secret_id=ARN, version_id=first.version_id, version_stage="AWSCURRENT")
    assert "Both versionId and Stage are set" in both.value.message
    with pytest.raises(ResourceNotFoundError) as missing:
        ipc.get_secret_value(secret_id=ARN, version_stage="AWSPREVIOUS")
    assert "Version stage AWSPREVIOUS not found" in missing.value.message
