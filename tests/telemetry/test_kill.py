"""kill -9 of the sending process with a backlog in its outbox, then a new start: nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .mosquitto import Mosquitto, Subscriber, seqs
from .test_mqtt import has_seqs

ROOT = Path(__file__).resolve().parents[2]


class Device:
    """The driver script as a child process; collects the seqs it reports as committed."""

    def __init__(self, uri: str, frames: int, state_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.telemetry.driver", "--uri", uri,
                                      "--frames", str(frames), "--fps", "200"], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, env={**os.environ, "EDGEINFER_STATE_DIR": str(state_dir)})
        self.stored: list[int] = []
        self.left: int | None = None
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            words = line.split()
            with self._cond:
                if words[:2] == ["stored", "result"]:
                    self.stored.append(int(words[2]))
                elif words[:1] == ["left"]:
                    self.left = int(words[1])
                self._cond.notify_all()

    def wait_stored(self, seq: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self.stored) and self.stored[-1] >= seq, timeout_s)

    def finish(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout_s)
        self._reader.join(5)
        return code


def test_sigkill_with_a_backlog_then_restart_delivers_everything(broker: Mosquitto, subscriber: Subscriber,
                                                                 tmp_path: Path) -> None:
    state = tmp_path / "device-state"
    first = Device(broker.uri(), 100_000, state)
    assert first.wait_stored(100, 30)
    assert subscriber.wait_for(has_seqs("result", 50), 10)  # delivery under way
    broker.stop()  # from here on everything piles up in the outbox
    assert first.wait_stored(first.stored[-1] + 300, 30)
    os.kill(first.proc.pid, signal.SIGKILL)
    assert first.finish(10) == -signal.SIGKILL
    committed = first.stored[-1]  # every seq printed was committed before the kill
    broker.start()
    second = Device(broker.uri(), 50, state)
    assert second.finish(60) == 0 and second.left == 0
    assert second.stored[0] > committed and second.stored == list(range(second.stored[0], second.stored[0] + 50))
    last = second.stored[-1]
    assert subscriber.wait_for(has_seqs("result", last), 15)
    assert seqs(subscriber.events(), "result") == list(range(1, last + 1))
