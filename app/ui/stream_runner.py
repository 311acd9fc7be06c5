"""One streaming call at a time, on a worker thread, into Qt signals on the UI thread.

``StreamRunner`` is what ``ChatRunner`` (``app.ui.cloud``) and ``ApplyRunner``
(``app.ui.apply_backend``) share: a blocking call (an iterator with ``cancel``) is opened and
consumed on a daemon thread; what the worker pushes reaches the UI thread through a queued
signal; deltas that arrive faster than ``FLUSH_MS`` are joined into one, so a fast stream costs
the UI one update per flush, not one per token; anything that is not a delta is delivered at
once. Every request has a generation: after ``stop()`` returns, nothing of that request reaches
the UI (except what the subclass's ``_on_stopped`` emits itself).

The events are the shared contract's (``forecode_core.streams``): ``Delta``s are joined, a
``Failed`` is delivered through ``failed(code, message)``. A subclass says which events end a
request (``TERMINAL``; a ``Failed`` always does) and how to emit an event (``_emit``); each
``start`` passes how to open the call and how to consume it (``_run``). A ``StreamError``
from opening or consuming the call becomes its ``Failed``; any other exception a ``Failed``
with code "internal". Nothing is ever raised into Qt.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.threads import UiThread
from forecode_core.streams import Call, Delta, Event, Failed, StreamError

__all__ = ["StreamHandle", "StreamRunner"]


@dataclass
class _Request:
    generation: int
    call: Call[Event] | None = None
    cancelled: bool = False
    pending: list[object] = field(default_factory=list)
    wake_pending: bool = False


class StreamHandle:
    """What a worker sees of its request: whether it was cancelled, and where to push."""

    def __init__(self, runner: StreamRunner, request: _Request) -> None:
        self._runner = runner
        self._request = request

    @property
    def cancelled(self) -> bool:
        return self._request.cancelled

    def push(self, event: object) -> None:
        self._runner._push(self._request, event)


class _Relay(QObject):
    wake = Signal(int)


class StreamRunner(QObject):
    """The shared machinery; see the module's docstring. Subclasses declare their signals
    (``failed(str, str)`` is declared here) and implement ``_emit``."""

    failed = Signal(str, str)  # code, message

    FLUSH_MS = 30
    TERMINAL: ClassVar[tuple[type, ...]] = ()  # events after which the request is over

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._current: _Request | None = None
        self._generation = 0
        self._last_flush = 0.0
        self._relay = _Relay(self)
        self._relay.wake.connect(self._on_wake)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._drain)

    def is_running(self) -> bool:
        return self._current is not None

    # ----- for subclasses ------------------------------------------------------------------------
    def _begin(self) -> StreamHandle:
        """Stop the request in flight and make the next one current (UI thread)."""
        self.stop()
        self._generation += 1
        req = _Request(self._generation)
        self._current = req
        return StreamHandle(self, req)

    def _run(
        self,
        handle: StreamHandle,
        open_call: Callable[[], Call[Event]],
        consume: Callable[[Call[Event], StreamHandle], None],
        name: str,
    ) -> None:
        """On a new daemon thread: ``open_call()``, then ``consume(call, handle)``, which
        iterates the call, pushes events through ``handle`` and returns when the call is done
        or ``handle.cancelled``."""
        UiThread(
            target=self._work, args=(handle, open_call, consume), daemon=True, name=name
        ).start()

    def _emit(self, event: object) -> None:
        """Emit one event (not a ``Failed``) as the subclass's signal (UI thread)."""
        raise NotImplementedError

    @staticmethod
    def _failure_for(exc: Exception) -> Failed:
        """An exception as a failure: a ``StreamError``'s own, else "internal"."""
        if isinstance(exc, StreamError):
            return exc.failed
        return Failed("internal", f"{type(exc).__name__}: {exc}")

    def _on_stopped(self, pending: list[object]) -> None:
        """Called by ``stop`` (UI thread) with the events not delivered yet; drops them."""

    # ----- any thread ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel the request in flight; nothing of it is emitted after this returns (but what
        ``_on_stopped`` emits)."""
        with self._lock:
            req = self._current
            if req is None:
                return
            self._current = None
            req.cancelled = True
            call, pending, req.pending = req.call, req.pending, []
        self._timer.stop()
        if call is not None:
            with contextlib.suppress(Exception):
                call.cancel()
        self._on_stopped(pending)

    # ----- worker thread -------------------------------------------------------------------------
    def _work(
        self,
        handle: StreamHandle,
        open_call: Callable[[], Call[Event]],
        consume: Callable[[Call[Event], StreamHandle], None],
    ) -> None:
        req = handle._request
        try:
            call = open_call()
            with self._lock:
                req.call = call
                cancelled = req.cancelled
            if cancelled:
                call.cancel()
                return
            consume(call, handle)
        except Exception as exc:  # shown to the user, never raised into Qt
            self._push(req, self._failure_for(exc))

    def _push(self, req: _Request, event: object) -> None:
        with self._lock:
            if req is not self._current:
                return
            last = req.pending[-1] if req.pending else None
            if isinstance(event, Delta) and isinstance(last, Delta):
                req.pending[-1] = Delta(last.text + event.text)
            else:
                req.pending.append(event)
            if req.wake_pending:
                return
            req.wake_pending = True
        self._relay.wake.emit(req.generation)

    # ----- UI thread -----------------------------------------------------------------------------
    def _on_wake(self, generation: int) -> None:
        req = self._current
        if req is None or req.generation != generation:
            return
        with self._lock:
            urgent = any(not isinstance(e, Delta) for e in req.pending)
        wait_ms = self.FLUSH_MS - (time.monotonic() - self._last_flush) * 1000
        if urgent or wait_ms <= 0:
            self._drain()
        elif not self._timer.isActive():
            self._timer.start(max(1, int(wait_ms)))

    def _drain(self) -> None:
        with self._lock:
            req = self._current
            if req is None:
                return
            events, req.pending, req.wake_pending = req.pending, [], False
            if any(isinstance(e, (Failed, *self.TERMINAL)) for e in events):
                self._current = None  # a handler may start the next request
        self._last_flush = time.monotonic()
        for event in events:
            if req.cancelled:
                return  # a handler stopped it: nothing more of it
            self._deliver(event)

    def _deliver(self, event: object) -> None:
        if isinstance(event, Failed):
            self.failed.emit(event.code, event.message)
        else:
            self._emit(event)
