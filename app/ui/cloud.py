"""The chat service in the Qt world: the ``ChatBackend`` seam, the ``ChatRunner`` that streams
one reply into Qt signals, and ``CloudConnection``, the window's service lifecycle.

A ``ChatCall`` (``forecode_core.chat.types``: the shared ``forecode_core.streams.Call`` of chat
events; ``cloud_client``'s, the router's, or a test's scripted fake) is a *blocking* iterator.
``ChatRunner`` (an ``app.ui.stream_runner`` ``StreamRunner``) iterates it on a worker thread
and hands the events to the UI thread through a queued signal; deltas that arrive faster than
``FLUSH_MS`` are joined into one, so a fast stream costs the UI one update per flush, not one
per token. Every request has a generation:
after ``stop()`` returns, nothing of that request reaches the UI except what had already
arrived and the ``finished(ChatDone("cancelled"))`` that ``stop`` itself emits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.threads import UiThread
from app.ui.stream_runner import StreamHandle, StreamRunner
from forecode_core.chat.types import (
    ChatCall,
    ChatDelta,
    ChatDone,
    ChatError,
    ChatEvent,
    ChatNotice,
    ChatParams,
    ChatStarted,
)
from forecode_core.engine_state import EngineState
from forecode_core.states import ServiceState
from forecode_core.streams import Failed, FailureCode, FinishReason

__all__ = [
    "ChatBackend",
    "ChatRunner",
    "CloudConnection",
    "DeferredBackend",
    "LocalFallback",
]


class ChatBackend(Protocol):
    """Where chat requests go. The real one is ``cloud_client.router.Router``; tests plug a
    scripted fake in here."""

    def chat(self, params: ChatParams) -> ChatCall: ...


class ChatRunner(StreamRunner):
    """Streams one reply at a time from a ``ChatBackend`` into signals on the UI thread."""

    started = Signal(object)  # ChatStarted
    delta = Signal(str)  # text to append (joined deltas)
    notice = Signal(str)  # ChatNotice text (e.g. "the service is unreachable; local model")
    finished = Signal(object)  # ChatDone (finish_reason "cancelled" after stop())
    # failed(code, message): a ChatError's (StreamRunner's signal)

    TERMINAL = (ChatDone,)

    def __init__(self, backend: ChatBackend | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend

    def start(self, params: ChatParams) -> None:
        """Send ``params``; a reply already streaming is stopped first. Returns at once."""
        handle = self._begin()
        backend = self.backend
        if backend is None:
            handle.push(Failed("unavailable", "No chat service is configured."))
            return
        self._run(handle, lambda: backend.chat(params), self._consume, "forecode-chat")

    def _on_stopped(self, pending: list[object]) -> None:
        # stop(): what already arrived is shown, then ``finished`` with "cancelled"
        for event in pending:
            if not isinstance(event, ChatDone | Failed):
                self._emit(event)
        self.finished.emit(ChatDone(FinishReason.CANCELLED))

    # ----- worker thread ---------------------------------------------------------------------
    def _consume(self, call: ChatCall, handle: StreamHandle) -> None:
        for event in call:
            if handle.cancelled:
                return
            handle.push(event)
            if isinstance(event, ChatDone):
                return
        if not handle.cancelled:
            handle.push(Failed("internal", "The reply ended without finishing."))

    # ----- UI thread -------------------------------------------------------------------------
    def _emit(self, event: object) -> None:
        if isinstance(event, ChatDelta):
            self.delta.emit(event.text)
        elif isinstance(event, ChatStarted):
            self.started.emit(event)
        elif isinstance(event, ChatNotice):
            self.notice.emit(event.text)
        elif isinstance(event, ChatDone):
            self.finished.emit(event)


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
            yield ChatNotice("The chat service is starting; the question is sent when it is ready.")
            deadline = time.monotonic() + owner.WAIT_SECONDS
            while not owner._ready.wait(0.05):
                if self._cancelled.is_set():
                    return
                if time.monotonic() > deadline:
                    raise ChatError(
                        FailureCode.UNAVAILABLE, "The chat service did not start in time."
                    )
        backend = owner._backend
        if backend is None:
            raise ChatError(
                FailureCode.UNAVAILABLE, owner._error or "The chat service is not available."
            )
        with self._lock:
            if self._cancelled.is_set():
                return
            self._inner = inner = backend.chat(self._params)
        yield from inner


class LocalFallback:
    """The router's ``LocalChat``: the window's engine worker (the completion engine's
    ``EngineClient``, which answers chats too) as it is *now* — ``engine()`` is asked on every
    call, so an engine started, restarted or stopped later is followed. Unavailable while
    there is none (``completion.enabled`` off) or it failed."""

    def __init__(self, engine: Callable[[], Any | None]) -> None:
        self._engine = engine

    @property
    def available(self) -> bool:
        engine = self._engine()
        return engine is not None and EngineState(engine.state).running

    def chat(self, params: ChatParams) -> ChatCall:
        engine = self._engine()
        if engine is None:
            raise ChatError(
                FailureCode.UNAVAILABLE,
                "no model can answer: the chat service is not "
                "running and the local model is off "
                "(completion.enabled).",
            )
        from forecode_core.models import chat_refusal

        refusal = chat_refusal(Path(str(getattr(engine, "model_path", ""))).name)
        if refusal:  # a reply that recites its instructions is worse than none
            raise ChatError(
                FailureCode.UNAVAILABLE,
                f"no model can answer: the chat service is not running and {refusal}. "
                "Chat answers once the service runs (Cloud: Restart Chat Service).",
            )
        from cloud_client.local_chat import EngineChat

        return EngineChat(engine).chat(params)


class _StateRelay(QObject):
    state = Signal(str, str)
    connected = Signal(object, object, str)  # client, router, target
    error = Signal(str)


def _about_service(client: Any) -> str:
    """The service's Info in words (``service_summary``), or "" when it does not answer in
    time (the router's health checks say the rest). Worker threads only: one RPC."""
    from cloud_client.client import service_summary

    try:
        return service_summary(client.info(timeout=2.0))
    except Exception:  # an old or odd service, a fake in a test: the state says the rest
        return ""


class CloudConnection(QObject):
    """The window's chat service and its lifecycle.

    - ``url`` set: the remote service there, with the token ``token_provider()`` returns (the
      window reads it from ``TokenStore``; on a worker thread, as a keyring may be slow);
    - else ``autostart``: a ``LocalService`` on loopback with a token made for this run;
    - else no service: the local model answers (when it runs).

    In every case ``backend`` is a ``DeferredBackend`` that takes questions at once and sends
    them when the router (cloud, falling back to the local model) is ready. Nothing slow runs
    on the UI thread; ``state_changed(state, detail)`` reports "starting", "cloud", "local" or
    "offline" on it. ``close`` stops the service we started and is bounded."""

    state_changed = Signal(str, str)
    RETRY_DELAYS_S: tuple[float, ...] = (15.0, 60.0)
    """A loopback service that did not start is started again after these pauses (the local
    model answers meanwhile), then given up with its message: a user run at load 45 saw the
    service's model load stall past the start limit once, and chat stayed off until the user
    found "Cloud: Restart Chat Service"."""

    def __init__(
        self,
        url: str = "",
        *,
        autostart: bool = True,
        token_provider: Callable[[], str | None] | None = None,
        local_engine: Callable[[], Any | None] | None = None,
        service_factory: Callable[[], Any] | None = None,
        service_model: str = "",
        parent: QObject | None = None,
    ) -> None:
        """``service_model``: the GGUF the loopback service loads ("" = its default)."""
        super().__init__(parent)
        self.url = url.strip()
        self._service_model = service_model.strip()
        self.autostart = autostart
        self._token_provider = token_provider
        self.local = LocalFallback(local_engine or (lambda: None))
        self._service_factory = service_factory
        self.backend = DeferredBackend()
        self.state = ServiceState.OFFLINE
        self.detail = ""
        self.target = ""
        self._service: Any = None
        self._client: Any = None
        self._router: Any = None
        self._local_why = ""  # set when there is no service: why
        self._about = ""  # the service's Info in words, once connected (``_about_service``)
        self._index_access: tuple[str, str] | None = None  # (target, token) once connected
        self._started = False
        self._closed = False
        self._retries = 0  # loopback starts tried again so far
        self._relay = _StateRelay(self)
        self._relay.state.connect(self._set_state)
        self._relay.connected.connect(self._on_connected)
        self._relay.error.connect(self._on_error)

    @property
    def service_pid(self) -> int | None:
        """The process id of the service we started (None for a remote or no service)."""
        return self._service.pid if self._service is not None else None

    def index_access(self) -> tuple[str, str] | None:
        """``(target, token)`` of the connected service, for the codebase index's own channel
        (``app.ui.codebase_index``); None before a service answers or without one. The token
        is never logged or shown."""
        return None if self._closed or self._client is None else self._index_access

    @property
    def client(self) -> Any:
        """The connected ``CloudClient`` (None before a service answers or without one): the
        apply's model path when the chat backend is not a router."""
        return self._client

    @property
    def mode(self) -> str:
        return "remote" if self.url else "loopback" if self.autostart else "none"

    def start(self) -> None:
        """Start (or connect to) the service; returns at once."""
        if self._started or self._closed:
            return
        self._started = True
        if self.url:
            self._set_state(ServiceState.STARTING, f"Connecting to the chat service at {self.url}")
            UiThread(target=self._remote_token, daemon=True, name="forecode-cloud-token").start()
        elif self.autostart:
            self._set_state(ServiceState.STARTING, "Starting the chat service on this machine")
            if self._service_factory is not None:
                self._service = self._service_factory()
            else:
                from cloud_client.local_service import LocalService

                # its codebase index lives in the service's default folder: ``index`` in
                # Forecode's data folder, the editor's own (both honour FORECODE_DATA_DIR)
                self._service = LocalService(
                    model_path=str(Path(self._service_model).expanduser())
                    if self._service_model
                    else None
                )
            self._service.start_async(self._service_ready, self._service_failed)
        else:
            self._use_local(
                "No chat service is configured (cloud.url is empty and cloud.autostart is off)"
            )

    # ----- worker threads ----------------------------------------------------------------------
    def _remote_token(self) -> None:
        try:
            token = self._token_provider() if self._token_provider is not None else None
        except Exception as exc:  # a broken keyring or token file; never holds the token
            self._relay_emit("error", f"its token could not be read ({type(exc).__name__}: {exc})")
            return
        if not token:
            self._relay_emit(
                "error", f"no token is set for {self.url} (use “Cloud: Set Service Token”)"
            )
            return
        self._connect(self.url, token)

    def _relay_emit(self, name: str, *args: object) -> None:
        """Emit one of the relay's signals from a worker thread. A window closed (and its
        objects deleted) while the thread worked gets nothing, rather than an exception in a
        thread nobody joins."""
        with contextlib.suppress(RuntimeError):  # "Signal source has been deleted"
            getattr(self._relay, name).emit(*args)

    def _service_failed(self, message: str) -> None:
        """On the start thread: the service did not come up. Closing the window stops a
        service still starting, and that failure is nobody's news (the relay may be gone)."""
        if self._closed:
            return
        self._relay_emit("error", message)

    def _service_ready(self, target: str, token: str) -> None:
        if self._closed:  # closed while it started: it must not outlive the window
            with contextlib.suppress(Exception):
                self._service.stop(1.0)
            return
        self._connect(target, token)

    def _connect(self, target: str, token: str) -> None:
        from cloud_client.client import CloudClient
        from cloud_client.router import Router

        try:
            client = CloudClient(target, token)
        except Exception as exc:  # a bad url, a refused plaintext target...
            self._relay_emit("error", f"{type(exc).__name__}: {exc}")
            return
        router = Router(client, self.local, on_state=lambda s, d: self._relay_emit("state", s, d))
        self._index_access = (target, token)  # before the UI hears of the connection
        self._about = _about_service(client)  # before the UI hears of it, on this thread
        self._relay_emit("connected", client, router, target)

    # ----- UI thread ---------------------------------------------------------------------------
    def _on_connected(self, client: Any, router: Any, target: str) -> None:
        if self._closed:
            for part in (router, client):
                with contextlib.suppress(Exception):
                    part.close()
            return
        self._client, self._router, self.target = client, router, target
        self.backend.set(router)
        where = "on this machine" if self._service is not None else ""
        detail = " ".join(p for p in (f"Chat service at {target}", where) if p)
        self._set_state(router.state, f"{detail}: {self._about}" if self._about else detail)

    def _on_error(self, message: str) -> None:
        if self._closed:
            return
        why = f"The chat service could not start: {message}"
        if self._service is not None and self._retries < len(self.RETRY_DELAYS_S):
            delay = self.RETRY_DELAYS_S[self._retries]
            self._retries += 1
            why += f" (trying again in {delay:g} s)"
            QTimer.singleShot(int(delay * 1000), self, self._retry)
        self._use_local(why)

    def _retry(self) -> None:
        if self._closed or self._client is not None:
            return
        self._started = False
        self.start()

    def _use_local(self, why: str) -> None:
        from cloud_client.router import Router

        self._router = Router(None, self.local, without_service=why)
        self._local_why = why
        self.backend.set(self._router)
        self.local_changed()

    def local_changed(self) -> None:
        """The local engine started, stopped or failed: without a service, that is the
        state (with one, the router reports its own)."""
        if self._closed or not self._local_why:
            return
        if self.local.available:
            self._set_state(ServiceState.LOCAL, f"{self._local_why}; the local model answers")
        else:
            self._set_state(ServiceState.OFFLINE, f"{self._local_why}; the local model is off too")

    def _set_state(self, state: ServiceState, detail: str) -> None:
        if self._closed:
            return
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)

    def close(self, timeout: float = 3.0) -> None:
        """Stop the service we started and close the client, waiting at most ``timeout``
        seconds (the rest goes on in the background; the service also exits by itself when
        this process ends, through its stdin pipe)."""
        if self._closed:
            return
        self._closed = True
        self.backend.fail("The chat service was stopped.")
        router, client, service = self._router, self._client, self._service

        def shut() -> None:
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop(max(0.5, timeout - 1.0))
            for part in (router, client):
                if part is not None:
                    with contextlib.suppress(Exception):
                        part.close()

        worker = threading.Thread(target=shut, daemon=True, name="forecode-cloud-stop")
        worker.start()
        if timeout > 0:
            worker.join(timeout)
