"""The language servers' hub (``app.services.lsp.LspHub``, its own thread) seen from Qt: the
hub's callbacks, called on its thread, are re-emitted as signals that arrive on the UI
thread (queued: the bridge lives there). Nothing here blocks; closing stops the servers
within a bounded time. The hub's first work (importing the LSP libraries, ~0.5 s of Python)
starts once the UI thread is free (``UiFree``), not while the window paints the files that
made it."""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal

from app.services.lsp import GatedHub, ServerStatus
from forecode_core.lsp.diagnostics import Diagnostic
from forecode_core.lsp.servers import ServerTable

__all__ = ["LspBridge", "UiFree"]

SETTLE_MS = 100  # the UI thread free at least this long after the hub is made ...
TICK_MS = 20  # ... as a timer this often runs ...
LATE_MS = 8  # ... no later than this


class UiFree(QObject):
    """Calls ``then`` once, when a ``TICK_MS`` timer on the UI thread has run on time (at most
    ``LATE_MS`` late) ``SETTLE_MS`` or more after it was made: the burst of work that made it
    (files opening, the window laying out and painting them) is over. The hub's first work
    waits for it (``GatedHub``), at most ``hub.GATE_MAX_S``."""

    def __init__(self, then: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._then = then
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    @property
    def waiting(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        now = self._clock.elapsed()
        on_time = now - self._last <= TICK_MS + LATE_MS
        self._last = now
        if on_time and now >= SETTLE_MS:
            self._timer.stop()
            self._then()


class LspBridge(QObject):
    """``diagnostics(uri, version or None, server, list[Diagnostic])``; ``status(ServerStatus)``."""

    diagnostics = Signal(str, object, str, object)
    status = Signal(object)
    answered = Signal(int, object, object)  # token, result, error (an exception or None)

    def __init__(
        self,
        table: ServerTable = (),
        parent: QObject | None = None,
        *,
        request_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(parent)
        self.hub = GatedHub(
            self._on_diagnostics, self._on_status, table, request_timeout_s=request_timeout_s
        )
        self.ui_free = UiFree(self.hub.open_gate, self)  # the hub's first work waits for it
        self._waiting: dict[int, Callable[[object, BaseException | None], None]] = {}
        self._tokens = itertools.count(1)
        self.answered.connect(self._on_answered)

    def ask(
        self,
        uri: str,
        capability: str,
        method: str,
        params: object,
        on_answer: Callable[[object, BaseException | None], None],
    ) -> None:
        """A request to the document's first server with ``capability``; ``on_answer(result,
        error)`` runs later on the UI thread (never here: the caller does not wait)."""
        token = next(self._tokens)
        self._waiting[token] = on_answer
        future = self.hub.ask(uri, capability, method, params)
        future.add_done_callback(functools.partial(self._finished, token))

    def _finished(self, token: int, future: Future[Any]) -> None:  # the hub's thread
        error = future.exception() if not future.cancelled() else CancelledError()
        with contextlib.suppress(RuntimeError):  # the bridge deleted (the window gone)
            self.answered.emit(token, None if error else future.result(), error)

    def _on_answered(self, token: int, result: object, error: object) -> None:
        callback = self._waiting.pop(token, None)
        if callback is not None:
            callback(result, error if isinstance(error, BaseException) else None)

    def _on_diagnostics(
        self, uri: str, version: int | None, server: str, found: list[Diagnostic]
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the bridge deleted (the window gone)
            self.diagnostics.emit(uri, version, server, found)  # queued to the UI thread

    def _on_status(self, status: ServerStatus) -> None:
        # A server's last word can come after the window is gone (a process that exits
        # without closing it): nobody to tell, and no traceback on the LSP thread.
        with contextlib.suppress(RuntimeError):
            self.status.emit(status)

    def shutdown(self, timeout_s: float = 3.0) -> None:
        self.hub.shutdown(timeout_s)
