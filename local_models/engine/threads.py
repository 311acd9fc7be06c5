"""When to drop llama.cpp to one thread (``ThreadPolicy``): pure policy over decode timings;
the engine hands it the function that sets the thread count."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["ThreadPolicy"]


class ThreadPolicy:
    """Drops llama.cpp to one thread while the CPU is contended, and comes back later.

    ggml's threads meet at a barrier after every graph node (~700 per token here). When
    another process takes one of the cores, a descheduled thread stalls every barrier: on
    the 2-core development box a busy neighbour took decoding from 46 to 0.8 tokens/s with
    2 threads, while 1 thread kept 28. So each kind of decode is timed; when all threads do
    worse than one thread did (or than 4x their own best, before one thread was timed), the
    engine goes to one thread and retries all of them after a growing back-off. The thread
    count does not change the logits (measured identical).
    """

    VS_ONE = 1.25
    VS_OWN = 4.0

    def __init__(
        self,
        set_threads: Callable[[int], None],
        n: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._set_threads = set_threads
        self._clock = clock
        self.max = n
        self.now = n
        self._best: dict[int, dict[Hashable, float]] = {1: {}, n: {}}
        self._until = 0.0
        self._backoff = 10.0
        self.tripped = False

    def begin_request(self) -> None:
        if self.now != self.max and self._clock() >= self._until:
            self.use(self.max)
        elif self.now == self.max and not self.tripped:
            self._backoff = 10.0
        self.tripped = False

    def note(self, kind: Hashable, seconds: float) -> None:
        """A decode of ``kind`` (same kind = same work) took ``seconds`` per token."""
        mine = self._best[self.now]
        best = mine.get(kind)
        if best is None or seconds < best:
            mine[kind] = seconds
        if self.now == 1:
            return
        one = self._best[1].get(kind)
        if one is not None:
            slow = seconds > self.VS_ONE * one
        else:
            slow = best is not None and seconds > self.VS_OWN * best
        if slow:
            self.use(1)
            self.tripped = True
            self._until = self._clock() + self._backoff
            self._backoff = min(self._backoff * 2.0, 300.0)

    def use(self, n: int) -> None:
        self._set_threads(n)
        self.now = n
