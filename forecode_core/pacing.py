"""How often a background refresh runs (the explorer's git status), as one value.

Pure: the controller (``app.ui.git_decorations.GitController``) holds one ``RefreshPacing`` and
replaces it on each event; it never sets a flag by hand.

- One run at a time: asking while one runs leaves it ``pending`` (the controller runs it again,
  after a pause, once the running one is done).
- Automatic refreshes leave the work at least two thirds of the time idle: one that took 3 s
  is not started again within 6 s of its end (``not_before``).
- A run that was too slow (it timed out) backs off: 5 s, then twice as long each time, up to
  ``max_backoff_s``; a run that answered resets the back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

__all__ = ["MIN_BACKOFF_S", "RefreshPacing"]

MIN_BACKOFF_S: Final = 5.0


@dataclass(frozen=True)
class RefreshPacing:
    running: bool = False
    pending: bool = False  # asked again while running
    started: float = 0.0  # when the running one started (time.monotonic())
    not_before: float = 0.0  # no automatic refresh before this time
    backoff_s: float = 0.0  # the last back-off after a run that was too slow

    def asked(self, now: float) -> RefreshPacing:
        """A refresh is asked for: it starts now (``running``), or is pending behind the
        running one (``running`` stays True and the caller starts nothing)."""
        if self.running:
            return replace(self, pending=True)
        return replace(self, running=True, pending=False, started=now)

    def finished(self, now: float) -> RefreshPacing:
        """The running refresh ended: the next automatic one waits twice its time."""
        took = now - self.started
        return replace(self, running=False, not_before=max(self.not_before, now + 2 * took))

    def answered(self) -> RefreshPacing:
        return replace(self, backoff_s=0.0)

    def too_slow(self, now: float, max_backoff_s: float) -> RefreshPacing:
        """The refresh timed out: back off before the next automatic one."""
        backoff = min(max_backoff_s, max(MIN_BACKOFF_S, self.backoff_s * 2))
        return replace(self, backoff_s=backoff, not_before=max(self.not_before, now + backoff))

    def rooted(self) -> RefreshPacing:
        """Another folder: its refreshes are not held back by the last folder's."""
        return replace(self, backoff_s=0.0, not_before=0.0)

    def wait_ms(self, now: float, debounce_ms: int) -> int:
        """How long an automatic refresh asked for now waits (at least ``debounce_ms``)."""
        return max(debounce_ms, int((self.not_before - now) * 1000))
