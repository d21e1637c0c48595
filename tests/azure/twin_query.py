"""The part of the IoT Hub query language edgeinfer's deployments use, evaluated over twin documents.

``SELECT * | SELECT deviceId FROM devices | devices.modules WHERE c AND c ...`` where each condition is
``path = 'text' | number | path``, ``path != ...`` or ``path IN ['a', 'b']``; a path is dotted, with
``configurations.[[id]]`` for a configuration's entry and ``$version`` names. Anything else raises, so a
query the harness cannot evaluate fails the test instead of matching nothing.
"""

from __future__ import annotations

import re
from typing import Any

QUERY = re.compile(r"^SELECT (\*|deviceId) FROM (devices\.modules|devices)(?: WHERE (.+))?$", re.S)
COND = re.compile(r"^\s*([\w.$\[\]-]+)\s*(=|!=|IN)\s*(.+?)\s*$", re.S)
_MISSING = object()


def _path(doc: Any, path: str) -> Any:
    parts = re.findall(r"\[\[([^\]]+)\]\]|([^.\[\]]+)", path)
    node = doc
    for bracketed, plain in parts:
        key = bracketed or plain
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _value(doc: Any, text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    if text.startswith("["):
        return [v.strip().strip("'") for v in text.strip("[]").split(",") if v.strip()]
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text) if "." in text else int(text)
    if text in ("true", "false"):
        return text == "true"
    return _path(doc, text)


def matches(doc: dict[str, Any], where: str | None) -> bool:
    for cond in re.split(r"\s+AND\s+", where or "", flags=re.I) if where else []:
        m = COND.match(cond.strip("() "))
        if not m:
            raise ValueError(f"the IoT Hub harness cannot evaluate {cond!r}")
        left, op, right = _path(doc, m.group(1)), m.group(2), _value(doc, m.group(3))
        if op == "IN":
            ok = left in right
        elif op == "=":
            ok = left is not _MISSING and left == right
        else:
            ok = left is not _MISSING and right is not _MISSING and left != right
        if not ok:
            return False
    return True


def run(query: str, device_twins: list[dict[str, Any]], module_twins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    m = QUERY.match(query.strip())
    if not m:
        raise ValueError(f"the IoT Hub harness cannot evaluate {query!r}")
    rows = [t for t in (module_twins if m.group(2) == "devices.modules" else device_twins) if matches(t, m.group(3))]
    return rows if m.group(1) == "*" else [{"deviceId": t["deviceId"]} for t in rows]
