"""Models rolled back on this device, remembered across restarts so the same bad model is not activated again.

``<state_dir>/rolled-back.json`` (0600): the newest 32 rollbacks by model sha256, with why and when. A
deployment or twin naming such a model again is refused in one line that says so; a new version (another
sha256) is judged afresh. To try the same model again, delete its entry (or the file) on the device.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .sinks.files import write_json_atomic

log = logging.getLogger(__name__)

KEEP = 32
FILE = "rolled-back.json"


class RolledBack:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s): rolled-back models are not remembered until it is fixed or removed",
                      self.path, exc)
            return []
        entries = data.get("models") if isinstance(data, dict) else None
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("sha256"), str)] if entries else []

    def find(self, sha256: str) -> dict[str, Any] | None:
        return next((e for e in self._read() if e["sha256"] == sha256), None)

    def add(self, entry: dict[str, Any]) -> None:
        """Remember one rollback (``sha256``, ``name``, ``version``, ``reason``, ``at``). Never raises: the
        rollback itself has happened; a failure to remember it is logged."""
        entries = [e for e in self._read() if e["sha256"] != entry["sha256"]] + [entry]
        try:
            write_json_atomic(self.path, {"models": entries[-KEEP:]})
            os.chmod(self.path, 0o600)
        except OSError as exc:
            log.error("could not remember the rollback in %s: %s (after a restart the model may be tried again)",
                      self.path, exc)
