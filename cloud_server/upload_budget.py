"""How many bytes uploads may hold while they wait for their commit (plain threading, no gRPC).

An IndexSync ``Upload`` stores its chunks as they arrive, but keeps the file entries and
deletions until the ``commit`` message comes, so that the commit applies them at once. Those
held bytes are *pending*. Without a bound, a client that streams file entries and never
commits holds as much of the service's memory as it likes (25 messages of 3.6 MB took the
service from 66 to 578 MB). ``UploadBudget`` bounds them twice:

* per call: one upload never holds more than ``per_call`` bytes (the client commits in batches
  under it, ``cloud_client.index_sync``);
* per token: all the uploads of one caller (one accepted token) together never hold more than
  ``per_token`` bytes, so parallel calls cannot add up past it. With several tokens the service
  holds at most ``per_token`` times their number.

And at most ``max_calls`` uploads run at once (each holds a handler thread while it waits for
its client's next message: more would leave none for health and the other calls).

``Pending.reserve(n)`` raises ``OverBudget`` (whose text says which limit, and what to do) before
the bytes are kept, so the call is refused early; ``Pending.release()`` (at the end of the
call, whatever the end: committed, refused, cancelled, broken) gives everything back.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

__all__ = ["OverBudget", "Pending", "UploadBudget"]


class OverBudget(Exception):
    """An upload would hold more than a limit allows; ``scope`` is "call", "token" or
    "uploads" (too many at once)."""

    def __init__(self, scope: str, message: str) -> None:
        super().__init__(message)
        self.scope = scope


class UploadBudget:
    def __init__(self, per_call: int, per_token: int, max_calls: int = 8) -> None:
        if per_call < 1 or per_token < 1 or max_calls < 1:
            raise ValueError("upload limits must be positive")
        self.per_call = per_call
        self.per_token = per_token
        self.max_calls = max_calls
        self._calls = 0
        self._lock = threading.Lock()
        self._by_caller: dict[Hashable, int] = {}
        self._peak = 0

    def call(self, caller: Hashable) -> Pending:
        """The ledger of one upload call by ``caller`` (a token's identity, never the token);
        ``OverBudget`` when ``max_calls`` uploads already run. Release it at the end."""
        with self._lock:
            if self._calls >= self.max_calls:
                raise OverBudget(
                    "uploads",
                    (
                        f"{self._calls} index uploads are running, the most this service takes at "
                        f"once (the limit of uploads at once): try again shortly"
                    ),
                )
            self._calls += 1
        return Pending(self, caller)

    @property
    def calls(self) -> int:
        """Uploads running now."""
        with self._lock:
            return self._calls

    def held(self, caller: Hashable | None = None) -> int:
        """Bytes held now by ``caller``'s uploads, or by all of them."""
        with self._lock:
            if caller is None:
                return sum(self._by_caller.values())
            return self._by_caller.get(caller, 0)

    @property
    def peak(self) -> int:
        """The most bytes all uploads together held at any moment."""
        with self._lock:
            return self._peak

    def _take(self, caller: Hashable, mine: int, n: int) -> None:
        with self._lock:
            if mine + n > self.per_call:
                raise OverBudget(
                    "call",
                    (
                        f"this upload would hold more than {self.per_call} bytes of file entries "
                        f"and deletions waiting for its commit (the limit per call): commit in "
                        f"smaller batches"
                    ),
                )
            theirs = self._by_caller.get(caller, 0)
            if theirs + n > self.per_token:
                raise OverBudget(
                    "token",
                    (
                        f"this token's uploads would hold more than {self.per_token} bytes "
                        f"waiting for their commits (the limit per token): let the uploads in "
                        f"flight finish, then try again"
                    ),
                )
            self._by_caller[caller] = theirs + n
            self._peak = max(self._peak, sum(self._by_caller.values()))

    def _end(self) -> None:
        with self._lock:
            self._calls -= 1

    def _give(self, caller: Hashable, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            left = self._by_caller.get(caller, 0) - n
            if left > 0:
                self._by_caller[caller] = left
            else:
                self._by_caller.pop(caller, None)


class Pending:
    """One call's share of an ``UploadBudget``; a context manager that releases on exit."""

    def __init__(self, budget: UploadBudget, caller: Hashable) -> None:
        self._budget = budget
        self._caller = caller
        self.held = 0
        self._open = True

    def reserve(self, n: int) -> None:
        """Count ``n`` more bytes held by this call, or raise ``OverBudget`` (nothing taken)."""
        if n < 0:
            raise ValueError("a reservation cannot be negative")
        self._budget._take(self._caller, self.held, n)
        self.held += n

    def release(self) -> None:
        """Give back everything this call holds and end it (idempotent)."""
        held, self.held = self.held, 0
        self._budget._give(self._caller, held)
        if self._open:
            self._open = False
            self._budget._end()

    def __enter__(self) -> Pending:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
