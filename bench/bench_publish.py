"""End-to-end publish rate to a local Mosquitto through the outbox + MQTT transport, against a bare
awscrt MQTT5 QoS 1 publish loop in the same run (same broker, same messages on the wire).

    .venv/bin/python bench/bench_publish.py [--events 20000] [--rounds 5] [--json]

Every case sends the same N result events (~420 B, the bytes the outbox makes: seq 1..N) to one
topic at QoS 1, from a client that connected before the clock starts; the clock stops at the last
PUBACK. Every PUBLISH carries what MqttTransport sends: content type, UTF-8 payload format and the
user properties type, model_version, schema, count.

* bare awscrt loop: payloads encoded before the clock starts; one thread builds each PublishPacket
  and calls ``mqtt5.Client.publish``, with the delivery thread's window: at most PIPELINE_DEPTH
  groups of ``max_inflight`` (2 x 500) publishes unacknowledged; a group is settled by calling
  ``result()`` on each of its futures in order (as awscrt's samples do). No outbox, no thread
  hand-off. This is the reference of the target.
* bare, one wake-up per group: the same, but a group is settled by first waiting for its last
  PUBACK (``concurrent.futures.wait``), then reading every result: the trick the delivery thread
  uses, so the waiting thread wakes once per group instead of once per PUBACK and leaves the GIL
  to the client's callbacks. The strongest bare loop found; shown so the gap to it is visible.
* outbox drain: the events committed in the outbox before the clock starts; the delivery thread
  reads them, sends through MqttTransport with the same window and deletes each row after its
  PUBACK (one delete per settled group, or with the producer's next commit).
* end to end: the clock starts before the first append; the producer (main thread) stamps, encodes
  and commits the events (100 per commit) while the delivery thread sends them.
* end to end, batch 100: the same, JSON-array batches of 100 events per message (events/s).
Target: end to end >= 80% of the bare loop's events/s. Ratios are per round (same round, same
broker, interleaved cases): median and range. The heap is frozen as the service freezes it after
start-up (``edgeinfer.core.heap``), so the fixtures (20,000 prepared events) stay out of full
collections, and each case starts from ``heap.refreeze()``, so none inherits another's garbage.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from awscrt import mqtt5  # noqa: E402

from edgeinfer.core import heap  # noqa: E402
from edgeinfer.core.telemetry.config import TelemetryConfig  # noqa: E402
from edgeinfer.core.telemetry.delivery import PIPELINE_DEPTH, Delivery  # noqa: E402
from edgeinfer.core.telemetry.events import SCHEMA_VERSION, ResultEvent  # noqa: E402
from edgeinfer.core.telemetry.outbox import Outbox, Pending  # noqa: E402
from edgeinfer.core.telemetry.sink import result_fields  # noqa: E402
from edgeinfer.core.telemetry.stats import Stats  # noqa: E402
from edgeinfer.mqtt.endpoint import parse_uri  # noqa: E402
from edgeinfer.mqtt.transport import MqttTransport  # noqa: E402
from tests.telemetry.mosquitto import Mosquitto  # noqa: E402
from tests.telemetry.synthetic import clip  # noqa: E402

TOPIC = "edgeinfer/bench/result"
MODEL_VERSION = "1.0.0"
WINDOW = TelemetryConfig.model_fields["max_inflight"].default
WAKE_ONCE = "bare, one wake-up per group"


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
    return [ResultEvent(device="bench", model_version=MODEL_VERSION, **result_fields(f)) for f in frames[:n]]


def bare_publish_rate(port: int, payloads: list[bytes], window: int = WINDOW, depth: int = PIPELINE_DEPTH,
                      wake_once: bool = False) -> float:
    """Events/s of a plain awscrt MQTT5 client sending MqttTransport's PUBLISH packets (QoS 1), at most
    ``depth`` groups of ``window`` unacknowledged; stops at the last PUBACK. ``wake_once``: settle a
    group by waiting for its last PUBACK first."""
    connected = threading.Event()
    client = mqtt5.Client(mqtt5.ClientOptions(
        host_name="127.0.0.1", port=port, connect_options=mqtt5.ConnectPacket(client_id="bench-bare"),
        on_lifecycle_event_connection_success_fn=lambda _d: connected.set(), disable_metrics=True))
    client.start()
    if not connected.wait(10):
        raise RuntimeError("bare client could not connect")
    props = [mqtt5.UserProperty("type", "result"), mqtt5.UserProperty("model_version", MODEL_VERSION),
             mqtt5.UserProperty("schema", str(SCHEMA_VERSION)), mqtt5.UserProperty("count", "1")]
    groups: deque[list[concurrent.futures.Future[Any]]] = deque()
    heap.refreeze()  # every case starts from a clean heap, not with the previous case's garbage

    def settle() -> None:
        group = groups.popleft()
        if wake_once:
            concurrent.futures.wait(group[-1:], 60)
        for f in group:
            f.result(60)

    t0 = time.perf_counter()
    for i in range(0, len(payloads), window):
        groups.append([client.publish(mqtt5.PublishPacket(
            topic=TOPIC, payload=p, qos=mqtt5.QoS.AT_LEAST_ONCE, content_type="application/json",
            payload_format_indicator=mqtt5.PayloadFormatIndicator.AWS_MQTT5_PFI_UTF8, user_properties=props))
            for p in payloads[i:i + window]])
        if len(groups) >= depth:
            settle()
    while groups:
        settle()
    rate = len(payloads) / (time.perf_counter() - t0)
    client.stop()
    return rate


def outbox_rate(port: int, items: list[Pending], work: Path, *, prefill: bool, batch: bool) -> float:
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
    chunks = [items[i:i + 100] for i in range(0, len(items), 100)]

    def produce() -> None:
        for chunk in chunks:
            outbox.append(chunk)
            delivery.wake()

    if prefill:
        produce()
    heap.refreeze()
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
    return len(items) / elapsed


def run(n: int, rounds: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events = make_events(n)
    payloads = [e.with_seq(i + 1).encode() for i, e in enumerate(events)]
    items = [Pending(e, (TOPIC,)) for e in events]  # made once, like the payloads (each round stamps seq 1..n)
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    broker = Mosquitto(work / "broker", persistence=False).start()
    cases: dict[str, Callable[[int], float]] = {
        "bare awscrt loop": lambda r: bare_publish_rate(broker.port, payloads),
        WAKE_ONCE: lambda r: bare_publish_rate(broker.port, payloads, wake_once=True),
        "outbox drain": lambda r: outbox_rate(broker.port, items, work / f"d{r}", prefill=True, batch=False),
        "end to end": lambda r: outbox_rate(broker.port, items, work / f"e{r}", prefill=False, batch=False),
        "end to end, batch 100": lambda r: outbox_rate(broker.port, items, work / f"b{r}", prefill=False,
                                                       batch=True),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    try:
        with heap.frozen_heap():
            for r in range(rounds + 1):  # interleaved, so drift hits every case alike; round 0 warms up
                for name, case in cases.items():
                    rate = case(r)
                    if r:
                        samples[name].append(rate)
    finally:
        broker.stop()
    rows = []
    for name, s in samples.items():
        vs = [a / b for a, b in zip(s, samples["bare awscrt loop"], strict=True)]
        vs1 = [a / b for a, b in zip(s, samples[WAKE_ONCE], strict=True)]
        rows.append({"path": name, "events/s (median)": statistics.median(s), "min": min(s), "max": max(s),
                     "vs bare": statistics.median(vs), "vs bare range": f"{min(vs):.2f}-{max(vs):.2f}",
                     "vs bare, one wake-up": statistics.median(vs1)})
    extra = {"events": n, "rounds": rounds, "payload bytes (mean)": sum(map(len, payloads)) / n,
             "window": f"{PIPELINE_DEPTH} x {WINDOW}", "target": "end to end >= 0.80 x bare"}
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
