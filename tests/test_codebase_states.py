"""When a codebase index syncs and what a sync ends in (``forecode_core.index.codebase``): the
state a failed sync leaves, which states are retried after a delay, and the sync schedule's
transitions. Plain data; the index itself is
tested in ``test_codebase_index`` (a real loopback service)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from forecode_core.index.codebase import (
    OFFLINE_CODES,
    RETRIED,
    SyncSchedule,
    sync_failure_state,
)
from forecode_core.states import IndexState

S = IndexState

# (SyncError code, message) -> state
FAILURES = [
    ("UNAVAILABLE", "connection refused", S.OFFLINE),
    ("DEADLINE_EXCEEDED", "deadline", S.OFFLINE),
    ("retries", "gave up after 2 attempts", S.OFFLINE),
    ("RESOURCE_EXHAUSTED", "the index service's disk full: 12 MB left", S.FULL),
    ("RESOURCE_EXHAUSTED", "upload budget used up", S.ERROR),  # not the disk: an error
    ("UNAVAILABLE", "disk full", S.OFFLINE),  # the disk words count with their code only
    ("PERMISSION_DENIED", "bad token", S.ERROR),
    ("INTERNAL", "", S.ERROR),
]


@pytest.mark.parametrize(("code", "message", "state"), FAILURES)
def test_sync_failure_state(code: str, message: str, state: IndexState) -> None:
    assert sync_failure_state(code, message) is state


def test_retried_states_and_values() -> None:
    assert {S.OFFLINE, S.FULL} == RETRIED
    assert {"retries", "UNAVAILABLE", "DEADLINE_EXCEEDED"} == OFFLINE_CODES
    assert [s.value for s in S] == [
        "starting",
        "indexing",
        "synced",
        "offline",
        "full",
        "cancelled",
        "error",
        "stopped",
    ]


IDLE = SyncSchedule.idle(5.0, 20.0)
RUNNING = IDLE.requested().started()


def test_requests_coalesce_and_start_clears_them() -> None:
    assert not IDLE.due(0.0) and IDLE.wait(0.0) is None
    wanted = IDLE.requested().requested()
    assert wanted.due(0.0) and wanted.wanted
    assert SyncSchedule(5.0, 20.0, 5.0, running=True) == RUNNING
    assert RUNNING.requested().wanted  # a change during a sync: another one after it


# schedule -> after cancel(): (wanted, user_cancel, retry_at)
CANCELS = [
    (IDLE.requested(), (False, False, None)),
    (RUNNING, (False, True, None)),  # the running sync stops at its next check
    (replace(IDLE, retry_at=9.0), (False, False, None)),  # a planned retry is dropped
]


@pytest.mark.parametrize(("schedule", "after"), CANCELS)
def test_cancelled(schedule: SyncSchedule, after: tuple[bool, bool, float | None]) -> None:
    cancelled = schedule.cancelled()
    assert (cancelled.wanted, cancelled.user_cancel, cancelled.retry_at) == after


# (running schedule, outcome, closing) -> (pre-empted, wanted, retry_at, next delay)
ENDS = [
    (RUNNING, S.SYNCED, False, (False, False, None, 5.0)),
    (RUNNING, S.CANCELLED, False, (True, True, None, 5.0)),  # for a search: resumes at once
    (RUNNING.cancelled(), S.CANCELLED, False, (False, False, None, 5.0)),  # by the user
    (RUNNING, S.CANCELLED, True, (False, False, None, 5.0)),  # the index closes
    (RUNNING, S.OFFLINE, False, (False, False, 105.0, 10.0)),
    (replace(RUNNING, retry_delay=10.0), S.FULL, False, (False, False, 110.0, 20.0)),
    (replace(RUNNING, retry_delay=20.0), S.OFFLINE, False, (False, False, 120.0, 20.0)),  # cap
    (replace(RUNNING, retry_delay=20.0), S.ERROR, False, (False, False, None, 5.0)),  # reset
    (replace(RUNNING, wanted=True), S.SYNCED, False, (False, True, None, 5.0)),  # asked again
]


@pytest.mark.parametrize(("schedule", "outcome", "closing", "expected"), ENDS)
def test_ended(
    schedule: SyncSchedule,
    outcome: IndexState,
    closing: bool,
    expected: tuple[bool, bool, float | None, float],
) -> None:
    ended = schedule.ended(outcome, 100.0, closing=closing)
    preempted = schedule.preempted(outcome, closing=closing)
    assert (preempted, ended.wanted, ended.retry_at, ended.retry_delay) == expected
    assert not ended.running and not ended.user_cancel


def test_a_retry_is_due_at_its_time() -> None:
    retry = RUNNING.ended(S.OFFLINE, 100.0)
    assert retry.wait(101.0) == 4.0 and not retry.due(104.9)
    assert retry.due(105.0) and retry.wait(106.0) == 0.0
    assert retry.requested().retry_at is None  # Sync Now does not wait for it
