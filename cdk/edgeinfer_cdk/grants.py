"""Add one IAM statement to a role; a statement with wildcard resources must say why, and is acknowledged
for cdk-nag with exactly that reason and exactly those resources."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam

from .nag import acknowledge_wildcards


def allow(role: iam.Role, sid: str, actions: list[str], resources: list[str], *, why: str | None = None,
          conditions: dict[str, Any] | None = None) -> None:
    role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions))
    if why is not None:
        acknowledge_wildcards(role, why, resources)
