"""Apply in the Qt world: the ``ApplyBackend`` seam, the real pipeline behind it, and the
``ApplyRunner`` that streams one apply into Qt signals.

The seam (no Qt): ``ApplyBackend.apply(request) -> ApplyCall``; the request is the serialisable
``forecode_core.apply.block.ApplyInput`` (path, language, the buffer's text, the code block, an
optional instruction). An ``ApplyCall`` is the shared stream contract's ``Call``
(``forecode_core.streams``), iterated on a worker thread: ``Notice``s (which path runs),
``Delta``s (the NEW FILE's text, in order), then one ``ApplyDone`` (the path that wrote it, its
counters); a failure raises ``StreamError``. ``cancel()`` may be called from any thread.

``PipelineApplyBackend`` is the real one: ``forecode_core.apply.pipeline.PipelineCall`` -- the
deterministic path first (in the worker thread: it is instant), and when it refuses (the block
does not anchor unambiguously) or the request carries an instruction (inline edit), the model
path it was given rewrites the file. The model path is the service's (``ServiceApply``: the
window's router's ``apply``), which runs ``apply_model.rewrite_file`` -- windows, not whole
files; tests drive the service's own ``stream_apply`` in-process through
``tests/helpers/engine_apply.py`` behind the same ``PipelineCall``. ``ServiceApply`` takes
another model path as its ``fallback`` when there is no service.

``ApplyRunner`` (an ``app.ui.stream_runner.StreamRunner``) consumes a call on a worker thread
with the pipeline's ``consume_apply`` and hands the text to the UI thread through a queued
signal, joining deltas that arrive faster than ``FLUSH_MS``. When the stream is done, the
worker (not the UI thread) computes what the review needs (``finish_result``: hunks and the
safety check); a result that is not the whole file is never offered for review: the apply
fails with code "incomplete" and says why. Every request has a generation: after ``stop()``
returns, nothing of it reaches the UI.

Failures are shown in the words of the one failure table (``forecode_core.streams.FAILURES``,
``describe_apply_failure``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from PySide6.QtCore import Signal

from app.ui.stream_runner import StreamHandle, StreamRunner
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import APPLY, ApplyCall, ApplyEvent
from forecode_core.apply.pipeline import (
    ApplyResult,
    ModelPath,
    PipelineCall,
    consume_apply,
    finish_result,
    refusal_message,
)
from forecode_core.streams import Delta, Notice, StreamError, describe_failure

__all__ = [
    "ApplyBackend",
    "ApplyResult",
    "ApplyRunner",
    "ApplyService",
    "PipelineApplyBackend",
    "ServiceApply",
    "describe_apply_failure",
    "finish_result",
    "refusal_message",
]


# ----- the seam ---------------------------------------------------------------------------------


class ApplyBackend(Protocol):
    """Where applies go: ``PipelineApplyBackend`` in the window; tests plug a scripted fake."""

    def apply(self, request: ApplyInput) -> ApplyCall: ...


class ApplyService(Protocol):
    """What runs the model path: the window's router (``cloud_client.router.Router``), or a
    ``CloudClient``."""

    def apply(self, request: ApplyInput) -> ApplyCall: ...


def describe_apply_failure(code: str, message: str) -> str:
    """A sentence for the review from a ``StreamError``'s code and message."""
    return describe_failure(code, message, APPLY)


# ----- the real backend ---------------------------------------------------------------------------


class PipelineApplyBackend:
    """The pipeline (``forecode_core.apply.pipeline.PipelineCall``). ``model`` is the model
    path, or None when there is none (then such blocks fail with a clear "no_model" error)."""

    def __init__(self, model: ModelPath | None = None) -> None:
        self.model = model

    def apply(self, request: ApplyInput) -> PipelineCall:
        return PipelineCall(request, self.model)


class _Noticed:
    """A model call whose stream starts with a notice (a fallback says so)."""

    def __init__(self, text: str, inner: ApplyCall) -> None:
        self._text = text
        self._inner = inner

    def cancel(self) -> None:
        self._inner.cancel()

    def __iter__(self) -> Iterator[ApplyEvent]:
        yield Notice(self._text)
        yield from self._inner


_NO_SERVICE = (
    "no model path is available to rewrite the file "
    "(the apply service is not running or has no Apply "
    "yet). Nothing was changed."
)
#: How long an apply asked for while the service starts waits for it (its start is itself
#: limited by ``LocalService``'s stall limit); Esc stops the wait at once.
START_WAIT_S = 600.0
_POLL_S = 0.1


class _AfterStart:
    """An apply asked for while the service is still starting (loading its model): it says so,
    waits for the service (on the runner's worker thread; ``cancel()`` ends the wait), then
    runs there, or fails as when there is no service."""

    def __init__(self, owner: ServiceApply, request: ApplyInput) -> None:
        self._owner = owner
        self._request = request
        self._cancelled = threading.Event()
        self._inner: ApplyCall | None = None

    def cancel(self) -> None:
        self._cancelled.set()
        inner = self._inner
        if inner is not None:
            inner.cancel()

    def __iter__(self) -> Iterator[ApplyEvent]:
        yield Notice(
            "The apply service is starting (loading its model): the edit runs when it is ready."
        )
        owner = self._owner
        deadline = time.monotonic() + owner.start_wait_s
        target = owner.target()
        while target is None and owner.starting() and time.monotonic() < deadline:
            if self._cancelled.wait(_POLL_S):
                return
            target = owner.target()
        if target is None:
            raise StreamError("no_model", _NO_SERVICE)
        self._inner = inner = target.apply(self._request)
        if self._cancelled.is_set():
            inner.cancel()
            return
        yield from inner


class ServiceApply:
    """The model path through the window's service: ``target()`` gives the ``ApplyService``
    (the router), or None while there is none. Called on the runner's worker thread.
    ``starting()`` says whether the service is still starting: an apply asked for meanwhile
    waits for it (``_AfterStart``) instead of failing at once, as VS Code's and Cursor's
    requests wait for their language model to load."""

    def __init__(
        self,
        target: Callable[[], ApplyService | None],
        fallback: ModelPath | None = None,
        *,
        starting: Callable[[], bool] = lambda: False,
        start_wait_s: float = START_WAIT_S,
    ) -> None:
        self.target = target
        self._fallback = fallback
        self.starting = starting
        self.start_wait_s = start_wait_s

    def __call__(self, request: ApplyInput) -> ApplyCall:
        target = self.target()
        if target is None and self._fallback is not None:
            return _Noticed(
                "The apply service is not available: the local model rewrites it.",
                self._fallback(request),
            )
        if target is None and self.starting():
            return _AfterStart(self, request)
        if target is None:
            raise StreamError("no_model", _NO_SERVICE)
        return target.apply(request)


# ----- the runner ---------------------------------------------------------------------------------


class ApplyRunner(StreamRunner):
    """Streams one apply at a time from an ``ApplyBackend`` into signals on the UI thread."""

    delta = Signal(str)  # new-file text to append (joined deltas; line endings as sent)
    notice = Signal(str)
    finished = Signal(object)  # ApplyResult
    # failed(code, message): StreamRunner's signal

    TERMINAL = (ApplyResult,)

    def start(self, backend: ApplyBackend, request: ApplyInput) -> None:
        """Run ``request``; one already running is stopped first. Returns at once."""
        handle = self._begin()
        self._run(
            handle,
            lambda: backend.apply(request),
            lambda call, h: self._consume(call, h, request),
            "forecode-apply",
        )

    # ----- worker thread ---------------------------------------------------------------------
    @staticmethod
    def _consume(call: ApplyCall, handle: StreamHandle, request: ApplyInput) -> None:
        result = consume_apply(
            call, request, on_event=handle.push, cancelled=lambda: handle.cancelled
        )
        if result is not None:
            handle.push(result)

    # ----- UI thread -------------------------------------------------------------------------
    def _emit(self, event: object) -> None:
        if isinstance(event, Delta):
            self.delta.emit(event.text)
        elif isinstance(event, Notice):
            self.notice.emit(event.text)
        elif isinstance(event, ApplyResult):
            self.finished.emit(event)
