"""Classification: logits or probabilities -> top-k labels."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..geometry import Transform
from ..types import TaskOutput
from .base import DecoderBase


class ClassificationDecoder(DecoderBase):
    type: Literal["classification"] = "classification"
    task: str = "classification"
    output: str | None = None
    activation: Literal["softmax", "sigmoid", "none"] = "softmax"
    top_k: int = Field(default=5, gt=0)
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raise NotImplementedError
