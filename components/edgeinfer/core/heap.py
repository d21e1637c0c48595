"""Keep the start-up heap out of the cyclic garbage collector while a run is live.

After start-up a process holds tens of thousands of long-lived objects (modules, the model and
its runtime, the SDK clients) that the collector would walk on every full collection: ~7 ms for
the demo run's 45k objects, ~65 ms for a heap of 250k, a pause that lands on whichever thread
allocates at that moment (a frame, an alert, an MQTT callback). ``frozen_heap()`` moves them to
CPython's permanent generation once everything is loaded (``gc.freeze``) and gives them back at
the end. Objects made afterwards are collected as usual; reference counting still frees frozen
objects that are dropped, only frozen *cycles* wait for ``refreeze()``, which the service calls
after a model swap so an old model caught in a cycle is not kept.

Process-wide, so only entry points (the CLI, the Greengrass and IoT Edge mains) use it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


def freeze(full: bool = False) -> int:
    """Collect the young generations (all of them with ``full``), then freeze everything alive; returns the
    objects frozen.

    At start-up what reached the oldest generation is alive (the demo run: 20 of 55k objects were garbage)
    and a full pass over it costs ~11 ms of every start, so only the young generations are collected; a
    start-up leftover there stays frozen until the run ends or the next ``refreeze``, which collects fully."""
    gc.collect(2 if full else 1)
    gc.freeze()
    count = gc.get_freeze_count()
    log.debug("heap: %d start-up objects frozen out of garbage collection", count)
    return count


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """The cyclic collector paused while an entry point imports its modules, and what they made frozen after.

    Start-up allocates hundreds of thousands of objects that all live on (modules, classes, the config models);
    the collector walked them ~130 times while the CLI loaded, ~60 ms of a one-shot `edgeinfer run`.
    Frozen, they also stay out of later collections (as in ``frozen_heap``, which unfreezes everything at its
    end)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def refreeze() -> None:
    """Let the collector see the frozen objects once (after a model swap), then freeze again.

    Does nothing when nothing is frozen (outside ``frozen_heap``)."""
    if gc.get_freeze_count():
        gc.unfreeze()
        freeze(full=True)


@contextlib.contextmanager
def frozen_heap() -> Iterator[int]:
    """Freeze the heap for the ``with`` block; yields the objects frozen."""
    count = freeze()
    try:
        yield count
    finally:
        gc.unfreeze()
