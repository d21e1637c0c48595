"""UpdateState: tell the nucleus RUNNING / ERRORED, retried until it takes it, never fatal.

Greengrass Lite forwards UpdateState to its health daemon, which needs systemd: without it every call
fails. A failed report is listed in ``nucleus.missing`` and sent again with backoff (1 s doubling to
``max_delay_s``) from a thread of its own; only the latest state is sent. The component runs regardless.
"""

from __future__ import annotations

import logging
import threading

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from .nucleus import NucleusFeatures

log = logging.getLogger(__name__)
OPERATION = "UpdateState"


class StateReporter:
    def __init__(self, ipc: GreengrassCoreIPCClientV2, nucleus: NucleusFeatures, first_delay_s: float = 1.0,
                 max_delay_s: float = 60.0) -> None:
        self._ipc = ipc
        self._nucleus = nucleus
        self._delays = (first_delay_s, max_delay_s)
        self._lock = threading.Lock()
        self._wanted: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reported: str | None = None  # the last state the nucleus took

    def report(self, state: str, retry: bool = True) -> bool:
        """Send ``state`` now; on failure keep sending it in the background (unless ``retry`` is False)."""
        with self._lock:
            self._wanted = state
        if self._send(state):
            return True
        if retry and not self._stop.is_set():
            self._ensure_thread()
            self._wake.set()
        return False

    def _send(self, state: str) -> bool:
        try:
            self._ipc.update_state(state=state)
        except Exception as exc:
            self._nucleus.missing(OPERATION, exc)
            log.debug("UpdateState %s failed", state, exc_info=True)
            return False
        with self._lock:
            self.reported = state
            if self._wanted == state:
                self._wanted = None
        self._nucleus.offered(OPERATION)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._retry, name="edgeinfer-gg-state", daemon=True)
                self._thread.start()

    def _retry(self) -> None:
        delay = self._delays[0]
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stop.wait(delay):
                with self._lock:
                    wanted = self._wanted
                if wanted is None:
                    break
                if self._send(wanted):
                    log.info("the nucleus took state %s", wanted)
                    break
                delay = min(delay * 2, self._delays[1])
            delay = self._delays[0]

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
