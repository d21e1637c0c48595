"""What the fake nucleus does for each IPC operation edgeinfer uses. Each handler returns
(response shape, callable to run once the response is sent) or raises one of the SDK's error shapes."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from awsiot import eventstreamrpc as rpc
from awsiot.greengrasscoreipc import model

from .secrets import get_secret_value

if TYPE_CHECKING:
    from .nucleus import FakeNucleus
    from .server import Stream

Result = tuple[rpc.Shape, "Callable[[], None] | None"]
MQTT = "aws.greengrass.ipc.mqttproxy"
PUBSUB = "aws.greengrass.ipc.pubsub"
METRICS = "aws.greengrass.ipc.componentmetric"
QOS_VALUES = {model.QOS.AT_MOST_ONCE, model.QOS.AT_LEAST_ONCE}
METRIC_UNITS = {v for k, v in vars(model.MetricUnitType).items() if k.isupper()}


def get_configuration(n: FakeNucleus, s: Stream, r: model.GetConfigurationRequest) -> Result:
    name = r.component_name or s.component
    if name not in n.components:
        raise model.ResourceNotFoundError(message=f"component {name} not found", resource_type="component")
    node: Any = n.components[name].config
    for key in r.key_path or []:
        if not isinstance(node, dict) or key not in node:
            raise model.ResourceNotFoundError(message=f"key not found: {'/'.join(r.key_path or [])}")
        node = node[key]
    value = node if isinstance(node, dict) else {(r.key_path or ["value"])[-1]: node}
    return model.GetConfigurationResponse(component_name=name, value=copy.deepcopy(value)), None


def subscribe_configuration(n: FakeNucleus, s: Stream, r: model.SubscribeToConfigurationUpdateRequest) -> Result:
    if r.component_name and r.component_name != s.component:
        raise model.UnauthorizedError(message="only the component's own configuration can be watched here")
    return model.SubscribeToConfigurationUpdateResponse(), n.subscribe("config", s)


def subscribe_validate(n: FakeNucleus, s: Stream, r: Any) -> Result:
    return model.SubscribeToValidateConfigurationUpdatesResponse(), n.subscribe("validate", s)


def validity_report(n: FakeNucleus, s: Stream, r: model.SendConfigurationValidityReportRequest) -> Result:
    rep = r.configuration_validity_report
    if rep is None or not rep.deployment_id or rep.status not in ("ACCEPTED", "REJECTED"):
        raise model.InvalidArgumentsError(message="configurationValidityReport needs deploymentId and status")
    with n._cond:
        n.validity_reports[rep.deployment_id] = rep
        n._cond.notify_all()
    return model.SendConfigurationValidityReportResponse(), None


def _check_qos(qos: str | None) -> None:
    if qos is None:
        raise model.InvalidArgumentsError(message="QoS is required")
    if qos not in QOS_VALUES:
        raise model.InvalidArgumentsError(message=f"Invalid QoS value: {qos}")


def publish_iot_core(n: FakeNucleus, s: Stream, r: model.PublishToIoTCoreRequest) -> Result:
    if r.topic_name is None:
        raise model.InvalidArgumentsError(message="Topic is required")
    n.authorize(s.component, MQTT, "aws.greengrass#PublishToIoTCore", r.topic_name, mqtt=True)
    if r.payload is None:
        raise model.InvalidArgumentsError(message="Payload is required")
    _check_qos(r.qos)
    return model.PublishToIoTCoreResponse(), None  # spooled (the nucleus answers before delivery)


def subscribe_iot_core(n: FakeNucleus, s: Stream, r: model.SubscribeToIoTCoreRequest) -> Result:
    if r.topic_name is None:
        raise model.InvalidArgumentsError(message="Topic is required")
    n.authorize(s.component, MQTT, "aws.greengrass#SubscribeToIoTCore", r.topic_name, mqtt=True)
    _check_qos(r.qos)
    return model.SubscribeToIoTCoreResponse(), n.subscribe("iotcore", s)


def publish_topic(n: FakeNucleus, s: Stream, r: model.PublishToTopicRequest) -> Result:
    if not r.topic or r.publish_message is None:
        raise model.InvalidArgumentsError(message="topic and publishMessage are required")
    n.authorize(s.component, PUBSUB, "aws.greengrass#PublishToTopic", r.topic)
    return model.PublishToTopicResponse(), None


def update_state(n: FakeNucleus, s: Stream, r: model.UpdateStateRequest) -> Result:
    if r.state not in (model.ReportedLifecycleState.RUNNING, model.ReportedLifecycleState.ERRORED):
        raise model.InvalidArgumentsError(message=f"state must be RUNNING or ERRORED, got {r.state}")
    n.components[s.component].state = r.state
    return model.UpdateStateResponse(), None


def subscribe_component_updates(n: FakeNucleus, s: Stream, r: Any) -> Result:
    return model.SubscribeToComponentUpdatesResponse(), n.subscribe("component_updates", s)


def defer_update(n: FakeNucleus, s: Stream, r: model.DeferComponentUpdateRequest) -> Result:
    if not r.deployment_id:
        raise model.InvalidArgumentsError(message="Cannot defer the update, the deployment ID provided was null")
    with n._cond:
        answers = n.pending_defers.get((s.component, r.deployment_id))
        if answers is None:
            raise model.ServiceError(message="Time limit to respond to PreComponentUpdateEvent exceeded")
        answers.append(r)
        n._cond.notify_all()
    return model.DeferComponentUpdateResponse(), None


def put_metric(n: FakeNucleus, s: Stream, r: model.PutComponentMetricRequest) -> Result:
    if not re.match(r"^aws\.", s.component):
        raise model.UnauthorizedError(message=f"Principal {s.component} is not authorized to perform "
                                              f"{METRICS}:aws.greengrass#PutComponentMetric")
    if not r.metrics:
        raise model.InvalidArgumentsError(message="Null or Empty list of metrics found in PutComponentMetricRequest")
    for m in r.metrics:
        if not m.name or len(m.name.encode()) > 32 or not m.unit or (m.value or 0) < 0 or m.unit not in METRIC_UNITS:
            raise model.InvalidArgumentsError(message="Invalid argument found in PutComponentMetricRequest")
        n.authorize(s.component, METRICS, "aws.greengrass#PutComponentMetric", m.name)
    return model.PutComponentMetricResponse(), None


def subscribe_connection(n: FakeNucleus, s: Stream, r: Any) -> Result:
    activate = n.subscribe("connection", s)

    def after() -> None:  # the current status goes out right after the response
        status = model.ConnectionStatus.CONNECTED if n.connected else model.ConnectionStatus.DISCONNECTED
        s.send_event(model.IoTCoreConnectionStatusEvent(connection_status_event=model.ConnectionStatusEvent(
            status=status)))
        activate()

    return model.SubscribeToIoTCoreConnectionStatusResponse(), after


HANDLERS: dict[str, Callable[..., Result]] = {
    "GetConfiguration": get_configuration,
    "SubscribeToConfigurationUpdate": subscribe_configuration,
    "SubscribeToValidateConfigurationUpdates": subscribe_validate,
    "SendConfigurationValidityReport": validity_report,
    "PublishToIoTCore": publish_iot_core,
    "SubscribeToIoTCore": subscribe_iot_core,
    "PublishToTopic": publish_topic,
    "UpdateState": update_state,
    "SubscribeToComponentUpdates": subscribe_component_updates,
    "DeferComponentUpdate": defer_update,
    "PutComponentMetric": put_metric,
    "SubscribeToIoTCoreConnectionStatus": subscribe_connection,
    "GetSecretValue": get_secret_value,  # served by aws.greengrass.SecretManager (secrets.py)
}
