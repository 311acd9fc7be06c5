"""Background work for the UI: run a function on a worker thread, get its result as a signal.

The UI thread never waits: ``start`` returns at once, the result arrives through ``done`` on
the UI thread, and ``cancel`` sets the event the function is handed (it must poll it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

__all__ = ["BackgroundTask"]


class _Bridge(QObject):
    done = Signal(object)
    failed = Signal(str)


class BackgroundTask(QObject):
    """One cancellable background job at a time; starting a new one cancels the previous."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel: threading.Event | None = None
        self._generation = 0

    def start(self, fn: Callable[[threading.Event], Any]) -> None:
        self.cancel()
        self._generation += 1
        generation = self._generation
        cancel = self._cancel = threading.Event()
        bridge = _Bridge()
        bridge.done.connect(lambda r: self._deliver(generation, r))
        bridge.failed.connect(lambda m: self._fail(generation, m))

        class _Run(QRunnable):
            def run(self) -> None:
                try:
                    result = fn(cancel)
                except Exception as exc:  # reported to the UI, never raised into Qt
                    bridge.failed.emit(f"{type(exc).__name__}: {exc}")
                else:
                    if not cancel.is_set():
                        bridge.done.emit(result)

        self._bridge = bridge  # keep the bridge alive while the job runs
        QThreadPool.globalInstance().start(_Run())

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def _deliver(self, generation: int, result: object) -> None:
        if generation == self._generation:  # a stale result is never delivered
            self.done.emit(result)

    def _fail(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.failed.emit(message)
