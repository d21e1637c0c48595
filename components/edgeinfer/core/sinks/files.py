"""File sinks: ``results.jsonl`` (one line per frame), annotated frames, ``summary.json``."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cv2

from ..annotate import annotate
from ..types import FrameResult
from .base import RunContext

if TYPE_CHECKING:
    from ..config import OutputConfig

log = logging.getLogger(__name__)


class JsonlSink:
    """One JSON object per frame: ``source``, ``frame``, ``ts``, and the task's results in frame pixels."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: TextIO | None = None

    def start(self, ctx: RunContext) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", buffering=1 << 16)  # noqa: SIM115 - closed in close()

    def on_result(self, result: FrameResult) -> None:
        assert self._f is not None
        self._f.write(json.dumps(result.to_dict(), separators=(",", ":")) + "\n")

    def close(self, summary: dict[str, Any]) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _stem(source: str) -> str:
    name = Path(source).stem if "://" not in source else source.split("://", 1)[1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "frame"


class AnnotatedFramesSink:
    """JPEGs with results drawn, named ``<source stem>[-<frame>].jpg``; every Nth frame of a stream."""

    def __init__(self, folder: Path, every: int = 1, quality: int = 90) -> None:
        self.folder, self.every, self.quality = folder, max(1, every), quality
        self.written = 0

    def start(self, ctx: RunContext) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_result(self, result: FrameResult) -> None:
        if result.image is None or result.index % self.every:
            return
        is_still = result.index == 0 and Path(result.source).suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp",
                                                                                   ".webp", ".tif", ".tiff"}
        name = _stem(result.source) + ("" if is_still else f"-{result.index:06d}") + ".jpg"
        cv2.imwrite(str(self.folder / name), annotate(result), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        self.written += 1

    def close(self, summary: dict[str, Any]) -> None:
        summary.setdefault("annotated_frames", self.written)


def file_sinks(output: OutputConfig) -> list[JsonlSink | AnnotatedFramesSink]:
    """The sinks ``output`` asks for: results.jsonl in ``output.dir``, and annotated frames unless turned off."""
    if not output.dir:
        return []
    out = Path(output.dir)
    sinks: list[JsonlSink | AnnotatedFramesSink] = [JsonlSink(out / "results.jsonl")]
    if output.annotate:
        sinks.append(AnnotatedFramesSink(out / "annotated", output.annotate_every))
    return sinks


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
