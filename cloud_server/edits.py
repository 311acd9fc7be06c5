"""The service's multi-file edits (``forecode.v1.Edits/Propose``): the request checked and
converted, the backend's chat and apply streams driven by ``forecode_core.edits.resolve``
(the model's answer parsed strictly, each changed file resolved by the apply pipeline
against the text the client sent: the service never reads the user's disk), and the events
on the wire.

A refusal of the answer (not a well-formed set, cut off, nothing changed) leaves as
FAILED_PRECONDITION whose details start ``incomplete:`` (``INCOMPLETE_PREFIX``); the client
turns it back into ``StreamError("incomplete")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cloud_server.backends import Backend
from cloud_server.convert import _FINISH, _usage_pb, params_from_request
from forecode_core.chat.types import ChatParams
from forecode_core.edits.events import EditsDone, FileChange, FileChangeKind
from forecode_core.edits.resolve import stream_edits
from forecode_core.streams import Delta, Done, FailureCode, Notice, Started, StreamError
from proto.forecode.v1 import forecode_pb2 as pb

__all__ = [
    "INCOMPLETE_PREFIX",
    "KIND_TO_PB",
    "edits_event_to_pb",
    "edits_params_from_request",
    "stream_backend_edits",
]

INCOMPLETE_PREFIX = "incomplete: "

KIND_TO_PB: dict[FileChangeKind, pb.FileEditKind] = {
    FileChangeKind.MODIFIED: pb.FILE_EDIT_KIND_MODIFIED,
    FileChangeKind.NEW: pb.FILE_EDIT_KIND_NEW,
    FileChangeKind.DELETED: pb.FILE_EDIT_KIND_DELETED,
    FileChangeKind.FAILED: pb.FILE_EDIT_KIND_FAILED,
}


def edits_params_from_request(request: pb.EditsRequest) -> ChatParams:
    """The request as chat params (the same checks as a chat's: ``InvalidRequest``)."""
    return params_from_request(
        pb.ChatRequest(
            conversation_id=request.conversation_id,
            messages=request.messages,
            context=request.context,
            max_tokens=request.max_tokens,
            model=request.model,
        )
    )


def stream_backend_edits(
    backend: Backend, params: ChatParams, should_stop: Callable[[], bool]
) -> Iterator[Any]:
    """The edit's events on ``backend`` (its chat answers, its apply resolves), with each
    file of the set as a ``FileChange`` right before the ``EditsDone``."""
    try:
        for event in stream_edits(
            params,
            chat=lambda p: backend.stream_chat(p, should_stop=should_stop),
            apply=lambda r: backend.stream_apply(r, should_stop=should_stop),
            should_stop=should_stop,
        ):
            if isinstance(event, EditsDone):
                yield from event.files
            yield event
    except StreamError as exc:
        if exc.code != FailureCode.INCOMPLETE:
            raise
        raise StreamError(FailureCode.INCOMPLETE, INCOMPLETE_PREFIX + exc.message) from None


def edits_event_to_pb(event: Any) -> pb.EditsEvent | None:
    """The wire event, or None for what the wire does not carry (cancelled)."""
    if isinstance(event, FileChange):
        return pb.EditsEvent(
            edit=pb.FileEdit(
                path=event.path,
                block=event.block,
                kind=KIND_TO_PB[event.kind],
                new_text=event.new_text,
                source=event.source,
                error=event.error,
                warning=event.warning,
            )
        )
    if isinstance(event, Started):
        return pb.EditsEvent(started=pb.ChatStarted(model=event.model, queued_ms=event.queued_ms))
    if isinstance(event, Delta):
        return pb.EditsEvent(delta=pb.ChatDelta(text=event.text))
    if isinstance(event, Notice):
        return pb.EditsEvent(notice=pb.EditsNotice(text=event.text))
    if isinstance(event, Done) and event.finish_reason in _FINISH:
        return pb.EditsEvent(
            done=pb.ChatDone(
                finish_reason=_FINISH[event.finish_reason], usage=_usage_pb(event.usage)
            )
        )
    return None
