"""Reading a synthesised template the way a reviewer does: by construct path, with ARNs as plain text.

``Fn::Join`` is flattened; pseudo parameters read ``aws``/``REGION``/``ACCOUNT``; a reference to a
resource reads ``<Path/To/Construct>`` (``<...Arn>`` for ``Fn::GetAtt``), so expectations name
constructs instead of hashed logical IDs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT",
          "AWS::URLSuffix": "amazonaws.com"}


@dataclass
class Synth:
    template: dict[str, Any]
    outdir: Path
    stack: str
    _paths: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lid, res in self.template["Resources"].items():
            path = (res.get("Metadata") or {}).get("aws:cdk:path", "")
            self._paths[lid] = path.removeprefix(f"{self.stack}/").removesuffix("/Resource")

    def lid(self, path: str) -> str:
        """Logical ID of the resource at construct path ``path`` (relative to the stack)."""
        found = [lid for lid, p in self._paths.items() if p == path]
        assert len(found) == 1, f"{path}: {found or 'no such resource'}; known: {sorted(self._paths.values())}"
        return found[0]

    def resource(self, path: str) -> dict[str, Any]:
        return self.template["Resources"][self.lid(path)]

    def props(self, path: str) -> Any:
        return self.text(self.resource(path)["Properties"])

    def of_type(self, cfn_type: str) -> list[str]:
        return sorted(self._paths[lid] for lid, r in self.template["Resources"].items() if r["Type"] == cfn_type)

    def text(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.text(n) for n in node]
        if not isinstance(node, dict):
            return node
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return sep.join(str(self.text(p)) for p in parts)
        if "Ref" in node:
            ref = node["Ref"]
            return PSEUDO.get(ref) or f"<{self._paths.get(ref, ref)}>"
        if "Fn::GetAtt" in node:
            lid, attr = node["Fn::GetAtt"]
            return f"<{self._paths.get(lid, lid)}.{attr}>"
        return {k: self.text(v) for k, v in node.items()}

    def statements(self, role: str) -> list[dict[str, Any]]:
        """The statements of the one inline policy CDK made for ``role``, normalised for comparison."""
        policies = [lid for lid, r in self.template["Resources"].items() if r["Type"] == "AWS::IAM::Policy"
                    and {"Ref": self.lid(role)} in r["Properties"]["Roles"]]
        assert len(policies) == 1, f"{role} has {len(policies)} inline policies"
        doc = self.template["Resources"][policies[0]]["Properties"]["PolicyDocument"]
        return [normalise(s) for s in self.text(doc["Statement"])]

    def trust(self, role: str) -> list[dict[str, Any]]:
        return self.props(role)["AssumeRolePolicyDocument"]["Statement"]


def normalise(statement: dict[str, Any]) -> dict[str, Any]:
    out = dict(statement)
    for key in ("Action", "Resource"):
        value = out.get(key)
        out[key] = sorted(value) if isinstance(value, list) else [value]
    return out


def allow(sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """An expected Allow statement, normalised like ``Synth.statements``."""
    st = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}
    if condition:
        st["Condition"] = condition
    return st
