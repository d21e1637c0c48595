"""Backends behind one port; see ``registry`` for how they are found."""

from .base import Backend, BackendInfo, BackendOptions, TensorSpec
from .registry import open_backend, parse_backend

__all__ = ["Backend", "BackendInfo", "BackendOptions", "TensorSpec", "open_backend", "parse_backend"]
