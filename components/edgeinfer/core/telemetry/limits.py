"""AWS IoT Core message limits, enforced on the device before anything is sent.

IoT Core drops a publish whose payload exceeds 128 KB or whose topic has more than 7 forward slashes
(8 levels), and client SDKs do not check either. These checks run for every transport so a config
that works with stdout also works against IoT Core.
"""

from __future__ import annotations

import string

from ..errors import TelemetryError

MAX_PAYLOAD_BYTES = 128 * 1024
MAX_TOPIC_SLASHES = 7
MAX_TOPIC_BYTES = 256
TOPIC_FIELDS = frozenset({"device", "type", "model", "component"})
#: ``{component}`` of a run that is not a named component or module (the CLI)
DEFAULT_COMPONENT = "edgeinfer"


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be published to, or None when it can."""
    if not topic:
        return "the topic is empty"
    if "+" in topic or "#" in topic:
        return f"topic {topic!r} contains an MQTT wildcard (+ or #), which cannot be published to"
    if topic.startswith("$"):
        return f"topic {topic!r} starts with '$', reserved for broker topics"
    if topic.count("/") > MAX_TOPIC_SLASHES:
        return f"topic {topic!r} has {topic.count('/')} slashes; AWS IoT Core allows at most {MAX_TOPIC_SLASHES}"
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        return f"topic {topic!r} is longer than {MAX_TOPIC_BYTES} bytes"
    return None


def check_topic(topic: str) -> str:
    """Return ``topic`` or raise TelemetryError saying what is wrong with it."""
    if problem := topic_problem(topic):
        raise TelemetryError(problem, "use a topic with at most 7 slashes, no wildcards and no leading '$'")
    return topic


def template_problem(template: str) -> str | None:
    """Why a topic template such as ``edgeinfer/{device}/{type}`` is unusable, or None."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return f"topic template {template!r} is malformed: {exc}"
    if unknown := names - TOPIC_FIELDS:
        return f"topic template {template!r} uses unknown field(s) {sorted(unknown)}; known: {sorted(TOPIC_FIELDS)}"
    return topic_problem(template.format(device="d", type="t", model="m", component="c"))


def render_topic(template: str, *, device: str, type: str, model: str, component: str = DEFAULT_COMPONENT) -> str:
    return check_topic(template.format(device=device, type=type, model=model, component=component))


def payload_problem(size: int, limit: int) -> str | None:
    if size > limit:
        return f"payload of {size} bytes exceeds the {limit}-byte message limit"
    return None
