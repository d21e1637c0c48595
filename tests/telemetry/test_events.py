"""The event schema: the committed JSON Schema is the export, and real events validate against it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from edgeinfer.core.telemetry.events import PRIORITY, ResultEvent, parse_event, schema_text
from edgeinfer.core.telemetry.service import TelemetryService

from .conftest import make_config
from .synthetic import clip, run_context

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry-schema.json"


def test_committed_schema_is_the_export() -> None:
    assert DOC.read_text() == schema_text(), (
        "docs/telemetry-schema.json is stale: python -m edgeinfer.core.telemetry.events docs/telemetry-schema.json")


def test_every_event_a_run_makes_validates_against_the_committed_schema(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    rules = [{"name": "crowd", "when": {"label": "person", "min_count": 2}, "over": {"frames": 2}}]
    service = TelemetryService.from_config(make_config(f"file:{out}", rules, mode="summary", window_s=1.0),
                                           run_context())
    service.start()
    for r in clip(3, 10):
        service.sink.on_result(r)
    service.sink.close({})
    assert service.drain(10) == 0
    service.close()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    schema = json.loads(DOC.read_text())
    for e in events:
        jsonschema.validate(e, schema)
        assert parse_event(e).id == e["id"]
    types = {e["type"] for e in events}
    assert types == {"summary", "alert", "health"}
    for e in events:  # the fields every event must carry
        assert {"v", "type", "id", "seq", "device", "model_version", "ts"} <= e.keys()
        assert e["ts"].endswith("Z") and e["seq"] >= 1 and e["device"] == "dev-1"
    assert len({e["id"] for e in events}) == len(events)


def test_non_finite_numbers_are_refused() -> None:
    fields = {"device": "d", "model_version": "1", "source": "s", "frame": 0, "width": 1, "height": 1,
              "task": "detection"}
    with pytest.raises(ValidationError, match="finite"):
        ResultEvent.model_validate({**fields, "detections": [{"label": "x", "score": math.nan, "box": [0, 0, 1, 1]}]})
    assert ResultEvent.model_validate(fields).encode().startswith(b'{"v":1,"type":"result"')


def test_priority_order_alerts_last_to_go() -> None:
    assert PRIORITY["result"] < PRIORITY["health"] < PRIORITY["summary"] < PRIORITY["alert"]
