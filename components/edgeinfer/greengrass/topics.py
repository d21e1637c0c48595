"""The component's MQTT and local topics, in one place: the recipe's accessControl and the runtime
both take them from here, so a policy can never drift from what the code publishes to.

``thing`` is the AWS IoT thing name at run time, or the recipe variable ``{iot:thingName}`` when a
policy is rendered (the nucleus substitutes it, nucleus >= 2.6.0).
"""

from __future__ import annotations

from ..core.telemetry.config import TelemetryConfig
from ..core.telemetry.events import PRIORITY

THING_VARIABLE = "{iot:thingName}"
#: Local (on-device) publish/subscribe topic carrying every frame's result for other components.
LOCAL_RESULTS_TOPIC = "edgeinfer/results"


def command_topic(thing: str) -> str:
    return f"edgeinfer/{thing}/cmd"


def reply_topic(thing: str) -> str:
    return f"edgeinfer/{thing}/cmd/reply"


def snapshot_topic(thing: str) -> str:
    return f"edgeinfer/{thing}/snapshot"


def telemetry_topics(thing: str, template: str | None = None) -> list[str]:
    """Every topic telemetry publishes to, one per event type (a ``{model}`` level becomes ``+``)."""
    tpl = template or TelemetryConfig().topic
    return [tpl.format(device=thing, type=t, model="+") for t in PRIORITY]


def publish_topics(thing: str, template: str | None = None) -> list[str]:
    """What the component publishes to IoT Core: telemetry, command replies, snapshots."""
    return [*telemetry_topics(thing, template), reply_topic(thing), snapshot_topic(thing)]
