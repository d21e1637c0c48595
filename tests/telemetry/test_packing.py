"""Wire packing (one event per message, JSON-array batches below the payload limit, gzip) and the
retry schedule (exponential, capped, jittered)."""

from __future__ import annotations

import gzip
import json
import random

from edgeinfer.core.telemetry.config import RetryConfig, TelemetryConfig
from edgeinfer.core.telemetry.delivery import backoff_delay
from edgeinfer.core.telemetry.packing import Packer
from edgeinfer.core.telemetry.record import Record
from edgeinfer.core.telemetry.stdio import StdoutTransport
from edgeinfer.mqtt.endpoint import parse_uri
from edgeinfer.mqtt.transport import MqttTransport


def rec(n: int, size: int = 100, topic: str = "t/result", typ: str = "result") -> Record:
    body = json.dumps({"id": str(n), "pad": "x" * max(0, size - 25)}).encode()
    return Record(n=n, priority=0, id=str(n), type=typ, seq=n, topic=topic, model_version="1", created=0.0,
                  payload=body)


def mqtt() -> MqttTransport:
    return MqttTransport(parse_uri("mqtt://127.0.0.1:1", "d"), TelemetryConfig())


def test_batches_stay_below_the_limit_and_keep_order() -> None:
    cfg = TelemetryConfig(batch=True, max_batch_events=50, max_payload_bytes=4096)
    packed = Packer(cfg, mqtt()).pack([rec(i, 1000) for i in range(10)])
    assert [len(rows) for rows in packed.rows.values()] == [4, 4, 2]
    assert all(len(m.payload) <= 4096 for m in packed.messages)
    decoded = [e["id"] for m in packed.messages for e in json.loads(m.payload)]
    assert decoded == [str(i) for i in range(10)]


def test_batches_split_by_topic_and_count() -> None:
    cfg = TelemetryConfig(batch=True, max_batch_events=3)
    recs = [rec(0), rec(1), rec(2, topic="t/alert", typ="alert"), rec(3), rec(4), rec(5), rec(6)]
    packed = Packer(cfg, mqtt()).pack(recs)
    assert [(m.topic, m.count) for m in packed.messages] == [("t/result", 2), ("t/alert", 1), ("t/result", 3),
                                                            ("t/result", 1)]


def test_gzip_and_too_large_single_events() -> None:
    cfg = TelemetryConfig(gzip=True, max_payload_bytes=2048)
    packed = Packer(cfg, mqtt()).pack([rec(0, 500), rec(1, 5000), rec(2, 500)])
    assert [m.count for m in packed.messages] == [1, 1] and packed.too_large[0][0] == 1
    assert "exceeds the 2048-byte message limit" in packed.too_large[0][1]
    assert json.loads(gzip.decompress(packed.messages[0].payload))["id"] == "0"
    assert packed.messages[0].encoding == "gzip"


def test_line_transports_never_batch_or_gzip() -> None:
    packed = Packer(TelemetryConfig(batch=True, gzip=True), StdoutTransport()).pack([rec(0), rec(1)])
    assert [(m.count, m.encoding, m.batch) for m in packed.messages] == [(1, "identity", False)] * 2


def test_backoff_grows_caps_and_jitters() -> None:
    retry = RetryConfig(initial_s=0.5, max_s=8.0, multiplier=2.0, jitter=0.5)
    rng = random.Random(1)
    delays = [[backoff_delay(f, retry, rng) for _ in range(200)] for f in (1, 2, 3, 4, 5, 6, 10)]
    for base, ds in zip([0.5, 1, 2, 4, 8, 8, 8], delays, strict=True):
        assert base * 0.5 <= min(ds) and max(ds) <= base  # jitter takes up to half off the top
        assert max(ds) - min(ds) > base * 0.3  # and really varies
    assert backoff_delay(3, RetryConfig(jitter=0.0), rng) == 2.0
