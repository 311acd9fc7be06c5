"""The seam between the codebase index and its users in the editor (issue 6). No Qt.

The index controller (``app.ui.codebase_index``) owns the sync with the service and offers a
``CodebaseSearch``; chat (``@codebase``) and the completion context use it through this
protocol only, so each side is tested alone (with a fake at this seam) and together (the real
index on a real loopback service).

``search`` blocks (an embedding, a gRPC call, reading files): call it off the UI thread.

A sync ends in one of the index's states (``forecode_core.states.IndexState``):
``sync_failure_state`` says which for a failed one; ``RETRIED`` are those retried after a
growing delay (search still answers from the last synced tree); ``SyncSchedule`` is when the
next sync runs, as one value the index thread replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Protocol

from forecode_core.states import IndexState

__all__ = [
    "OFFLINE_CODES",
    "RETRIED",
    "CodeHit",
    "CodebaseSearch",
    "CodebaseUnavailable",
    "SyncSchedule",
    "SyncStage",
    "sync_failure_state",
]

OFFLINE_CODES: Final = frozenset({"retries", "UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""A failed sync's codes (gRPC status names; "retries": the client gave up) that mean the
service does not answer."""

RETRIED: Final = frozenset({IndexState.OFFLINE, IndexState.FULL})
"""The states a sync is retried from, after a delay that doubles each time."""


class SyncStage(StrEnum):
    """Where a sync is (``cloud_client.index_sync.IndexSync.sync``'s ``progress(stage, done,
    total)``), in the order a sync goes through them."""

    SCAN = "scan"  # the folder's files and their hashes
    RECONCILE = "reconcile"  # the tree against the service's
    CHUNK = "chunk"  # the changed files read and cut into chunks
    CHECK = "check"  # which chunks the service lacks
    EMBED = "embed"  # the new chunks' embeddings (done/total: chunks)
    UPLOAD = "upload"  # the messages sent
    DONE = "done"


def sync_failure_state(code: str, message: str) -> IndexState:
    """The index's state after a sync failed with ``code`` and ``message``: offline when the
    service does not answer, full when its disk is full, else error."""
    if code == "RESOURCE_EXHAUSTED" and "disk full" in message:
        return IndexState.FULL
    if code in OFFLINE_CODES:
        return IndexState.OFFLINE
    return IndexState.ERROR


@dataclass(frozen=True)
class CodeHit:
    """One search result, mapped back to the user's own file."""

    path: str  # workspace-relative POSIX path
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # the lines as they are on disk now
    score: float  # higher is better; comparable within one answer only


class CodebaseUnavailable(Exception):
    """The index cannot answer now (not synced yet, service down, cancelled); the message says
    why in words a user understands."""


class CodebaseSearch(Protocol):
    def search(
        self, query: str, *, top_k: int = 8, should_stop: Callable[[], bool] | None = None
    ) -> list[CodeHit]:
        """The ``top_k`` best chunks for ``query``, best first. Hits whose file changed since
        the last sync are left out. Raises ``CodebaseUnavailable``."""
        ...


@dataclass(frozen=True)
class SyncSchedule:
    """When the index syncs, as one value (replaced under the index's lock, never edited):
    a sync is ``wanted`` (a change, Sync Now, the start), ``running``, cancelled by the user
    while it runs (``user_cancel``), or due again at ``retry_at`` after it failed in a
    ``RETRIED`` state, each retry waiting twice as long (``retry_delay``, from ``retry_s`` up
    to ``retry_max_s``) until a sync ends otherwise."""

    retry_s: float
    retry_max_s: float
    retry_delay: float  # the next retry's wait
    wanted: bool = False
    running: bool = False
    user_cancel: bool = False
    retry_at: float | None = None

    @classmethod
    def idle(cls, retry_s: float, retry_max_s: float) -> SyncSchedule:
        """Nothing wanted yet; the first retry waits ``retry_s``."""
        return cls(retry_s, retry_max_s, retry_s)

    def requested(self) -> SyncSchedule:
        """A sync is wanted now (coalesced with one wanted or running)."""
        return replace(self, wanted=True, retry_at=None)

    def cancelled(self) -> SyncSchedule:
        """The user cancelled: nothing is wanted; a running sync stops at its next check."""
        return replace(
            self, wanted=False, retry_at=None, user_cancel=self.user_cancel or self.running
        )

    def closing(self) -> SyncSchedule:
        """The index closes: a running sync stops at its next check."""
        return replace(self, user_cancel=True)

    def due(self, now: float) -> bool:
        return self.wanted or (self.retry_at is not None and now >= self.retry_at)

    def wait(self, now: float) -> float | None:
        """How long until a retry is due (None: no retry)."""
        return None if self.retry_at is None else max(0.0, self.retry_at - now)

    def started(self) -> SyncSchedule:
        return replace(self, wanted=False, retry_at=None, running=True)

    def preempted(self, outcome: IndexState, *, closing: bool = False) -> bool:
        """The running sync that ended in ``outcome`` was stopped for a search (not by the
        user, nor by the index closing): it resumes right after, with no news to report."""
        return outcome is IndexState.CANCELLED and not self.user_cancel and not closing

    def ended(self, outcome: IndexState, now: float, *, closing: bool = False) -> SyncSchedule:
        """The running sync ended in ``outcome``. One pre-empted by a search (cancelled, not by
        the user, the index not closing) is wanted again at once; a ``RETRIED`` outcome is
        retried after ``retry_delay``, which then doubles; any other resets the delay."""
        after = replace(self, running=False, user_cancel=False)
        if self.preempted(outcome, closing=closing):
            return replace(after, wanted=True)
        if outcome in RETRIED:
            return replace(
                after,
                retry_at=now + self.retry_delay,
                retry_delay=min(self.retry_delay * 2, self.retry_max_s),
            )
        return replace(after, retry_delay=self.retry_s)
