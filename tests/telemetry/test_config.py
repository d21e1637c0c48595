"""Telemetry and rule config: defaults, IoT Core limits checked at load, lazy transport table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeinfer.core.config import EdgeInferConfig, validate
from edgeinfer.core.errors import ConfigError
from edgeinfer.core.telemetry.config import TelemetryConfig
from edgeinfer.core.telemetry.registry import open_transport
from edgeinfer.mqtt.endpoint import parse_uri

from .pki import Pki


def test_defaults_validate() -> None:
    cfg = EdgeInferConfig()
    t = cfg.telemetry
    assert (t.transport, t.mode, t.window_s, t.topic, t.drain_timeout_s) == (
        "none", "summary", 60.0, "edgeinfer/{device}/{type}", 30.0)
    assert cfg.rules == []


@pytest.mark.parametrize(("topic", "message"), [
    ("a/b/c/d/e/f/g/h/{type}", "at most 7"),
    ("edgeinfer/{device}/{kind}", "unknown field"),
    ("edgeinfer/+/{type}", "wildcard"),
])
def test_bad_topic_templates_are_rejected_at_load(topic: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate({"telemetry": {"topic": topic}})


def test_rule_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"rules\.0\.actions\.0"):
        validate({"rules": [{"name": "r", "actions": [{"type": "sms", "to": "x"}]}]})
    with pytest.raises(ConfigError, match=r"either over\.frames or over\.window_s"):
        validate({"rules": [{"name": "r", "over": {"frames": 3, "window_s": 2}}]})
    with pytest.raises(ConfigError, match="wildcard"):
        validate({"rules": [{"name": "r", "actions": [{"type": "local_topic", "topic": "site/#"}]}]})
    with pytest.raises(ConfigError, match="command actions name a hook"):
        validate({"rules": [{"name": "r", "actions": [{"type": "command", "argv": ["true"]}]}]})
    with pytest.raises(ConfigError, match=r"rules\[0\]\.actions\[0\]\.hook: no hook named 'beep' is defined"):
        validate({"rules": [{"name": "r", "actions": [{"type": "command", "hook": "beep"}]}]})
    cfg = validate({"hooks": {"beep": {"argv": ["true"]}},
                    "rules": [{"name": "r", "actions": [{"type": "command", "hook": "beep"},
                                                        {"type": "webhook", "url": "http://x/h"}]}]})
    assert [a.type for a in cfg.rules[0].actions] == ["command", "webhook"]
    assert cfg.rules[0].over.frames == 1


def test_unknown_transport_and_missing_file_path() -> None:
    cfg = TelemetryConfig()
    with pytest.raises(ConfigError, match="unknown telemetry transport 'kafka'"):
        open_transport("kafka://x", cfg, "d")
    with pytest.raises(ConfigError, match="names no file"):
        open_transport("file:", cfg, "d")
    assert open_transport("none", cfg, "d") is None


def test_mqtt_uri_parsing(pki: Pki, tmp_path: Path) -> None:
    ep = parse_uri("mqtt://broker.local", "thing-1")
    assert (ep.port, ep.client_id, ep.tls) == (1883, "thing-1", False)
    ep = parse_uri(f"mqtts://h:8884?ca={pki.ca}&cert={pki.client_cert}&key={pki.client_key}&client_id=c", "t")
    assert (ep.port, ep.client_id, ep.ca, ep.tls) == (8884, "c", pki.ca, True)
    with pytest.raises(ConfigError, match="both cert= and key="):
        parse_uri(f"mqtts://h?cert={pki.client_cert}", "t")
    with pytest.raises(ConfigError, match="does not exist"):
        parse_uri(f"mqtts://h?ca={tmp_path / 'nope.pem'}", "t")
    with pytest.raises(ConfigError, match="use mqtts://"):
        parse_uri(f"mqtt://h?ca={pki.ca}", "t")
    with pytest.raises(ConfigError, match="unknown MQTT URI option"):
        parse_uri("mqtt://h?qos=2", "t")


def test_core_does_not_import_vendor_sdks() -> None:
    code = ("import sys, edgeinfer.core.telemetry.service, edgeinfer.core.config;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('awscrt', 'awsiot', 'paho', 'edgeinfer.mqtt')"
            " or m.startswith('edgeinfer.mqtt')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
