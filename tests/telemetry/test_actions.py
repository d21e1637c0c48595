"""Rule actions for real: a subprocess command hook (stdin, timeout) and a webhook against a local
HTTP server, both run off the frame path; alert and local-topic actions through the outbox."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edgeinfer.core.rules.actions import ActionOutcome, ActionRunner
from edgeinfer.core.rules.config import CommandAction, HookConfig, WebhookAction

from .conftest import ServiceFactory
from .synthetic import detection, frame

PAYLOAD = b'{"type":"alert","rule":"r"}'


class Hook:
    """A local webhook receiver: records each POST; answers with ``status`` after ``delay_s``."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        self.status, self.delay_s = 204, 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(hook.delay_s)  # simulates a slow receiver, not synchronisation
                hook.posts.put((dict(self.headers), body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


RunnerFactory = Callable[[dict[str, HookConfig]], tuple[ActionRunner, "queue.Queue[ActionOutcome]"]]


@pytest.fixture
def runners() -> Iterator[RunnerFactory]:
    """Action runners over the given (locally defined) hooks, closed at the end."""
    made: list[ActionRunner] = []

    def make(hooks: dict[str, HookConfig]) -> tuple[ActionRunner, queue.Queue[ActionOutcome]]:
        outcomes: queue.Queue[ActionOutcome] = queue.Queue()
        r = ActionRunner(outcomes.put, hooks=hooks)
        r.start()
        made.append(r)
        return r, outcomes

    yield make
    for r in made:
        r.close()


@pytest.fixture
def runner(runners: RunnerFactory) -> tuple[ActionRunner, queue.Queue[ActionOutcome]]:
    return runners({})


def writer(path: Path, exit_code: int = 0) -> list[str]:
    code = f"import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read()); sys.exit({exit_code})"
    return [sys.executable, "-c", code, str(path)]


def test_command_hook_gets_the_alert_on_stdin(tmp_path: Path, runners: RunnerFactory) -> None:
    out = tmp_path / "alert.json"
    r, outcomes = runners({"write": HookConfig(argv=writer(out))})
    r.submit("r", CommandAction(hook="write"), PAYLOAD)
    o = outcomes.get(timeout=20)
    assert (o.action, o.ok, o.detail) == ("command", True, "exit 0")
    assert out.read_bytes() == PAYLOAD


def test_command_hook_timeout_and_failure_are_reported(tmp_path: Path, runners: RunnerFactory) -> None:
    r, outcomes = runners({
        "sleep": HookConfig(argv=[sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5),
        "fail": HookConfig(argv=writer(tmp_path / "x", exit_code=3)), "gone": HookConfig(argv=["/nonexistent/hook"])})
    t0 = time.monotonic()
    for name in ("sleep", "fail", "gone", "undefined"):
        r.submit("r", CommandAction(hook=name), PAYLOAD)
    first, second, third, fourth = (outcomes.get(timeout=20) for _ in range(4))
    assert not first.ok and "timed out after 0.5s and was killed" in first.detail
    assert time.monotonic() - t0 < 10
    assert not second.ok and "exited with 3" in second.detail
    assert not third.ok and "cannot run /nonexistent/hook" in third.detail
    assert (fourth.ok, fourth.detail) == (False, "refused: no hook named undefined is defined locally")


def test_webhook_posts_json_with_headers(hook: Hook, runner: Any) -> None:
    r, outcomes = runner
    r.submit("r", WebhookAction(url=hook.url, headers={"X-Token": "t0k"}), PAYLOAD)
    headers, body = hook.posts.get(timeout=10)
    assert body == PAYLOAD
    assert headers["Content-Type"] == "application/json" and headers["X-Token"] == "t0k"
    assert outcomes.get(timeout=10).detail == "HTTP 204"


def test_webhook_errors_and_timeouts_are_reported(hook: Hook, runner: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The outcome says "failed", whatever the receiver answered (a 500 and a timeout read the same: an outcome
    may leave the device); the log keeps the detail."""
    r, outcomes = runner
    caplog.set_level("INFO", logger="edgeinfer.core.rules.actions")
    hook.status = 500
    r.submit("r", WebhookAction(url=hook.url), PAYLOAD)
    answered = outcomes.get(timeout=10)
    hook.status, hook.delay_s = 200, 2.0
    r.submit("r", WebhookAction(url=hook.url, timeout_s=0.3), PAYLOAD)
    timed_out = outcomes.get(timeout=10)
    assert (answered.ok, answered.detail) == (timed_out.ok, timed_out.detail) == (False, "POST to 127.0.0.1 failed")
    assert "answered HTTP 500" in caplog.text and "timed out" in caplog.text


def test_a_rule_runs_every_action_kind(tmp_path: Path, hook: Hook, make_service: ServiceFactory) -> None:
    out, events = tmp_path / "hook.json", tmp_path / "events.jsonl"
    rules = [{"name": "door", "when": {"label": "person"}, "over": {"frames": 2}, "actions": [
        {"type": "alert", "severity": "critical"}, {"type": "local_topic", "topic": "site/door"},
        {"type": "command", "hook": "save"}, {"type": "webhook", "url": hook.url}]}]
    service = make_service(f"file:{events}", rules, mode="alerts-only", hooks={"save": {"argv": writer(out)}})
    for i in range(3):
        service.sink.on_result(frame(i, i / 10, [detection("person", 0.9)]))
    _, body = hook.posts.get(timeout=10)
    alert = json.loads(body)
    assert alert["type"] == "alert" and alert["rule"] == "door" and alert["severity"] == "critical"
    assert alert["seq"] == 1 and alert["evidence"]["matched"] == 2 and alert["evidence"]["frame"] == 1
    assert service.drain(10) == 0
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    copies = [e for e in lines if e["type"] == "alert"]
    assert len(copies) == 2 and {e["id"] for e in copies} == {alert["id"]}  # cloud topic + local topic
    service.close()  # waits for the command hook
    assert json.loads(out.read_bytes())["id"] == alert["id"]
    assert service.snapshot().actions == {"command_ok": 1, "webhook_ok": 1}
