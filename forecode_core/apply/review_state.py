"""The apply review's state as one value: its phase, the stale flag and every per-review field.

Pure: the review widget (``app.ui.apply_review.ApplyReview``) holds one ``ReviewState`` and
replaces it on each event (``started``, ``with_received``, ``reviewing``, ``decided``,
``went_stale`` ...); nothing is reset field by field, so a new run cannot inherit a field of
the last one. The widget draws from the value and decides its side effects (a message, the
hunk bar) by comparing the phases before and after.

Phases (``ReviewPhase``; the values are the strings the widget's ``state`` always had)::

    idle --start--> streaming --finished--> review <--buffer back--> stale
                        |                      |                       |
                        +--failed--> failed     +------ decide all ----+--> done (outcome)
    any --cancel / reject / close / apply--> done

``stale`` means the buffer no longer holds the text the hunks were computed against; the
``stale`` flag follows the buffer in every phase (a change while streaming makes the review
stale as soon as it finishes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Generic, TypeVar

from .review import Hunk

__all__ = ["HunkKey", "ReviewOutcome", "ReviewPhase", "ReviewState", "hunk_key"]

R = TypeVar("R")

HunkKey = tuple[int, int, int, int]


class ReviewPhase(StrEnum):
    IDLE = "idle"  # built, not started
    STREAMING = "streaming"  # the apply is writing the new file
    REVIEW = "review"  # finished: the user decides hunk by hunk
    STALE = "stale"  # finished, but the buffer changed under it: nothing can be applied
    FAILED = "failed"  # the apply failed or refused: a message and Close
    DONE = "done"  # closed with an outcome


class ReviewOutcome(StrEnum):
    """What ``ApplyReview.finished`` reports (the signal carries the value)."""

    APPLIED = "applied"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
    CLOSED = "closed"


def hunk_key(hunk: Hunk) -> HunkKey:
    """A hunk's identity across re-diffs of the stream (its ranges, not its index)."""
    return hunk.old_start, hunk.old_end, hunk.new_start, hunk.new_end


@dataclass(frozen=True)
class ReviewState(Generic[R]):
    """One review run. ``R`` is the finished apply's result type (the widget's ``ApplyResult``).
    Replaced, never mutated: ``decisions`` is a fresh mapping in each value."""

    phase: ReviewPhase = ReviewPhase.IDLE
    stale: bool = False  # the buffer differs from the text the hunks were computed against
    received: str = ""  # the new file's text streamed so far
    hunks: tuple[Hunk, ...] = ()
    result: R | None = None  # set once the apply finished
    decisions: Mapping[HunkKey, bool] = field(default_factory=dict)  # True: accepted
    current: int = -1  # the current hunk's position (-1: none)
    notice: str = ""  # the apply's latest notice, shown in the header
    started_at: float = 0.0  # time.monotonic() at the start
    first_hunk_ms: float | None = None  # time to the first hunk shown
    outcome: ReviewOutcome | None = None  # set once, when the review closes

    # ----- transitions -----------------------------------------------------------------------
    @classmethod
    def started(cls, now: float) -> ReviewState[R]:
        """A fresh run: every per-review field back to its start value at once."""
        return cls(phase=ReviewPhase.STREAMING, started_at=now)

    def with_received(self, text: str) -> ReviewState[R]:
        return replace(self, received=self.received + text)

    def with_notice(self, text: str) -> ReviewState[R]:
        return replace(self, notice=text)

    def with_hunks(self, hunks: tuple[Hunk, ...], now: float) -> ReviewState[R]:
        """The hunks shown now; the first time there are any, the time to the first hunk."""
        first = self.first_hunk_ms
        if hunks and first is None:
            first = (now - self.started_at) * 1000
        return replace(self, hunks=hunks, first_hunk_ms=first)

    def reviewing(self, result: R, text: str, hunks: tuple[Hunk, ...]) -> ReviewState[R]:
        """The apply finished with ``result`` (the new file ``text``, its ``hunks``)."""
        return replace(self, phase=ReviewPhase.REVIEW, result=result, received=text, hunks=hunks)

    def failed(self) -> ReviewState[R]:
        return replace(self, phase=ReviewPhase.FAILED, hunks=())

    def went_stale(self) -> ReviewState[R]:
        """The buffer is not the text the hunks were computed against: nothing applies."""
        return replace(self, phase=ReviewPhase.STALE, stale=True)

    def buffer_changed(self, stale: bool) -> ReviewState[R]:
        """The buffer changed; ``stale``: it now differs from the review's original. A review
        turns stale; a stale review whose buffer is back (undone) is a review again."""
        if stale and self.phase is ReviewPhase.REVIEW:
            return self.went_stale()
        if not stale and self.phase is ReviewPhase.STALE:
            return replace(self, phase=ReviewPhase.REVIEW, stale=False)
        return replace(self, stale=stale)

    def with_current(self, position: int) -> ReviewState[R]:
        return replace(self, current=position)

    def moved(self, step: int) -> ReviewState[R]:
        """Previous (-1) / next (+1) hunk, round the end; from no current hunk, the first."""
        if not self.hunks:
            return self
        position = (self.current + step) % len(self.hunks) if self.current >= 0 else 0
        return replace(self, current=position)

    def decided(self, accept: bool, hunk: Hunk | None = None) -> ReviewState[R]:
        """Accept or reject ``hunk`` (the current one by default)."""
        target = self.current_hunk() if hunk is None else hunk
        if target is None:
            return self
        return replace(self, decisions={**self.decisions, hunk_key(target): accept})

    def accepting_rest(self) -> ReviewState[R]:
        """Every hunk not rejected is accepted."""
        decisions = dict(self.decisions)
        for hunk in self.hunks:
            decisions.setdefault(hunk_key(hunk), True)
        return replace(self, decisions=decisions)

    def closed(self, outcome: ReviewOutcome) -> ReviewState[R]:
        """Done with ``outcome``; a review that is already done keeps its first outcome."""
        if self.outcome is not None:
            return self
        return replace(self, phase=ReviewPhase.DONE, outcome=outcome)

    # ----- queries ---------------------------------------------------------------------------
    def decision(self, hunk: Hunk) -> bool | None:
        return self.decisions.get(hunk_key(hunk))

    def current_hunk(self) -> Hunk | None:
        return self.hunks[self.current] if 0 <= self.current < len(self.hunks) else None

    def current_is_done(self) -> bool:
        """No current hunk, or it is decided: time to move to the next undecided one."""
        hunk = self.current_hunk()
        return hunk is None or self.decision(hunk) is not None

    def next_undecided(self, start: int) -> int:
        """The first undecided hunk from ``start`` on, round the end; if every hunk is
        decided, ``start`` (kept within the hunks); -1 without hunks."""
        n = len(self.hunks)
        for k in range(n):
            position = (start + k) % n
            if self.decision(self.hunks[position]) is None:
                return position
        return min(start, n - 1) if n else -1

    def all_decided(self) -> bool:
        return all(self.decision(h) is not None for h in self.hunks)

    @property
    def can_decide(self) -> bool:
        """Hunks can be accepted or rejected (also while they stream in)."""
        return self.phase in (ReviewPhase.STREAMING, ReviewPhase.REVIEW)

    @property
    def ready_to_apply(self) -> bool:
        """Finished and every hunk decided: the accepted ones apply now."""
        return self.phase is ReviewPhase.REVIEW and self.all_decided()

    def reject_outcome(self) -> ReviewOutcome:
        """What rejecting everything (or Esc after streaming) closes the review with."""
        if self.phase in (ReviewPhase.REVIEW, ReviewPhase.STALE):
            return ReviewOutcome.REJECTED
        if self.phase is ReviewPhase.STREAMING:
            return ReviewOutcome.CANCELLED
        return ReviewOutcome.CLOSED

    def close_outcome(self) -> ReviewOutcome:
        """What closing the review from outside (a tab, the window) reports."""
        if self.phase is ReviewPhase.STREAMING:
            return ReviewOutcome.CANCELLED
        return ReviewOutcome.CLOSED
