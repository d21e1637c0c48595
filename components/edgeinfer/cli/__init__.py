"""`edgeinfer ...`: a thin face over the core and the adapters. Errors print one line and exit non-zero.

The app lives in ``cli/root.py``; ``main`` (the console script) loads it with the cyclic garbage collector
paused (``core/heap.loading``), so this module imports nothing heavy itself.
"""

from __future__ import annotations

import sys
from typing import Any

from ..core.heap import loading


def main() -> None:
    with loading():  # start-up allocates only what lives on: no collector passes over it (~60 ms of a cold start)
        from ..core.errors import EdgeInferError
        from .common import print_error
        from .root import app
    try:
        app()
    except EdgeInferError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def __getattr__(name: str) -> Any:
    if name == "app":  # `from edgeinfer.cli import app` (CliRunner tests) loads the app on demand
        from .root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
