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


def test_a_heavy_lazy_import_is_frozen_once_and_the_language_hub_does_it() -> None:
    """The language servers' libraries arrive after start-up's freeze; the hub freezes them
    when it makes its first session (a full collection on its thread held the GIL 53 ms and
    stalled the UI thread 55-63 ms in bench lsp --ui)."""
    from pathlib import Path

    from app.services import gcpolicy
    from app.services.lsp.hub import LspHub
    from forecode_core.lsp.servers import ServerSpec

    gcpolicy._frozen_after.discard("lsp")
    try:
        gc.unfreeze()
        hub = LspHub(lambda *_a: None, lambda _s: None, resolve=lambda _c: None)
        try:
            hub.call(
                lambda: hub._session(ServerSpec("none", ("no-such-server",)), Path("."))
            ).result(10)
        finally:
            hub.shutdown(1.0)
        assert gc.get_freeze_count() > 1000  # frozen on the hub's thread, after its imports
        assert not gcpolicy.freeze_after_import("lsp")  # once per import, not per session
    finally:
        gc.unfreeze()
        gcpolicy._frozen_after.discard("lsp")
