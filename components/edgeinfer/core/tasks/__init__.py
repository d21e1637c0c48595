"""Task decoders. ``DecoderConfig`` is the discriminated union the manifest's ``decoder`` block validates into."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .base import DecoderBase
from .boxes_scores import BoxesScoresDecoder
from .classification import ClassificationDecoder
from .picodet import PicoDetDecoder
from .segmentation import SegmentationDecoder
from .ssd import SsdAnchorDecoder
from .yolo import YoloV5Decoder, YoloV8Decoder

DecoderConfig = Annotated[
    Union[  # noqa: UP007 - pydantic discriminated unions read clearer this way
        SsdAnchorDecoder, YoloV5Decoder, YoloV8Decoder, BoxesScoresDecoder,
        ClassificationDecoder, SegmentationDecoder, PicoDetDecoder,
    ],
    Field(discriminator="type"),
]

TASKS = ("detection", "classification", "segmentation")

__all__ = [
    "TASKS", "BoxesScoresDecoder", "ClassificationDecoder", "DecoderBase", "DecoderConfig",
    "PicoDetDecoder", "SegmentationDecoder", "SsdAnchorDecoder", "YoloV5Decoder", "YoloV8Decoder",
]
