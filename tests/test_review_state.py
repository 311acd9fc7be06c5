"""The apply review's state value (``forecode_core.apply.review_state``): its transitions and
the outcomes each phase closes with, as tables over plain data (the widget is tested in
``test_apply_review``)."""

from __future__ import annotations

import json

import pytest

from forecode_core.apply.review import diff_hunks
from forecode_core.apply.review_state import ReviewOutcome, ReviewPhase, ReviewState, hunk_key

P = ReviewPhase
OUT = ReviewOutcome

# three hunks: lines b, d and f change
HUNKS = diff_hunks("a\nb\nc\nd\ne\nf\n", "a\nB\nc\nD\ne\nF\n")


def at(phase: ReviewPhase, *, stale: bool = False, **fields: object) -> ReviewState[str]:
    return ReviewState(phase=phase, stale=stale, hunks=HUNKS, **fields)  # type: ignore[arg-type]


def test_values_are_the_strings_the_review_always_had() -> None:
    assert [p.value for p in P] == ["idle", "streaming", "review", "stale", "failed", "done"]
    assert [o.value for o in OUT] == ["applied", "rejected", "cancelled", "unchanged", "closed"]
    assert P.REVIEW == "review" and json.dumps(OUT.APPLIED) == '"applied"'


def test_started_resets_every_per_review_field_at_once() -> None:
    used = ReviewState(
        phase=P.STALE,
        stale=True,
        received="x",
        hunks=HUNKS,
        result="old",
        decisions={hunk_key(HUNKS[0]): True},
        current=2,
        notice="n",
        started_at=1.0,
        first_hunk_ms=5.0,
        outcome=OUT.CLOSED,
    )
    fresh: ReviewState[str] = used.started(10.0)
    assert fresh == ReviewState(phase=P.STREAMING, started_at=10.0)


# (phase before, stale before, the buffer now differs?) -> (phase after, stale after)
BUFFER_CHANGED = [
    (P.REVIEW, False, True, P.STALE, True),
    (P.REVIEW, False, False, P.REVIEW, False),
    (P.STALE, True, False, P.REVIEW, False),  # undone: the hunks fit again
    (P.STALE, True, True, P.STALE, True),
    (P.STREAMING, False, True, P.STREAMING, True),  # stale once it finishes
    (P.STREAMING, True, False, P.STREAMING, False),
    (P.FAILED, False, True, P.FAILED, True),
    (P.DONE, False, True, P.DONE, True),
    (P.IDLE, False, True, P.IDLE, True),
]


@pytest.mark.parametrize(("before", "was_stale", "differs", "after", "stale"), BUFFER_CHANGED)
def test_buffer_changed(
    before: ReviewPhase, was_stale: bool, differs: bool, after: ReviewPhase, stale: bool
) -> None:
    changed = at(before, stale=was_stale).buffer_changed(differs)
    assert (changed.phase, changed.stale) == (after, stale)


# phase -> (can decide, what Reject all closes with, what closing from outside reports)
BY_PHASE = [
    (P.IDLE, False, OUT.CLOSED, OUT.CLOSED),
    (P.STREAMING, True, OUT.CANCELLED, OUT.CANCELLED),
    (P.REVIEW, True, OUT.REJECTED, OUT.CLOSED),
    (P.STALE, False, OUT.REJECTED, OUT.CLOSED),
    (P.FAILED, False, OUT.CLOSED, OUT.CLOSED),
    (P.DONE, False, OUT.CLOSED, OUT.CLOSED),
]


@pytest.mark.parametrize(("phase", "can_decide", "reject", "close"), BY_PHASE)
def test_what_each_phase_allows(
    phase: ReviewPhase, can_decide: bool, reject: ReviewOutcome, close: ReviewOutcome
) -> None:
    state = at(phase)
    assert state.can_decide is can_decide
    assert state.reject_outcome() is reject
    assert state.close_outcome() is close


def test_closed_keeps_its_first_outcome() -> None:
    done = at(P.REVIEW).closed(OUT.APPLIED)
    assert (done.phase, done.outcome) == (P.DONE, OUT.APPLIED)
    assert done.closed(OUT.CANCELLED).outcome is OUT.APPLIED


def test_failed_and_stale() -> None:
    failed = at(P.STREAMING).failed()
    assert (failed.phase, failed.hunks) == (P.FAILED, ())
    assert at(P.REVIEW).went_stale() == at(P.STALE, stale=True)


# decisions (True/False/None per hunk), start -> the next undecided position
NEXT_UNDECIDED = [
    ((None, None, None), 0, 0),
    ((True, None, None), 0, 1),
    ((True, False, None), 0, 2),
    ((None, True, True), 1, 0),  # round the end
    ((True, True, True), 1, 1),  # all decided: stays
    ((True, True, True), 5, 2),  # ... within the hunks
]


@pytest.mark.parametrize(("decided", "start", "position"), NEXT_UNDECIDED)
def test_next_undecided(decided: tuple[bool | None, ...], start: int, position: int) -> None:
    decisions = {hunk_key(h): d for h, d in zip(HUNKS, decided, strict=True) if d is not None}
    state = at(P.REVIEW, decisions=decisions)
    assert state.next_undecided(start) == position
    assert state.all_decided() is all(d is not None for d in decided)
    assert ReviewState().next_undecided(0) == -1


def test_deciding_and_accepting_the_rest() -> None:
    state = at(P.REVIEW, current=1).decided(False)
    assert [state.decision(h) for h in HUNKS] == [None, False, None]
    assert not state.ready_to_apply
    assert state.current_is_done()  # the current hunk (1) is decided
    rest = state.accepting_rest()
    assert [rest.decision(h) for h in HUNKS] == [True, False, True]
    assert rest.ready_to_apply
    assert state.decisions == {hunk_key(HUNKS[1]): False}  # the old value is untouched
    assert not at(P.STREAMING, decisions=rest.decisions).ready_to_apply  # not finished yet
    assert at(P.REVIEW, current=-1).decided(True) == at(P.REVIEW, current=-1)  # no current


# current, step -> current after
MOVES = [(-1, 1, 0), (-1, -1, 0), (0, 1, 1), (2, 1, 0), (0, -1, 2)]


@pytest.mark.parametrize(("current", "step", "after"), MOVES)
def test_moved(current: int, step: int, after: int) -> None:
    assert at(P.REVIEW, current=current).moved(step).current == after
    assert ReviewState[str]().moved(1).current == -1


def test_streaming_fields() -> None:
    state: ReviewState[str] = ReviewState.started(10.0)
    state = state.with_received("a\n").with_received("B\n").with_notice("slow")
    assert (state.received, state.notice) == ("a\nB\n", "slow")
    assert state.with_hunks((), 11.0).first_hunk_ms is None
    shown = state.with_hunks(HUNKS[:1], 10.25)
    assert shown.first_hunk_ms == 250.0
    assert shown.with_hunks(HUNKS, 12.0).first_hunk_ms == 250.0  # the first time only
    finished = shown.reviewing("result", "text", HUNKS)
    assert (finished.phase, finished.result, finished.received, finished.hunks) == (
        P.REVIEW,
        "result",
        "text",
        HUNKS,
    )
