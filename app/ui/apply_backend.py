"""Apply in the Qt world: the ``ApplyBackend`` seam, the real pipeline behind it, and the
``ApplyRunner`` that streams one apply into Qt signals.

The seam (no Qt): ``ApplyBackend.apply(request) -> ApplyCall``; the request is the serialisable
``forecode_core.apply.block.ApplyInput`` (path, language, the buffer's text, the code block, an
optional instruction). An ``ApplyCall`` is a *blocking* iterator of events, iterated on a worker
thread: ``ApplyDelta`` (the NEW FILE's text, in order), ``ApplyNotice`` (say which path runs),
then one ``ApplyDone`` (source and metrics); a failure raises ``ApplyError`` (or the chat's
``ChatError``: same ``code``/``message``). ``cancel()`` may be called from any thread.

The model path is the service's (``ServiceApply``), which runs ``apply_model.rewrite_file`` --
the code the tests and the benchmark run: windows, not whole files. The editor never loads a
model in its own process; tests drive the same ``rewrite_file`` in-process through
``tests/helpers/engine_apply.py``. ``ServiceApply`` takes another model path as its ``fallback``
when the service has no Apply.

``PipelineApplyBackend`` is the real one: the deterministic path
(``apply_deterministic``) runs first, in the worker thread (it is instant), and when it refuses
(the block does not anchor unambiguously) or the request carries an instruction (inline edit),
the model path it was given rewrites the file (``ServiceApply``: the window's service's
``apply``; speculative edits). Without a model path the refusal is a readable ``ApplyError``.

``ApplyRunner`` (an ``app.ui.stream_runner.StreamRunner``) iterates a call on a worker thread
and hands the text to the UI thread through a queued signal, joining deltas that arrive faster
than ``FLUSH_MS``. When the stream is done, the worker (not the UI thread) computes what the
review needs: the new file with the buffer's line endings, its hunks (``diff_hunks``) and the
safety check (``find_unaccounted_removals``, which takes up to a second on a 6000-line file).
A result that is not the whole file (``find_rewrite_defect``: a placeholder such as
``# ... existing code ...`` that the buffer does not have, or most of the file dropped although
the block asks to keep it), from whichever path, is never offered for review: the apply fails
with code "incomplete" and says why (also when the service already refused it as unfinished:
the text it sent shows which placeholder). Every request has a generation: after ``stop()``
returns, nothing of it reaches the UI.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Protocol

from PySide6.QtCore import Signal

from app.ui.stream_runner import StreamFailure, StreamHandle, StreamRunner
from forecode_core.apply.block import (
    Applied,
    ApplyInput,
    Removal,
    RewriteDefect,
    apply_deterministic,
    find_missed_line,
    find_rewrite_defect,
    find_unaccounted_removals,
    to_file_text,
)
from forecode_core.apply.review import Hunk, diff_hunks

__all__ = [
    "ApplyBackend",
    "ApplyCall",
    "ApplyDelta",
    "ApplyDone",
    "ApplyError",
    "ApplyEvent",
    "ApplyNotice",
    "ApplyResult",
    "ApplyRunner",
    "ModelApply",
    "PipelineApplyBackend",
    "ServiceApply",
    "describe_apply_failure",
]


# ----- the seam ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyDelta:
    """More of the new file's text (the stream concatenates to the whole new file)."""

    text: str


@dataclass(frozen=True)
class ApplyNotice:
    """Something the review shows in its status line ("the model rewrites the file")."""

    text: str


@dataclass(frozen=True)
class ApplyDone:
    """The new file is complete. ``source``: the path that wrote it, "deterministic" or
    "model" (the service's Apply says which, also for its model path); where the model ran
    ("cloud": the service's ``ChatStarted``) only when the model path did not say."""

    source: str
    metrics: Mapping[str, object] = field(default_factory=dict)


ApplyEvent = ApplyDelta | ApplyNotice | ApplyDone


class ApplyError(Exception):
    """An apply that could not run. ``code``: "no_model" (the block needs the model path and
    there is none), "unavailable", "deadline", "busy", "invalid", "internal", ..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApplyCall(Protocol):
    """One streamed apply: iterate it (it blocks) on a worker thread; ``cancel`` from any
    thread ends the iteration soon."""

    def __iter__(self) -> Iterator[ApplyEvent]: ...

    def cancel(self) -> None: ...


class ApplyBackend(Protocol):
    """Where applies go: ``PipelineApplyBackend`` in the window; tests plug a scripted fake."""

    def apply(self, request: ApplyInput) -> ApplyCall: ...


ModelApply = Callable[[ApplyInput], Any]
"""The model path: returns a call (iterable + ``cancel``) streaming the new file's text."""

_FAILURES = {
    "no_model": "{m}",
    "incomplete": "{m}",
    "unavailable": "The apply service is not reachable: {m}",
    "unauthenticated": (
        "The apply service refused the token: {m} Set it with “Cloud: Set Service Token”."
    ),
    "deadline": "The apply did not finish in time: {m}",
    "busy": "The apply service is busy with other requests; try again in a moment. {m}",
    "too_large": "The file is too large for the apply service: {m}",
    "invalid": "The apply service rejected the request: {m}",
}


def describe_apply_failure(code: str, message: str) -> str:
    """A sentence for the review from an ``ApplyError``/``ChatError`` code and message."""
    return _FAILURES.get(code, "The apply failed ({c}): {m}").format(c=code, m=message)


# ----- the real backend ---------------------------------------------------------------------------


class PipelineApplyBackend:
    """The deterministic path first (instant, in the worker thread), the model path when it
    refuses or an instruction asks for a rewrite. ``model`` is the model path, or None when
    there is none (then such blocks fail with a clear "no_model" error)."""

    def __init__(self, model: ModelApply | None = None) -> None:
        self.model = model

    def apply(self, request: ApplyInput) -> _PipelineCall:
        return _PipelineCall(request, self.model)


class _PipelineCall:
    def __init__(self, request: ApplyInput, model: ModelApply | None) -> None:
        self._request = request
        self._model = model
        self._lock = threading.Lock()
        self._cancelled = False
        self._inner: Any = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            inner = self._inner
        if inner is not None:
            with contextlib.suppress(Exception):
                inner.cancel()

    def __iter__(self) -> Iterator[ApplyEvent]:
        request = self._request
        if request.instruction.strip():
            why = "An inline edit is written by the model"
        else:
            result = apply_deterministic(request.original, request.block)
            if isinstance(result, Applied):
                yield ApplyDelta(result.text)
                yield ApplyDone("deterministic", {"placements": len(result.placements)})
                return
            why = f"The block does not match {request.path} unambiguously ({result.reason})"
        if self._model is None:
            raise ApplyError(
                "no_model",
                f"{why}, and no model path is available to rewrite "
                "the file (it needs the apply service). Nothing was "
                "changed.",
            )
        yield ApplyNotice(f"{why}; the model rewrites the part of the file it changes.")
        with self._lock:
            if self._cancelled:
                return
            try:
                self._inner = inner = self._model(request)
            except ApplyError as exc:
                if exc.code != "no_model":
                    raise
                raise ApplyError("no_model", f"{why}, and {exc.message}") from None
        source = "model"
        for event in inner:
            if self._cancelled:
                return
            if type(event).__name__.endswith("Started"):  # where the model runs: say so
                source = str(getattr(event, "source", "") or source)
                continue
            normal = _normalise(event, source)
            if normal is not None:
                yield normal
                if isinstance(normal, ApplyDone):
                    return


def _normalise(event: object, source: str) -> ApplyEvent | None:
    """The model path's events as the seam's: its own types pass; a chat-style delta (a
    ``text`` attribute), notice and done (usage, drafted/accepted tokens) are mapped by kind;
    anything else (a "started") is dropped."""
    if isinstance(event, ApplyDelta | ApplyNotice | ApplyDone):
        return event
    name = type(event).__name__
    if name.endswith("Delta") or isinstance(event, str):
        return ApplyDelta(event if isinstance(event, str) else str(getattr(event, "text", "")))
    if name.endswith("Notice"):
        return ApplyNotice(str(getattr(event, "text", "")))
    if name.endswith("Done"):
        metrics: dict[str, object] = {}
        if is_dataclass(event) and not isinstance(event, type):
            metrics = {k: v for k, v in asdict(event).items() if v is not None}
        return ApplyDone(str(getattr(event, "source", "") or source), metrics)
    return None


class _Noticed:
    """A model call whose stream starts with a notice (a fallback says so)."""

    def __init__(self, text: str, inner: Any) -> None:
        self._text = text
        self._inner = inner

    def cancel(self) -> None:
        self._inner.cancel()

    def __iter__(self) -> Iterator[object]:
        yield ApplyNotice(self._text)
        yield from self._inner


class ServiceApply:
    """The model path through the window's service: ``target()`` gives the object whose
    ``apply`` streams the new file (the router, or the ``CloudClient``), or None while there is
    none. Called on the runner's worker thread."""

    def __init__(
        self, target: Callable[[], Any | None], fallback: ModelApply | None = None
    ) -> None:
        self._target = target
        self._fallback = fallback

    def __call__(self, request: ApplyInput) -> Any:
        target = self._target()
        apply = getattr(target, "apply", None)
        if apply is None and self._fallback is not None:
            return _Noticed(
                "The apply service is not available: the local model rewrites it.",
                self._fallback(request),
            )
        if apply is None:
            raise ApplyError(
                "no_model",
                "no model path is available to rewrite the file "
                "(the apply service is not running or has no Apply "
                "yet). Nothing was changed.",
            )
        try:
            names = set(inspect.signature(apply).parameters)
        except (TypeError, ValueError):
            names = set()
        fields = ("path", "original", "block", "instruction", "language")
        if {"original", "block"} <= names:  # apply(path=..., original=..., block=..., ...)
            return apply(**{k: getattr(request, k) for k in fields if k in names})
        return apply(request)  # apply(ApplyInput)


# ----- the runner ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """A finished apply, ready to review (computed on the worker thread)."""

    text: str  # the new file, with the original's line endings
    hunks: tuple[Hunk, ...]  # diff_hunks(original, text)
    removals: tuple[Removal, ...]  # code the result removes that the block does not mention
    source: str
    metrics: Mapping[str, object]


def refusal_message(defect: RewriteDefect) -> str:
    """The review's sentence for a result that is not the whole file."""
    what = defect.message[:1].upper() + defect.message[1:]
    return f"{what}, so it is not offered for review. Nothing was changed."


def finish_result(request: ApplyInput, received: str, done: ApplyDone) -> ApplyResult:
    """The review's data for a finished stream (the slow part of an apply's end: run it on a
    worker thread). A model answer in LF gets a CRLF buffer's endings back."""
    original = request.original
    text = received
    if "\r\n" in original and "\r" not in received:
        text = to_file_text(original, received)
    hunks = diff_hunks(original, text)
    removals = find_unaccounted_removals(original, request.block, text) if hunks else ()
    return ApplyResult(text, hunks, removals, done.source, dict(done.metrics))


class ApplyRunner(StreamRunner):
    """Streams one apply at a time from an ``ApplyBackend`` into signals on the UI thread."""

    delta = Signal(str)  # new-file text to append (joined deltas; line endings as sent)
    notice = Signal(str)
    finished = Signal(object)  # ApplyResult
    # failed(code, message): StreamRunner's signal

    DELTA = ApplyDelta
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
        parts: list[str] = []
        done: ApplyDone | None = None
        try:
            for event in call:
                if handle.cancelled:
                    return
                if isinstance(event, ApplyDelta):
                    if event.text:
                        parts.append(event.text)
                        handle.push(event)
                elif isinstance(event, ApplyNotice):
                    handle.push(event)
                elif isinstance(event, ApplyDone):
                    done = event
                    break
        except Exception as exc:
            # The service refuses a rewrite that is not the whole file as unfinished
            # ("incomplete"); the text it sent says which placeholder it left. (Text that
            # simply stopped is short of the file: only a placeholder tells more.)
            if getattr(exc, "code", "") == "incomplete" and parts:
                defect = find_rewrite_defect(request.original, request.block, "".join(parts))
                if defect is not None and defect.kind == "elision":
                    raise ApplyError("incomplete", refusal_message(defect)) from exc
                # A whole file that leaves out a line of the edit (the service's check).
                missed = (
                    None
                    if request.instruction.strip()
                    else find_missed_line(request.block, "".join(parts))
                )
                if missed is not None and "".join(parts).count("\n") >= request.original.count(
                    "\n"
                ):
                    raise ApplyError("incomplete", refusal_message(missed)) from exc
            raise
        if handle.cancelled:
            return
        if done is None:
            handle.push(StreamFailure("internal", "The apply ended without finishing."))
            return
        result = finish_result(request, "".join(parts), done)
        defect = find_rewrite_defect(request.original, request.block, result.text, result.removals)
        if defect is not None:
            handle.push(StreamFailure("incomplete", refusal_message(defect)))
            return
        handle.push(result)

    # ----- UI thread -------------------------------------------------------------------------
    def _emit(self, event: object) -> None:
        if isinstance(event, ApplyDelta):
            self.delta.emit(event.text)
        elif isinstance(event, ApplyNotice):
            self.notice.emit(event.text)
        elif isinstance(event, ApplyResult):
            self.finished.emit(event)
