"""End-to-end publish rate to a local Mosquitto through the outbox + MQTT transport, against a bare
awscrt MQTT5 QoS 1 publish loop in the same run (same payloads, same broker).

    .venv/bin/python bench/bench_publish.py [--events 20000] [--rounds 5] [--json]

* bare:            awscrt client, publish every payload (QoS 1), wait for every PUBACK.
* outbox drain:    the payloads already committed in the outbox; delivery thread -> MqttTransport,
                   each row deleted after its PUBACK.
* end to end:      a producer appends the events (100 per commit) while delivery sends them.
* end to end, batch: the same with JSON-array batches of 100 events per message.
Target: end to end >= 80% of the bare client's events/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from awscrt import mqtt5  # noqa: E402
from edgeinfer.core.telemetry.config import TelemetryConfig  # noqa: E402
from edgeinfer.core.telemetry.delivery import Delivery  # noqa: E402
from edgeinfer.core.telemetry.events import ResultEvent  # noqa: E402
from edgeinfer.core.telemetry.outbox import Outbox, Pending  # noqa: E402
from edgeinfer.core.telemetry.sink import result_fields  # noqa: E402
from edgeinfer.core.telemetry.stats import Stats  # noqa: E402
from edgeinfer.mqtt.endpoint import parse_uri  # noqa: E402
from edgeinfer.mqtt.transport import MqttTransport  # noqa: E402

from tests.telemetry.mosquitto import Mosquitto  # noqa: E402
from tests.telemetry.synthetic import clip  # noqa: E402

TOPIC = "edgeinfer/bench/result"


def report(title: str, rows: list[dict[str, Any]], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """A table on stdout, or one JSON object with ``--json``."""
    if as_json:
        sys.stdout.write(json.dumps({"bench": title, "rows": rows, **(extra or {})}, indent=2) + "\n")
        return
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    lines = [title, "  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(_fmt(r[c]).ljust(width[c]) for c in cols) for r in rows]
    lines += [f"{k}: {_fmt(v)}" for k, v in (extra or {}).items()]
    sys.stdout.write("\n".join(lines) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def make_events(n: int) -> list[ResultEvent]:
    """Result events as a 15 fps camera with two people in view makes them (~400 B each)."""
    frames = clip(n / 15, 15)
    return [ResultEvent(device="bench", model_version="1.0.0", **result_fields(f)) for f in frames[:n]]


def bare_publish_rate(port: int, payloads: list[bytes]) -> float:
    """Events/s of a plain awscrt MQTT5 client: publish all (QoS 1), wait for all PUBACKs."""
    connected = threading.Event()
    client = mqtt5.Client(mqtt5.ClientOptions(
        host_name="127.0.0.1", port=port, connect_options=mqtt5.ConnectPacket(client_id="bench-bare"),
        on_lifecycle_event_connection_success_fn=lambda _d: connected.set(), disable_metrics=True))
    client.start()
    if not connected.wait(10):
        raise RuntimeError("bare client could not connect")
    t0 = time.perf_counter()
    futures = [client.publish(mqtt5.PublishPacket(topic=TOPIC, payload=p, qos=mqtt5.QoS.AT_LEAST_ONCE))
               for p in payloads]
    for f in futures:
        f.result(60)
    rate = len(payloads) / (time.perf_counter() - t0)
    client.stop()
    return rate


def outbox_rate(port: int, events: list[ResultEvent], work: Path, *, prefill: bool, batch: bool) -> float:
    """Events/s through outbox + delivery + MqttTransport, first append (or first send) to last PUBACK."""
    cfg = TelemetryConfig(transport=f"mqtt://127.0.0.1:{port}", batch=batch, max_batch_events=100,
                          max_outbox_bytes=1 << 30)
    work.mkdir(parents=True)
    outbox = Outbox(work / "outbox.db", cfg.max_outbox_bytes, cfg.max_payload_bytes)
    transport = MqttTransport(parse_uri(cfg.transport, "bench-outbox"), cfg)
    transport.open()
    if not transport.wait_connected(10):
        raise RuntimeError(f"transport could not connect: {transport.status()}")
    delivery = Delivery(outbox, transport, cfg, Stats())
    items = [Pending(e, (TOPIC,)) for e in events]
    chunks = [items[i:i + 100] for i in range(0, len(items), 100)]

    def produce() -> None:
        for chunk in chunks:
            outbox.append(chunk)
            delivery.wake()

    if prefill:
        produce()
    t0 = time.perf_counter()
    delivery.start()
    if not prefill:
        produce()
    left = delivery.drain(120)
    elapsed = time.perf_counter() - t0
    delivery.stop()
    transport.close()
    outbox.close()
    if left:
        raise RuntimeError(f"{left} events not delivered")
    return len(events) / elapsed


def run(n: int, rounds: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events = make_events(n)
    payloads = [e.with_seq(i + 1).encode() for i, e in enumerate(events)]
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    broker = Mosquitto(work / "broker", persistence=False).start()
    cases: dict[str, Callable[[int], float]] = {
        "bare awscrt loop": lambda r: bare_publish_rate(broker.port, payloads),
        "outbox drain": lambda r: outbox_rate(broker.port, events, work / f"d{r}", prefill=True, batch=False),
        "end to end": lambda r: outbox_rate(broker.port, events, work / f"e{r}", prefill=False, batch=False),
        "end to end, batch 100": lambda r: outbox_rate(broker.port, events, work / f"b{r}", prefill=False,
                                                       batch=True),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for r in range(rounds + 1):  # interleaved, so drift hits every case alike; round 0 warms up
            for name, case in cases.items():
                rate = case(r)
                if r:
                    samples[name].append(rate)
    finally:
        broker.stop()
    bare = statistics.median(samples["bare awscrt loop"])
    rows = [{"path": name, "events/s (median)": statistics.median(s), "min": min(s), "max": max(s),
             "vs bare": statistics.median(s) / bare} for name, s in samples.items()]
    extra = {"events": n, "rounds": rounds, "payload bytes (mean)": sum(map(len, payloads)) / n,
             "target": "end to end >= 0.80 x bare"}
    return rows, extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows, extra = run(args.events, args.rounds)
    report("publish to a local Mosquitto (QoS 1)", rows, args.json, extra)


if __name__ == "__main__":
    main()
