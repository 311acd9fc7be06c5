"""The background refresh's pacing (``forecode_core.pacing.RefreshPacing``: the explorer's git
status), as tables over plain data; the controller is tested with real git in
``test_git_status``."""

from __future__ import annotations

import pytest

from forecode_core.pacing import MIN_BACKOFF_S, RefreshPacing

IDLE = RefreshPacing()
RUNNING = IDLE.asked(10.0)


def test_one_run_at_a_time_and_a_second_ask_is_pending() -> None:
    assert RefreshPacing(running=True, started=10.0) == RUNNING
    again = RUNNING.asked(11.0)
    assert again == RefreshPacing(running=True, pending=True, started=10.0)  # not restarted
    done = again.finished(13.0)
    assert (done.running, done.pending) == (False, True)  # the controller asks again
    restarted = done.asked(14.0)
    assert (restarted.running, restarted.pending, restarted.started) == (True, False, 14.0)


# (started, ended, not_before before) -> not_before after: twice the run's time after its end
FINISHED = [
    (10.0, 13.0, 0.0, 19.0),
    (10.0, 10.5, 0.0, 11.5),
    (10.0, 10.5, 30.0, 30.0),  # a back-off already further out stays
]


@pytest.mark.parametrize(("started", "ended", "before", "after"), FINISHED)
def test_the_next_automatic_refresh_waits_twice_the_last_ones_time(
    started: float, ended: float, before: float, after: float
) -> None:
    pacing = RefreshPacing(running=True, started=started, not_before=before).finished(ended)
    assert pacing.not_before == after and not pacing.running


# back-off before a too-slow run -> after (max 300 s)
BACKOFFS = [(0.0, MIN_BACKOFF_S), (5.0, 10.0), (160.0, 300.0), (300.0, 300.0)]


@pytest.mark.parametrize(("before", "after"), BACKOFFS)
def test_a_run_too_slow_backs_off_doubling(before: float, after: float) -> None:
    pacing = RefreshPacing(backoff_s=before).too_slow(100.0, 300.0)
    assert (pacing.backoff_s, pacing.not_before) == (after, 100.0 + after)
    assert pacing.answered().backoff_s == 0.0  # an answer resets it


# not_before, now -> how long an automatic refresh asked now waits (debounce 400 ms)
WAITS = [(0.0, 100.0, 400), (100.1, 100.0, 400), (102.0, 100.0, 2000)]


@pytest.mark.parametrize(("not_before", "now", "wait"), WAITS)
def test_wait_ms(not_before: float, now: float, wait: int) -> None:
    assert RefreshPacing(not_before=not_before).wait_ms(now, 400) == wait


def test_another_folder_is_not_held_back_by_the_last() -> None:
    slow = RUNNING.too_slow(100.0, 300.0)
    rooted = slow.rooted()
    assert (rooted.backoff_s, rooted.not_before) == (0.0, 0.0)
    assert rooted.running  # a run under way still ends (its answer is dropped by generation)
