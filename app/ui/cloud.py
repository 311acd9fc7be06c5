"""The chat service in the Qt world: the ``ChatBackend`` seam, the ``ChatRunner`` that streams
one reply into Qt signals, and ``CloudConnection``, the window's service lifecycle.

A ``ChatCall`` (``cloud_client``'s, the router's, or a test's scripted fake) is a *blocking*
iterator of ``local_models.chat`` events. ``ChatRunner`` iterates it on a worker thread and
hands the events to the UI thread through a queued signal; deltas that arrive faster than
``FLUSH_MS`` are joined into one, so a fast stream costs the UI one update per flush, not one
per token. Every request has a generation: after ``stop()`` returns, nothing of that request
reaches the UI except the ``finished(ChatDone("cancelled"))`` that ``stop`` itself emits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from local_models.chat import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatEvent,
    ChatNotice,
    ChatParams,
    ChatStarted,
)

__all__ = ["ChatBackend", "ChatCall", "ChatRunner", "CloudConnection", "DeferredBackend"]


class ChatCall(Protocol):
    """One streamed reply: iterate it (it blocks) on a worker thread; ``cancel`` from any
    thread ends the iteration soon."""

    def __iter__(self) -> Iterator[ChatEvent]: ...

    def cancel(self) -> None: ...


class ChatBackend(Protocol):
    """Where chat requests go. The real one is ``cloud_client.router.Router``; tests plug a
    scripted fake in here."""

    def chat(self, params: ChatParams) -> ChatCall: ...


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str


@dataclass
class _Request:
    generation: int
    call: ChatCall | None = None
    cancelled: bool = False
    pending: list[object] = field(default_factory=list)
    wake_pending: bool = False


class _Relay(QObject):
    wake = Signal(int)


class ChatRunner(QObject):
    """Streams one reply at a time from a ``ChatBackend`` into signals on the UI thread."""

    started = Signal(object)  # ChatStarted
    delta = Signal(str)  # text to append (joined deltas)
    notice = Signal(str)  # ChatNotice text (e.g. "the service is unreachable; local model")
    finished = Signal(object)  # ChatDone (finish_reason "cancelled" after stop())
    failed = Signal(str, str)  # ChatError code, message

    FLUSH_MS = 30

    def __init__(self, backend: ChatBackend | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
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

    def start(self, params: ChatParams) -> None:
        """Send ``params``; a reply already streaming is stopped first. Returns at once."""
        self.stop()
        backend = self.backend
        self._generation += 1
        req = _Request(self._generation)
        self._current = req
        if backend is None:
            self._push(req, _Failure("unavailable", "No chat service is configured."))
            return
        threading.Thread(target=self._work, args=(backend, req, params), daemon=True,
                         name="forecode-chat").start()

    def stop(self) -> None:
        """Cancel the reply in flight: what already arrived is shown, then ``finished`` with
        "cancelled"; nothing else of it is ever emitted."""
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
        for event in pending:
            if not isinstance(event, ChatDone | _Failure):
                self._emit(event)
        self.finished.emit(ChatDone("cancelled"))

    # ----- worker thread ---------------------------------------------------------------------
    def _work(self, backend: ChatBackend, req: _Request, params: ChatParams) -> None:
        try:
            call = backend.chat(params)
            with self._lock:
                req.call = call
                cancelled = req.cancelled
            if cancelled:
                call.cancel()
                return
            for event in call:
                if req.cancelled:
                    return
                self._push(req, event)
                if isinstance(event, ChatDone):
                    return
            if not req.cancelled:
                self._push(req, _Failure("internal", "The reply ended without finishing."))
        except ChatError as exc:
            self._push(req, _Failure(exc.code, exc.message))
        except Exception as exc:  # reported in the transcript, never raised into Qt
            self._push(req, _Failure("internal", f"{type(exc).__name__}: {exc}"))

    def _push(self, req: _Request, event: object) -> None:
        with self._lock:
            if req is not self._current:
                return
            if (isinstance(event, ChatDelta) and req.pending
                    and isinstance(req.pending[-1], ChatDelta)):
                req.pending[-1] = ChatDelta(req.pending[-1].text + event.text)
            else:
                req.pending.append(event)
            if req.wake_pending:
                return
            req.wake_pending = True
        self._relay.wake.emit(req.generation)

    # ----- UI thread -------------------------------------------------------------------------
    def _on_wake(self, generation: int) -> None:
        req = self._current
        if req is None or req.generation != generation:
            return
        with self._lock:
            urgent = any(not isinstance(e, ChatDelta) for e in req.pending)
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
            if any(isinstance(e, ChatDone | _Failure) for e in events):
                self._current = None  # a handler may start the next request
        self._last_flush = time.monotonic()
        for event in events:
            self._emit(event)

    def _emit(self, event: object) -> None:
        if isinstance(event, ChatDelta):
            self.delta.emit(event.text)
        elif isinstance(event, ChatStarted):
            self.started.emit(event)
        elif isinstance(event, ChatNotice):
            self.notice.emit(event.text)
        elif isinstance(event, ChatDone):
            self.finished.emit(event)
        elif isinstance(event, _Failure):
            self.failed.emit(event.code, event.message)


# ----- the service's lifecycle -------------------------------------------------------------------


class DeferredBackend:
    """A ``ChatBackend`` that can take questions before the real one exists: a call waits
    (on the runner's worker thread, cancellably) until ``set`` or ``fail`` is called."""

    WAIT_SECONDS = 180.0

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._backend: ChatBackend | None = None
        self._error = ""

    def set(self, backend: ChatBackend) -> None:
        self._backend, self._error = backend, ""
        self._ready.set()

    def fail(self, message: str) -> None:
        self._backend, self._error = None, message
        self._ready.set()

    def reset(self) -> None:
        self._ready.clear()
        self._backend, self._error = None, ""

    @property
    def current(self) -> ChatBackend | None:
        return self._backend

    def chat(self, params: ChatParams) -> ChatCall:
        return _DeferredCall(self, params)


class _DeferredCall:
    def __init__(self, owner: DeferredBackend, params: ChatParams) -> None:
        self._owner = owner
        self._params = params
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._inner: ChatCall | None = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled.set()
            inner = self._inner
        if inner is not None:
            inner.cancel()

    def __iter__(self) -> Iterator[ChatEvent]:
        owner = self._owner
        if not owner._ready.is_set():
            yield ChatNotice("The chat service is starting; the question is sent when it is "
                             "ready.")
            deadline = time.monotonic() + owner.WAIT_SECONDS
            while not owner._ready.wait(0.05):
                if self._cancelled.is_set():
                    return
                if time.monotonic() > deadline:
                    raise ChatError("unavailable", "The chat service did not start in time.")
        backend = owner._backend
        if backend is None:
            raise ChatError("unavailable", owner._error or "The chat service is not available.")
        with self._lock:
            if self._cancelled.is_set():
                return
            self._inner = inner = backend.chat(self._params)
        yield from inner


class _StateRelay(QObject):
    state = Signal(str, str)
    ready = Signal(str, str)
    error = Signal(str)


class CloudConnection(QObject):
    """The window's chat service: a service on loopback with a fresh token (no ``cloud.url``)
    or the configured remote one, a ``CloudClient`` to it and the router (cloud, falling back
    to the local model). Everything slow happens off the UI thread; ``state_changed`` reports
    "starting", "cloud", "local" or "offline" on the UI thread."""

    state_changed = Signal(str, str)

    def __init__(self, url: str = "", *, token: str | None = None, model_path: str = "",
                 local_model_path: Callable[[], str] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.url = url
        self._token = token
        self._model_path = model_path
        self._local_model_path = local_model_path
        self.backend = DeferredBackend()
        self.state = "offline"
        self.detail = ""
        self._service: Any = None
        self._client: Any = None
        self._router: Any = None
        self._closed = False
        self._relay = _StateRelay(self)
        self._relay.state.connect(self._set_state)
        self._relay.ready.connect(self._on_ready)
        self._relay.error.connect(self._on_error)

    def start(self) -> None:
        """Start (or connect to) the service; returns at once."""
        if self.url:
            self._set_state("starting", f"Connecting to {self.url}")
            self._on_ready(self.url, self._token or "")
            return
        from cloud_client.local_service import LocalService

        self._set_state("starting", "Starting the chat service on this machine")
        self._service = LocalService(model_path=self._model_path or None)
        self._service.start_async(lambda target, token: self._relay.ready.emit(target, token),
                                  lambda message: self._relay.error.emit(message))

    def _on_ready(self, target: str, token: str) -> None:
        if self._closed:
            return
        try:
            from cloud_client.client import CloudClient

            self._client = CloudClient(target, token)
            self._router = self._make_router(self._client)
        except Exception as exc:  # a bad url, a refused plaintext target...
            self._on_error(f"{type(exc).__name__}: {exc}")
            return
        self.backend.set(self._router)
        state = getattr(self._router, "state", "cloud")
        self._set_state(state, f"Chat service at {target}")

    def _on_error(self, message: str) -> None:
        if self._closed:
            return
        try:
            self._router = self._make_router(None)
        except Exception:
            self._router = None
        if self._router is not None:
            self.backend.set(self._router)
            self._set_state("local", f"The chat service could not start ({message}); "
                                     "answering with the local model")
        else:
            self.backend.fail(f"The chat service could not start: {message}")
            self._set_state("offline", message)

    def _make_router(self, client: Any) -> Any:
        from cloud_client.router import Router

        return Router(client, on_state=lambda s, d: self._relay.state.emit(s, d),
                      local_model_path=self._local_model_path)

    def _set_state(self, state: str, detail: str) -> None:
        if self._closed:
            return
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)

    def close(self, timeout: float = 3.0) -> None:
        """Stop the local service (if we started one) and close the client; bounded."""
        if self._closed:
            return
        self._closed = True
        self.backend.fail("The chat service was stopped.")
        parts = [p for p in (self._router, self._client, self._service) if p is not None]

        def shut() -> None:
            for part in parts:
                with contextlib.suppress(Exception):
                    (part.stop if hasattr(part, "stop") else part.close)()

        worker = threading.Thread(target=shut, daemon=True, name="forecode-cloud-stop")
        worker.start()
        worker.join(timeout)
