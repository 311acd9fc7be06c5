"""Model slots and the queue in front of them (plain threading, no gRPC, no llama.cpp).

A request waits in one FIFO queue until a slot is free; only the head of the queue takes a
slot. Which slot: the one that last served the same conversation, when it is free (its KV cache
still holds the conversation, so a follow-up only evaluates the new turn), else the free slot
used least recently (the one whose cache is least likely to be wanted again).

A waiting request polls its ``should_stop`` (a cancelled or expired call leaves the queue at
once); ``release`` wakes the queue.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["QueueFull", "SlotPool"]


class QueueFull(Exception):
    """Every slot is busy and ``max_queue`` requests already wait."""


class SlotPool:
    def __init__(self, slots: int, max_queue: int, *, poll_s: float = 0.05) -> None:
        if slots < 1:
            raise ValueError("a slot pool needs at least one slot")
        self._cond = threading.Condition()
        self._free = [True] * slots
        self._conversation: list[str | None] = [None] * slots  # whose KV each slot holds
        self._last_used = [0] * slots
        self._ticks = itertools.count(1)
        self._queue: deque[object] = deque()
        self._max_queue = max_queue
        self._poll_s = poll_s

    @property
    def size(self) -> int:
        return len(self._free)

    def busy(self) -> int:
        with self._cond:
            return self._free.count(False)

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def acquire(self, conversation_id: str, should_stop: Callable[[], bool]) -> int | None:
        """A slot for this conversation, waiting in line; None when ``should_stop`` fired
        first. Raises QueueFull when the line is already ``max_queue`` long."""
        ticket = object()
        with self._cond:
            if (self._queue or True not in self._free) and len(self._queue) >= self._max_queue:
                raise QueueFull(
                    f"all {self.size} model slots are busy and "
                    f"{len(self._queue)} requests are waiting"
                )
            self._queue.append(ticket)
            try:
                while True:
                    if self._queue[0] is ticket and True in self._free:
                        slot = self._choose(conversation_id)
                        self._queue.popleft()
                        self._free[slot] = False
                        self._conversation[slot] = conversation_id or None
                        return slot
                    if should_stop():
                        return None
                    self._cond.wait(self._poll_s)
            finally:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may take a free slot now

    def release(self, slot: int) -> None:
        with self._cond:
            if self._free[slot]:
                raise RuntimeError(f"slot {slot} released twice")
            self._free[slot] = True
            self._last_used[slot] = next(self._ticks)
            self._cond.notify_all()

    def _choose(self, conversation_id: str) -> int:
        if conversation_id:
            for slot, owner in enumerate(self._conversation):
                if owner == conversation_id and self._free[slot]:
                    return slot
        free = [s for s, is_free in enumerate(self._free) if is_free]
        return min(free, key=lambda s: self._last_used[s])
