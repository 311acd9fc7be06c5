"""The "Indexing n/m chunks" count of one indexing pass, honest and monotonic for the user.

A pass is the work from a sync's start to its end (synced, failed, cancelled by the user). A
search pre-empts a running sync (``app.ui.codebase_index``), and the sync then starts again:
it scans again and counts only the chunks still to embed, from 0. Shown as it came, the count
went "Indexing 400/2000" -> "Indexing 0/1600" (seen while files were opened: each opened file
asks the index for related code). Here a pass keeps ``total`` (m: known at its start); an
attempt that starts again continues the count (n never goes back), work found since (files
changed meanwhile) is counted apart as ``extra`` (k: "n/m+k"), and work that went away (a
file deleted) counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PassCount"]


@dataclass
class PassCount:
    """One pass's count; ``report`` takes each (done, total) an attempt reports."""

    total: int = 0  # m: the chunks to embed when the pass started
    extra: int = 0  # k: chunks found to embed later in the pass
    done: int = 0  # n: never goes back
    _attempt_total: int = -1  # the running attempt's own total (-1: none yet)
    _attempt_done: int = 0
    _carried: int = 0  # n at the running attempt's start

    def report(self, done: int, total: int) -> None:
        if total != self._attempt_total or done < self._attempt_done:
            self._start_attempt(total)
        self._attempt_done = done
        whole = self.total + self.extra
        self.done = max(self.done, min(self._carried + done, whole))

    def _start_attempt(self, total: int) -> None:
        if self._attempt_total < 0:  # the pass's first attempt
            self.total, self._carried = total, 0
        else:  # started again: what it counts is what is left of the pass
            left = self.total + self.extra - self.done
            if total > left:
                self.extra += total - left
            self._carried = self.total + self.extra - total
        self._attempt_total = total

    @property
    def label(self) -> str:
        more = f"+{self.extra}" if self.extra else ""
        return f"Indexing {self.done}/{self.total}{more} chunks"
