"""What a codebase index sync ends in (``forecode_core.index.codebase``): the state a failed
sync leaves, and which states are retried after a delay. Plain data; the index itself is
tested in ``test_codebase_index`` (a real loopback service)."""

from __future__ import annotations

import pytest

from forecode_core.index.codebase import OFFLINE_CODES, RETRIED, sync_failure_state
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
