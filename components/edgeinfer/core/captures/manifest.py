"""A capture's SageMaker Ground Truth input-manifest line.

One JSON object per frame: ``source-ref`` (the image's URI where it was uploaded) and edgeinfer's metadata under
``edgeinfer-metadata`` (Ground Truth passes other keys through): device, time, reason, model name and version,
the frame (source, index, size) and the local detections (label, score, box in pixels), and the cloud's when
the fallback answered. Concatenated, the lines are a Ground Truth input manifest (``edgeinfer captures pull``).
"""

from __future__ import annotations

import json
from typing import Any

METADATA_KEY = "edgeinfer-metadata"


def manifest_line(source_ref: str, meta: dict[str, Any]) -> bytes:
    return json.dumps({"source-ref": source_ref, METADATA_KEY: meta}, separators=(",", ":"),
                      sort_keys=True).encode() + b"\n"
