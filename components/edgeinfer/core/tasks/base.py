"""The decoder port: model outputs for one frame -> boxes, classes or masks in frame pixels.

A decoder is its own pydantic config (``type`` is the discriminator), as in Frigate's detector
plugins: the manifest's ``decoder`` block validates straight into an object that can decode.
Decoders are pure numpy and never see the backend.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..geometry import Transform
from ..types import TaskOutput


class DecoderBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the task this decoder serves: detection, classification or segmentation
    task: str = ""

    @abstractmethod
    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        """Decode one frame. ``outputs`` maps output name -> array WITHOUT the batch dimension."""

    def with_threshold(self, score_threshold: float) -> DecoderBase:
        """A copy with another score threshold (detection and classification decoders have one)."""
        if "score_threshold" not in type(self).model_fields:
            return self
        return self.model_copy(update={"score_threshold": score_threshold})


def label_of(labels: list[str], class_id: int) -> str:
    return labels[class_id] if 0 <= class_id < len(labels) else str(class_id)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -80.0, 80.0)
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
