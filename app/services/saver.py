"""Saves off the UI thread: one writer thread for the whole app, jobs in the order asked.

A save on the UI thread blocked it on the disk: ``bench lsp --ui --ui-rounds 500`` measured a
save's rename (``os.replace``) at 17-116 ms on a busy disk, 9 of the 13 stalls over 16 ms that
were not load. Here a save is a ``SaveRequest`` (a snapshot: the text as it was at Ctrl+S, the
encoding, the target, what the editor last knew of the file) run by ``write_snapshot`` on the
``Saver``'s one thread: the check that the file did not change on disk since it was read, the
encoding, the atomic write (``forecode_core.store.atomic.atomic_write``: a temporary file in
the same folder, fsync, the old file's mode and owner, rename over it, fsync of the folder),
and the digest and stat of what was written. The result (``SaveResult``) goes back to the
caller's thread by whatever the caller chose (the document uses a Qt signal).

One thread, so two saves of one file land in the order they were asked: the later snapshot is
the one left on disk. A request may name the save before it (``previous``): its check against
the disk then starts from what that save wrote, so the second of two quick saves is not taken
for a change by someone else. Nothing here touches Qt (an import contract).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from app.services.threads import SerialExecutor
from forecode_core.store.atomic import atomic_write
from forecode_core.text.large_files import content_digest as digest  # the document's
from forecode_core.text.textfile import encode_text

__all__ = [
    "Expected",
    "SaveOutcome",
    "SaveRequest",
    "SaveResult",
    "Saver",
    "digest",
    "saver",
    "write_snapshot",
]


@dataclass(frozen=True)
class Expected:
    """What the editor last knew of the file: its stat and (lazily) its digest."""

    mtime_ns: int
    size: int
    digest: Callable[[], str]


class SaveOutcome(Enum):
    WRITTEN = "written"
    CONFLICT = "conflict"  # the file changed on disk since it was read: nothing written
    FAILED = "failed"  # nothing written (or the old file left whole): ``message`` says why


@dataclass(frozen=True)
class SaveResult:
    outcome: SaveOutcome
    mtime_ns: int = 0
    size: int = 0
    digest: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is SaveOutcome.WRITTEN


@dataclass(frozen=True)
class SaveRequest:
    """``text`` in ``encoding`` to ``target``. Without ``overwrite``, a file whose bytes are no
    longer what ``expected`` (or the ``previous`` save, when it wrote) says is not touched."""

    target: Path
    text: str
    encoding: str
    expected: Expected | None = None
    overwrite: bool = False
    previous: Future[SaveResult] | None = None
    make_parents: bool = False  # its missing folders made first (an undone delete's)


def _changed_on_disk(target: Path, expected: Expected) -> bool:
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False  # deleted: saving creates it again
    if (st.st_mtime_ns, st.st_size) == (expected.mtime_ns, expected.size):
        return False
    with open(target, "rb") as f:
        return digest(f.read()) != expected.digest()


def _expected(request: SaveRequest) -> Expected | None:
    previous = request.previous
    done = previous is not None and previous.done() and not previous.cancelled()
    if done and previous is not None and previous.exception() is None and previous.result().ok:
        wrote = previous.result()
        return Expected(wrote.mtime_ns, wrote.size, lambda: wrote.digest)
    return request.expected


def write_snapshot(request: SaveRequest) -> SaveResult:
    """Check, encode and write one snapshot (on the saver's thread; any thread in tests)."""
    target = request.target
    try:
        expected = None if request.overwrite else _expected(request)
        if expected is not None and _changed_on_disk(target, expected):
            return SaveResult(SaveOutcome.CONFLICT, message=f"{target.name} changed on disk")
        data = encode_text(request.text, request.encoding)
        if request.make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        written = atomic_write(target, data)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return SaveResult(SaveOutcome.FAILED, message=reason)
    return SaveResult(SaveOutcome.WRITTEN, written.st_mtime_ns, written.st_size, digest(data))


class Saver:
    """The app's writer thread (``SerialExecutor``: started off the UI thread when made)."""

    def __init__(self, name: str = "forecode-save") -> None:
        self._executor = SerialExecutor(name)
        self._lock = threading.Lock()
        self._pending: list[Future[SaveResult]] = []

    def submit(self, request: SaveRequest) -> Future[SaveResult]:
        future = self._executor.submit(write_snapshot, request)
        with self._lock:
            self._pending.append(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[SaveResult]) -> None:
        with self._lock:
            if future in self._pending:
                self._pending.remove(future)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def wait(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) for every save asked so far; True when done."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            left = deadline - time.monotonic()
            if left <= 0 and not future.done():
                return False
            try:
                future.exception(timeout=max(left, 0))
            except TimeoutError:
                return False
        return True


_SAVER: Saver | None = None


def saver() -> Saver:
    """The one saver of this process (made on first use)."""
    global _SAVER
    if _SAVER is None:
        _SAVER = Saver()
    return _SAVER
