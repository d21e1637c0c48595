"""Classification: logits or probabilities -> top-k labels."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..geometry import Transform
from ..types import Classification, TaskOutput
from .base import DecoderBase, label_of, sigmoid, softmax
from .outputs import check_num_classes, pick_output


class ClassificationDecoder(DecoderBase):
    """``[C]`` (or ``[1, C]``) logits/probabilities -> the ``top_k`` best classes, best first.

    ``activation``: softmax (logits of exclusive classes), sigmoid (multi-label logits) or none (the
    model already outputs probabilities). Classes scoring below ``score_threshold`` are dropped.
    """

    type: Literal["classification"] = "classification"
    task: str = "classification"
    output: str | None = None
    activation: Literal["softmax", "sigmoid", "none"] = "softmax"
    top_k: int = Field(default=5, gt=0)
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0)

    def decode(self, outputs: dict[str, np.ndarray], transform: Transform, labels: list[str]) -> TaskOutput:
        raw = pick_output(outputs, self.output, "classification").astype(np.float32, copy=False)
        if sum(d != 1 for d in raw.shape) > 1:  # [C], [1, C], [1, C, 1, 1] are one vector; [2, C] is not
            raise ModelError(f"classification output has shape {list(raw.shape)}, expected [C]",
                             "check that the decoder type and output name match the model")
        logits = raw.reshape(-1)
        check_num_classes(len(logits), labels, "classification")
        if self.activation == "softmax":
            probs = softmax(logits)
        elif self.activation == "sigmoid":
            probs = sigmoid(logits)
        else:
            probs = logits
        order = np.argsort(-probs, kind="stable")[: self.top_k]
        return TaskOutput(classes=[
            Classification(label=label_of(labels, int(i)), class_id=int(i), score=float(probs[i]))
            for i in order
            if probs[i] >= self.score_threshold
        ])
