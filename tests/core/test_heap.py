"""frozen_heap / refreeze: start-up objects leave the collector's walk, and come back after a model swap."""

from __future__ import annotations

import gc
import weakref

from edgeinfer.core import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_frozen_heap_freezes_what_is_alive_and_gives_it_back() -> None:
    assert gc.get_freeze_count() == 0
    with heap.frozen_heap() as frozen:
        assert frozen > 1000  # the interpreter, pytest and the imported modules at least
        assert gc.get_freeze_count() > frozen - 100  # still frozen (refcounting may free a few)
        new = Node()  # made after start-up: collected as usual
        ref = weakref.ref(new)
        del new
        gc.collect()
        assert ref() is None
    assert gc.get_freeze_count() == 0


def test_a_cycle_dropped_just_before_start_up_is_not_frozen() -> None:
    gc.collect()
    dropped = Node()  # young garbage (a failed first attempt, a temporary): collected, not frozen
    ref = weakref.ref(dropped)
    del dropped
    with heap.frozen_heap():
        assert ref() is None


def test_a_frozen_cycle_is_freed_by_refreeze() -> None:
    old = Node()  # an "old model" caught in a cycle, alive at start-up
    ref = weakref.ref(old)
    with heap.frozen_heap():
        del old
        gc.collect()
        assert ref() is not None  # frozen: the collector does not see it
        heap.refreeze()
        assert ref() is None
        assert gc.get_freeze_count() > 0  # and the rest is frozen again


def test_refreeze_outside_frozen_heap_freezes_nothing() -> None:
    heap.refreeze()
    assert gc.get_freeze_count() == 0


def test_loading_pauses_the_collector_then_freezes_what_was_loaded() -> None:
    assert gc.isenabled() and gc.get_freeze_count() == 0
    try:
        with heap.loading():
            assert not gc.isenabled()
            loaded = Node()  # a "module object" made while loading
        assert gc.isenabled()
        assert gc.get_freeze_count() > 1000
        ref = weakref.ref(loaded)
        del loaded
        gc.collect()
        assert ref() is not None  # frozen: kept out of the collector's walk
    finally:
        gc.unfreeze()
    gc.collect()
    assert ref() is None
