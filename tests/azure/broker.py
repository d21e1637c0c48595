"""A private Mosquitto for one module under test: TLS on a Unix socket (bridged to the module's port
8883 by netns_launch.py) and plain TCP on a free loopback port for the test-side hub."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.telemetry.pki import Pki

MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    tls_socket: Path  # what the module's 127.0.0.1:8883 forwards to
    port: int  # plain MQTT for the test side
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_broker(folder: Path, pki: Pki, timeout_s: float = 10.0) -> Broker:
    folder.mkdir(parents=True, exist_ok=True)
    sock, port, log = folder / "mqtt-tls.sock", free_port(), folder / "mosquitto.log"
    conf = folder / "mosquitto.conf"
    lines = [
        "persistence false",
        "allow_anonymous true",
        "log_dest stderr",
        "log_type error", "log_type warning", "log_type notice", "log_type information", "log_type subscribe",
        "max_packet_size 1048576",
        f"listener 0 {sock}",
        f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
        f"listener {port} 127.0.0.1",
    ]
    if os.geteuid() == 0:
        lines.insert(0, "user root")  # otherwise it drops to `mosquitto`, who cannot write the socket folder
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    ready = threading.Event()

    def drain() -> None:  # keep the pipe empty; note when the broker says it runs
        assert proc.stderr is not None
        with log.open("wb") as out:
            for line in proc.stderr:
                out.write(line)
                out.flush()
                if b" running" in line:
                    ready.set()
        ready.set()

    threading.Thread(target=drain, name="mosquitto-log", daemon=True).start()
    if not ready.wait(timeout_s) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError(f"mosquitto did not start: {log.read_text(errors='replace')[-2000:]}")
    return Broker(sock, port, log, proc)
