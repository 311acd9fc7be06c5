"""The seam between the codebase index and its users in the editor (issue 6). No Qt.

The index controller (``app.ui.codebase_index``) owns the sync with the service and offers a
``CodebaseSearch``; chat (``@codebase``) and the completion context use it through this
protocol only, so each side is tested alone (with a fake at this seam) and together (the real
index on a real loopback service).

``search`` blocks (an embedding, a gRPC call, reading files): call it off the UI thread.

A sync ends in one of the index's states (``forecode_core.states.IndexState``):
``sync_failure_state`` says which for a failed one; ``RETRIED`` are those retried after a
growing delay (search still answers from the last synced tree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from forecode_core.states import IndexState

__all__ = [
    "OFFLINE_CODES",
    "RETRIED",
    "CodeHit",
    "CodebaseSearch",
    "CodebaseUnavailable",
    "sync_failure_state",
]

OFFLINE_CODES: Final = frozenset({"retries", "UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""A failed sync's codes (gRPC status names; "retries": the client gave up) that mean the
service does not answer."""

RETRIED: Final = frozenset({IndexState.OFFLINE, IndexState.FULL})
"""The states a sync is retried from, after a delay that doubles each time."""


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
