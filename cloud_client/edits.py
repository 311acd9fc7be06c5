"""The client's side of ``forecode.v1.Edits/Propose``: the request, and ``CloudEditsCall``,
the stream (a ``forecode_core.edits.events.EditsCall``): ``Started``, ``Delta``s (the model's
answer), ``Notice``s, then one ``EditsDone`` with the set of ``FileChange``s (the wire's
``edit`` events, each given back the text the client sent as its ``original``). The
service's refusal of an answer (FAILED_PRECONDITION, "incomplete: ...") is
``StreamError("incomplete")`` with the service's sentence; other failures as for chat.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import grpc

from cloud_client.client import CloudChatCall
from cloud_client.convert import event_from_pb, params_to_pb
from forecode_core.chat.types import ChatParams
from forecode_core.edits.events import EditsDone, FileChange, FileChangeKind
from forecode_core.edits.prompt import sent_files
from forecode_core.streams import Done, FailureCode, FinishReason, Notice, StreamError
from proto.forecode.v1 import forecode_pb2 as pb

__all__ = ["CloudEditsCall", "edits_request_to_pb"]

INCOMPLETE_PREFIX = "incomplete: "  # cloud_server.edits.INCOMPLETE_PREFIX

_KIND_FROM_PB: dict[int, FileChangeKind] = {
    pb.FILE_EDIT_KIND_MODIFIED: FileChangeKind.MODIFIED,
    pb.FILE_EDIT_KIND_NEW: FileChangeKind.NEW,
    pb.FILE_EDIT_KIND_DELETED: FileChangeKind.DELETED,
    pb.FILE_EDIT_KIND_FAILED: FileChangeKind.FAILED,
}


def edits_request_to_pb(params: ChatParams) -> pb.EditsRequest:
    """The request for ``Edits/Propose`` (ValueError as ``params_to_pb``)."""
    chat = params_to_pb(params)
    return pb.EditsRequest(
        conversation_id=chat.conversation_id,
        messages=chat.messages,
        context=chat.context,
        model=chat.model,
        max_tokens=chat.max_tokens,
    )


class CloudEditsCall(CloudChatCall):
    """One multi-file edit on the service (``CloudClient.edits``); see the module doc."""

    def __init__(self, call: Any, target: str, params: ChatParams) -> None:
        self._sent = {path: f.text for path, f in sent_files(params.context).items()}
        self._files: list[FileChange] = []
        super().__init__(call, target)

    def _convert(self, message: Any) -> Any:
        which = message.WhichOneof("event")
        if which == "edit":
            return self._change(message.edit)
        if which == "notice":
            return Notice(message.notice.text)
        chat = pb.ChatEvent()
        if which == "started":
            chat.started.CopyFrom(message.started)
        elif which == "delta":
            chat.delta.CopyFrom(message.delta)
        elif which == "done":
            chat.done.CopyFrom(message.done)
        return event_from_pb(chat, source="cloud")

    def _change(self, edit: pb.FileEdit) -> FileChange:
        kind = _KIND_FROM_PB.get(edit.kind)
        if kind is None:
            raise ValueError(f"file edit kind {edit.kind} is not one this editor knows")
        if kind is not FileChangeKind.NEW and edit.path not in self._sent:
            raise ValueError(f"a file edit for {edit.path!r}, which was not sent")
        return FileChange(
            edit.path,
            kind,
            self._sent.get(edit.path, ""),
            edit.new_text,
            edit.block,
            edit.source,
            edit.error,
            edit.warning,
        )

    def _cancelled_event(self) -> Done:
        return EditsDone(FinishReason.CANCELLED)

    def _run(self) -> Generator[Any, None, None]:
        events = super()._run()
        try:
            for event in events:
                if isinstance(event, FileChange):
                    self._files.append(event)
                elif isinstance(event, Done) and not isinstance(event, EditsDone):
                    yield EditsDone(
                        event.finish_reason, dict(event.usage), files=tuple(self._files)
                    )
                else:
                    yield event
        except StreamError as exc:
            raise _refusal(exc) from exc


def _refusal(exc: StreamError) -> StreamError:
    """The service's refusal of an answer back as "incomplete" (its own sentence)."""
    cause = exc.__cause__
    if isinstance(cause, grpc.RpcError) and hasattr(cause, "code"):
        details = cause.details() if hasattr(cause, "details") else ""
        if cause.code() == grpc.StatusCode.FAILED_PRECONDITION and (details or "").startswith(
            INCOMPLETE_PREFIX
        ):
            return StreamError(FailureCode.INCOMPLETE, details[len(INCOMPLETE_PREFIX) :])
    return exc
