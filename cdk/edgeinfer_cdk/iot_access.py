"""Who the devices are and what they may do: the thing group (and the rollout rings' groups), the IoT
policies, the token exchange role.

The Greengrass installer takes these names: ``--thing-group-name``, ``--thing-policy-name`` (the core
policy), ``--tes-role-name`` / ``--tes-role-alias-name``; see docs/cdk.md. The token exchange role
may read component artifacts (model ZIPs, runtime wheelhouses), write the data loop's captures (frames for
labelling, under ``captures/``) and, when context ``fallback_endpoints`` names them, invoke those SageMaker
endpoints (the cloud fallback), and nothing else.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import s3_layout
from .config import FleetConfig
from .fallback_grant import KEY as FALLBACK_KEY
from .fallback_grant import grant_invoke, parse_endpoints
from .grants import allow
from .iot_policies import core_policy, device_policy
from .topics import TopicLayout

TOKEN_LIFETIME_S = 3600


class IotAccess(Construct):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, layout: TopicLayout,
                 artifacts: s3.IBucket) -> None:
        super().__init__(scope, cid)
        stack = Stack.of(self)

        def arn(kind: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=kind, resource_name=name)

        self.thing_group = iot.CfnThingGroup(
            self, "ThingGroup", thing_group_name=cfg.thing_group,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description=f"edgeinfer fleet {cfg.fleet}: Greengrass cores that run edgeinfer"))
        self.thing_group_arn = arn("thinggroup", cfg.thing_group)
        # the rollout's rings (e.g. <fleet>-canary): their own groups, disjoint from the fleet group by the operator
        self.ring_groups = [iot.CfnThingGroup(
            self, f"Ring-{ring.name}", thing_group_name=ring.target,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description=f"edgeinfer fleet {cfg.fleet}: rollout ring {ring.name}"))
            for ring in cfg.plan.rings if ring.target != cfg.thing_group]
        self.ring_group_arns = [arn("thinggroup", ring.target) for ring in cfg.plan.rings]

        self.token_exchange_role = iam.Role(
            self, "TokenExchangeRole", assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com"),
            description="Greengrass token exchange role: devices read component artifacts and write captures/")
        allow(self.token_exchange_role, "ReadComponentArtifacts", ["s3:GetObject"],
              [artifacts.arn_for_objects(p) for p in s3_layout.device_readable()],
              why="a deployment names model ZIPs and runtime wheelhouses by content-addressed keys made at publish "
                  "time; devices may read those two prefixes of the artifact bucket and nothing else")
        allow(self.token_exchange_role, "WriteCaptures", ["s3:PutObject"],
              [artifacts.arn_for_objects(s3_layout.captures_objects())],
              why="the data loop (docs/hybrid.md): a device uploads frames for labelling and their Ground Truth "
                  "manifest lines under captures/<device>/..., keys it makes; it may write there and nowhere else, "
                  "and cannot read or list them")
        grant_invoke(self.token_exchange_role, parse_endpoints(self.node.try_get_context(FALLBACK_KEY)))
        self.role_alias = iot.CfnRoleAlias(
            self, "TokenExchangeRoleAlias", role_alias=f"{cfg.fleet}-token-exchange",
            role_arn=self.token_exchange_role.role_arn, credential_duration_seconds=TOKEN_LIFETIME_S)

        self.device_policy = iot.CfnPolicy(self, "DevicePolicy", policy_name=f"{cfg.fleet}-device",
                                           policy_document=device_policy(layout, arn))
        self.core_policy = iot.CfnPolicy(
            self, "CorePolicy", policy_name=f"{cfg.fleet}-greengrass-core",
            policy_document=core_policy(layout, arn, cfg.core_thing_prefix, self.role_alias.attr_role_alias_arn))
