"""IoT Hub / IoT Edge limits that the module and the manifest tooling enforce before the service would.

Sources: IoT Hub quotas (device-to-cloud message 256 KB, direct-method payload 128 KB), module twin
rules (desired and reported properties 32 KB each, keys without ``.``, ``$`` or spaces, depth <= 10),
and edgeAgent's createOptions chunks (512 characters each, at most 8).
"""

from __future__ import annotations

import json
import re
from typing import Any

TWIN_PROPERTIES_MAX_BYTES = 32 * 1024
D2C_MESSAGE_MAX_BYTES = 256 * 1024
METHOD_PAYLOAD_MAX_BYTES = 128 * 1024
TWIN_MAX_DEPTH = 10
TWIN_KEY_MAX_BYTES = 1024
CREATE_OPTIONS_CHUNK = 512
CREATE_OPTIONS_MAX_CHUNKS = 8
#: What edgeAgent's schema accepts as a module name (the twin key under ``modules``).
MODULE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RESERVED_MODULE_NAMES = frozenset({"edgeAgent", "edgeHub", "$edgeAgent", "$edgeHub"})
_BAD_KEY_CHARS = re.compile(r"[.$ \x00-\x1f\x7f-\x9f]")


def json_size(doc: Any) -> int:
    """Bytes of ``doc`` as compact UTF-8 JSON: how IoT Hub counts twin and payload sizes."""
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def twin_problems(doc: dict[str, Any], where: str = "properties") -> list[str]:
    """Why ``doc`` cannot be a twin's desired/reported properties (empty list when it can)."""
    problems: list[str] = []

    def walk(node: Any, path: str, depth: int) -> None:
        if depth > TWIN_MAX_DEPTH:
            problems.append(f"{path} nests deeper than {TWIN_MAX_DEPTH} levels")
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if _BAD_KEY_CHARS.search(key) or len(key.encode()) > TWIN_KEY_MAX_BYTES:
                    problems.append(f"{path}: key {key!r} is not allowed in a twin (no '.', '$', spaces, "
                                    f"control characters; at most {TWIN_KEY_MAX_BYTES} bytes)")
                walk(value, f"{path}.{key}", depth + 1)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]", depth + 1)

    walk(doc, where, 0)
    size = json_size(doc)
    if size > TWIN_PROPERTIES_MAX_BYTES:
        problems.append(f"{where} is {size} bytes; a twin allows {TWIN_PROPERTIES_MAX_BYTES}")
    return problems


def module_name_problem(name: str) -> str | None:
    if name in RESERVED_MODULE_NAMES:
        return f"module name {name!r} is reserved for the IoT Edge runtime"
    if not MODULE_NAME.match(name):
        return f"module name {name!r} must be 1-64 characters of letters, digits, '-' and '_'"
    return None
