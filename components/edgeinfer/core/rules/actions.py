"""Side-effect actions of a rule hit, run off the frame path: command hooks and webhooks.

Each runs on one worker thread in order, with its own timeout, so a slow hook never delays frames
or alerts. A full queue drops the action (logged and counted) rather than block the pipeline.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from .config import CommandAction, WebhookAction

log = logging.getLogger(__name__)

HookAction = CommandAction | WebhookAction


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: str  # "command" or "webhook"
    rule: str
    ok: bool
    detail: str  # exit code / HTTP status / error, one line


def run_command(action: CommandAction, payload: bytes, env: dict[str, str] | None = None) -> tuple[bool, str]:
    try:
        proc = subprocess.run(action.argv, input=payload, capture_output=True, timeout=action.timeout_s,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        return False, f"{action.argv[0]} timed out after {action.timeout_s:g}s and was killed"
    except OSError as exc:
        return False, f"cannot run {action.argv[0]}: {exc.strerror or exc}"
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return False, f"{action.argv[0]} exited with {proc.returncode}: {tail[0][:200]}"
    return True, "exit 0"


def post_webhook(action: WebhookAction, payload: bytes) -> tuple[bool, str]:
    req = urllib.request.Request(action.url, data=payload, method="POST",
                                 headers={"Content-Type": "application/json", **action.headers})
    try:
        with urllib.request.urlopen(req, timeout=action.timeout_s) as resp:
            return True, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"POST {action.url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"POST {action.url} failed: {reason}"


class ActionRunner:
    """One worker thread running hooks in submission order."""

    def __init__(self, on_outcome: Callable[[ActionOutcome], None] | None = None, max_queue: int = 100) -> None:
        self._queue: queue.Queue[tuple[str, HookAction, bytes] | None] = queue.Queue(max_queue)
        self._on_outcome = on_outcome
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgeinfer-rule-actions", daemon=True)
            self._thread.start()

    def submit(self, rule: str, action: HookAction, payload: bytes) -> bool:
        try:
            self._queue.put_nowait((rule, action, payload))
            return True
        except queue.Full:
            log.warning("rule %s: %s action dropped, %d actions already waiting", rule, action.type,
                        self._queue.maxsize)
            self._report(ActionOutcome(action.type, rule, False, "dropped: action queue full"))
            return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish queued actions (up to ``timeout_s``), then stop."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            log.warning("rule actions still queued at exit were not run")
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            rule, action, payload = job
            try:
                if isinstance(action, CommandAction):
                    ok, detail = run_command(action, payload)
                else:
                    ok, detail = post_webhook(action, payload)
            except Exception as exc:  # a hook must never kill the worker
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            if ok:
                log.info("rule %s: %s action done (%s)", rule, action.type, detail)
            else:
                log.warning("rule %s: %s action failed: %s", rule, action.type, detail)
            self._report(ActionOutcome(action.type, rule, ok, detail))

    def _report(self, outcome: ActionOutcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)
