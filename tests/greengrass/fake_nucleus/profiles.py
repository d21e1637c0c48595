"""Nucleus profiles: which IPC operations the fake answers, as a given nucleus flavour does.

``classic``: the Java nucleus (2.12+), every operation edgeinfer uses.
``lite``: AWS IoT Greengrass Lite 2.6 as measured against its source (modules/ggipcd/src/ipc_dispatch.c and
services/): no handler for the operations in ``LITE_UNSUPPORTED``, so they are answered with ServiceError;
no spooler (a publish while iotcored is offline fails); and, when its health daemon is not running (no
systemd), UpdateState fails too (``health_daemon=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LITE_UNSUPPORTED = frozenset({
    "SubscribeToValidateConfigurationUpdates", "SendConfigurationValidityReport", "SubscribeToComponentUpdates",
    "DeferComponentUpdate", "PutComponentMetric", "SubscribeToIoTCoreConnectionStatus",
})


@dataclass(frozen=True)
class Profile:
    name: Literal["classic", "lite"] = "classic"
    health_daemon: bool = True  # lite: gghealthd up (UpdateState works) or not (no systemd)

    def refuses(self, operation: str) -> str | None:
        """Why this nucleus answers ``operation`` with ServiceError, or None when it serves it."""
        if self.name != "lite":
            return None
        if operation in LITE_UNSUPPORTED:
            return f"Unhandled operation requested: aws.greengrass#{operation}"  # as ggipcd logs it
        if operation == "UpdateState" and not self.health_daemon:
            return "Failed to update component state: the health service (gghealthd) is not running"
        return None

    @property
    def spools(self) -> bool:
        """Whether PublishToIoTCore succeeds while IoT Core is offline (the Java nucleus's spooler)."""
        return self.name != "lite"


CLASSIC = Profile()
LITE = Profile("lite", health_daemon=True)
LITE_WITHOUT_SYSTEMD = Profile("lite", health_daemon=False)
