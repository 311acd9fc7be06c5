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


def freeze_startup_heap() -> int:
    """Collect, then exempt every object alive now from future collections. Returns how many
    objects were frozen. Call it once the window is up (and again after a large one-off load
    if needed: freezing twice is harmless)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
