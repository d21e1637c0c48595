"""Every number in the one config schema has a lower and an upper bound, NaN and infinity are
refused with a one-line ConfigError naming the key, and the documented maxima (and minima) run
through the code that consumes them with no OverflowError: waits, backoff, the MQTT client,
rule actions, source pacing, the telemetry service and the CLI.

The fields are found by walking ``EdgeInferConfig.model_json_schema()``, so a field added later
without bounds fails ``test_every_number_in_the_schema_is_bounded``.
"""

from __future__ import annotations

import copy
import http.server
import math
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edgeinfer.core import config as cfgmod
from edgeinfer.core.config import EdgeInferConfig
from edgeinfer.core.errors import ConfigError
from edgeinfer.core.rules.actions import post_webhook, run_command
from edgeinfer.core.rules.config import HookConfig, RuleConfig, WebhookAction
from edgeinfer.core.rules.engine import RuleEngine
from edgeinfer.core.telemetry.config import RetryConfig, TelemetryConfig
from edgeinfer.core.telemetry.delivery import backoff_delay
from edgeinfer.core.telemetry.service import TelemetryService

from ..telemetry.synthetic import detection, frame, run_context

EDGEINFER = str(Path(sys.executable).with_name("edgeinfer"))

#: A valid object for each schema $def that has required keys (a new one must be added here).
MINIMAL: dict[str, dict[str, Any]] = {
    "RuleConfig": {"name": "r"},
    "AlertAction": {"type": "alert"},
    "LocalTopicAction": {"type": "local_topic", "topic": "site/door"},
    "CommandAction": {"type": "command", "hook": "h"},
    "WebhookAction": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
    "HookConfig": {"argv": ["true"]},
    "SageMakerEndpoint": {"type": "sagemaker", "endpoint_name": "faces", "region": "eu-west-1"},
    "AzureMLEndpoint": {"type": "azureml", "scoring_uri": "https://faces.westeurope.inference.ml.azure.com/score"},
    "S3Store": {"type": "s3", "bucket": "my-artifacts", "region": "eu-west-1"},
    "BlobStore": {"type": "azureblob", "account_name": "edgecaptures"},
    "StreamConfig": {"id": "s", "uri": "synthetic:64x64"},
}
#: What else the config must hold for a MINIMAL example to be valid (a command action names a defined hook).
NEEDS: dict[str, dict[str, Any]] = {"CommandAction": {"hooks": {"h": {"argv": ["true"]}}}}
#: Keys that are checked against a sibling: (sibling, "minimum"|"maximum") set alongside.
COMPANIONS: dict[str, tuple[str, str]] = {
    "telemetry.retry.initial_s": ("max_s", "maximum"),  # max_s >= initial_s
    "telemetry.retry.max_s": ("initial_s", "minimum"),
    "rules.0.when.max_count": ("min_count", "minimum"),  # max_count >= min_count
    "fallback.band.low": ("high", "maximum"),  # low <= high
    "fallback.band.high": ("low", "minimum"),
    "fallback.labels.h.low": ("high", "maximum"),
    "fallback.labels.h.high": ("low", "minimum"),
    "sources.0.rules.0.when.max_count": ("min_count", "minimum"),
    "sources.0.roi.x": ("w", "minimum"),  # x + w <= 1
    "sources.0.roi.w": ("x", "minimum"),
    "sources.0.roi.y": ("h", "minimum"),
    "sources.0.roi.h": ("y", "minimum"),
}


@dataclass
class NumField:
    path: tuple[str | int, ...]  # where the value goes in the config data
    loc: str  # how pydantic names it (a discriminated union adds the tag)
    node: dict[str, Any]  # the number's schema
    base: dict[str, Any]  # the smallest valid config that holds it
    integer: bool = field(init=False)

    def __post_init__(self) -> None:
        self.integer = self.node["type"] == "integer"

    @property
    def key(self) -> str:
        return ".".join(str(p) for p in self.path)

    def low(self) -> float:
        return self.node["minimum"] if "minimum" in self.node else self.node["exclusiveMinimum"]

    def high(self) -> float:
        return self.node["maximum"] if "maximum" in self.node else self.node["exclusiveMaximum"]

    def smallest(self) -> float:
        if "minimum" in self.node:
            return self.node["minimum"]
        return self.low() + 1 if self.integer else math.nextafter(self.low(), math.inf)

    def largest(self) -> float:
        if "maximum" in self.node:
            return self.node["maximum"]
        return self.high() - 1 if self.integer else math.nextafter(self.high(), -math.inf)

    def just_below(self) -> float:
        if "minimum" not in self.node:
            return self.low()
        return self.low() - 1 if self.integer else math.nextafter(self.low(), -math.inf)

    def just_above(self) -> float:
        if "maximum" not in self.node:
            return self.high()
        return self.high() + 1 if self.integer else math.nextafter(self.high(), math.inf)


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for i, step in enumerate(path[:-1]):
        nxt: Any = [] if isinstance(path[i + 1], int) else {}
        if isinstance(step, int):
            while len(data) <= step:
                data.append(copy.deepcopy(nxt))
            data = data[step]
        else:
            data = data.setdefault(step, nxt)
    last = path[-1]
    if isinstance(last, int):
        while len(data) <= last:
            data.append(None)
    data[last] = value


def numeric_fields() -> list[NumField]:
    schema = EdgeInferConfig.model_json_schema()
    defs = schema["$defs"]
    found: list[NumField] = []

    def walk(node: dict[str, Any], path: tuple[str | int, ...], loc: tuple[str | int, ...],
             base: dict[str, Any]) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            target = defs[name]
            if target.get("required"):
                assert name in MINIMAL, f"schema $def {name} has required keys: add a valid example to MINIMAL"
                base = copy.deepcopy(base)
                _set(base, path, copy.deepcopy(MINIMAL[name]))
                base.update(copy.deepcopy(NEEDS.get(name, {})))
            walk(target, path, loc, base)
            return
        if "discriminator" in node:
            for tag, ref in node["discriminator"]["mapping"].items():
                walk({"$ref": ref}, path, (*loc, tag), base)
            return
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            walk(branch, path, loc, base)
        kind = node.get("type")
        if kind in ("integer", "number"):
            found.append(NumField(path, ".".join(str(p) for p in loc), node, base))
        elif kind == "array" and "items" in node:
            walk(node["items"], (*path, 0), (*loc, 0), base)
        elif kind == "object" and isinstance(node.get("additionalProperties"), dict):  # hooks: {NAME: ...}
            walk(node["additionalProperties"], (*path, "h"), (*loc, "h"), base)
        for name, prop in node.get("properties", {}).items():
            walk(prop, (*path, name), (*loc, name), base)

    walk(schema, (), (), {})
    return found


FIELDS = numeric_fields()
BY_KEY = {f.key: f for f in FIELDS}


def config_with(f: NumField, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(f.base)
    _set(data, f.path, value)
    generic = re.sub(r"\.\d+\.", ".0.", f.key)
    if generic in COMPANIONS:
        sibling, bound = COMPANIONS[generic]
        other = BY_KEY[".".join(str(p) for p in (*f.path[:-1], sibling))]
        _set(data, other.path, other.smallest() if bound == "minimum" else other.largest())
    return data


def read_back(cfg: EdgeInferConfig, path: tuple[str | int, ...]) -> Any:
    data: Any = cfg.model_dump(mode="python")
    for step in path:
        data = data[step]
    return data


def assert_waitable(seconds: float) -> None:
    """``seconds`` is a timeout CPython's waits take: the same conversion as Event.wait, on a free lock."""
    lock = threading.Lock()
    assert lock.acquire(timeout=seconds)
    lock.release()


# -- the schema ---------------------------------------------------------------------------------


def test_the_walk_finds_the_numbers_of_every_section() -> None:
    keys = set(BY_KEY)
    for expected in ("max_frames", "source.fps", "pipeline.max_wait_ms", "backend.threads", "backend.gpu_id",
                     "telemetry.retry.max_s", "telemetry.drain_timeout_s", "telemetry.health_interval_s",
                     "rules.0.cooldown_s", "rules.0.over.window_s", "rules.0.when.max_count",
                     "output.results_max_bytes"):
        assert expected in keys, expected
    assert {"hooks.h.timeout_s", "rules.0.actions.0.webhook.timeout_s"} <= {f.loc for f in FIELDS}
    assert len(FIELDS) >= 40


def test_every_number_in_the_schema_is_bounded() -> None:
    unbounded = [f.loc for f in FIELDS if not ({"minimum", "exclusiveMinimum"} & f.node.keys()
                                               and {"maximum", "exclusiveMaximum"} & f.node.keys())]
    assert not unbounded, f"numeric config keys without a lower and an upper bound: {unbounded}"
    assert all(f.smallest() <= f.largest() for f in FIELDS)


# -- refused with a one-line ConfigError that names the key -------------------------------------


def refused_line(data: dict[str, Any], f: NumField) -> str:
    with pytest.raises(ConfigError) as err:
        cfgmod.validate(data)
    text = str(err.value)
    assert "\n" not in text and f"{f.loc}:" in text, text
    with pytest.raises(ConfigError) as err:  # the same through a remote config patch
        cfgmod.apply_patch(EdgeInferConfig(), data)
    assert f"{f.loc}:" in str(err.value)
    return text


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.loc)
def test_non_finite_and_huge_values_are_refused(f: NumField) -> None:
    for value in (math.inf, -math.inf, math.nan, 1e308, -1e308, 10**400, "1e308", "inf"):
        refused_line(config_with(f, value), f)
    assert "finite number" in refused_line(config_with(f, math.nan), f)


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.loc)
def test_bounds_are_exact_and_kept(f: NumField) -> None:
    for value in (f.smallest(), f.largest()):
        cfg = cfgmod.validate(config_with(f, value))
        assert read_back(cfg, f.path) == value
    for value in (f.just_below(), f.just_above()):
        refused_line(config_with(f, value), f)


def test_a_yaml_file_with_inf_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "site.yaml"
    p.write_text("telemetry:\n  retry: {max_s: .inf}\n  send_timeout_s: 1e300\nsource: {fps: 1.0e-300}\n")
    with pytest.raises(ConfigError) as err:
        cfgmod.validate(cfgmod.load_file(p), f"config {p}")
    text = str(err.value)
    assert "\n" not in text
    for key in ("telemetry.retry.max_s: Input should be a finite number", "telemetry.send_timeout_s",
                "source.fps"):
        assert key in text


@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "601", "-1"])
def test_cli_drain_timeout_goes_through_the_config(value: str, tmp_path: Path) -> None:
    proc = subprocess.run([EDGEINFER, "run", "--drain-timeout", value,
                           "--source", "synthetic:64x48:2", "--state-dir", str(tmp_path), "-q"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "telemetry.drain_timeout_s" in proc.stderr and "Traceback" not in proc.stderr


# -- the maxima (and minima) through the code that uses them ------------------------------------


def bound(key: str, which: str = "max") -> float:
    f = BY_KEY[key]
    return f.largest() if which == "max" else f.smallest()


def telemetry_max(**extra: Any) -> TelemetryConfig:
    keys = [k for k in BY_KEY if k.startswith("telemetry.")]
    data: dict[str, Any] = {}
    for k in keys:
        _set(data, tuple(k.split(".")[1:]), bound(k))
    return TelemetryConfig.model_validate({**data, **extra})


def test_the_lock_probe_sees_what_a_wait_would_refuse() -> None:
    for seconds in (1e308, 1e300, threading.TIMEOUT_MAX * 2):
        with pytest.raises(OverflowError):
            assert_waitable(seconds)
    with pytest.raises(OverflowError):
        threading.Event().wait(1e308)


def test_every_time_setting_at_its_maximum_is_a_timeout_cpython_takes() -> None:
    for f in FIELDS:
        if f.key.endswith("_s") or f.key.endswith("_ms"):
            assert_waitable(f.largest())
    assert_waitable(1.0 / bound("source.fps", "min"))  # the longest pacing wait


@pytest.mark.parametrize("retry", [RetryConfig(), RetryConfig(initial_s=bound("telemetry.retry.initial_s"),
                                                                max_s=bound("telemetry.retry.max_s"),
                                                                multiplier=bound("telemetry.retry.multiplier"),
                                                                jitter=bound("telemetry.retry.jitter"))],
                         ids=["defaults", "maxima"])
def test_backoff_at_the_maxima_stays_a_waitable_delay(retry: RetryConfig) -> None:
    rng = random.Random(1)
    for failures in range(1, 300):
        delay = backoff_delay(failures, retry, rng)
        assert 0 <= delay <= retry.max_s
        assert_waitable(delay)


def test_backoff_after_days_of_failures() -> None:
    rng = random.Random(1)
    for retry in (RetryConfig(), RetryConfig(multiplier=bound("telemetry.retry.multiplier"))):
        for failures in (1000, 1100, 10_000, 10**9):
            assert backoff_delay(failures, retry, rng) <= retry.max_s


def test_mqtt_client_takes_the_maxima_and_1e300_was_the_overflow() -> None:
    pytest.importorskip("awscrt")
    from edgeinfer.mqtt.client import ClientHooks, build_client
    from edgeinfer.mqtt.endpoint import parse_uri

    hooks = ClientHooks(*(lambda *_: None,) * 4)
    ep = parse_uri("mqtt://127.0.0.1:1", "thing")
    for cfg in (telemetry_max(), TelemetryConfig(send_timeout_s=bound("telemetry.send_timeout_s", "min"),
                                                 retry={"initial_s": bound("telemetry.retry.initial_s", "min"),
                                                        "max_s": bound("telemetry.retry.max_s", "min")})):
        client = build_client(ep, cfg, hooks)  # not started: nothing connects
        del client
    with pytest.raises(OverflowError):  # the reproduced traceback, had validation let 1e300 through
        build_client(ep, TelemetryConfig.model_construct(**{**TelemetryConfig().__dict__, "send_timeout_s": 1e300}),
                     hooks)


class _Hook(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        _Hook.hits.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_url() -> Iterator[str]:
    _Hook.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_rule_actions_at_the_longest_timeout(hook_url: str) -> None:
    top = bound("hooks.h.timeout_s")
    assert top == bound("rules.0.actions.0.timeout_s")
    assert run_command(HookConfig(argv=["true"], timeout_s=top), b"{}") == (True, "exit 0")
    assert post_webhook(WebhookAction(url=hook_url, timeout_s=top), b"{}") == (True, "HTTP 200")
    with pytest.raises(OverflowError):  # what a webhook timeout of 1e308 did
        post_webhook(WebhookAction.model_construct(type="webhook", url=hook_url, timeout_s=1e308, headers={}), b"{}")


def test_rule_engine_at_the_longest_window_and_cooldown() -> None:
    rules = [RuleConfig.model_validate({"name": "w", "over": {"window_s": bound("rules.0.over.window_s")},
                                        "cooldown_s": bound("rules.0.cooldown_s")}),
             RuleConfig.model_validate({"name": "n", "over": {"frames": bound("rules.0.over.frames")},
                                        "hysteresis": {"clear_frames": bound("rules.0.hysteresis.clear_frames")},
                                        "when": {"min_count": 1, "max_count": bound("rules.0.when.max_count")}})]
    engine = RuleEngine(rules)
    hits = [h.rule.name for i in range(80)
            for h in engine.evaluate(frame(i, 1_700_000_000.0 + 100 * i, [detection()]))]
    # frame time: the hour-long window fires once and the day-long cooldown holds the rest; a monotonic
    # clock (8000 s of frames seen in a moment) fires nothing. Never more, never the million-frame rule.
    assert hits in (["w"], [])


class _ThreadErrors:
    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.seen = threading.Event()

    def __call__(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            self.errors.append(args.exc_value)
        self.seen.set()


def _stack(thread: threading.Thread) -> list[str]:
    frame_ = sys._current_frames().get(thread.ident or -1)
    names = []
    while frame_ is not None:
        names.append(frame_.f_code.co_name)
        frame_ = frame_.f_back
    return names


def blocked_in(thread: threading.Thread, *funcs: str, timeout_s: float = 10.0) -> bool:
    """Poll (with a deadline) until ``thread`` sits in a threading wait called from one of ``funcs``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and thread.is_alive():
        names = _stack(thread)
        if "wait" in names and any(f in names for f in funcs):
            return True
        time.sleep(0.005)  # polls another thread's stack; bounded by the deadline
    return False


def _thread_named(name: str) -> threading.Thread:
    return next(t for t in threading.enumerate() if t.name == name)


def test_telemetry_service_at_the_maxima_delivers_and_drains_at_once(tmp_path: Path, hook_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    errors = _ThreadErrors()
    monkeypatch.setattr(threading, "excepthook", errors)
    marker = tmp_path / "hook-ran"
    top = bound("hooks.h.timeout_s")
    tel = telemetry_max(transport=f"file:{tmp_path / 'events.jsonl'}", mode="results")
    cfg = EdgeInferConfig.model_validate({
        "device_id": "dev-1", "state_dir": str(tmp_path / "state"), "telemetry": tel.model_dump(),
        "hooks": {"touch": {"argv": ["touch", str(marker)], "timeout_s": top}},
        "rules": [{"name": "door", "cooldown_s": bound("rules.0.cooldown_s"),
                   "actions": [{"type": "alert"}, {"type": "command", "hook": "touch"},
                               {"type": "webhook", "url": hook_url, "timeout_s": top}]}]})
    service = TelemetryService.from_config(cfg, run_context())
    service.start()
    try:
        assert blocked_in(_thread_named("edgeinfer-telemetry-health"), "_run"), "health thread is not waiting"
        for i in range(20):
            service.sink.on_result(frame(i, 1_700_000_000.0 + i, [detection()]))
        service.sink.close({})
        t0 = time.monotonic()
        assert service.drain(cfg.telemetry.drain_timeout_s) == 0
        assert time.monotonic() - t0 < 30, "a drain with nothing left must not use its whole timeout"
    finally:
        service.close()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert sum('"type":"result"' in line for line in lines) == 20
    assert sum('"type":"alert"' in line for line in lines) == 1
    assert marker.exists() and len(_Hook.hits) == 1
    assert not errors.errors, errors.errors


def test_a_health_interval_past_the_bound_was_a_dead_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness above would see it: 1e308 (refused by the schema) kills the health thread."""
    errors = _ThreadErrors()
    monkeypatch.setattr(threading, "excepthook", errors)
    cfg = EdgeInferConfig.model_validate({"telemetry": {"transport": f"file:{tmp_path / 'e.jsonl'}"},
                                          "state_dir": str(tmp_path)})
    cfg = cfg.model_copy(update={"telemetry": cfg.telemetry.model_copy(update={"health_interval_s": 1e308})})
    service = TelemetryService.from_config(cfg, run_context())
    service.start()
    try:
        assert errors.seen.wait(10)
    finally:
        service.close()
    assert any(isinstance(e, OverflowError) for e in errors.errors)


def _pace_in_thread(fps: float) -> tuple[threading.Thread, list[BaseException], Callable[[], None]]:
    from edgeinfer.core.sources import open_source  # here: the pacing tests alone need the source stack

    src = open_source("synthetic:64x48", fps=fps)
    errors: list[BaseException] = []
    got_one = threading.Event()

    def read() -> None:
        try:
            for _ in src:
                got_one.set()
        except BaseException as exc:  # the test reports whatever ended the reader
            errors.append(exc)
            got_one.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert got_one.wait(10)
    return t, errors, src.close


@pytest.mark.parametrize("key, which", [("source.fps", "min"), ("source.fps", "max")])
def test_source_pacing_at_the_fps_bounds_waits_and_closes(key: str, which: str) -> None:
    t, errors, close = _pace_in_thread(bound(key, which))
    if which == "min":
        assert blocked_in(t, "_pace", "_sleep"), f"the reader is not pacing: {errors}"
    close()
    t.join(10)
    assert not t.is_alive() and not errors, errors


def test_cli_run_at_the_longest_drain_timeout_ends_promptly(tmp_path: Path) -> None:
    top = bound("telemetry.drain_timeout_s")
    t0 = time.monotonic()
    proc = subprocess.run([EDGEINFER, "run", "--drain-timeout", f"{top:g}",
                           "--source", "synthetic:64x48:3", "--state-dir", str(tmp_path / "state"),
                           "--telemetry", f"file:{tmp_path / 'events.jsonl'}", "--out", str(tmp_path / "out"), "-q"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - t0 < 90 and (tmp_path / "events.jsonl").exists()
