"""Edit events: the user's recent changes to a buffer, as small before/after pairs.

The editor reports every document change (``Change``: where, what was removed, what was
inserted, when, on which line); ``BufferEdits`` coalesces them into ``EditEvent``s and keeps the
last ``MAX_EVENTS`` of one buffer, ``EditHistory`` one ``BufferEdits`` per buffer. Pure: the
caller passes the times (seconds, any monotonic clock), nothing here reads a clock.

Coalescing. A change joins the open (newest) event when all three hold:

* it comes less than ``PAUSE_S`` after the event's previous change (a pause closes an event);
* its line is at most ``JUMP_LINES`` away from the previous change's line (a jump closes it);
* it touches the event's span (overlaps it or is adjacent to it): the event covers one stretch
  of text, so its before/after pair is exact. A change a few lines away that does not touch it
  starts a new event (the text between is not known to a recorder that never sees the
  document, and two separate pairs are what edit propagation wants anyway).

Otherwise the open event is closed and the change opens a new one.

Undo. An event whose text is back to what it was (typed, then deleted again) is dropped. A change
that exactly undoes a closed event (at its place, removing its ``after``, inserting its
``before``) cancels that event, and so does an undo in several steps (the editor removes the
typed text, then puts the deleted text back): when the open event becomes the previous event
backwards, both go. The model never sees an edit the user took back.

Offsets of kept events follow later changes before them, so an undo is recognised at its place.
An insertion exactly at an event's start does not move it: that is where a later edit of the
event's own text starts (the editor replaces a selection as a deletion, then insertions at
its start), and the event must stay at the place it changed for ``continues`` and undo.

Chains. A rename typed in two goes (``rv`` -> ``copy``, a pause, then ``copy`` -> ``dup`` at the
same place) is two events, but one edit to a user: ``continues`` says when the newer of two
consecutive events edits only the older one's text (inside it or at its ends), and
``compose_chains`` / ``compose_events`` fold each such run into one pair (the first before, the
last after; a run back to where it started changes nothing: propagation then has nothing to
offer, the model's input leaves it out). Propagation takes
the composed pairs (``propagation.propose``: the remaining ``rv`` sites become ``dup``, never
the ``copy`` sites: a user of VS Code or Cursor sees the second edit continue the first). The
model's input carries the composed pairs too (``NextEditController._input``): each event is
rendered as whole lines of the document as it is now, which no longer holds an intermediate
step's text (its pair would be garbled), the intermediate name misleads a small model as it
misled propagation, and the newest pair changing in place keeps the older pairs, rendered
before it, a stable prompt prefix. The revert guards take every step and every chain
(``steps_and_chains``): neither ``dup`` -> ``copy`` (the last step back) nor ``dup`` -> ``rv``
(the whole chain back) is ever offered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

__all__ = [
    "JUMP_LINES",
    "MAX_EVENTS",
    "PAUSE_S",
    "BufferEdits",
    "ChainedEdit",
    "Change",
    "EditEvent",
    "EditHistory",
    "Pair",
    "chains",
    "compose_chains",
    "compose_events",
    "continues",
    "steps_and_chains",
]

PAUSE_S = 1.0  # a pause this long (seconds) closes the open event
JUMP_LINES = 3  # a change more lines than this from the previous one closes it
MAX_EVENTS = 8  # events kept per buffer (the newest)


@dataclass(frozen=True)
class Change:
    """One document change: ``removed`` (the text that was at ``offset``) became ``inserted``."""

    offset: int  # character offset in the document before the change
    removed: str
    inserted: str
    time: float  # seconds, the caller's monotonic clock
    line: int  # 0-based line of ``offset``


@dataclass(frozen=True)
class EditEvent:
    """One coalesced edit: the text ``before`` at ``offset`` is now ``after``."""

    offset: int  # where the span starts in the current document
    before: str
    after: str
    line: int  # 0-based line where the span starts
    start_time: float
    end_time: float  # the time of its last change
    last_line: int  # the line of its last change (the jump rule measures from it)

    @property
    def end(self) -> int:
        """The span's end in the current document."""
        return self.offset + len(self.after)

    def trimmed(self) -> tuple[str, str]:
        """``(before, after)`` without their common prefix and suffix: the smallest pair."""
        b, a = self.before, self.after
        p = 0
        while p < min(len(b), len(a)) and b[p] == a[p]:
            p += 1
        s = 0
        while s < min(len(b), len(a)) - p and b[len(b) - 1 - s] == a[len(a) - 1 - s]:
            s += 1
        return b[p : len(b) - s], a[p : len(a) - s]


def _touches(event: EditEvent, change: Change) -> bool:
    return change.offset <= event.end and change.offset + len(change.removed) >= event.offset


def _merge(event: EditEvent, change: Change) -> EditEvent:
    """The event with ``change`` (which touches its span) applied."""
    s, e = event.offset, event.end
    o, r = change.offset, change.removed
    u0, u1 = min(s, o), max(e, o + len(r))
    # The current text of [u0, u1): the event's span where it is, the removed text elsewhere.
    current = "".join(event.after[p - s] if s <= p < e else r[p - o] for p in range(u0, u1))
    left = r[: max(0, s - o)]
    right = r[len(r) - max(0, o + len(r) - e) :] if o + len(r) > e else ""
    before = left + event.before + right
    after = current[: o - u0] + change.inserted + current[o - u0 + len(r) :]
    line = change.line if o < s else event.line
    return replace(
        event,
        offset=u0,
        before=before,
        after=after,
        line=line,
        end_time=change.time,
        last_line=change.line,
    )


def _shift(event: EditEvent, change: Change) -> EditEvent:
    """``event`` after a change that does not join it: moved when the change is before it (an
    insertion exactly at its start is not: module doc)."""
    end = change.offset + len(change.removed)
    if end < event.offset or (end == event.offset and change.removed):
        delta = len(change.inserted) - len(change.removed)
        lines = change.inserted.count("\n") - change.removed.count("\n")
        return replace(event, offset=event.offset + delta, line=event.line + lines)
    return event


class BufferEdits:
    """The recent edit events of one buffer (module doc)."""

    def __init__(
        self,
        *,
        max_events: int = MAX_EVENTS,
        pause_s: float = PAUSE_S,
        jump_lines: int = JUMP_LINES,
    ) -> None:
        self._max = max_events
        self._pause = pause_s
        self._jump = jump_lines
        self._events: list[EditEvent] = []  # oldest first; the last may be open
        self._open = False

    def record(self, change: Change) -> None:
        """Take one document change into the history."""
        if change.removed == change.inserted:
            return
        for i in range(len(self._events) - 1, -1, -1):
            ev = self._events[i]
            if (
                change.offset == ev.offset
                and change.removed == ev.after
                and change.inserted == ev.before
            ):  # an undo of a whole event
                del self._events[i]
                if i == len(self._events):
                    self._open = False
                self._events = [_shift(e, change) for e in self._events]
                return
        last = self._events[-1] if self._events else None
        if (
            self._open
            and last is not None
            and change.time - last.end_time < self._pause
            and abs(change.line - last.last_line) <= self._jump
            and _touches(last, change)
        ):
            merged = _merge(last, change)
            prev = self._events[-2] if len(self._events) > 1 else None
            backwards = prev is not None and (prev.offset, prev.before, prev.after) == (
                merged.offset,
                merged.after,
                merged.before,
            )  # an undo in several steps: the new event is the previous one backwards
            self._events = [_shift(e, change) for e in self._events[: -2 if backwards else -1]]
            if merged.before == merged.after or backwards:  # back to what it was
                self._open = False
            else:
                self._events.append(merged)
            return
        self._events = [_shift(e, change) for e in self._events]
        self._events.append(
            EditEvent(
                offset=change.offset,
                before=change.removed,
                after=change.inserted,
                line=change.line,
                start_time=change.time,
                end_time=change.time,
                last_line=change.line,
            )
        )
        self._open = True
        del self._events[: -self._max]

    def close(self) -> None:
        """Close the open event (the caret left, the file was saved): the next change starts a
        new one."""
        self._open = False

    def events(self) -> tuple[EditEvent, ...]:
        """The kept events, newest last (the open one included, as it is so far)."""
        return tuple(self._events)

    def is_open(self, now: float) -> bool:
        """Whether the newest event still takes changes at time ``now`` (no pause since)."""
        return self._open and bool(self._events) and now - self._events[-1].end_time < self._pause


class EditHistory:
    """One ``BufferEdits`` per buffer, keyed by whatever names a buffer (a path, a tab id)."""

    def __init__(self, *, max_events: int = MAX_EVENTS) -> None:
        self._max = max_events
        self._buffers: dict[str, BufferEdits] = {}

    def record(self, buffer: str, change: Change) -> None:
        edits = self._buffers.get(buffer)
        if edits is None:
            edits = self._buffers[buffer] = BufferEdits(max_events=self._max)
        edits.record(change)

    def events(self, buffer: str) -> tuple[EditEvent, ...]:
        edits = self._buffers.get(buffer)
        return edits.events() if edits is not None else ()

    def close(self, buffer: str) -> None:
        edits = self._buffers.get(buffer)
        if edits is not None:
            edits.close()

    def forget(self, buffer: str) -> None:
        """Drop a buffer's history (the tab closed)."""
        self._buffers.pop(buffer, None)


# ---------------------------------------------------------------- chains


class Pair(Protocol):
    """Any before/after pair at an offset of the current document (``EditEvent``,
    ``propagation.Edit``)."""

    @property
    def offset(self) -> int: ...
    @property
    def before(self) -> str: ...
    @property
    def after(self) -> str: ...


@dataclass(frozen=True)
class ChainedEdit:
    """A chain of pairs composed into one (``compose_chains``)."""

    offset: int
    before: str
    after: str


P = TypeVar("P", bound=Pair)


def continues(older: Pair, newer: Pair) -> bool:
    """Whether ``newer`` edits only ``older``'s text: what it replaced lies inside ``older``'s
    ``after`` at its place (an insertion at either end included)."""
    at = newer.offset - older.offset
    return (
        at >= 0
        and at + len(newer.before) <= len(older.after)
        and older.after.startswith(newer.before, at)
    )


def _fold(older: Pair, newer: Pair) -> ChainedEdit:
    """``older`` then ``newer`` (which ``continues`` it) as one pair."""
    at = newer.offset - older.offset
    after = older.after[:at] + newer.after + older.after[at + len(newer.before) :]
    return ChainedEdit(older.offset, older.before, after)


def chains(pairs: Sequence[P]) -> list[tuple[P, ...]]:
    """The pairs (oldest first) in runs: each next pair of a run ``continues`` the run so far;
    a run of one is a pair on its own."""
    runs: list[tuple[P, ...]] = []
    composed: Pair | None = None
    for pair in pairs:
        if runs and composed is not None and continues(composed, pair):
            runs[-1] = (*runs[-1], pair)
            composed = _fold(composed, pair)
        else:
            runs.append((pair,))
            composed = pair
    return runs


def _composed(run: Sequence[Pair]) -> ChainedEdit:
    out = ChainedEdit(run[0].offset, run[0].before, run[0].after)
    for pair in run[1:]:
        out = _fold(out, pair)
    return out


def compose_chains(pairs: Sequence[P]) -> list[P | ChainedEdit]:
    """The pairs with each chain (``chains``) composed into one ``ChainedEdit`` (the first
    before, the last after), newest last; a pair on its own is kept as it is. A chain back to
    its first before stays, as a pair that changes nothing: the user's newest edit is then no
    edit, so there is nothing to propagate (the older edit before it is not offered again over
    the place the user just took back)."""
    return [run[0] if len(run) == 1 else _composed(run) for run in chains(pairs)]


def compose_events(events: Sequence[EditEvent]) -> tuple[EditEvent, ...]:
    """``compose_chains`` for events: a chain is its first event with the composed pair, the
    last event's end time and line; a chain back to where it started is dropped (the model's
    input has no pair that changes nothing)."""
    out: list[EditEvent] = []
    for run in chains(events):
        composed = _composed(run)
        if composed.before != composed.after:
            last = run[-1]
            out.append(
                replace(
                    run[0],
                    before=composed.before,
                    after=composed.after,
                    end_time=last.end_time,
                    last_line=last.last_line,
                )
            )
    return tuple(out)


def steps_and_chains(events: Sequence[EditEvent]) -> tuple[EditEvent, ...]:
    """What the revert guards compare with: every event (each step) and each chain of two or
    more composed (``compose_events``), so neither a step nor a whole chain is taken back."""
    chained = tuple(e for e in compose_events(events) if e not in events)
    return (*events, *chained)
