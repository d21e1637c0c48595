"""Picking and checking a decoder's model outputs: typed errors instead of KeyErrors and reshape failures."""

from __future__ import annotations

import numpy as np

from ..errors import ModelError

_FIX_NAMES = "set the decoder's output names in the model manifest to the model's outputs"
_FIX_LABELS = "make the manifest's labels list match the classes the model predicts"


def pick_output(outputs: dict[str, np.ndarray], name: str | None, what: str) -> np.ndarray:
    """The output called ``name``, or the first one (dicts keep model order) when ``name`` is None."""
    if not outputs:
        raise ModelError(f"the model returned no outputs for the {what}", "check the model file")
    if name is None:
        return np.asarray(next(iter(outputs.values())))
    if name not in outputs:
        raise ModelError(f"{what} output {name!r} is not among the model's outputs {list(outputs)}",
                         _FIX_NAMES)
    return np.asarray(outputs[name])


def squeeze_leading(arr: np.ndarray, ndim: int, what: str) -> np.ndarray:
    """Drop leading size-1 axes until ``arr`` has ``ndim`` axes; anything else is a shape error."""
    while arr.ndim > ndim and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != ndim:
        raise ModelError(f"{what} output has shape {list(arr.shape)}, expected {ndim} axes (batch removed)",
                         "check that the decoder type matches the model")
    return arr


def check_num_classes(num_classes: int, labels: list[str], what: str) -> None:
    """A model that predicts another number of classes than the manifest names would mislabel every result."""
    if labels and num_classes != len(labels):
        raise ModelError(f"{what} output has {num_classes} classes but the manifest lists "
                         f"{len(labels)} labels", _FIX_LABELS)
