"""cdk-nag acknowledgements, one finding at a time, each with its reason next to the resource.

cdk-nag 3 reports every finding separately (``AwsSolutions-IAM5[Resource::...]``), so a wildcard
added later is reported again instead of slipping through under an old reason.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, findings: list[str] | None = None) -> None:
    """Acknowledge ``rule`` on ``construct`` (and its children), or only the named ``findings`` of it."""
    ids = [f"{rule}[{f}]" for f in findings] if findings else [rule]
    Validations.of(construct).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def acknowledge_wildcards(construct: IConstruct, reason: str, resources: list[str]) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly the wildcard ``resources`` of one statement."""
    rendered = [nag_name(construct, r) for r in resources]
    if wild := [f"Resource::{r}" for r in rendered if "*" in r]:
        acknowledge(construct, "AwsSolutions-IAM5", reason, wild)


def nag_name(scope: IConstruct, value: str) -> str:
    """A (possibly tokenised) ARN as cdk-nag writes it in a finding: ``<Logical.Arn>/key``, ``<AWS::Region>``."""
    return _render(Stack.of(scope).resolve(value))


def _render(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Ref" in node:
        return f"<{node['Ref']}>"
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return f"<{'.'.join(node['Fn::GetAtt'])}>"
    if isinstance(node, dict) and "Fn::Join" in node:
        sep, parts = node["Fn::Join"]
        return sep.join(_render(p) for p in parts)
    raise ValueError(f"cannot name {node!r} the way cdk-nag does")
