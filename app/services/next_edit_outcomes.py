"""The next-edit outcome log: what happened to each suggestion shown, kept on this machine so
the acceptance gate can be refit (``forecode_core.next_edit.acceptance.refit``).

One JSON object a line in ``<data dir>/next-edit/outcomes.jsonl``::

    {"v": 1, "t": 1733390000, "event": "shown", "source": "model", "p": 0.41,
     "features": {"margin_mean": 0.93, "margin_min": 0.4, "size": 12, "distance": 3,
                  "kind": "replacement", "ghost": false, "recent_rejects": 0}}

``event`` is ``shown``, ``accepted`` or ``rejected`` (an accepted or rejected record carries
the suggestion's features again, so a refit reads those lines alone); ``source`` is
``model`` or ``propagation``; ``p`` the estimate the gate used. **No text and no paths**:
numbers, booleans and the fixed words above only, so nothing of the user's code is stored (and
nothing leaves the machine: nothing here sends anything).

Privacy and bounds: the folder is created owner-only (0700) and the file 0600 (an existing
file is narrowed to 0600 when opened). The file holds at most ``max_bytes`` (1 MiB, ~5,000
records): when an append passes that, the newest half is kept (rewritten atomically). Lines
that do not parse (a torn write, a hand edit) are skipped when read.

Threads: ``record`` never touches the disk on the caller's thread (the editor's UI thread
calls it on every show, accept and reject); one writer thread appends in order. ``flush``
waits for what was recorded so far (tests, shutdown); ``read``, ``training`` and ``refit``
read the file and belong on a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.services.threads import UiThread
from forecode_core.next_edit.acceptance import PRIOR, AcceptanceModel, Features, refit
from forecode_core.store.atomic import atomic_write
from forecode_core.store.private import PRIVATE_FILE, private_folder
from forecode_core.store.settings import data_dir

__all__ = [
    "DEFAULT_MAX_BYTES",
    "LOG_VERSION",
    "OutcomeLog",
    "OutcomeRecord",
    "default_path",
]

LOG_VERSION = 1
DEFAULT_MAX_BYTES = 1 << 20

Event = Literal["shown", "accepted", "rejected"]
Source = Literal["model", "propagation"]
_EVENTS: tuple[Event, ...] = ("shown", "accepted", "rejected")
_SOURCES: tuple[Source, ...] = ("model", "propagation")


def default_path() -> Path:
    return data_dir() / "next-edit" / "outcomes.jsonl"


@dataclass(frozen=True)
class OutcomeRecord:
    time: int  # seconds since the epoch
    event: Event
    source: Source
    probability: float
    features: Features

    def to_line(self) -> bytes:
        doc = {
            "v": LOG_VERSION,
            "t": self.time,
            "event": self.event,
            "source": self.source,
            "p": round(self.probability, 4),
            "features": self.features.to_json(),
        }
        return (json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> OutcomeRecord | None:
        """The record on ``line``, or None for a line that is not one (skipped)."""
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict) or doc.get("v") != LOG_VERSION:
                return None
            event = next(e for e in _EVENTS if e == doc["event"])
            source = next(s for s in _SOURCES if s == doc["source"])
            t, p = doc["t"], doc["p"]
            if isinstance(t, bool) or not isinstance(t, int):
                return None
            if isinstance(p, bool) or not isinstance(p, int | float):
                return None
            return cls(t, event, source, float(p), Features.from_json(doc["features"]))
        except (ValueError, KeyError, StopIteration, TypeError):
            return None


class OutcomeLog:
    """Appends ``OutcomeRecord`` lines to ``path`` (default ``default_path()``) from a writer
    thread; see the module doc."""

    def __init__(self, path: Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.path = path or default_path()
        self.max_bytes = max_bytes
        self._queue: queue.Queue[bytes | threading.Event | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _thread, and the file while it is rewritten
        self.errors = 0  # appends that failed (a full or read-only disk): never raised

    def record(
        self,
        event: Event,
        features: Features,
        *,
        probability: float,
        source: Source = "model",
        now: float | None = None,
    ) -> None:
        """Append one record (on the writer thread; returns at once)."""
        if event not in _EVENTS or source not in _SOURCES:
            raise ValueError(f"unknown outcome {event!r} from {source!r}")
        when = int(time.time() if now is None else now)
        line = OutcomeRecord(when, event, source, probability, features).to_line()
        self._start()
        self._queue.put(line)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record so far is written; False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def read(self) -> list[OutcomeRecord]:
        """Every record in the file, oldest first (lines that are not records skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.splitlines():
            record = OutcomeRecord.from_line(line)
            if record is not None:
                out.append(record)
        return out

    def training(self) -> list[tuple[Features, bool]]:
        """The model's accepted and rejected records as ``(features, accepted)``.

        Only the model's: the gate judges the model's answers alone. Propagation's outcomes
        (no margin, often far from the caret, and taken Tab after Tab through a rename) are
        kept in the log but would teach the gate that far, confident edits are taken, against
        what the bench measured for the model's answers."""
        return [
            (r.features, r.event == "accepted")
            for r in self.read()
            if r.event != "shown" and r.source == "model"
        ]

    def refit(self, prior: AcceptanceModel = PRIOR) -> AcceptanceModel:
        """The gate refit to this log's outcomes (``prior`` when there are too few)."""
        return refit(self.training(), prior)

    # --- the writer thread ------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = UiThread(
                    target=self._write_loop, name="forecode-next-edit-outcomes", daemon=True
                )
                self._thread.start()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._append(item)
            except OSError:
                self.errors += 1

    def _append(self, line: bytes) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            private_folder(folder)  # ours alone, each level, whatever the umask
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > self.max_bytes:
            self._trim()

    def _trim(self) -> None:
        """Keep the newest whole lines that fit in half of ``max_bytes``."""
        with self._lock:
            data = self.path.read_bytes()
            keep: list[bytes] = []
            total = 0
            for line in reversed(data.splitlines(keepends=True)):
                if total + len(line) > self.max_bytes // 2:
                    break
                keep.append(line)
                total += len(line)
            atomic_write(self.path, b"".join(reversed(keep)), mode=PRIVATE_FILE)
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
