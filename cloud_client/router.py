"""``Router``: where each request goes — the local engine or the cloud service — and the
fallback when the service is unreachable.

Per request kind (``ROUTES``): completions always go to the local engine (latency beats size);
chat, apply and multi-file edits go to the cloud while it is reachable. Apply (``apply``) and
multi-file edits (``edits``) have no local fallback yet: while the service is unreachable
they fail with "unavailable".

Fallback. A chat call whose service is unreachable (UNAVAILABLE when it starts, or the stream
breaking mid-reply with UNAVAILABLE — a killed service, a reset connection) continues with the
local model: the iterator yields ``ChatNotice(NOTICE_FALLBACK)`` then the local model's events.
If the cloud had already streamed part of the reply, the answer *starts over* locally (the
notice says so, ``NOTICE_RESTART``) and a second ``ChatStarted(source="local")`` follows: a
consumer treats every ``ChatStarted`` as "the reply begins here" and replaces what it showed.
Starting over, rather than asking the local model to continue the cloud's half sentence, keeps
the two models' styles from mixing in one answer and needs no prompt surgery; the cost is the
partial text the user already saw, and the panel can keep it visible until the new text comes.

Then the state is "local" and a background thread probes the service's health (``probe_interval_s``
doubling up to ``max_probe_interval_s``). While it is down, chat goes straight to the local model,
each call opening with the same notice so the user always sees where an answer comes from. When
a probe succeeds, the state is "cloud" again (``on_state``), and the next call opens with
``NOTICE_BACK``.

Not hidden by fallback: a refused token (UNAUTHENTICATED) raises ``ChatError`` so the user
fixes it; so do deadlines, invalid or too-large requests and server errors — the local model
would not do better and the user should know.

States: "cloud" (service believed reachable), "local" (unreachable, the local model answers),
"offline" (no service configured, or both down). ``on_state(state, detail)`` is called on each
change, from whichever thread noticed it (a chat consumer's or the prober's); the editor
re-emits it as a Qt signal. Nothing here blocks the caller of ``chat()``: the work happens
while the returned iterator is consumed (on the chat panel's worker thread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Protocol

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyCall, ApplyEvent
from forecode_core.chat.types import (
    ChatCall,
    ChatDone,
    ChatError,
    ChatEvent,
    ChatNotice,
    ChatParams,
)
from forecode_core.routing import ROUTES, Route, route, router_state, use_cloud
from forecode_core.states import ServiceState
from forecode_core.streams import FailureCode, FinishReason

__all__ = [
    "NOTICE_BACK",
    "NOTICE_FALLBACK",
    "NOTICE_RESTART",
    "ROUTES",
    "STATES",
    "CloudChat",
    "LocalChat",
    "RoutedChat",
    "Router",
]

log = logging.getLogger(__name__)

STATES: tuple[str, ...] = (ServiceState.CLOUD, ServiceState.LOCAL, ServiceState.OFFLINE)

NOTICE_FALLBACK = "The Forecode service is not reachable; answering with the local model"
NOTICE_RESTART = (
    "The Forecode service stopped answering; the reply starts over with the local model"
)
NOTICE_BACK = "The Forecode service is reachable again; answering from the cloud"


class LocalChat(Protocol):
    """The local model's chat (``cloud_client.local_chat.EngineChat`` wraps ``EngineClient``).

    May also have an ``available`` property; without one it counts as available."""

    def chat(self, params: ChatParams) -> ChatCall: ...


class CloudChat(Protocol):
    """What the router needs of ``CloudClient``."""

    @property
    def target(self) -> str: ...

    def chat(self, params: ChatParams, *, timeout: float = ...) -> ChatCall: ...

    def apply(self, request: ApplyInput, *, timeout: float = ...) -> ApplyCall: ...

    def healthy(self, timeout: float = ...) -> bool: ...


def _ignore_state(state: ServiceState, detail: str) -> None:
    pass


class Router:
    """Routes requests between ``cloud`` (a CloudClient, or None when none is configured) and
    ``local`` (a LocalChat, or None); see the module docstring."""

    def __init__(
        self,
        cloud: CloudChat | None,
        local: LocalChat | None,
        *,
        probe_interval_s: float = 2.0,
        max_probe_interval_s: float = 30.0,
        on_state: Callable[[ServiceState, str], None] = _ignore_state,
        chat_timeout_s: float = 300.0,
        without_service: str = "",
    ) -> None:
        if probe_interval_s <= 0 or max_probe_interval_s < probe_interval_s:
            raise ValueError("probe intervals must be positive, the maximum not below the first")
        self.cloud = cloud
        self.local = local
        # why there is no service (``cloud`` None): said when apply or edits need one
        self._without_service = without_service
        self._probe_interval_s = probe_interval_s
        self._max_probe_interval_s = max_probe_interval_s
        self._on_state = on_state
        self._chat_timeout_s = chat_timeout_s
        self._cond = threading.Condition()
        self._cloud_up = cloud is not None
        self._announce_back = False
        self._probe_asked = False
        self._closed = False
        self._reported = self._compute_state()
        self._prober: threading.Thread | None = None
        if cloud is not None:
            self._prober = threading.Thread(
                target=self._probe_loop, daemon=True, name="forecode-router-probe"
            )
            self._prober.start()

    # -----------------------------------------------------------------------------------------
    # public API

    @property
    def state(self) -> ServiceState:
        with self._cond:
            return self._compute_state()

    def route(self, kind: str) -> Route:
        """Where a request of ``kind`` goes (see ``ROUTES``) in the current state."""
        with self._cond:
            cloud = self._use_cloud()
        return route(kind, cloud=cloud)

    def chat(self, params: ChatParams, *, timeout: float | None = None) -> RoutedChat:
        """A reply to ``params`` from wherever ``route("chat")`` says, with the fallback; returns
        at once (the work happens while the result is iterated)."""
        if self._closed:
            raise RuntimeError("this Router is closed")
        return RoutedChat(self, params, self._chat_timeout_s if timeout is None else timeout)

    def apply(self, request: ApplyInput, *, timeout: float | None = None) -> ApplyCall:
        """Apply ``request`` on the service (``CloudClient.apply``: an ``ApplyCall`` streaming
        the new file); returns at once. There is no local fallback for apply yet: without a
        service this raises ``ChatError("unavailable")``, and an unreachable service fails the
        call with it (which also turns the router's state to the fallback's, as for chat)."""
        if self._closed:
            raise RuntimeError("this Router is closed")
        cloud = self.cloud
        if cloud is None:
            raise ChatError(
                FailureCode.UNAVAILABLE, self._no_service("Applying a code block needs")
            )
        # Tried even while the service is believed down: there is nothing else to try.
        call = cloud.apply(request, timeout=self._chat_timeout_s if timeout is None else timeout)
        return _WatchedApply(self, call)

    def edits(self, params: ChatParams, *, timeout: float | None = None) -> ApplyCall:
        """A multi-file edit on the service (``CloudClient.edits``: its stream ends with an
        ``EditsDone`` holding the set); returns at once. No local fallback, as for apply:
        without a service this raises ``ChatError("unavailable")``."""
        if self._closed:
            raise RuntimeError("this Router is closed")
        cloud = self.cloud
        edits = getattr(cloud, "edits", None)
        if cloud is None or edits is None:
            raise ChatError(FailureCode.UNAVAILABLE, self._no_service("Multi-file edits need"))
        call = edits(params, timeout=2 * self._chat_timeout_s if timeout is None else timeout)
        return _WatchedApply(self, call)

    def _no_service(self, what: str) -> str:
        """``what`` the service, and why there is none (a service that could not start is
        not "none configured")."""
        if self._without_service:
            return f"{what} the Forecode service. {self._without_service}"
        return f"{what} the Forecode service, and none is configured"

    def probe_now(self) -> None:
        """Probe the service at once instead of at the next interval (a "retry" button)."""
        with self._cond:
            self._probe_asked = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the prober (does not close the clients, which the caller owns)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        prober = self._prober
        if prober is not None and prober is not threading.current_thread():
            prober.join(5.0)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # state (call with self._cond held unless said otherwise)

    def _local_available(self) -> bool:
        return self.local is not None and bool(getattr(self.local, "available", True))

    def _compute_state(self) -> ServiceState:
        return router_state(
            configured=self.cloud is not None,
            cloud_up=self._cloud_up,
            local_available=self._local_available(),
        )

    def _use_cloud(self) -> bool:
        return use_cloud(
            configured=self.cloud is not None,
            cloud_up=self._cloud_up,
            local_available=self._local_available(),
        )

    def _set_cloud_up(self, up: bool, detail: str) -> None:
        """Record what a call or a probe learned and report a state change (lock not held)."""
        with self._cond:
            if self._cloud_up == up and self._reported == self._compute_state():
                return
            was_up = self._cloud_up
            self._cloud_up = up
            if up and not was_up:
                self._announce_back = True
            state = self._compute_state()
            changed = state != self._reported
            self._reported = state
            self._cond.notify_all()
        if changed:
            try:
                self._on_state(state, detail)
            except Exception:
                log.exception("the router's on_state callback raised")

    def _take_back_notice(self) -> bool:
        with self._cond:
            announce, self._announce_back = self._announce_back, False
            return announce

    def _probe_loop(self) -> None:
        assert self.cloud is not None
        interval = self._probe_interval_s
        while True:
            with self._cond:
                while not self._closed and self._cloud_up:
                    interval = self._probe_interval_s
                    self._cond.wait()
                if self._closed:
                    return
                if not self._probe_asked:
                    self._cond.wait(interval)
                if self._closed:
                    return
                if self._cloud_up:
                    continue
                self._probe_asked = False
            try:
                up = self.cloud.healthy(timeout=1.0)
            except Exception:
                log.exception("the service health probe raised")
                up = False
            if up:
                self._set_cloud_up(True, NOTICE_BACK)
            else:
                interval = min(interval * 2, self._max_probe_interval_s)


class _WatchedApply:
    """An apply call whose UNAVAILABLE failure tells the router the service is down."""

    def __init__(self, router: Router, call: ApplyCall) -> None:
        self._router = router
        self._call = call
        self._events = self._run()

    def __iter__(self) -> Iterator[ApplyEvent]:
        return self

    def __next__(self) -> ApplyEvent:
        return next(self._events)

    def cancel(self) -> None:
        self._call.cancel()

    def _run(self) -> Iterator[ApplyEvent]:
        try:
            yield from self._call
        except ChatError as exc:
            if exc.code == FailureCode.UNAVAILABLE:
                self._router._set_cloud_up(False, exc.message)
            raise


class RoutedChat:
    """One routed reply: iterate for events (``ChatNotice``s included), ``cancel()`` from any
    thread. After ``cancel()`` the iteration ends with ``ChatDone("cancelled")``."""

    def __init__(self, router: Router, params: ChatParams, timeout: float) -> None:
        self._router = router
        self._params = params
        self._timeout = timeout
        self._lock = threading.Lock()
        self._current: ChatCall | None = None
        self._cancelled = False
        self.source: Route | None = None  # once a backend was asked
        self._events = self._run()

    def __iter__(self) -> Iterator[ChatEvent]:
        return self

    def __next__(self) -> ChatEvent:
        return next(self._events)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            current = self._current
        if current is not None:
            current.cancel()

    def close(self) -> None:
        """Abandon the reply (cancels whatever runs)."""
        self.cancel()
        self._events.close()

    def _start(self, source: Route, factory: Callable[[], ChatCall]) -> ChatCall | None:
        """Start a backend call unless cancelled (None then); cancel() sees it from now on."""
        with self._lock:
            if self._cancelled:
                return None
            self._current = factory()
            self.source = source
            return self._current

    def _run(self) -> Generator[ChatEvent, None, None]:
        router = self._router
        cloud = router.cloud
        if router._take_back_notice():
            yield ChatNotice(NOTICE_BACK)
        with router._cond:
            use_cloud = router._use_cloud()
        try:
            if use_cloud:
                assert cloud is not None
                call = self._start(
                    Route.CLOUD, lambda: cloud.chat(self._params, timeout=self._timeout)
                )
                if call is None:
                    yield ChatDone(finish_reason=FinishReason.CANCELLED)
                    return
                try:
                    yield from call
                except ChatError as err:
                    if err.code != FailureCode.UNAVAILABLE or self._cancelled:
                        raise
                    partial = getattr(call, "received", 0) > 0
                    router._set_cloud_up(False, err.message)
                    if not router._local_available():
                        raise
                    log.info("the service is unreachable; falling back to the local model")
                    yield ChatNotice(NOTICE_RESTART if partial else NOTICE_FALLBACK)
                else:
                    router._set_cloud_up(True, "")
                    return
            elif cloud is not None:
                yield ChatNotice(NOTICE_FALLBACK)
            local = router.local
            if local is None:
                raise ChatError(
                    FailureCode.UNAVAILABLE,
                    "No model is available to answer: no Forecode "
                    "service is configured and the local model is off",
                )
            call = self._start(Route.LOCAL, lambda: local.chat(self._params))
            if call is None:
                yield ChatDone(finish_reason=FinishReason.CANCELLED)
                return
            yield from call
        finally:
            with self._lock:
                current, self._current = self._current, None
            if current is not None and hasattr(current, "close"):
                current.close()
