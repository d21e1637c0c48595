"""Docker createOptions: built as an object, stored in the twin as JSON strings of <= 512 characters.

edgeAgent reads ``createOptions`` then ``createOptions01`` .. ``createOptions07`` (contiguous, at most
8 chunks, 4 KB in all) and concatenates them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ...azure.limits import CREATE_OPTIONS_CHUNK, CREATE_OPTIONS_MAX_CHUNKS
from .errors import ManifestError

KEY = re.compile(r"^(createOptions|createoptions)(\d{2})?$")


def chunk_key(i: int) -> str:
    return "createOptions" if i == 0 else f"createOptions{i:02d}"


def encode(options: dict[str, Any] | str, where: str) -> dict[str, str]:
    """``{"createOptions": ..., "createOptions01": ...}`` for ``options`` (an object or a JSON string)."""
    text = options if isinstance(options, str) else json.dumps(options, separators=(",", ":"), sort_keys=True)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: createOptions is not valid JSON ({exc.msg} at {exc.pos})",
                            "write createOptions as a JSON object") from exc
    if not isinstance(parsed, dict):
        raise ManifestError(f"{where}: createOptions must be a JSON object", "write it as {\"HostConfig\": ...}")
    chunks = [text[i:i + CREATE_OPTIONS_CHUNK] for i in range(0, len(text), CREATE_OPTIONS_CHUNK)] or ["{}"]
    if len(chunks) > CREATE_OPTIONS_MAX_CHUNKS:
        raise ManifestError(f"{where}: createOptions is {len(text)} characters; edgeAgent takes at most "
                            f"{CREATE_OPTIONS_MAX_CHUNKS} x {CREATE_OPTIONS_CHUNK}",
                            "drop options or move configuration into the module twin")
    return {chunk_key(i): c for i, c in enumerate(chunks)}


def decode(settings: dict[str, Any], where: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Join the chunks in ``settings``; return (options or None, problems)."""
    found: dict[int, Any] = {}
    problems: list[str] = []
    for key, value in settings.items():
        if m := KEY.match(key):
            found[int(m.group(2) or 0)] = value
    if not found:
        return None, []
    order = sorted(found)
    if order != list(range(len(order))):
        problems.append(f"{where}: createOptions chunks are not contiguous from createOptions (found "
                        f"{[chunk_key(i) for i in order]})")
    if len(order) > CREATE_OPTIONS_MAX_CHUNKS:
        problems.append(f"{where}: {len(order)} createOptions chunks; edgeAgent reads at most "
                        f"{CREATE_OPTIONS_MAX_CHUNKS}")
    parts = []
    for i in order:
        value = found[i]
        if not isinstance(value, str):
            problems.append(f"{where}: {chunk_key(i)} must be a JSON string in a deployment manifest")
            return None, problems
        if len(value) > CREATE_OPTIONS_CHUNK:
            problems.append(f"{where}: {chunk_key(i)} is {len(value)} characters; a chunk holds at most "
                            f"{CREATE_OPTIONS_CHUNK}")
        parts.append(value)
    try:
        options = json.loads("".join(parts))
    except json.JSONDecodeError as exc:
        problems.append(f"{where}: createOptions is not valid JSON ({exc.msg} at {exc.pos})")
        return None, problems
    if not isinstance(options, dict):
        problems.append(f"{where}: createOptions must be a JSON object")
        return None, problems
    return options, problems
