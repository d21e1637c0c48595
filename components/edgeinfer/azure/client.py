"""The module client: azure-iot-device's ``IoTHubModuleClient`` from the IoT Edge environment.

edgeAgent starts the module with ``IOTEDGE_*`` variables; the SDK reads them, fetches the edgeHub trust
bundle and signs its SAS tokens through the workload API (``IOTEDGE_WORKLOADURI``), and connects to
``IOTEDGE_GATEWAYHOSTNAME`` on port 8883. The rest of this package talks to the client only through
``ModuleClient`` (the handful of calls it uses), so another wire can be injected.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Protocol, cast

from ..core.plugins import install_hint
from .errors import ModuleError

log = logging.getLogger(__name__)

EDGE_ENV = ("IOTEDGE_IOTHUBHOSTNAME", "IOTEDGE_DEVICEID", "IOTEDGE_MODULEID", "IOTEDGE_GATEWAYHOSTNAME",
            "IOTEDGE_MODULEGENERATIONID", "IOTEDGE_WORKLOADURI", "IOTEDGE_APIVERSION")


class ModuleClient(Protocol):
    """What edgeinfer uses of ``azure.iot.device.IoTHubModuleClient`` (sync API)."""

    connected: bool
    on_twin_desired_properties_patch_received: Callable[[dict[str, Any]], None] | None
    on_method_request_received: Callable[[Any], None] | None
    on_connection_state_change: Callable[[], None] | None

    def connect(self) -> None: ...

    def shutdown(self) -> None: ...

    def get_twin(self) -> dict[str, Any]: ...

    def patch_twin_reported_properties(self, reported_properties_patch: dict[str, Any]) -> None: ...

    def send_method_response(self, method_response: Any) -> None: ...

    def send_message_to_output(self, message: Any, output_name: str) -> None: ...


def edge_identity() -> tuple[str, str]:
    """(device id, module id) from the IoT Edge environment."""
    missing = [name for name in EDGE_ENV if not os.environ.get(name)]
    if missing:
        raise ModuleError(f"not running under IoT Edge: {', '.join(missing)} unset",
                          "run `python -m edgeinfer.azure` as an IoT Edge module (edgeAgent sets these)")
    return os.environ["IOTEDGE_DEVICEID"], os.environ["IOTEDGE_MODULEID"]


def create_module_client(**kwargs: Any) -> ModuleClient:
    """``IoTHubModuleClient.create_from_edge_environment`` with typed, one-line errors."""
    edge_identity()
    try:
        from azure.iot.device import IoTHubModuleClient
    except ImportError as exc:
        raise ModuleError(f"azure-iot-device is not installed ({exc.name})", install_hint("azure.iot.device")) from exc
    try:
        # the SDK's class satisfies ModuleClient at run time (tests/azure drive the real one); its own
        # annotations differ in details the protocol does not use
        return cast(ModuleClient, IoTHubModuleClient.create_from_edge_environment(**kwargs))
    except Exception as exc:  # the SDK raises OSError/ValueError/its own errors: all mean "cannot start"
        cause = exc.__cause__ or exc
        raise ModuleError(f"cannot create the IoT Edge module client: {type(exc).__name__}: {exc} ({cause})",
                          f"check that the workload API at {os.environ.get('IOTEDGE_WORKLOADURI')} answers "
                          "and the module identity exists") from exc
