"""The MQTT topics seen from the cloud, derived from the devices' own topic functions.

Devices publish telemetry on the configurable template (``edgeinfer/{device}/{type}`` by default)
and take commands on ``edgeinfer/{thing}/cmd``; ``edgeinfer.greengrass.topics`` is the one source for
both the component's accessControl and, here, the IoT policies and topic rules. The rules need
``{device}`` and ``{type}`` to be whole topic levels (they read them back with ``topic(n)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeinfer.core.telemetry.events import PRIORITY
from edgeinfer.greengrass import topics as device_topics

EVENT_TYPES: tuple[str, ...] = tuple(sorted(PRIORITY))  # alert, health, result, summary
#: A thing's own name in IoT policies of directly connected devices (not Greengrass cores).
THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"


def _policy_topic(topic: str) -> str:
    """MQTT wildcards are literal characters in IoT policy resources; ``*`` is the policy wildcard."""
    return "/".join("*" if level in ("+", "#") else level for level in topic.split("/"))


@dataclass(frozen=True, slots=True)
class TopicLayout:
    template: str

    def __post_init__(self) -> None:
        levels = self.template.split("/")
        for name in ("device", "type"):
            if levels.count(f"{{{name}}}") != 1:
                raise ValueError(f"topic template {self.template!r}: {{{name}}} must be one whole topic level "
                                 "for the cloud rules to read it back")

    def level(self, name: str) -> int:
        """1-based topic level of ``{name}`` (what IoT SQL's ``topic(n)`` takes)."""
        return self.template.split("/").index(f"{{{name}}}") + 1

    def rule_filter(self, event_type: str = "+") -> str:
        """Topic filter for a topic rule: every device, one event type (or ``+`` for all)."""
        return self.template.format(device="+", type=event_type, model="+", component="+")

    def device_publish(self, thing: str) -> list[str]:
        """IoT policy topic names a thing may publish to: its telemetry, command replies, snapshots."""
        topics = [*device_topics.telemetry_topics(thing, self.template),  # any {component}: "+"
                  device_topics.reply_topic(thing), device_topics.snapshot_topic(thing)]
        return [_policy_topic(t) for t in topics]

    @staticmethod
    def command(thing: str) -> str:
        return _policy_topic(device_topics.command_topic(thing))
