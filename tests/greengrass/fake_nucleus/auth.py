"""IPC authorization as the nucleus does it: a component's ``accessControl`` configuration, per
namespace, with ``{iot:thingName}`` substituted, ``*`` as a glob, and (for the MQTT proxy) MQTT
wildcards ``+``/``#`` in policy resources."""

from __future__ import annotations

import fnmatch
from typing import Any

THING_VARIABLE = "{iot:thingName}"


def mqtt_match(pattern: str, topic: str) -> bool:
    """Does MQTT filter ``pattern`` cover ``topic`` (which may itself be a filter, compared level by level)?"""
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if level != "+" and level != t[i]:
            return False
    return len(p) == len(t)


def allowed(acl: dict[str, Any], thing: str, namespace: str, operation: str, resource: str,
            mqtt_style: bool = False) -> bool:
    for policy in (acl.get(namespace) or {}).values():
        ops = policy.get("operations") or []
        if operation not in ops and "*" not in ops:
            continue
        for res in policy.get("resources") or []:
            res = str(res).replace(THING_VARIABLE, thing)
            if res == resource or fnmatch.fnmatchcase(resource, res):
                return True
            if mqtt_style and mqtt_match(res, resource):
                return True
    return False
