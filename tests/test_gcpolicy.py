"""The start-up heap freeze: what lives at start-up leaves the collector's walks; what the session
makes afterwards is still collected (no leak of later cycles)."""

from __future__ import annotations

import gc
import weakref

from app.services.gcpolicy import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_freeze_exempts_the_startup_heap_and_later_cycles_are_still_freed() -> None:
    before = gc.get_count()
    assert before is not None
    kept = _Node()
    try:
        frozen = freeze_startup_heap()
        assert frozen > 1000  # the interpreter, pytest and the test's imports
        assert gc.get_freeze_count() == frozen
        tracked = len(gc.get_objects(generation=2))
        assert tracked < frozen  # full collections now walk far fewer objects

        later = _Node()
        ref = weakref.ref(later)
        del later
        gc.collect()
        assert ref() is None  # a cycle made after the freeze is collected
        assert kept.me is kept
    finally:
        gc.unfreeze()
