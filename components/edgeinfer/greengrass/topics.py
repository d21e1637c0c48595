"""The component's MQTT and local topics, in one place: the recipe's accessControl and the runtime
both take them from here, so a policy can never drift from what the code publishes to.

``thing`` is the AWS IoT thing name at run time, or the recipe variable ``{iot:thingName}`` when a
policy is rendered (the nucleus substitutes it, nucleus >= 2.6.0).

Several inference components on one core (two models, say) each take their own commands and publish their own
replies, snapshots, local results and telemetry: any component but ``com.edgeinfer.Inference`` has its name
as a topic level (``edgeinfer/{thing}/{component}/cmd``, ``edgeinfer/{component}/results``, and telemetry on
``COMPONENT_TELEMETRY_TOPIC``, its recipe's default ``telemetry.topic``), so the default component's topics are
what they always were. Each component's state lives in its own ``{work:path}``.
"""

from __future__ import annotations

from ..core.telemetry.config import TelemetryConfig
from ..core.telemetry.events import PRIORITY
from . import INFERENCE_COMPONENT

THING_VARIABLE = "{iot:thingName}"
#: Local (on-device) publish/subscribe topic carrying every frame's result for other components.
LOCAL_RESULTS_TOPIC = "edgeinfer/results"
#: The telemetry topic template of any inference component but the default one: its own level under the device
COMPONENT_TELEMETRY_TOPIC = "edgeinfer/{device}/{component}/{type}"


def _scoped(base: str, component: str) -> str:
    """``base``, with the component's name as a level after it for any but the default component."""
    return base if component == INFERENCE_COMPONENT else f"{base}/{component}"


def local_results_topic(component: str = INFERENCE_COMPONENT) -> str:
    return LOCAL_RESULTS_TOPIC if component == INFERENCE_COMPONENT else f"edgeinfer/{component}/results"


def command_topic(thing: str, component: str = INFERENCE_COMPONENT) -> str:
    return f"{_scoped(f'edgeinfer/{thing}', component)}/cmd"


def reply_topic(thing: str, component: str = INFERENCE_COMPONENT) -> str:
    return f"{_scoped(f'edgeinfer/{thing}', component)}/cmd/reply"


def snapshot_topic(thing: str, component: str = INFERENCE_COMPONENT) -> str:
    return f"{_scoped(f'edgeinfer/{thing}', component)}/snapshot"


def telemetry_template(component: str = INFERENCE_COMPONENT) -> str:
    """The default ``telemetry.topic`` of ``component``."""
    return TelemetryConfig().topic if component == INFERENCE_COMPONENT else COMPONENT_TELEMETRY_TOPIC


def telemetry_topics(thing: str, template: str | None = None, component: str = "+") -> list[str]:
    """Every topic telemetry publishes to, one per event type (a ``{model}`` level becomes ``+``; so does
    ``{component}`` unless a component is named)."""
    tpl = template or TelemetryConfig().topic
    return [tpl.format(device=thing, type=t, model="+", component=component) for t in PRIORITY]


def publish_topics(thing: str, template: str | None = None, component: str = INFERENCE_COMPONENT) -> list[str]:
    """What the component publishes to IoT Core: telemetry, command replies, snapshots."""
    return [*telemetry_topics(thing, template or telemetry_template(component), component),
            reply_topic(thing, component), snapshot_topic(thing, component)]
