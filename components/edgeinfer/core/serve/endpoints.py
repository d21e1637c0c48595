"""The serving side as the Greengrass component and the IoT Edge module wire it: one Recorder joined to every run
session they make, and the server when ``serve.enabled`` is not False (they serve unless the local settings say
``serve: {enabled: false}``). A port that cannot be bound is logged and the device runs on without the server:
observability must never cost inference. The server module (and prometheus-client) is imported only to serve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import EdgeInferError
from .config import ServeConfig
from .health import Session, Verdict, liveness
from .recorder import Recorder

log = logging.getLogger(__name__)
#: in the state dir while serving: {url, pid}, for a health check in another process (the IoT Edge HEALTHCHECK)
ANNOUNCE_FILE = "serve.json"


class Endpoints:
    def __init__(self, cfg: ServeConfig, session: Callable[[], Session | None], announce: Path | None = None) -> None:
        self.cfg = cfg
        self._session = session
        self._announce = announce
        self.recorder = Recorder(cfg.chart_window_s)
        self.server: Any = None

    def sinks(self, session: Callable[[], Any]) -> list[Any]:
        """The extra sinks for a new run session; ``session()`` returns it once made (for its telemetry)."""
        self.recorder.telemetry = lambda: getattr(session(), "telemetry", None)
        return [self.recorder]

    def start(self) -> None:
        if self.cfg.enabled is False or self.server is not None:
            return
        from .server import StatusServer

        server = StatusServer(self.cfg, self._session, self.recorder, announce=self._announce)
        try:
            server.start()
        except EdgeInferError as exc:
            log.error("not serving /metrics, /healthz and the status page: %s", exc)
            return
        self.server = server

    def liveness(self) -> Verdict:
        """What /healthz answers (also when not serving)."""
        return liveness(self._session(), self.recorder, self.cfg)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
