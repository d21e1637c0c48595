"""One progress protocol for long work (model downloads and conversion, wheel bundles, engine builds).

``progress(message, done=None, total=None)``: what is happening, and where counts make sense how far along
(bytes, steps); ``total`` None when unknown. The CLI shows it with Rich; services log it or ignore it.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, message: str, done: int | None = None, total: int | None = None, /) -> None: ...


def no_progress(message: str, done: int | None = None, total: int | None = None, /) -> None:
    """A ``Progress`` that shows nothing."""
