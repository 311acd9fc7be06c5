"""The seam between the codebase index and its users in the editor (issue 6). No Qt.

The index controller (``app.ui.codebase_index``) owns the sync with the service and offers a
``CodebaseSearch``; chat (``@codebase``) and the completion context use it through this
protocol only, so each side is tested alone (with a fake at this seam) and together (the real
index on a real loopback service).

``search`` blocks (an embedding, a gRPC call, reading files): call it off the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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
