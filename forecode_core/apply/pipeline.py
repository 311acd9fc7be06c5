"""The apply pipeline, one for every caller: the editor's review (``app.ui.apply_backend``), the
service (``cloud_server.backends``: its deterministic step), and the tests that run a real
model in-process (``tests/helpers/engine_apply.py``) all run these functions.

1. ``first_step(request)``: the deterministic path (``apply_deterministic``) when there is no
   instruction and the block anchors unambiguously -- the new file at once; else the reason
   the model must write it.
2. ``PipelineCall(request, model)``: the stream (a ``Call`` of apply events): the first step's
   file as one ``Delta`` and an ``ApplyDone("deterministic")``; else a ``Notice`` saying why
   the model runs, then the model path's stream (``model(request)``: the service's, through
   the router; in tests, the service's backend in-process), its ``Done`` as an ``ApplyDone``
   that says which path wrote the file; a model path that ended with "length" (the file not
   finished, or what it closed is not the file) is ``StreamError("incomplete")``. Without a
   model path the refusal is a readable ``StreamError("no_model")``.
3. ``consume_apply(call, request)``: the stream to its end, then what the review needs
   (``finish_result``: the new file with the buffer's line endings, its hunks, the safety
   check) -- or ``StreamError("incomplete")`` for a result that is not the whole file
   (``find_rewrite_defect``: a placeholder such as ``# ... existing code ...`` that the buffer
   does not have, most of the file dropped although the block asks to keep it), from
   whichever path; also when the model path already refused it as unfinished (the text it
   sent shows which placeholder).

Plain data and blocking iteration: no Qt, no gRPC, no model (the model path is a callable).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

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
from forecode_core.apply.events import ApplyCall, ApplyDone, ApplyEvent
from forecode_core.apply.review import Hunk, diff_hunks, indentation_matters
from forecode_core.streams import (
    Delta,
    Done,
    Event,
    FailureCode,
    FinishReason,
    Notice,
    Started,
    StreamError,
)

__all__ = [
    "ApplyResult",
    "ModelPath",
    "PipelineCall",
    "as_apply_done",
    "consume_apply",
    "deterministic_done",
    "finish_result",
    "first_step",
    "refusal_message",
    "unfinished_error",
]

ModelPath = Callable[[ApplyInput], ApplyCall]
"""The model path: a call streaming the new file's text for a request (may raise
``StreamError``; "no_model" when there is none after all)."""


def first_step(request: ApplyInput) -> Applied | str:
    """The deterministic path's new file, or why the model must write it (a sentence)."""
    if request.instruction.strip():
        return "An inline edit is written by the model"
    result = apply_deterministic(request.original, request.block)
    if isinstance(result, Applied):
        return result
    return f"The block does not match {request.path} unambiguously ({result.reason})"


def deterministic_done(applied: Applied, usage: dict[str, int] | None = None) -> ApplyDone:
    """The end of a stream that the deterministic path answered."""
    return ApplyDone(
        FinishReason.STOP,
        dict(usage or {}),
        source="deterministic",
        placements=len(applied.placements),
    )


def unfinished_error(done: Done) -> StreamError:
    """The failure for a model path that ended with "length": it did not finish the file (or
    what it closed is not the file), so the text streamed is not a file to apply."""
    return StreamError(
        FailureCode.INCOMPLETE,
        "The model did not finish writing the file (it stopped after {} tokens); nothing was "
        "changed".format(done.usage.get("completion_tokens", 0)),
    )


def as_apply_done(done: Done, source: str) -> ApplyDone:
    """A model path's ``Done`` as the apply's: its own source, else ``source`` (where its
    ``Started`` said the model ran)."""
    if isinstance(done, ApplyDone):
        return done if done.source else replace(done, source=source)
    return ApplyDone(done.finish_reason, dict(done.usage), source=source)


class PipelineCall:
    """The pipeline's stream for one request (see the module docstring); ``cancel()`` from
    any thread also cancels the model path's call."""

    def __init__(self, request: ApplyInput, model: ModelPath | None) -> None:
        self._request = request
        self._model = model
        self._lock = threading.Lock()
        self._cancelled = False
        self._inner: ApplyCall | None = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            inner = self._inner
        if inner is not None:
            with contextlib.suppress(Exception):
                inner.cancel()

    def __iter__(self) -> Iterator[ApplyEvent]:
        request = self._request
        step = first_step(request)
        if isinstance(step, Applied):
            yield Delta(step.text)
            yield deterministic_done(step)
            return
        why = step
        if self._model is None:
            raise StreamError(
                FailureCode.NO_MODEL,
                f"{why}, and no model path is available to rewrite the file (it needs the "
                "apply service). Nothing was changed.",
            )
        yield Notice(f"{why}; the model rewrites the part of the file it changes.")
        with self._lock:
            if self._cancelled:
                return
            try:
                self._inner = inner = self._model(request)
            except StreamError as exc:
                if exc.code != FailureCode.NO_MODEL:
                    raise
                raise StreamError(FailureCode.NO_MODEL, f"{why}, and {exc.message}") from None
        source = "model"
        for event in inner:
            if self._cancelled:
                return
            if isinstance(event, Started):  # where the model runs: the done says so
                source = event.source or source
            elif isinstance(event, Done):
                if event.finish_reason == FinishReason.LENGTH:
                    raise unfinished_error(event)
                yield as_apply_done(event, source)
                return
            else:
                yield event


# ----- the end of the stream ----------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """A finished apply, ready to review."""

    text: str  # the new file, with the original's line endings
    hunks: tuple[Hunk, ...]  # diff_hunks(original, text)
    removals: tuple[Removal, ...]  # code the result removes that the block does not mention
    done: ApplyDone  # how the stream ended: the path that wrote it, its counters

    @property
    def source(self) -> str:
        return self.done.source


def refusal_message(defect: RewriteDefect) -> str:
    """The review's sentence for a result that is not the whole file."""
    what = defect.message[:1].upper() + defect.message[1:]
    return f"{what}, so it is not offered for review. Nothing was changed."


def finish_result(request: ApplyInput, received: str, done: ApplyDone) -> ApplyResult:
    """The review's data for a finished stream (the slow part of an apply's end: up to a
    second on a 6000-line file; run it on a worker thread). A model answer in LF gets a CRLF
    buffer's endings back."""
    original = request.original
    text = received
    if "\r\n" in original and "\r" not in received:
        text = to_file_text(original, received)
    hunks = diff_hunks(
        original, text, indent_matters=indentation_matters(request.path, request.language)
    )
    removals = find_unaccounted_removals(original, request.block, text) if hunks else ()
    return ApplyResult(text, hunks, removals, done)


def _refined(request: ApplyInput, received: str) -> StreamError | None:
    """A model path's "incomplete" refusal said better from the text it sent: the
    placeholder it left, or the line of the edit a whole file left out. (Text that simply
    stopped is short of the file: only these tell more.)"""
    defect = find_rewrite_defect(request.original, request.block, received)
    if defect is not None and defect.kind == "elision":
        return StreamError(FailureCode.INCOMPLETE, refusal_message(defect))
    missed = None if request.instruction.strip() else find_missed_line(request.block, received)
    if missed is not None and received.count("\n") >= request.original.count("\n"):
        return StreamError(FailureCode.INCOMPLETE, refusal_message(missed))
    return None


def _ignore(event: Event) -> None:
    pass


def _never() -> bool:
    return False


def consume_apply(
    call: ApplyCall,
    request: ApplyInput,
    *,
    on_event: Callable[[Event], None] = _ignore,
    cancelled: Callable[[], bool] = _never,
) -> ApplyResult | None:
    """Iterate ``call`` to its end (``on_event`` gets each non-empty ``Delta`` and each
    ``Notice`` as it comes) and return the review's data; None when ``cancelled()`` turned
    true. Raises ``StreamError``: the call's own, "incomplete" for a result that is not the
    whole file, "internal" for a stream that ended without its ``Done``."""
    parts: list[str] = []
    done: ApplyDone | None = None
    try:
        for event in call:
            if cancelled():
                return None
            if isinstance(event, Delta):
                if event.text:
                    parts.append(event.text)
                    on_event(event)
            elif isinstance(event, Notice):
                on_event(event)
            elif isinstance(event, Done):
                done = as_apply_done(event, "model")
                break
    except StreamError as exc:
        refined = (
            _refined(request, "".join(parts))
            if exc.code == FailureCode.INCOMPLETE and parts
            else None
        )
        if refined is not None:
            raise refined from exc
        raise
    if cancelled():
        return None
    if done is None:
        raise StreamError(FailureCode.INTERNAL, "The apply ended without finishing.")
    result = finish_result(request, "".join(parts), done)
    defect = find_rewrite_defect(request.original, request.block, result.text, result.removals)
    if defect is not None:
        raise StreamError(FailureCode.INCOMPLETE, refusal_message(defect))
    return result
