"""``forecode.v1`` messages ↔ the plain chat and apply types, with the request checks of the
service.

Pure functions over generated protobuf classes: no server, no model. ``params_from_request``
raises ``InvalidRequest`` (a ValueError) whose text goes back to the client as
INVALID_ARGUMENT.
"""

from __future__ import annotations

import math

from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone, ApplyEvent
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatEvent,
    ChatMessage,
    ChatParams,
    ChatStarted,
    ContextItem,
    ContextKind,
    FinishReason,
    Role,
)
from proto.forecode.v1 import forecode_pb2 as pb

__all__ = [
    "MAX_CONTEXT_ITEMS",
    "MAX_CONVERSATION_ID",
    "MAX_MESSAGES",
    "MAX_PATH",
    "InvalidRequest",
    "apply_event_to_pb",
    "apply_input_from_request",
    "event_to_pb",
    "params_from_request",
]

MAX_MESSAGES = 512
MAX_CONTEXT_ITEMS = 64
MAX_CONVERSATION_ID = 200
MAX_TEMPERATURE = 2.0
MAX_PATH = 4096

_ROLES: dict[int, Role] = {
    pb.ROLE_SYSTEM: Role.SYSTEM,
    pb.ROLE_USER: Role.USER,
    pb.ROLE_ASSISTANT: Role.ASSISTANT,
}
_KINDS: dict[int, ContextKind] = {
    pb.ContextItem.KIND_FILE: ContextKind.FILE,
    pb.ContextItem.KIND_SELECTION: ContextKind.SELECTION,
    pb.ContextItem.KIND_CURRENT_FILE: ContextKind.CURRENT_FILE,
}
# The wire carries no "cancelled" (a cancelled stream simply ends).
_FINISH = {FinishReason.STOP: pb.FINISH_REASON_STOP, FinishReason.LENGTH: pb.FINISH_REASON_LENGTH}


_USAGE_FIELDS = (
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "queue_ms",
    "first_token_ms",
    "total_ms",
)


def _usage_pb(usage: dict[str, int]) -> pb.Usage:
    return pb.Usage(**{k: int(usage.get(k, 0)) for k in _USAGE_FIELDS})


class InvalidRequest(ValueError):
    """A request the service will not run; the text says what is wrong with it."""


def params_from_request(request: pb.ChatRequest) -> ChatParams:
    if not request.messages:
        raise InvalidRequest("the request has no messages")
    if len(request.messages) > MAX_MESSAGES:
        raise InvalidRequest(
            f"the request has {len(request.messages)} messages; at most "
            f"{MAX_MESSAGES} are accepted (drop the oldest)"
        )
    if len(request.context) > MAX_CONTEXT_ITEMS:
        raise InvalidRequest(
            f"the request has {len(request.context)} context items; at most "
            f"{MAX_CONTEXT_ITEMS} are accepted"
        )
    if len(request.conversation_id) > MAX_CONVERSATION_ID:
        raise InvalidRequest(f"conversation_id is longer than {MAX_CONVERSATION_ID} characters")
    messages: list[ChatMessage] = []
    for i, m in enumerate(request.messages):
        role = _ROLES.get(m.role)
        if role is None:
            raise InvalidRequest(
                f"messages[{i}] has role {m.role} (expected ROLE_SYSTEM, "
                "ROLE_USER or ROLE_ASSISTANT)"
            )
        messages.append(ChatMessage(role, m.content))
    if messages[-1].role != Role.USER:
        raise InvalidRequest(f"the last message must be the user's, not the {messages[-1].role}'s")
    if not messages[-1].content.strip():
        raise InvalidRequest("the last user message is empty")
    context: list[ContextItem] = []
    for i, c in enumerate(request.context):
        kind = _KINDS.get(c.kind)
        if kind is None:
            raise InvalidRequest(
                f"context[{i}] has kind {c.kind} (expected KIND_FILE, "
                "KIND_SELECTION or KIND_CURRENT_FILE)"
            )
        if c.start_line < 0 or c.end_line < 0 or (c.start_line and c.end_line < c.start_line):
            raise InvalidRequest(f"context[{i}] has a bad line range {c.start_line}-{c.end_line}")
        context.append(
            ContextItem(
                kind,
                c.path,
                c.text,
                c.start_line,
                c.end_line,
                c.language,
                c.truncated,
            )
        )
    if request.max_tokens < 0:
        raise InvalidRequest(f"max_tokens must not be negative (got {request.max_tokens})")
    temperature = float(request.temperature)
    if not math.isfinite(temperature) or not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InvalidRequest(f"temperature must be between 0 and {MAX_TEMPERATURE:g}")
    return ChatParams(
        conversation_id=request.conversation_id,
        messages=tuple(messages),
        context=tuple(context),
        max_tokens=request.max_tokens,
        temperature=temperature,
        model=request.model,
    )


def event_to_pb(event: ChatEvent) -> pb.ChatEvent | None:
    """The wire event, or None for events the wire does not carry (notices, cancelled)."""
    if isinstance(event, ChatStarted):
        return pb.ChatEvent(started=pb.ChatStarted(model=event.model, queued_ms=event.queued_ms))
    if isinstance(event, ChatDelta):
        return pb.ChatEvent(delta=pb.ChatDelta(text=event.text))
    if isinstance(event, ChatDone) and event.finish_reason in _FINISH:
        usage = _usage_pb(event.usage)
        return pb.ChatEvent(
            done=pb.ChatDone(finish_reason=_FINISH[event.finish_reason], usage=usage)
        )
    return None


def apply_input_from_request(request: pb.ApplyRequest) -> ApplyInput:
    """The apply's input; ``InvalidRequest`` for a request without a block or with an
    implausible path (sizes are bounded by the message limit)."""
    if not request.block.strip():
        raise InvalidRequest("the request has no code block to apply")
    if len(request.path) > MAX_PATH or "\x00" in request.path:
        raise InvalidRequest("the path is not a file path")
    return ApplyInput(
        path=request.path or "file",
        language=request.language or "plaintext",
        original=request.original,
        block=request.block,
        instruction=request.instruction,
    )


def apply_event_to_pb(event: ApplyEvent) -> pb.ApplyEvent | None:
    """The wire event of an apply, or None for events the wire does not carry (cancelled)."""
    if isinstance(event, ChatStarted):
        return pb.ApplyEvent(started=pb.ChatStarted(model=event.model, queued_ms=event.queued_ms))
    if isinstance(event, ChatDelta):
        return pb.ApplyEvent(delta=pb.ChatDelta(text=event.text))
    if isinstance(event, ApplyDone) and event.finish_reason in _FINISH:
        usage = _usage_pb(event.usage)
        return pb.ApplyEvent(
            done=pb.ApplyDone(
                usage=usage,
                drafted_tokens=event.drafted_tokens,
                accepted_tokens=event.accepted_tokens,
                source=event.source,
                finish_reason=_FINISH[event.finish_reason],
                batches=event.batches,
                rejoins=event.rejoins,
                prefill_ms=event.prefill_ms,
                decode_ms=event.decode_ms,
            )
        )
    return None
