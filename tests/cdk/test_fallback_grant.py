"""Context ``fallback_endpoints``: the token exchange role may sagemaker:InvokeEndpoint exactly the SageMaker
endpoints named (the cloud fallback, docs/hybrid.md), none when unset; bad values are refused naming the key. The
role is synthesised in a small app with the AWS Solutions checks on (they fail synth on any finding), and read
statement by statement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .cfn import Synth, allow
from .conftest import require_cdk

require_cdk()

from aws_cdk import App, Stack, Validations  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from edgeinfer_cdk.config import ConfigError, FleetConfig  # noqa: E402
from edgeinfer_cdk.fallback_grant import parse_endpoints  # noqa: E402
from edgeinfer_cdk.iot_access import IotAccess  # noqa: E402
from edgeinfer_cdk.topics import TopicLayout  # noqa: E402

FACES = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/faces-large"
PEOPLE = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/people"
BASE = [allow("ReadComponentArtifacts", ["s3:GetObject"], ["arn:aws:s3:::artifacts/edgeinfer/models/*/*/model.zip",
                                                           "arn:aws:s3:::artifacts/edgeinfer/runtime/*"]),
        allow("WriteCaptures", ["s3:PutObject"], ["arn:aws:s3:::artifacts/captures/*"])]


def synth_role(tmp_path: Path, context: dict[str, Any]) -> list[dict[str, Any]]:
    app = App(context={"aws:cdk:enable-path-metadata": True, **context}, outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "grant")
    cfg = FleetConfig()
    IotAccess(stack, "Iot", cfg, TopicLayout(cfg.telemetry_topic), s3.Bucket.from_bucket_name(stack, "A", "artifacts"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on any unacknowledged AwsSolutions finding
    template = json.loads((tmp_path / "cdk.out" / "grant.template.json").read_text())
    return Synth(template=template, outdir=tmp_path, stack="grant").statements("Iot/TokenExchangeRole")


def test_no_endpoints_no_invoke_grant(tmp_path: Path) -> None:
    assert synth_role(tmp_path, {}) == BASE


def test_the_role_may_invoke_exactly_the_named_endpoints(tmp_path: Path) -> None:
    statements = synth_role(tmp_path, {"fallback_endpoints": [FACES, PEOPLE, FACES]})
    assert statements == [*BASE, allow("InvokeFallbackEndpoints", ["sagemaker:InvokeEndpoint"], [FACES, PEOPLE])]


@pytest.mark.parametrize("raw, want", [
    (f"{FACES},{PEOPLE}", (FACES, PEOPLE)),  # -c fallback_endpoints=ARN,ARN
    (json.dumps([FACES]), (FACES,)),  # -c fallback_endpoints='["ARN"]'
    ([PEOPLE], (PEOPLE,)),  # cdk.json
    (None, ()), ("", ()), ([], ()),
])
def test_context_forms(raw: Any, want: tuple[str, ...]) -> None:
    assert parse_endpoints(raw) == want


@pytest.mark.parametrize("raw", [
    "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*",
    "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/Faces-Large",  # IAM compares the lower-cased ARN exactly
    "arn:aws:sagemaker:eu-west-1:123456789012:model/faces",
    "arn:aws:sagemaker:eu-west-1:1234:endpoint/faces",
    "faces-large",
    '["unclosed',
    {"faces": FACES},
    [FACES, 7],
])
def test_unusable_values_are_refused_naming_the_key(raw: Any) -> None:
    with pytest.raises(ConfigError, match="context fallback_endpoints"):
        parse_endpoints(raw)


def test_a_bad_value_refuses_the_synth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="context fallback_endpoints"):
        synth_role(tmp_path, {"fallback_endpoints": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*"})
