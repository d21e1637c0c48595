"""The cloud fallback's SageMaker endpoints (docs/hybrid.md): context ``fallback_endpoints`` names their ARNs and
the token exchange role may ``sagemaker:InvokeEndpoint`` exactly those; unset, it may invoke none.

Given in ``cdk.json`` as a JSON list, or with ``-c fallback_endpoints=ARN[,ARN...]`` (or the JSON list's text).
Each must be a whole endpoint ARN, its name in lower case (SageMaker lower-cases endpoint names in ARNs and IAM
compares them exactly), never a wildcard: the stack is refused at synth, naming the key, otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import aws_iam as iam

from .config import ConfigError
from .grants import allow

KEY = "fallback_endpoints"
ENDPOINT_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sagemaker:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:endpoint/"
                          r"[a-z0-9](-*[a-z0-9]){0,62}$")


def parse_endpoints(raw: Any) -> tuple[str, ...]:
    """The context value as endpoint ARNs (none when unset); ConfigError naming the key when unusable."""
    if raw is None or raw == "" or raw == []:
        return ()
    data = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            data = json.loads(text) if text.startswith("[") else [a for a in text.split(",") if a.strip()]
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context {KEY} is not a JSON list: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
        raise ConfigError(f"context {KEY}={raw!r} is not a list of SageMaker endpoint ARNs")
    arns = tuple(dict.fromkeys(a.strip() for a in data))
    for arn in arns:
        if not ENDPOINT_ARN.match(arn):
            raise ConfigError(f"context {KEY}: {arn!r} is not a SageMaker endpoint ARN "
                              "(arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME, the name in lower case, no wildcards)")
    return arns


def grant_invoke(role: iam.Role, arns: tuple[str, ...]) -> None:
    """One statement: InvokeEndpoint on these endpoints; nothing when there are none."""
    if arns:
        allow(role, "InvokeFallbackEndpoints", ["sagemaker:InvokeEndpoint"], list(arns))
