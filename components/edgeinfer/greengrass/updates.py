"""Component updates: defer while a model warm-up/swap or an inference batch is in flight.

On each PreComponentUpdateEvent the component waits briefly for the service to go idle (a batch
takes milliseconds); idle -> DeferComponentUpdate with recheckAfterMs=0 (go ahead), still busy (a
model warming up) -> defer, and the nucleus asks again after ``recheck_ms``. Deployments need
``componentUpdatePolicy.action: NOTIFY_COMPONENTS`` for the nucleus to ask at all. A nucleus without
component-update events (Greengrass Lite) never asks: there is nothing to defer, and the missing
operation is recorded once (nucleus.py); so is a DeferComponentUpdate the nucleus refuses.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ComponentUpdatePolicyEvents

from .nucleus import NucleusFeatures

log = logging.getLogger(__name__)
DEFER_MESSAGE = "edgeinfer: model warm-up or inference batch in flight"


class Busy(Protocol):
    @property
    def busy(self) -> bool: ...

    def wait_idle(self, timeout_s: float) -> bool: ...


class UpdateGate:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, service: Busy, idle_wait_s: float = 0.25,
                 recheck_ms: int = 5000, nucleus: NucleusFeatures | None = None) -> None:
        self._ipc = ipc
        self._nucleus = nucleus or NucleusFeatures()
        self._service = service
        self._idle_wait_s = idle_wait_s
        self._recheck_ms = recheck_ms
        self._op: Any = None
        self.deferred = 0

    def subscribe(self) -> None:
        subscribed = self._nucleus.attempt("SubscribeToComponentUpdates", lambda: (
            self._ipc.subscribe_to_component_updates(on_stream_event=self._on_event)))
        if subscribed is not None:
            self._op = subscribed[1]

    def _on_event(self, event: ComponentUpdatePolicyEvents) -> None:
        if event.post_update_event is not None:
            log.info("deployment %s finished updating components", event.post_update_event.deployment_id)
            return
        pre = event.pre_update_event
        if pre is None or self._nucleus.is_missing("DeferComponentUpdate"):
            return
        idle = self._service.wait_idle(self._idle_wait_s)
        recheck = 0 if idle else self._recheck_ms
        if not idle:
            self.deferred += 1
            log.info("deferring deployment %s by %d ms: %s", pre.deployment_id, recheck, DEFER_MESSAGE)
        self._nucleus.attempt("DeferComponentUpdate", lambda: self._ipc.defer_component_update(
            deployment_id=pre.deployment_id, recheck_after_ms=recheck,
            message=DEFER_MESSAGE if recheck else "edgeinfer: ready to update"))

    def close(self) -> None:
        if self._op is not None:
            self._op.close()
            self._op = None
