"""A multi-file edit from request to reviewable set, over any model: the service runs this
with its backend's chat and apply streams (``cloud_server.service``), tests with fakes.

``stream_edits(params, chat=..., apply=..., should_stop=...)``:

1. the model answers the edits prompt (``prompt.edits_chat_params``) through ``chat``; its
   ``Started``, ``Delta``s and ``Notice``s pass through;
2. the answer is parsed strictly (``answer.parse_edits``): a malformed one, or one the model
   did not finish, is ``StreamError("incomplete")`` saying why -- nothing is offered;
3. each file's operation becomes a ``FileChange``: a new file's text as written, a deleted
   file's text as sent, and a changed file resolved by the one apply pipeline
   (``apply.pipeline.consume_apply`` over ``apply(ApplyInput)``: the deterministic path, else
   the model path) against the text the client sent. A change that cannot be resolved (the
   block does not place, the model path's result is not the whole file) is a ``FAILED``
   change with the reason (so is an editable excerpt's change that lands outside the lines
   the model saw); a change that changes nothing is dropped with a notice; a failure
   of the service itself (unreachable, busy, a refused token) fails the whole stream;
4. one ``EditsDone`` with the set. ``should_stop()`` ends it early with
   ``EditsDone("cancelled")``.

Blocking iteration over plain data; no gRPC, no model of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace

from forecode_core.apply.block import ApplyInput, is_elision
from forecode_core.apply.pipeline import consume_apply
from forecode_core.chat.types import ChatParams
from forecode_core.edits.answer import EditsAnswerError, FileOp, OpKind, ParsedEdits, parse_edits
from forecode_core.edits.events import EditsDone, EditsEvent, FileChange, FileChangeKind
from forecode_core.edits.excerpt import outside_excerpt
from forecode_core.edits.prompt import DEFAULT_EDITS_MAX_TOKENS, SentFile, edits_chat_params
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

__all__ = ["ApplyStream", "ChatStream", "resolve_op", "stream_edits"]

ChatStream = Callable[[ChatParams], Iterable[Event]]
ApplyStream = Callable[[ApplyInput], Iterable[Event]]

# Failures of the service, not of one file's edit: they end the whole stream.
_SERVICE_FAILURES = frozenset(
    {
        FailureCode.UNAVAILABLE,
        FailureCode.UNAUTHENTICATED,
        FailureCode.BUSY,
        FailureCode.DEADLINE,
        FailureCode.CANCELLED,
        FailureCode.INTERNAL,
    }
)


class _Stream:
    """An iterable of events as a ``Call`` (cancelling is the caller's ``should_stop``)."""

    def __init__(self, events: Iterable[Event]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def cancel(self) -> None:
        pass


def _warning(count: int, reason: str) -> str:
    lines = "line" if count == 1 else "lines"
    return f"removes {count} {lines} its block does not mention ({reason})"


def _block_changes(original: str, block: str) -> bool:
    """Whether ``block`` has a line of code the file does not have (not blank, not an
    elision)."""
    have = {line.strip() for line in original.splitlines()}
    return any(
        line.strip() and not is_elision(line) and line.strip() not in have
        for line in block.splitlines()
    )


def resolve_op(
    op: FileOp,
    files: Mapping[str, SentFile],
    apply: ApplyStream,
    should_stop: Callable[[], bool],
) -> FileChange | None:
    """The change ``op`` makes (None: it changes nothing, or ``should_stop()`` turned true).
    Raises ``StreamError`` only for a failure of the service itself."""
    if op.kind is OpKind.NEW:
        text = op.block
        return FileChange(op.path, FileChangeKind.NEW, "", text, op.block)
    sent = files[op.path]
    if op.kind is OpKind.DELETE:
        return FileChange(op.path, FileChangeKind.DELETED, sent.text)
    request = ApplyInput(
        path=op.path, language=sent.language or "plaintext", original=sent.text, block=op.block
    )
    try:
        result = consume_apply(_Stream(apply(request)), request, cancelled=should_stop)
    except StreamError as exc:
        if exc.code in _SERVICE_FAILURES:
            raise
        return FileChange(
            op.path, FileChangeKind.FAILED, sent.text, "", op.block, error=exc.message
        )
    if result is None:
        return None
    no_change = FileChange(op.path, FileChangeKind.FAILED, sent.text, "", op.block)
    if not result.hunks:
        if _block_changes(sent.text, op.block):
            error = "the apply left the file unchanged, although its block changes it"
            return replace(no_change, error=error)
        return None
    if sent.excerpt is not None and outside_excerpt(sent.text, result.text, *sent.excerpt):
        lo, hi = sent.excerpt
        error = (
            f"the edit could not be placed in the lines the model saw (lines {lo}-{hi} of the "
            "file): it would change lines outside them"
        )
        return replace(no_change, error=error)
    warning = ""
    if result.removals:
        first = result.removals[0]
        warning = _warning(sum(r.count for r in result.removals), first.reason)
    return FileChange(
        op.path,
        FileChangeKind.MODIFIED,
        sent.text,
        result.text,
        op.block,
        source=result.source,
        warning=warning,
    )


def _answer(chat: ChatStream, params: ChatParams, parts: list[str]) -> Iterator[Event]:
    """The model's answer: its events pass through, its text collects in ``parts``; the
    ``Done`` is the last event."""
    for event in chat(params):
        if isinstance(event, Done):
            yield event
            return
        if isinstance(event, Delta):
            if event.text:
                parts.append(event.text)
                yield event
        elif isinstance(event, Started | Notice):
            yield event
    raise StreamError(FailureCode.INTERNAL, "The model's answer ended without finishing.")


def _parsed(done: Done, answer: str, files: Mapping[str, SentFile]) -> ParsedEdits:
    """The finished answer's operations, or the "incomplete" refusal saying why not."""
    if done.finish_reason == FinishReason.LENGTH:
        raise StreamError(
            FailureCode.INCOMPLETE,
            "The model's answer was cut off before it finished the file edits "
            f"(after {done.usage.get('completion_tokens', 0)} tokens). Nothing was changed.",
        )
    try:
        return parse_edits(answer, files)
    except EditsAnswerError as exc:
        raise StreamError(FailureCode.INCOMPLETE, exc.user_message) from None


def stream_edits(
    params: ChatParams,
    *,
    chat: ChatStream,
    apply: ApplyStream,
    should_stop: Callable[[], bool],
    default_max_tokens: int = 0,
) -> Iterator[EditsEvent]:
    """The multi-file edit for ``params`` (module docstring). ``default_max_tokens``: the
    answer's budget when ``params`` names none (0: the prompt module's default)."""
    try:
        model_params, files = edits_chat_params(
            params, default_max_tokens=default_max_tokens or DEFAULT_EDITS_MAX_TOKENS
        )
    except ValueError as exc:
        raise StreamError(FailureCode.INVALID, str(exc)) from None
    parts: list[str] = []
    done: Done | None = None
    for event in _answer(chat, model_params, parts):
        if isinstance(event, Done):
            done = event
        else:
            yield event
    assert done is not None
    usage = dict(done.usage)
    if done.finish_reason == FinishReason.CANCELLED or should_stop():
        yield EditsDone(FinishReason.CANCELLED, usage)
        return
    parsed = _parsed(done, "".join(parts), files)
    changes: list[FileChange] = []
    for op in parsed.ops:
        if op.kind is OpKind.EDIT:
            yield Notice(f"Resolving the changes to {op.path}")
        change = resolve_op(op, files, apply, should_stop)
        if should_stop():
            yield EditsDone(FinishReason.CANCELLED, usage)
            return
        if change is None:
            yield Notice(f"The answer's block for {op.path} changes nothing in it")
        else:
            changes.append(change)
    if not changes:
        raise StreamError(
            FailureCode.INCOMPLETE,
            "The model's answer changes nothing in the files. Nothing was changed.",
        )
    yield EditsDone(FinishReason.STOP, usage, files=tuple(changes))
