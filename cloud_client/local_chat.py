"""The local model's chat as a ``ChatCall`` (``forecode_core.streams.Call``): ``EngineClient.chat``
callbacks -> an iterator.

``EngineClient`` reports a request through callbacks on its event thread; the router and the
chat panel consume a blocking iterator (the same contract as ``cloud_client.client``'s
``CloudChatCall``). A queue joins the two: callbacks only put events on it, so the engine's
thread never waits on the consumer.

The iterator yields ``ChatStarted(source="local")`` at once (the engine has no "started"
event: a local request starts as soon as the worker is free), then ``ChatDelta``s and one
``ChatDone``. An engine error becomes ``ChatError("internal")``; silence for ``idle_timeout_s``
(a hung or superseded request gets no callback at all) becomes ``ChatError("deadline")`` and
cancels the request. ``cancel()`` ends the iteration with ``ChatDone("cancelled")``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, Protocol

from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatEvent,
    ChatParams,
    ChatStarted,
    EngineChatClient,
)
from forecode_core.engine_state import EngineState
from forecode_core.streams import FailureCode, FinishReason

__all__ = ["EngineChat", "LocalChatCall", "usage_from_metrics"]

# The engine's stop reasons (``forecode_core.protocol.STOP_REASONS``) as a chat's finish.
_STOP_REASONS = {
    "eos": FinishReason.STOP,
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "cancelled": FinishReason.CANCELLED,
}

# Engine metric -> ChatDone.usage key (the service's names, so the panel shows one vocabulary).
_USAGE_FROM_METRICS = {
    "prompt_tokens": "prompt_tokens",
    "generated_tokens": "completion_tokens",
    "first_token_ms": "first_token_ms",
    "total_ms": "total_ms",
}


class _ChatEngine(EngineChatClient, Protocol):
    """What this module needs of ``local_models.client.EngineClient``: its chat and cancel,
    its state and info."""

    @property
    def state(self) -> EngineState: ...

    @property
    def info(self) -> dict[str, Any] | None: ...


def usage_from_metrics(metrics: dict[str, Any]) -> dict[str, int]:
    """The engine's metrics under ``ChatDone.usage``'s names (whole numbers)."""
    usage: dict[str, int] = {}
    for src, dst in _USAGE_FROM_METRICS.items():
        value = metrics.get(src)
        if isinstance(value, int | float) and not isinstance(value, bool):
            usage[dst] = int(value)
    cached = sum(
        int(metrics.get(k, 0) or 0) for k in ("reused_prefix_tokens", "reused_shifted_tokens")
    )
    if cached:
        usage["cached_tokens"] = cached
    return usage


_END = object()


class LocalChatCall:
    """One local reply; see the module docstring."""

    def __init__(
        self,
        engine: _ChatEngine,
        params: ChatParams,
        *,
        model: str,
        max_tokens: int | None,
        idle_timeout_s: float,
    ) -> None:
        self._engine = engine
        self._idle_timeout_s = idle_timeout_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._cancelled = False
        self._finished = False
        self.received = 0
        self._model = model
        self._rid = engine.chat(
            params,
            on_chunk=self._on_chunk,
            on_done=self._on_done,
            on_error=self._on_error,
            max_tokens=max_tokens,
        )
        self._events = self._run()

    def __iter__(self) -> Iterator[ChatEvent]:
        return self

    def __next__(self) -> ChatEvent:
        return next(self._events)

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled or self._finished:
                return
            self._cancelled = True
        self._engine.cancel(self._rid)
        self._queue.put(ChatDone(finish_reason=FinishReason.CANCELLED))

    def close(self) -> None:
        self.cancel()
        with contextlib.suppress(ValueError):
            self._events.close()

    # callbacks, on the engine client's event thread: never block

    def _on_chunk(self, rid: int, text: str) -> None:
        self._queue.put(ChatDelta(text=text))

    def _on_done(self, rid: int, done: Any) -> None:
        reason = _STOP_REASONS.get(getattr(done, "stop_reason", "stop"), FinishReason.STOP)
        self._queue.put(
            ChatDone(
                finish_reason=reason,
                usage=usage_from_metrics(getattr(done, "metrics", {}) or {}),
            )
        )

    def _on_error(self, rid: int, message: str) -> None:
        self._queue.put(
            ChatError(
                FailureCode.INTERNAL, f"The local model could not answer: {message}", retryable=True
            )
        )

    def _run(self) -> Generator[ChatEvent, None, None]:
        try:
            self.received += 1
            yield ChatStarted(model=self._model, source="local")
            while True:
                try:
                    item = self._queue.get(timeout=self._idle_timeout_s)
                except queue.Empty:
                    raise ChatError(
                        FailureCode.DEADLINE,
                        f"The local model did not answer for {self._idle_timeout_s:g} s",
                        retryable=True,
                    ) from None
                if isinstance(item, ChatError):
                    raise item
                self.received += 1
                yield item
                if isinstance(item, ChatDone):
                    return
        finally:
            with self._lock:
                abandoned = not self._finished and not self._cancelled
                self._finished = True
            if abandoned:
                self._engine.cancel(self._rid)


class EngineChat:
    """``LocalChat`` over an ``EngineClient`` that the caller starts and closes."""

    def __init__(
        self, engine: _ChatEngine, *, max_tokens: int | None = None, idle_timeout_s: float = 120.0
    ) -> None:
        self._engine = engine
        self._max_tokens = max_tokens
        self._idle_timeout_s = idle_timeout_s

    @property
    def available(self) -> bool:
        """False when the engine is stopped (not started, closed) or failed for good."""
        return EngineState(self._engine.state).running

    def chat(self, params: ChatParams) -> LocalChatCall:
        info = self._engine.info or {}
        model = str(info.get("name") or "local model")
        max_tokens = params.max_tokens or self._max_tokens
        return LocalChatCall(
            self._engine,
            params,
            model=model,
            max_tokens=max_tokens,
            idle_timeout_s=self._idle_timeout_s,
        )
