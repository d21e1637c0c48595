"""Real peers for telemetry tests and benches: a Mosquitto broker on free ports (plain, and mutual
TLS when given a PKI) and an independent paho-mqtt subscriber that decodes what arrives."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .pki import Pki

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll ``predicate`` until true or the deadline: for state with no event to wait on."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """One broker process; ``stop``/``start`` keep its ports and persisted sessions."""

    def __init__(self, workdir: Path, pki: Pki | None = None, acl: str | None = None, persistence: bool = True,
                 extra: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o777)  # the broker may drop to user mosquitto
        self.port = free_port()
        self.tls_port = free_port() if pki else None
        self.pki = pki
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 0",
                 "max_inflight_messages 100", "log_type all", f"log_dest file {self.log}"]
        if os.geteuid() == 0:
            lines.insert(0, "user root")
        lines += extra
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 3600"]
        if acl is not None:
            (workdir / "acl").write_text(acl)
            lines.append(f"acl_file {workdir / 'acl'}")
        if pki is not None:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {pki.ca}", f"certfile {pki.server_cert}",
                      f"keyfile {pki.server_key}", "require_certificate true"]
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed: scripts/bootstrap.sh test installs it")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        ports = [p for p in (self.port, self.tls_port) if p]
        if not wait_until(lambda: all(_port_open(p) for p in ports), timeout_s):
            self.stop()
            raise RuntimeError(f"mosquitto did not start; see {self.log}")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file first
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def uri(self, tls: bool = False, **query: str) -> str:
        if not tls:
            return f"mqtt://127.0.0.1:{self.port}"
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"mqtts://127.0.0.1:{self.tls_port}" + (f"?{q}" if q else "")


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    content_type: str | None
    user_properties: dict[str, str]
    at: float = 0.0  # time.perf_counter() on arrival

    def events(self) -> list[dict[str, Any]]:
        body = gzip.decompress(self.payload) if self.user_properties.get("content-encoding") == "gzip" else self.payload
        data = json.loads(body)
        return data if isinstance(data, list) else [data]


class Subscriber:
    """An independent MQTT5 client with a persistent session (survives broker restarts)."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "test-observer") -> None:
        self.port = port
        self.topic = topic
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._subscribed = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def start(self, timeout_s: float = 10.0) -> Subscriber:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self._client.connect("127.0.0.1", self.port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        if not self._subscribed.wait(timeout_s):
            raise RuntimeError("subscriber did not subscribe")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        at = time.perf_counter()
        p = getattr(msg, "properties", None)
        rec = Received(msg.topic, bytes(msg.payload), getattr(p, "ContentType", None),
                       dict(getattr(p, "UserProperty", []) or []), at)
        with self._lock:
            self._received.append(rec)
            self._lock.notify_all()

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def events(self, topic_prefix: str = "") -> list[dict[str, Any]]:
        return [e for r in self.received if r.topic.startswith(topic_prefix) for e in r.events()]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not predicate(self._received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True


def unique_by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in events}


def seqs(events: list[dict[str, Any]], event_type: str) -> list[int]:
    """Sorted distinct seq numbers of one type, after dedupe by id."""
    return sorted(e["seq"] for e in unique_by_id(events).values() if e["type"] == event_type)
