"""Backends behind one port; see ``registry`` for how they are found."""

from .base import Backend, BackendInfo, BackendOptions, TensorSpec
from .registry import BACKENDS, BY_FORMAT, open_backend, parse_backend

__all__ = ["BACKENDS", "BY_FORMAT", "Backend", "BackendInfo", "BackendOptions", "TensorSpec", "open_backend",
           "parse_backend"]
