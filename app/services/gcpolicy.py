"""Keeping the cyclic garbage collector's pauses out of the UI thread's frame budget.

A full (generation 2) collection walks every container object the process holds. After start-up
that is hundreds of thousands of long-lived objects (Qt wrappers, imported modules, lexer and
grammar tables) that will never be garbage, and one walk of them costs tens of milliseconds on
the UI thread: a visible hitch while typing. ``freeze_startup_heap`` collects once and moves
everything alive into the permanent generation (``gc.freeze``), so later collections only walk
what the session itself allocates.
"""

from __future__ import annotations

import gc

_frozen_after: set[str] = set()


def freeze_startup_heap() -> int:
    """Collect, then exempt every object alive now from future collections. Returns how many
    objects were frozen. Call it once the window is up (and again after a large one-off load
    if needed: freezing twice is harmless)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_after_import(what: str) -> bool:
    """Once per ``what``: exempt what is alive now, after a heavy lazy import (the language
    servers' lsprotocol, pygls and cattrs tables arrive after start-up's freeze), without a
    collection (a collection here would hold the GIL as long as the walk it saves). Measured
    2026-12-05 (``bench lsp --ui``, gc callbacks): one generation-2 collection on the
    ``forecode-lsp`` thread took 52.9 ms and the UI thread, waiting for the GIL, stalled
    55-63 ms with under 1 ms of its own work. True when it froze now."""
    if what in _frozen_after:
        return False
    _frozen_after.add(what)
    gc.freeze()
    return True
