"""The two AWS IoT policy documents of the fleet, as plain data (the construct only attaches names).

* ``device_policy``: a device that connects to IoT Core itself (``edgeinfer run --telemetry mqtts://``).
  Thing policy variables bind it to its own identity: it connects as its thing, publishes only its
  own telemetry/reply/snapshot topics, and subscribes to/receives only its own command topic.
* ``core_policy``: a Greengrass core device. AWS IoT does not evaluate thing policy variables for
  Greengrass cores or the Greengrass data plane (the nucleus opens several connections with client
  IDs ``<thing>``, ``<thing>#2``...), so AWS's documented minimum uses a thing-name prefix instead.
  Per-thing topic isolation on a core is enforced by the component's accessControl
  (``{iot:thingName}``), and the topic rules record the publishing client ID next to the topic's thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .topics import THING_NAME_VARIABLE, TopicLayout

Arn = Callable[[str, str], str]  # (resource type, resource) -> arn:...:iot:region:account:type/resource

#: What the nucleus itself publishes and subscribes to (deployment jobs, shadows, its health status).
NUCLEUS_PUBLISH = ("$aws/things/{thing}/greengrass/health/json", "$aws/things/{thing}/greengrassv2/health/json",
                   "$aws/things/{thing}/jobs/*", "$aws/things/{thing}/shadow/*")
NUCLEUS_SUBSCRIBE = ("$aws/things/{thing}/jobs/*", "$aws/things/{thing}/shadow/*")
#: Greengrass data-plane calls of the nucleus; these actions take no narrower resource in an IoT policy.
GREENGRASS_DATA_PLANE = ("greengrass:GetComponentVersionArtifact", "greengrass:ResolveComponentCandidates",
                         "greengrass:GetDeploymentConfiguration", "greengrass:ListThingGroupsForCoreDevice")


def _statement(sid: str, action: str | list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resources, **extra}


def device_policy(layout: TopicLayout, arn: Arn) -> dict[str, Any]:
    thing = THING_NAME_VARIABLE
    command = layout.command(thing)
    return {"Version": "2012-10-17", "Statement": [
        _statement("ConnectAsOwnThing", "iot:Connect", [arn("client", thing)],
                   Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
        _statement("PublishOwnTopics", "iot:Publish", [arn("topic", t) for t in layout.device_publish(thing)]),
        _statement("SubscribeOwnCommands", "iot:Subscribe", [arn("topicfilter", command)]),
        _statement("ReceiveOwnCommands", "iot:Receive", [arn("topic", command)]),
    ]}


def core_policy(layout: TopicLayout, arn: Arn, thing_prefix: str, role_alias_arn: str) -> dict[str, Any]:
    thing = f"{thing_prefix}*"
    command = layout.command(thing)
    nucleus_pub = [t.format(thing=thing) for t in NUCLEUS_PUBLISH]
    nucleus_sub = [t.format(thing=thing) for t in NUCLEUS_SUBSCRIBE]
    return {"Version": "2012-10-17", "Statement": [
        _statement("ConnectAsFleetCore", "iot:Connect", [arn("client", thing)]),
        _statement("PublishNucleusAndEdgeinfer", "iot:Publish",
                   [arn("topic", t) for t in [*nucleus_pub, *layout.device_publish(thing)]]),
        _statement("SubscribeNucleusAndCommands", "iot:Subscribe",
                   [arn("topicfilter", t) for t in [*nucleus_sub, command]]),
        _statement("ReceiveNucleusAndCommands", "iot:Receive", [arn("topic", t) for t in [*nucleus_sub, command]]),
        _statement("TokenExchange", "iot:AssumeRoleWithCertificate", [role_alias_arn]),
        _statement("GreengrassDataPlane", list(GREENGRASS_DATA_PLANE), ["*"]),
    ]}
