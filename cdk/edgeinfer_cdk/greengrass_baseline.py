"""The Greengrass set-up for durable telemetry, as deployment components (plain data, one source).

The nucleus spools PublishToIoTCore messages in memory by default (2.5 MB, lost on restart). The
``aws.greengrass.DiskSpooler`` plugin (nucleus >= 2.11) keeps them on disk when the nucleus's
``mqtt.spooler`` says so. edgeinfer's own outbox already survives restarts; the disk spooler closes
the gap between "handed to the nucleus" and "acknowledged by IoT Core".

The same components go (a) into every deployment the rollout Lambda makes (its environment carries
them as JSON; existing component versions on the target are kept) and (b) optionally into a
CloudFormation ``AWS::GreengrassV2::Deployment`` of the thing group (context ``baseline_deployment``).
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_greengrassv2 as greengrassv2
from constructs import Construct

from .config import FleetConfig

NUCLEUS = "aws.greengrass.Nucleus"
DISK_SPOOLER = "aws.greengrass.DiskSpooler"


def spooler_config(cfg: FleetConfig) -> dict[str, Any]:
    return {"mqtt": {"spooler": {"storageType": "Disk", "pluginName": DISK_SPOOLER,
                                 "maxSizeInBytes": cfg.spooler_max_bytes}}}


def baseline_components(cfg: FleetConfig) -> dict[str, dict[str, Any]]:
    """Deployment ``components`` entries (the greengrassv2 CreateDeployment shape)."""
    return {
        NUCLEUS: {"componentVersion": cfg.nucleus_version,
                  "configurationUpdate": {"merge": json.dumps(spooler_config(cfg), separators=(",", ":"))}},
        DISK_SPOOLER: {"componentVersion": cfg.disk_spooler_version},
    }


class BaselineDeployment(Construct):
    """The baseline as the thing group's deployment, for a fleet that has no edgeinfer deployment yet.

    A deployment REPLACES its target's component set: once models are rolled out, a changed baseline
    deployed from here would remove them. The rollout Lambda carries the same baseline, so after the
    first rollout leave this off (see docs/cdk.md).
    """

    def __init__(self, scope: Construct, cid: str, cfg: FleetConfig, thing_group_arn: str) -> None:
        super().__init__(scope, cid)
        self.deployment = greengrassv2.CfnDeployment(
            self, "Deployment", target_arn=thing_group_arn, deployment_name=f"{cfg.fleet}-baseline",
            components={name: greengrassv2.CfnDeployment.ComponentDeploymentSpecificationProperty(
                component_version=spec["componentVersion"],
                configuration_update=greengrassv2.CfnDeployment.ComponentConfigurationUpdateProperty(
                    merge=spec["configurationUpdate"]["merge"]) if "configurationUpdate" in spec else None)
                for name, spec in baseline_components(cfg).items()})
