"""The fake nucleus: component identities, configuration, IPC authorization, recorded traffic.

Behaviour follows the Greengrass nucleus where edgeinfer depends on it: configuration validation
before a deployment changes config (REJECTED keeps the old config), update events per changed key,
MQTT-proxy authorization from ``accessControl`` (``{iot:thingName}``, MQTT wildcards),
PutComponentMetric allowed only to ``aws.*`` components, deferrable component updates, and the
IoT Core connection status stream (current status sent right after the response), and GetSecretValue as
the secret manager component answers it (secrets.py).

``profile`` picks the nucleus flavour (profiles.py): the Java nucleus by default, or Greengrass Lite, which
answers ServiceError to the operations it lacks (validation events, component updates, metrics, connection
status), has no spooler, and fails UpdateState without its health daemon.

Tests drive it from the "cloud" side (``deploy_configuration``, ``deliver_iot_core``,
``component_update``, ``set_connected``) and wait on what the component did (``wait_for``).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from awsiot import eventstreamrpc as rpc
from awsiot.greengrasscoreipc import model

from .auth import allowed, mqtt_match
from .handlers import HANDLERS
from .profiles import CLASSIC, Profile
from .secrets import SecretStore
from .server import IpcServer, Stream


@dataclass
class Component:
    name: str
    config: dict[str, Any]
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    state: str | None = None


@dataclass
class Record:
    component: str
    operation: str
    request: Any
    t: float = field(default_factory=time.monotonic)


class FakeNucleus(IpcServer):
    def __init__(self, socket_path: str, thing_name: str, profile: Profile = CLASSIC) -> None:
        super().__init__(socket_path)
        self.thing_name = thing_name
        self.profile = profile
        self.components: dict[str, Component] = {}
        self.connected = True
        self.records: list[Record] = []
        self.connects: list[tuple[str | None, str | None]] = []
        self.subscriptions: dict[str, list[Stream]] = {}
        self.pending_defers: dict[tuple[str, str], list[model.DeferComponentUpdateRequest]] = {}
        self.validity_reports: dict[str, model.ConfigurationValidityReport] = {}
        self.secrets = SecretStore()  # what aws.greengrass.SecretManager synced (GetSecretValue)
        self._cond = threading.Condition()

    # ---- set-up -------------------------------------------------------------------------
    def add_component(self, name: str, config: dict[str, Any]) -> Component:
        comp = Component(name, copy.deepcopy(config))
        self.components[name] = comp
        return comp

    def environment(self, component: str) -> dict[str, str]:
        """What the nucleus puts in a component process's environment."""
        return {"AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": self.path,
                "SVCUID": self.components[component].token, "AWS_IOT_THING_NAME": self.thing_name,
                "AWS_REGION": "us-east-1", "GG_ROOT_CA_PATH": "", "AWS_CONTAINER_AUTHORIZATION_TOKEN": ""}

    # ---- server hooks -------------------------------------------------------------------
    def authenticate(self, token: str | None) -> str | None:
        return next((c.name for c in self.components.values() if token and c.token == token), None)

    def record_connect(self, component: str | None, token: str | None) -> None:
        with self._cond:
            self.connects.append((component, token))
            self._cond.notify_all()

    def handle(self, stream: Stream, request: Any) -> tuple[rpc.Shape, Callable[[], None] | None]:
        with self._cond:
            self.records.append(Record(stream.component, stream.operation, request))
            self._cond.notify_all()
        name = stream.operation.split("#", 1)[1]
        refusal = self.profile.refuses(name)
        if refusal is not None:
            raise model.ServiceError(message=refusal)
        if name == "PublishToIoTCore" and not self.connected and not self.profile.spools:
            raise model.ServiceError(message="Failed to publish the message: not connected to AWS IoT Core")
        handler = HANDLERS.get(name)
        if handler is None:
            raise model.ServiceError(message=f"{stream.operation} is not supported by the fake nucleus")
        return handler(self, stream, request)

    # ---- helpers used by the handlers ---------------------------------------------------
    def acl(self, component: str) -> dict[str, Any]:
        return self.components[component].config.get("accessControl") or {}

    def authorize(self, component: str, namespace: str, operation: str, resource: str, mqtt: bool = False) -> None:
        if not allowed(self.acl(component), self.thing_name, namespace, operation, resource, mqtt):
            raise model.UnauthorizedError(message=f"Principal {component} is not authorized to perform "
                                                  f"{namespace}:{operation} on resource {resource}")

    def subscribe(self, kind: str, stream: Stream) -> Callable[[], None]:
        """Register ``stream`` once its response went out (events never overtake the response)."""
        def activate() -> None:
            with self._cond:
                self.subscriptions.setdefault(kind, []).append(stream)
            stream.on_close.append(lambda: self._unsubscribe(kind, stream))
        return activate

    def _unsubscribe(self, kind: str, stream: Stream) -> None:
        with self._cond:
            if stream in self.subscriptions.get(kind, []):
                self.subscriptions[kind].remove(stream)

    def streams(self, kind: str, component: str | None = None) -> list[Stream]:
        with self._cond:
            return [s for s in self.subscriptions.get(kind, []) if s.open and
                    (component is None or s.component == component)]

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # ---- what tests wait on -------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake nucleus: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(remaining, 0.5))

    def requests(self, operation: str, component: str | None = None) -> list[Any]:
        with self._cond:
            return [r.request for r in self.records if r.operation == f"aws.greengrass#{operation}"
                    and (component is None or r.component == component)]

    def iot_publishes(self, topic_filter: str = "#") -> list[model.PublishToIoTCoreRequest]:
        return [r for r in self.requests("PublishToIoTCore") if mqtt_match(topic_filter, r.topic_name or "")]

    # ---- the "cloud" / deployment side --------------------------------------------------
    def deploy_configuration(self, component: str, new_config: dict[str, Any], timeout: float = 20.0
                             ) -> model.ConfigurationValidityReport | None:
        """A deployment changing ``component``'s configuration: ask subscribers to validate first.

        Returns the component's report (None when it does not validate). The config changes only when
        the report is not REJECTED; then each changed top-level key gets an update event.
        """
        deployment_id = str(uuid.uuid4())
        report = None
        subs = self.streams("validate", component)
        if subs:
            event = model.ValidateConfigurationUpdateEvents(validate_configuration_update_event=(
                model.ValidateConfigurationUpdateEvent(configuration=copy.deepcopy(new_config),
                                                       deployment_id=deployment_id)))
            for s in subs:
                s.send_event(event)
            report = self.wait_for(lambda: self.validity_reports.get(deployment_id), timeout,
                                   f"a configuration validity report from {component}")
        if report is None or report.status != model.ConfigurationValidityStatus.REJECTED:
            self._replace_config(component, new_config)
        return report

    def _replace_config(self, component: str, new_config: dict[str, Any]) -> None:
        comp = self.components[component]
        old, comp.config = comp.config, copy.deepcopy(new_config)
        changed = sorted(k for k in set(old) | set(new_config) if old.get(k) != new_config.get(k))
        for s in self.streams("config", component):
            wanted = list(s.request.key_path or [])
            for key in changed:
                if not wanted or wanted[0] == key:
                    s.send_event(model.ConfigurationUpdateEvents(configuration_update_event=(
                        model.ConfigurationUpdateEvent(component_name=component, key_path=[key]))))

    def deliver_iot_core(self, topic: str, payload: bytes, **props: Any) -> int:
        """A message from IoT Core on ``topic``: forwarded to every matching SubscribeToIoTCore stream."""
        n = 0
        for s in self.streams("iotcore"):
            if mqtt_match(s.request.topic_name, topic):
                msg = model.MQTTMessage(topic_name=topic, payload=payload, **props)
                n += s.send_event(model.IoTCoreMessage(message=msg))
        return n

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        status = model.ConnectionStatus.CONNECTED if connected else model.ConnectionStatus.DISCONNECTED
        for s in self.streams("connection"):
            s.send_event(model.IoTCoreConnectionStatusEvent(
                connection_status_event=model.ConnectionStatusEvent(status=status)))

    def component_update_round(self, deployment_id: str, timeout_s: float = 10.0
                               ) -> list[model.DeferComponentUpdateRequest]:
        """One PreComponentUpdateEvent to every subscriber; wait until each answered (DeferComponentUpdate)."""
        subs = self.streams("component_updates")
        with self._cond:
            self.pending_defers = {(s.component, deployment_id): [] for s in subs}
        event = model.ComponentUpdatePolicyEvents(pre_update_event=model.PreComponentUpdateEvent(
            deployment_id=deployment_id, is_ggc_restarting=False))
        for s in subs:
            s.send_event(event)
        if not subs:
            return []
        answers = self.wait_for(lambda: all(self.pending_defers.values()) and self.pending_defers, timeout_s,
                                "answers to PreComponentUpdateEvent")
        return [a for lst in answers.values() for a in lst]

    def component_update(self, max_wait_s: float = 30.0, recheck_cap_s: float = 0.2
                         ) -> list[model.DeferComponentUpdateRequest]:
        """A deployment updating components, as the nucleus runs it: ask, and while anyone defers, wait
        ``recheckAfterMs`` (capped at ``recheck_cap_s``: compressed time) and ask again; then
        PostComponentUpdateEvent. Returns every answer seen; raises if still deferred at ``max_wait_s``."""
        deployment_id = str(uuid.uuid4())
        deadline = time.monotonic() + max_wait_s
        seen: list[model.DeferComponentUpdateRequest] = []
        while True:
            answers = self.component_update_round(deployment_id)
            seen.extend(answers)
            recheck_s = max((a.recheck_after_ms or 0 for a in answers), default=0) / 1000.0
            if recheck_s <= 0:
                break
            if time.monotonic() + min(recheck_s, recheck_cap_s) > deadline:
                raise TimeoutError(f"component update still deferred after {max_wait_s}s: {answers[-1].message}")
            threading.Event().wait(min(recheck_s, recheck_cap_s))  # the nucleus's own re-check delay
        for s in self.streams("component_updates"):
            s.send_event(model.ComponentUpdatePolicyEvents(post_update_event=model.PostComponentUpdateEvent(
                deployment_id=deployment_id)))
        return seen

