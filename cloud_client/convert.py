"""``forecode_core.chat.types`` values <-> ``forecode.v1`` messages, and gRPC status ->
``ChatError``.

Pure functions over plain data and protobuf messages: no channel, no threads. The client and
its tests call them; nothing here talks to the network. Status codes arrive as their names
("UNAVAILABLE", ...) so this module does not depend on ``grpc`` itself.
"""

from __future__ import annotations

from forecode_core.apply.events import APPLY_SOURCES, ApplyDone
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatParams,
    ChatStarted,
    ContextItem,
    ContextKind,
    Role,
)
from forecode_core.streams import FailureCode, FinishReason
from proto.forecode.v1 import forecode_pb2 as pb

__all__ = [
    "apply_event_from_pb",
    "apply_request_to_pb",
    "chat_error",
    "event_from_pb",
    "event_to_pb",
    "params_from_pb",
    "params_to_pb",
]

_ROLE_TO_PB = {
    Role.SYSTEM: pb.ROLE_SYSTEM,
    Role.USER: pb.ROLE_USER,
    Role.ASSISTANT: pb.ROLE_ASSISTANT,
}
_ROLE_FROM_PB: dict[int, Role] = {v: k for k, v in _ROLE_TO_PB.items()}

_KIND_TO_PB = {
    ContextKind.FILE: pb.ContextItem.KIND_FILE,
    ContextKind.SELECTION: pb.ContextItem.KIND_SELECTION,
    ContextKind.CURRENT_FILE: pb.ContextItem.KIND_CURRENT_FILE,
}
_KIND_FROM_PB: dict[int, ContextKind] = {v: k for k, v in _KIND_TO_PB.items()}

_FINISH_TO_PB = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
}
_FINISH_FROM_PB: dict[int, FinishReason] = {v: k for k, v in _FINISH_TO_PB.items()}

_USAGE_FIELDS = (
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "queue_ms",
    "first_token_ms",
    "total_ms",
)


def params_to_pb(params: ChatParams) -> pb.ChatRequest:
    """The request for ``Chat/Stream``; raises ValueError on a role or context kind that the
    contract does not know (rather than sending ``*_UNSPECIFIED``)."""
    messages = []
    for m in params.messages:
        if m.role not in _ROLE_TO_PB:
            raise ValueError(
                f"unknown chat role {m.role!r} (expected one of {', '.join(_ROLE_TO_PB)})"
            )
        messages.append(pb.ChatMessage(role=_ROLE_TO_PB[m.role], content=m.content))
    context = []
    for c in params.context:
        if c.kind not in _KIND_TO_PB:
            raise ValueError(
                f"unknown context kind {c.kind!r} (expected one of {', '.join(_KIND_TO_PB)})"
            )
        context.append(
            pb.ContextItem(
                kind=_KIND_TO_PB[c.kind],
                path=c.path,
                text=c.text,
                start_line=c.start_line,
                end_line=c.end_line,
                language=c.language,
                truncated=c.truncated,
            )
        )
    return pb.ChatRequest(
        conversation_id=params.conversation_id,
        messages=messages,
        context=context,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        model=params.model,
    )


def params_from_pb(req: pb.ChatRequest) -> ChatParams:
    """The inverse of ``params_to_pb``; ValueError on an unspecified or unknown enum value."""
    messages = []
    for m in req.messages:
        if m.role not in _ROLE_FROM_PB:
            raise ValueError(f"message role {m.role} is not system, user or assistant")
        messages.append(ChatMessage(role=_ROLE_FROM_PB[m.role], content=m.content))
    context = []
    for c in req.context:
        if c.kind not in _KIND_FROM_PB:
            raise ValueError(f"context kind {c.kind} is not file, selection or current_file")
        context.append(
            ContextItem(
                kind=_KIND_FROM_PB[c.kind],
                path=c.path,
                text=c.text,
                start_line=c.start_line,
                end_line=c.end_line,
                language=c.language,
                truncated=c.truncated,
            )
        )
    return ChatParams(
        conversation_id=req.conversation_id,
        messages=tuple(messages),
        context=tuple(context),
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        model=req.model,
    )


def _started_or_delta(
    event: pb.ChatEvent | pb.ApplyEvent, which: str | None, source: str
) -> ChatStarted | ChatDelta | None:
    """The events chat and apply streams share (the same messages in both contracts)."""
    if which == "started":
        return ChatStarted(
            model=event.started.model,
            source=source,  # type: ignore[arg-type]
            queued_ms=event.started.queued_ms,
        )
    if which == "delta":
        return ChatDelta(text=event.delta.text)
    return None


def event_from_pb(
    event: pb.ChatEvent, *, source: str = "cloud"
) -> ChatStarted | ChatDelta | ChatDone:
    """One streamed event as a ``forecode_core.chat.types`` value; ValueError on an empty event."""
    which = event.WhichOneof("event")
    common = _started_or_delta(event, which, source)
    if common is not None:
        return common
    if which == "done":
        usage = {name: int(getattr(event.done.usage, name)) for name in _USAGE_FIELDS}
        reason = _FINISH_FROM_PB.get(event.done.finish_reason, FinishReason.STOP)
        return ChatDone(finish_reason=reason, usage=usage)
    raise ValueError("the service sent an empty chat event")


def event_to_pb(event: ChatStarted | ChatDelta | ChatDone) -> pb.ChatEvent:
    """The inverse of ``event_from_pb`` (for test servicers and tools)."""
    if isinstance(event, ChatStarted):
        return pb.ChatEvent(started=pb.ChatStarted(model=event.model, queued_ms=event.queued_ms))
    if isinstance(event, ChatDelta):
        return pb.ChatEvent(delta=pb.ChatDelta(text=event.text))
    usage = pb.Usage(**{k: v for k, v in event.usage.items() if k in _USAGE_FIELDS})
    return pb.ChatEvent(
        done=pb.ChatDone(
            finish_reason=_FINISH_TO_PB.get(event.finish_reason, pb.FINISH_REASON_UNSPECIFIED),
            usage=usage,
        )
    )


def apply_request_to_pb(
    *,
    path: str,
    original: str,
    block: str,
    instruction: str = "",
    language: str = "",
    model: str = "",
) -> pb.ApplyRequest:
    """The request for ``Apply/Apply``."""
    return pb.ApplyRequest(
        path=path,
        original=original,
        block=block,
        instruction=instruction,
        language=language,
        model=model,
    )


def apply_event_from_pb(
    event: pb.ApplyEvent, *, source: str = "cloud"
) -> ChatStarted | ChatDelta | ApplyDone:
    """One streamed apply event as a plain value; ValueError on an empty event."""
    which = event.WhichOneof("event")
    common = _started_or_delta(event, which, source)
    if common is not None:
        return common
    if which == "done":
        d = event.done
        usage = {name: int(getattr(d.usage, name)) for name in _USAGE_FIELDS}
        return ApplyDone(
            source=d.source if d.source in APPLY_SOURCES else "",
            finish_reason=_FINISH_FROM_PB.get(d.finish_reason, FinishReason.LENGTH),
            usage=usage,
            drafted_tokens=d.drafted_tokens,
            accepted_tokens=d.accepted_tokens,
            batches=d.batches,
            rejoins=d.rejoins,
            prefill_ms=d.prefill_ms,
            decode_ms=d.decode_ms,
        )
    raise ValueError("the service sent an empty apply event")


# (code, retryable, message template); {where} is "at HOST:PORT", {detail} the server's words.
_STATUS_TABLE: dict[str, tuple[FailureCode, bool, str]] = {
    "UNAUTHENTICATED": (
        FailureCode.UNAUTHENTICATED,
        False,
        "The Forecode service {where} refused the access token; check the "
        "token in the cloud settings",
    ),
    "PERMISSION_DENIED": (
        FailureCode.UNAUTHENTICATED,
        False,
        "The Forecode service {where} does not allow this request with the access token given",
    ),
    "UNAVAILABLE": (FailureCode.UNAVAILABLE, True, "The Forecode service {where} is not reachable"),
    "DEADLINE_EXCEEDED": (
        FailureCode.DEADLINE,
        True,
        "The Forecode service {where} did not answer in time",
    ),
    "INVALID_ARGUMENT": (FailureCode.INVALID, False, "The Forecode service rejected the request"),
    "FAILED_PRECONDITION": (
        FailureCode.INVALID,
        False,
        "The Forecode service rejected the request",
    ),
    "OUT_OF_RANGE": (FailureCode.INVALID, False, "The Forecode service rejected the request"),
    "RESOURCE_EXHAUSTED": (
        FailureCode.TOO_LARGE,
        False,
        "The request is too large for the Forecode service",
    ),
    "CANCELLED": (FailureCode.CANCELLED, False, "The request was cancelled"),
}

# Transport details worth showing a user, in their words (gRPC's own strings are long).
_DETAIL_HINTS = (
    ("connection refused", "connection refused"),
    ("failed to connect", "cannot connect"),
    ("socket closed", "the connection was lost"),
    ("connection reset", "the connection was lost"),
    ("broken pipe", "the connection was lost"),
    ("goaway", "the service is shutting down"),
    ("dns resolution failed", "unknown host name"),
    ("handshake", "the TLS handshake failed"),
    ("certificate", "the TLS certificate was not accepted"),
)


def chat_error(status_name: str, details: str | None, target: str) -> ChatError:
    """A ``ChatError`` a user can read for a gRPC status (by name) from the service at
    ``target``. Unknown statuses become "internal"."""
    where = f"at {target}" if target else ""
    details = (details or "").strip()
    code, retryable, template = _STATUS_TABLE.get(
        status_name, (FailureCode.INTERNAL, False, "The Forecode service {where} failed")
    )
    low = details.lower()
    if code == FailureCode.TOO_LARGE and low.startswith("the service is busy"):
        # RESOURCE_EXHAUSTED is also what a full queue gets: every model slot is taken.
        why = details[len("the service is busy") :].lstrip(":; ")
        return ChatError(
            FailureCode.BUSY,
            f"The Forecode service {where} is busy"
            + (f" ({_shorten(why)})" if why else "")
            + "; try again in a moment",
            retryable=True,
        )
    if code == FailureCode.UNAVAILABLE and "model server" in low:
        # The service is up; what it forwards to (an OpenAI-compatible server) is not.
        return ChatError(
            FailureCode.UNAVAILABLE,
            f"The Forecode service {where} cannot use its model server: {_shorten(details)}",
            retryable=True,
        )
    if code == FailureCode.TOO_LARGE and details:
        # The server's words alone: the subject's sentence ("The question and its context are
        # too large for the service: ...", ``describe_failure``) already says "too large".
        return ChatError(code, _shorten(details), retryable=retryable)
    message = " ".join(template.format(where=where).split())
    if code == FailureCode.UNAVAILABLE:
        hint = next((h for key, h in _DETAIL_HINTS if key in low), "")
        if hint:
            message += f" ({hint})"
    elif code in (FailureCode.INVALID, FailureCode.INTERNAL) and details:
        message += f": {_shorten(details)}"
    return ChatError(code, message, retryable=retryable)


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
