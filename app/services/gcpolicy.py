"""Keeping the cyclic garbage collector's pauses out of the UI thread's frame budget.

A full (generation 2) collection walks every container object the process holds that is not
frozen, and holds the GIL while it does, whichever thread runs it: on this Python (3.11, no
incremental collector) a full collection in the middle of typing is a visible hitch, on the UI
thread or on any other thread (the UI thread waits for the GIL). The policy, measured with
``bench lsp --ui`` and ``bench next_edit_ui`` (ARCHITECTURE.md's bench rows):

- ``freeze_startup_heap``: after the first paint, collect once and move everything alive into
  the permanent generation (``gc.freeze``), so later collections only walk what the session
  itself allocates; ``freeze_after_import`` does the same once after a heavy lazy import.
- ``GcPolicy``: automatic full collections are switched off (the third threshold set out of
  reach); the young generations (0 and 1) stay automatic, they are short. The UI thread asks
  ``GcPolicy.tick`` a few times a second and ``IdleRule`` (pure, table-tested with a fake
  clock) decides: while the user gives input, nothing (unless ``cap_pending`` young
  collections have piled up: then a full collection anyway, so memory stays bounded however
  long the typing lasts); after ``idle_s`` without input, a *light* collection: a full
  collection of what is not frozen (only what the session made since the last freeze), then
  the survivors frozen, so the next light one again walks only the new; a *deep* collection
  (unfreeze everything, collect, freeze again: the whole heap) only where nobody at the
  keyboard feels it: the application inactive (the user is in another application) or
  ``deep_idle_s`` (2 min) without input, at most every ``deep_every_s``; and overdue after
  ``deep_overdue_s`` at the next pause of ``overdue_idle_s`` (5 s), so a cycle that became
  garbage after it was frozen is freed within about that
  time. ``GcPolicy`` holds no Qt: ``app.ui.gc_idle`` drives it (input events, a timer, the
  application's state) and is what ``app.main`` and the UI benches start.
- ``GcLog`` records every collection (thread, generation, start, duration) through
  ``gc.callbacks``, for the benches and tests.

Measured 2026-12-05 (``bench lsp --ui --ui-rounds 150``, ``chrt -f 1``, load 9-14, gc
callbacks): 26 light collections in 82 s, each at most 2.1 ms on the UI thread; the editor's
RSS after 150 typed-and-saved rounds 148.2 MB, against 147.3 MB with the start-up freeze alone
(the same slope in both: the bench's growing file, its 300 diagnostics and undo history). With
the freezes, no collection on any thread took over 2 ms in these benches and none overlapped a
stall over 16 ms; what the policy adds is that the walk stays that short as a long session's
heap grows (a full walk grows with what is not frozen: 8.8 ms for 200 k small lists here,
more for objects with more references), without
letting cycles pile up (``tests/test_gcpolicy_idle.py``).

The deep walk, measured 2026-12-05 23:02 (load 1.7, a window, lsprotocol/pygls/cattrs
imported and prepared, ``/tmp``-style script timing ``gc`` calls): 43-58 ms for the app's ~100 k
frozen objects alone, 56-75 ms with 50 k more of a session's, 75-77 ms with 200 k more; in
``bench lsp --ui --ui-rounds 500`` 83-86 ms on the UI thread. It cannot be split: ``gc.unfreeze``
is all or nothing and moves every frozen object into the oldest generation, so after it
``gc.collect(0)`` and ``gc.collect(1)`` cost 0.00 ms and walk none of them, and the one
``gc.collect(2)`` is the whole walk (45-75 ms); this Python has no incremental collector. So
the deep one runs only where it is not felt (``IdleRule``). In that bench it fired once per
run until 23:04: the bench typed with ``insertText``, no input event reached the policy, and
300 s in, "30 s without input" held (the offscreen window stays active: the ``away`` path;
``GcPolicy.deeps`` and the bench's ``gc_deep_log`` now record each one's path and inputs).
Since (the bench's rounds tell the policy as keys would; 500 rounds, ``chrt -f 1``, load
2.6-9.6, 290 s): no deep one, 21 light ones at most 4.6 ms, max stall 33.0 ms, none over 16 ms
but the run queue's; RSS at the end 169.2 MB (before 165.4 / 163.9 MB).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

_frozen_after: set[str] = set()

OFF_THRESHOLD = 1_000_000_000  # the third threshold: no automatic full collection


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


class Action(Enum):
    NONE = "none"
    LIGHT = "light"  # collect what is not frozen, freeze the survivors
    DEEP = "deep"  # unfreeze everything, collect, freeze the survivors


@dataclass(frozen=True)
class IdleRule:
    """When to collect. Times in seconds; ``pending`` is how many young (generation 1)
    collections ran since the last full one (``gc.get_count()[2]``), each one moving its
    survivors into the old generation.

    A deep collection walks the whole heap (40-90 ms, module docstring) and cannot be split,
    so it runs only where nobody at the keyboard would feel it: the application inactive
    (the user is in another application) or ``deep_idle_s`` without input (away from the
    desk), at most every ``deep_every_s``; when overdue (``deep_overdue_s``, so memory stays
    bounded for a user who never leaves), at the next pause of ``overdue_idle_s``, never at
    a 1-s breath between two words."""

    idle_s: float = 1.0  # no input this long: a light collection, if anything is pending
    deep_idle_s: float = 120.0  # no input this long: a deep one (at most every deep_every_s)
    deep_every_s: float = 300.0
    deep_overdue_s: float = 1800.0  # a deep one at the next long pause after this long
    overdue_idle_s: float = 5.0  # ... a pause of this long
    cap_pending: int = 500  # this many pending: a light one even while typing

    def decide(self, state: IdleState, now: float, pending: int) -> Action:
        since_input = now - state.last_input
        if since_input < self.idle_s:  # typing, scrolling: only the cap
            return Action.LIGHT if pending >= self.cap_pending else Action.NONE
        if (state.lights_since_deep > 0 or pending > 0) and self.deep_reason(state, now):
            return Action.DEEP
        return Action.LIGHT if pending > 0 else Action.NONE

    def deep_reason(self, state: IdleState, now: float) -> str:
        """Which path would make a collection now deep: ``inactive``, ``away`` (a long idle),
        ``overdue``, or "" (none). ``decide`` adds that something must have been collected
        since the last deep one."""
        since_input = now - state.last_input
        since_deep = now - state.last_deep
        if since_deep >= self.deep_every_s:
            if not state.active and since_input >= self.idle_s:
                return "inactive"
            if since_input >= self.deep_idle_s:
                return "away"
        if since_deep >= self.deep_overdue_s and since_input >= self.overdue_idle_s:
            return "overdue"
        return ""


@dataclass
class IdleState:
    """What the rule reads: the last input, the window's activity, the last deep collection."""

    last_input: float
    last_deep: float
    active: bool = True
    lights_since_deep: int = 0  # nothing collected since the last deep one: no deep one due


@dataclass
class GcPolicy:
    """The idle collector (module docstring). ``install`` switches automatic full collections
    off; ``note_input``/``set_active`` are told by the UI; ``tick`` (on the UI thread, a few
    times a second) collects when ``rule`` says so. ``collections`` counts what it ran."""

    rule: IdleRule = field(default_factory=IdleRule)
    clock: Callable[[], float] = time.monotonic
    state: IdleState = field(init=False)
    collections: dict[Action, int] = field(init=False)
    deeps: list[DeepRecord] = field(init=False, default_factory=list)  # the benches read it
    _thresholds: tuple[int, int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        now = self.clock()
        self.state = IdleState(last_input=now, last_deep=now)
        self.collections = {Action.LIGHT: 0, Action.DEEP: 0}

    def install(self) -> None:
        """Freeze the start-up heap and switch automatic full collections off (the young
        generations keep their thresholds)."""
        freeze_startup_heap()
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
        first, second, _third = self._thresholds
        gc.set_threshold(first, second, OFF_THRESHOLD)
        self.state.last_deep = self.clock()

    def uninstall(self) -> None:
        """Automatic collections as before ``install`` (tests)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def note_input(self) -> None:
        self.state.last_input = self.clock()

    def set_active(self, active: bool) -> None:
        self.state.active = active

    def tick(self) -> Action:
        """Collect if the rule says so now; returns what ran."""
        now = self.clock()
        action = self.rule.decide(self.state, now, gc.get_count()[2])
        if action is Action.LIGHT:
            gc.collect()
            gc.freeze()
            self.state.lights_since_deep += 1
        elif action is Action.DEEP:
            record = self._deep_record(now)
            start = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            record.ms = round((time.perf_counter() - start) * 1000, 2)
            self.deeps.append(record)
            self.state.last_deep = now
            self.state.lights_since_deep = 0
        if action is not Action.NONE:
            self.collections[action] += 1
        return action

    def _deep_record(self, now: float) -> DeepRecord:
        return DeepRecord(
            self.rule.deep_reason(self.state, now),
            self.state.active,
            round(now - self.state.last_input, 2),
            round(now - self.state.last_deep, 2),
            gc.get_freeze_count(),
        )


@dataclass
class DeepRecord:
    """One deep collection: the path that fired it (``IdleRule.deep_reason``), the rule's
    inputs then, the objects frozen before it (what it walked, with what was not frozen) and
    its duration."""

    reason: str
    active: bool
    since_input_s: float
    since_deep_s: float
    frozen: int
    ms: float = 0.0


@dataclass(frozen=True)
class Collection:
    thread: str
    generation: int
    start_s: float  # time.perf_counter()
    ms: float
    collected: int


class GcLog:
    """Every collection while installed (``gc.callbacks``): which thread ran it, which
    generation, when and for how long. For the UI benches (a stall beside the collections
    that overlap it) and tests."""

    def __init__(self) -> None:
        self.collections: list[Collection] = []
        self._starts: dict[int, float] = {}

    def install(self) -> GcLog:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        ident = threading.get_ident()
        if phase == "start":
            self._starts[ident] = now
            return
        start = self._starts.pop(ident, now)
        self.collections.append(
            Collection(
                threading.current_thread().name,
                int(info.get("generation", -1)),
                start,
                (now - start) * 1000,
                int(info.get("collected", 0)),
            )
        )

    def overlapping(self, start_s: float, end_s: float) -> list[Collection]:
        return [
            c for c in self.collections if c.start_s < end_s and c.start_s + c.ms / 1000 > start_s
        ]

    def summary(self) -> dict[str, dict[str, float]]:
        """By ``thread gen N``: count, max and total milliseconds."""
        out: dict[str, dict[str, float]] = {}
        for c in self.collections:
            row = out.setdefault(
                f"{c.thread} gen {c.generation}", {"n": 0, "max_ms": 0.0, "total_ms": 0.0}
            )
            row["n"] += 1
            row["max_ms"] = round(max(row["max_ms"], c.ms), 2)
            row["total_ms"] = round(row["total_ms"] + c.ms, 2)
        return out
