"""Side-effect actions of a rule hit, run off the frame path: command hooks and webhooks.

Each runs on one worker thread in order, with its own timeout, so a slow hook never delays frames
or alerts. Command hooks run contained: no shell, a scrubbed environment, their process group killed on
timeout, output capped (see :mod:`.childproc`). A full queue drops the action (logged and counted) rather than
block the pipeline.
"""

from __future__ import annotations

import http.client
import logging
import queue
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..netguard import Blocked, Outbound
from ..netopener import build_opener
from ..redact import redact
from .childproc import MAX_OUTPUT_BYTES, run_hook
from .config import CommandAction, HookConfig, WebhookAction

log = logging.getLogger(__name__)

HookAction = CommandAction | WebhookAction


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action: str  # "command" or "webhook"
    rule: str
    ok: bool
    detail: str  # exit code / HTTP status / error, one line


def run_command(action: HookConfig, payload: bytes, extra_env: dict[str, str] | None = None) -> tuple[bool, str]:
    """Run a locally defined hook contained (no shell, scrubbed environment, group killed on timeout, output capped:
    see :mod:`.childproc`); ``extra_env`` may only add ``EDGEINFER_EVENT_*`` variables."""
    prog = action.argv[0] if action.argv else "hook"
    try:
        res = run_hook(action.argv, payload, action.timeout_s, extra_env)
    except ConfigError as exc:
        return False, f"refused: {exc}"
    except OSError as exc:
        return False, f"cannot run {prog}: {exc.strerror or exc}"
    if res.stdout_truncated or res.stderr_truncated:
        log.info("%s printed more than %d bytes; the rest was discarded", prog, MAX_OUTPUT_BYTES)
    if res.timed_out:
        return False, f"{prog} timed out after {action.timeout_s:g}s and was killed"
    if res.returncode != 0:
        tail = res.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return False, f"{prog} exited with {res.returncode}: {tail[0][:200]}"
    return True, "exit 0"


WEBHOOKS = Outbound(schemes=frozenset({"http", "https"}), setting="remote.webhook_hosts")


def post_webhook(action: WebhookAction, payload: bytes, outbound: Outbound = WEBHOOKS,
                 ssl_context: ssl.SSLContext | None = None) -> tuple[bool, str]:
    """POST the alert. Never to a link-local or metadata address (checked after DNS, and the connection goes to
    the address checked); redirects are not followed. The outcome says ``HTTP <2xx>``, ``failed`` or
    ``blocked``, nothing the receiver answered: the detail is in the log. Allow-lists are checked when the
    config is (``remote.webhook_hosts``), not here."""
    url = action.url
    host = _webhook_host(url)
    try:
        outbound.check_url(url)
        req = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": "application/json", **action.headers})
        with build_opener(outbound, ssl_context).open(req, timeout=action.timeout_s) as resp:
            return True, f"HTTP {resp.status}"
    except Blocked as exc:
        log.info("webhook %s blocked: %s", redact(url), exc)
        return False, f"POST to {host} blocked: {exc.problem}"
    except urllib.error.HTTPError as exc:
        exc.close()
        log.info("webhook %s answered HTTP %d%s", redact(url), exc.code,
                 " (redirects are not followed)" if 300 <= exc.code < 400 else "")
        return False, f"POST to {host} failed"
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        log.info("webhook %s failed: %s", redact(url), redact(str(getattr(exc, "reason", exc))))
        return False, f"POST to {host} failed"


def _webhook_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "the webhook"
    except ValueError:
        return "the webhook"


class ActionRunner:
    """One worker thread running hooks in submission order."""

    def __init__(self, on_outcome: Callable[[ActionOutcome], None] | None = None, max_queue: int = 100,
                 hooks: dict[str, HookConfig] | None = None) -> None:
        self._hooks = dict(hooks or {})  # the local settings' hooks: command actions name one
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
                    hook = self._hooks.get(action.hook)
                    ok, detail = (run_command(hook, payload) if hook is not None
                                  else (False, f"refused: no hook named {action.hook} is defined locally"))
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
