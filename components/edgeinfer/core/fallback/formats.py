"""Request and response formats of the cloud endpoint: pluggable codecs.

Built in:

* ``edgeinfer`` (default): the request is the JPEG itself (``Content-Type: image/jpeg``); the answer is
  edgeinfer's own detections JSON, the shape of a ``results.jsonl`` line (``{"detections": [{"label", "score",
  "box": [x1, y1, x2, y2]}]}`` in pixels of the image sent, or ``{"classes": [{"label", "score"}]}``; other
  keys are ignored).
* ``json-b64``: the request is ``{"image": <base64 JPEG>, "width": W, "height": H}`` (application/json), for
  containers whose scoring script reads JSON (Azure ML's usual ``run(raw_data)``); the same answer.

Another model container: a class with ``name``, ``encode`` and ``decode`` (the ``Codec`` protocol) registered
under the entry point group ``edgeinfer.fallback_formats``, then ``fallback.format: <its name>``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import plugins
from ..config import one_line
from ..errors import ConfigError, EdgeInferError
from ..types import Classification, Detection, TaskOutput

FORMATS = "edgeinfer.fallback_formats"


@dataclass(frozen=True, slots=True)
class Request:
    body: bytes
    content_type: str
    accept: str = "application/json"


class Codec(Protocol):
    name: str

    def encode(self, jpeg: bytes, width: int, height: int) -> Request: ...

    def decode(self, body: bytes, content_type: str) -> TaskOutput:
        """The answer as a TaskOutput, boxes in pixels of the image sent. Raises BadAnswer."""
        ...


class BadAnswer(EdgeInferError):
    """The endpoint answered something the format cannot read."""


class _Det(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    label: str = Field(max_length=256)
    score: float = Field(ge=0.0, le=1.0)
    box: tuple[float, float, float, float]


class _Cls(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    label: str = Field(max_length=256)
    score: float = Field(ge=0.0, le=1.0)


class Answer(BaseModel):
    """edgeinfer's detections JSON (a results.jsonl line's task fields)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    detections: list[_Det] = Field(default_factory=list, max_length=10_000)
    classes: list[_Cls] = Field(default_factory=list, max_length=10_000)

    def output(self) -> TaskOutput:
        return TaskOutput(detections=[Detection(d.label, -1, d.score, d.box) for d in self.detections],
                          classes=[Classification(c.label, -1, c.score) for c in self.classes])


def read_answer(body: bytes) -> TaskOutput:
    try:
        return Answer.model_validate_json(body).output()
    except ValidationError as exc:
        raise BadAnswer(f"the endpoint's answer is not edgeinfer's detections JSON: {one_line(exc)[:300]}",
                        "answer {\"detections\": [{\"label\", \"score\", \"box\"}]} or set fallback.format to the "
                        "container's format") from exc


class EdgeInferCodec:
    name = "edgeinfer"

    def encode(self, jpeg: bytes, width: int, height: int) -> Request:
        return Request(jpeg, "image/jpeg")

    def decode(self, body: bytes, content_type: str) -> TaskOutput:
        return read_answer(body)


class JsonB64Codec:
    name = "json-b64"

    def encode(self, jpeg: bytes, width: int, height: int) -> Request:
        doc = {"image": base64.b64encode(jpeg).decode("ascii"), "width": width, "height": height}
        return Request(json.dumps(doc, separators=(",", ":")).encode(), "application/json")

    def decode(self, body: bytes, content_type: str) -> TaskOutput:
        return read_answer(body)


BUILT_IN: dict[str, type] = {"edgeinfer": EdgeInferCodec, "json-b64": JsonB64Codec}


def codec(name: str) -> Codec:
    """The codec ``fallback.format`` names: built in, or an installed plugin's. ConfigError when neither."""
    if name in BUILT_IN:
        return BUILT_IN[name]()
    try:
        cls = plugins.load(FORMATS, name)
    except KeyError:
        known = sorted({*BUILT_IN, *plugins.names(FORMATS)})
        raise ConfigError(f"fallback.format {name!r} is not installed (known: {', '.join(known)})",
                          "use one of those, or install the package that registers it") from None
    return cls()
