"""`edgeinfer run --serve`: the device's HTTP endpoints around the CLI's run session (core/serve/).

Imported only when serving, so a plain `edgeinfer run` imports neither the HTTP server nor prometheus-client.
"""

from __future__ import annotations

import threading

from rich.markup import escape

from ..core.serve.config import ServeConfig
from ..core.serve.recorder import Recorder
from ..core.serve.server import StatusServer
from ..core.session import RunSession
from .common import console_err


class Served:
    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.recorder = Recorder(cfg.chart_window_s)
        self._session: RunSession | None = None
        self.server = StatusServer(cfg, lambda: self._session, self.recorder)

    @property
    def url(self) -> str:
        return self.server.url

    def bind(self, session: RunSession) -> None:
        self._session = session
        self.recorder.telemetry = lambda: session.telemetry

    def start(self) -> None:
        self.server.start()

    def keep_last_frame(self) -> None:
        self.server.keep_last_frame()

    def linger(self, stop: threading.Event) -> None:
        """After the run: keep serving for ``serve.linger_s`` (until Ctrl-C), then stop."""
        try:
            if self.cfg.linger_s > 0 and not stop.is_set():
                console_err.print(f"run ended; serving {escape(self.url)} for {self.cfg.linger_s:g} s more "
                                  "(Ctrl-C ends it)", soft_wrap=True)
                stop.wait(self.cfg.linger_s)
        finally:
            self.stop()

    def stop(self) -> None:
        self.server.stop()
