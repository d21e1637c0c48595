"""HEALTHCHECK of the edgeinfer IoT Edge module image (stdlib only).

When the module serves (the default: ``serve:`` in the local settings, docs/observability.md), it announces its
server in ``<state>/serve.json`` ({url, pid}); a live module process with that pid is then asked ``GET /healthz``
and its answer decides (200: healthy; anything else, or no answer in 5 s: unhealthy, with the reason it gives).
Without a server (``serve: {enabled: false}``, or an announcement from a process that is gone), the fallback:

Healthy when a live ``python -m edgeinfer.azure`` process with this container's state dir exists and,
once the module runs a configuration (``<state>/azure/last-good.json`` exists), its telemetry heartbeat
is fresh: a running session stores a health event every ``telemetry.health_interval_s`` (60 s by
default) in ``<state>/outbox.db``, so the outbox's newest write is at most that old. Stale after
``$EDGEINFER_HEALTH_STALE_S`` seconds, else 3 intervals + 30 s (counted from the process start at the
earliest): a hung pipeline or a state volume that cannot be written. A module waiting for its first
model (no configuration applied yet) is alive, hence healthy. Prints one line, exits 0 or 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ENTRY = ["-m", "edgeinfer.azure"]
DEFAULT_INTERVAL_S = 60.0
ANNOUNCE = "serve.json"  # edgeinfer.core.serve.endpoints.ANNOUNCE_FILE
HTTP_TIMEOUT_S = 5.0


def _state_dir() -> Path:
    return Path(os.environ.get("EDGEINFER_STATE_DIR", "/var/lib/edgeinfer/state"))


def _module_process(state: Path) -> tuple[int, float] | None:
    """(pid, start time) of a live module process whose state dir is ``state``, or None."""
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not any([a.decode(errors="replace") for a in argv[i:i + 2]] == ENTRY for i in range(len(argv))):
                continue
            env = dict(kv.split(b"=", 1) for kv in (entry / "environ").read_bytes().split(b"\0") if b"=" in kv)
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile, or another user's process
            continue
        if Path(env.get(b"EDGEINFER_STATE_DIR", b"/var/lib/edgeinfer/state").decode()) != state:
            continue
        if stat[0] in ("Z", "X"):  # exited, not yet reaped
            continue
        return int(entry.name), boot + int(stat[19]) / ticks
    return None


def _interval_s(last_good: Path) -> float:
    try:
        desired = json.loads(last_good.read_text())["desired"]
        return float(desired.get("telemetry", {}).get("health_interval_s", DEFAULT_INTERVAL_S))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_INTERVAL_S


def _served(state: Path, pid: int) -> str | None:
    """The module's server URL when ``pid`` announced one, else None."""
    try:
        doc = json.loads((state / ANNOUNCE).read_text())
        return str(doc["url"]) if int(doc["pid"]) == pid else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _healthz(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=HTTP_TIMEOUT_S) as r:
            body, code = r.read(4096), r.status
    except urllib.error.HTTPError as exc:
        body, code = exc.read(4096), exc.code
    except OSError as exc:
        return False, f"did not answer {url}/healthz: {exc}"
    try:
        doc = json.loads(body)
        said = f"{doc.get('state')}" + (f": {doc['reason']}" if doc.get("reason") else "")
    except ValueError:
        said = body.decode(errors="replace").strip()[:200]
    return code == 200, f"answers {url}/healthz {code} ({said})"


def check(state: Path, now: float | None = None) -> tuple[bool, str]:
    now = time.time() if now is None else now
    found = _module_process(state)
    if found is None:
        return False, f"no live `python -m edgeinfer.azure` process with state dir {state}"
    pid, started = found
    url = _served(state, pid)
    if url is not None:
        ok, why = _healthz(url)
        return ok, f"module pid {pid} {why}"
    last_good = state / "azure" / "last-good.json"
    if not last_good.exists():
        return True, f"module pid {pid} alive, no configuration applied yet (waiting)"
    stale_s = float(os.environ.get("EDGEINFER_HEALTH_STALE_S") or 3 * _interval_s(last_good) + 30)
    writes = [p.stat().st_mtime for p in state.glob("outbox.db*") if p.is_file()]
    heartbeat = max([started, *writes])
    age = now - heartbeat
    if age > stale_s:
        return False, f"module pid {pid}: no telemetry heartbeat for {age:.0f}s (more than {stale_s:.0f}s)"
    return True, f"module pid {pid} alive, heartbeat {age:.1f}s ago"


def main() -> int:
    ok, why = check(_state_dir())
    sys.stdout.write(("healthy: " if ok else "unhealthy: ") + why + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
