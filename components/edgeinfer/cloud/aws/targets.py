"""Deployment targets (an IoT thing group or a thing) and the Greengrass core devices behind them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import ClientError

from .clients import AwsClients, paginate
from .errors import DeploymentError, is_not_found

Kind = Literal["thinggroup", "thing", "auto"]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kind: Literal["thinggroup", "thing"]
    arn: str


def resolve(clients: AwsClients, name: str, kind: Kind = "auto") -> Target:
    """The target's ARN; DeploymentError when no such thing group / thing exists in the region."""
    tried = ("thinggroup", "thing") if kind == "auto" else (kind,)
    for k in tried:
        try:
            if k == "thinggroup":
                arn = clients.iot.describe_thing_group(thingGroupName=name)["thingGroupArn"]
                return Target(name, "thinggroup", arn)
            return Target(name, "thing", clients.iot.describe_thing(thingName=name)["thingArn"])
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    what = {"thinggroup": "thing group", "thing": "thing"}
    raise DeploymentError(f"no {' or '.join(what[k] for k in tried)} named {name!r} in {clients.region}",
                          "check the name and --region (aws iot list-thing-groups / list-things); a Greengrass core "
                          "joins its group when installed with --thing-group-name")


def core_devices(clients: AwsClients, target: Target) -> list[str]:
    """Thing names of the core devices a deployment to ``target`` reaches."""
    if target.kind == "thing":
        return [target.name]
    devices = paginate(clients.greengrass.list_core_devices, "coreDevices", thingGroupArn=target.arn)
    return sorted(d["coreDeviceThingName"] for d in devices)
