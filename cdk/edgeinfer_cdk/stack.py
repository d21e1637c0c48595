"""One stack: everything a fleet needs on AWS, wired together (see docs/cdk.md for the picture)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .archive import TelemetryArchive
from .athena import TelemetryQueries
from .config import FleetConfig
from .dashboard import FleetDashboard
from .greengrass_baseline import BaselineDeployment, baseline_components
from .iot_access import IotAccess
from .rollout import ModelRollout
from .rules import TelemetryRules
from .storage import FleetStorage
from .topics import TopicLayout


class FleetStack(Stack):
    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, **kwargs: Any) -> None:
        super().__init__(scope, cid, description=f"edgeinfer fleet {cfg.fleet}: artifacts, IoT access, "
                         "telemetry, fleet dashboard and alarms, Athena over the archive, model rollout", **kwargs)
        self.cfg = cfg
        layout = TopicLayout(cfg.telemetry_topic)
        self.storage = FleetStorage(self, "Storage", cfg)
        self.iot = IotAccess(self, "Iot", cfg, layout, self.storage.artifacts)
        self.archive = TelemetryArchive(self, "Archive", self.storage.telemetry)
        self.rules = TelemetryRules(self, "Rules", cfg, layout, self.archive.stream.attr_arn, self.archive.stream.ref)
        if cfg.alert_email:
            self.rules.alerts.add_subscription(subscriptions.EmailSubscription(cfg.alert_email))
        self.dashboard = FleetDashboard(self, "Fleet", cfg, self.rules.alerts, self.rules.alerts_key)
        self.queries = TelemetryQueries(self, "Queries", cfg, self.storage.telemetry)
        self.rollout = ModelRollout(self, "Rollout", cfg, self.storage.artifacts, self.iot.ring_group_arns,
                                    baseline_components(cfg))
        for group in (self.iot.thing_group, *self.iot.ring_groups):
            self.rollout.node.add_dependency(group)
        if cfg.baseline_deployment:
            baseline = BaselineDeployment(self, "Baseline", cfg, self.iot.thing_group_arn)
            baseline.node.add_dependency(self.iot.thing_group)
        self._outputs()

    def _outputs(self) -> None:
        values = {
            "ArtifactBucket": self.storage.artifacts.bucket_name,
            "TelemetryBucket": self.storage.telemetry.bucket_name,
            "ThingGroup": self.cfg.thing_group,
            "CorePolicy": self.iot.core_policy.ref,
            "DevicePolicy": self.iot.device_policy.ref,
            "TokenExchangeRole": self.iot.token_exchange_role.role_name,
            "TokenExchangeRoleAlias": self.iot.role_alias.ref,
            "ModelPackageGroup": self.cfg.model_package_group,
            "AlertsTopic": self.rules.alerts.topic_arn,
            "Dashboard": self.dashboard.dashboard.dashboard_name,
            "GlueDatabase": self.queries.database_name,
            "AthenaWorkGroup": self.queries.workgroup.ref,
            "RolloutFunction": self.rollout.function.function_name,
            "RolloutFailures": self.rollout.failures.queue_url,
            "RolloutRings": " -> ".join(f"{r.name}={r.target}" for r in self.cfg.plan.rings),
        }
        for name, value in values.items():
            CfnOutput(self, name, value=value)
