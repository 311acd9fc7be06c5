"""Chat requests as plain data, shared by the service, the client, the router and the editor.

These types carry no gRPC or Qt: ``cloud_server`` and ``cloud_client`` convert them to and
from ``forecode.v1`` messages, the local engine's worker renders them into a prompt (the
router's fallback when the service is unreachable), and the chat panel builds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from forecode_core.streams import (
    FINISH_REASONS,
    Call,
    Delta,
    Done,
    FinishReason,
    Notice,
    Started,
    StreamError,
    Subject,
)

__all__ = [
    "CHAT",
    "CONTEXT_KINDS",
    "FINISH_REASONS",
    "ROLES",
    "ChatCall",
    "ChatDelta",
    "ChatDone",
    "ChatError",
    "ChatEvent",
    "ChatMessage",
    "ChatNotice",
    "ChatParams",
    "ChatStarted",
    "ContextItem",
    "ContextKind",
    "EngineChatClient",
    "FinishReason",
    "Role",
    "params_from_json",
    "params_to_json",
]


class Role(StrEnum):
    """Who wrote a chat message; the values are the JSON's and the golden prompts' strings."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


ROLES: tuple[str, ...] = tuple(Role)


class ContextKind(StrEnum):
    """What a context item is on the wire (a codebase hit travels as a ``FILE`` range)."""

    FILE = "file"
    SELECTION = "selection"
    CURRENT_FILE = "current_file"


CONTEXT_KINDS: tuple[str, ...] = tuple(ContextKind)


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ContextItem:
    """Code sent along with a question: the current file, the selection, an @file mention."""

    kind: ContextKind
    path: str  # workspace-relative, "/" separated
    text: str
    start_line: int = 0  # 1-based inclusive; 0 for a whole file
    end_line: int = 0
    language: str = ""  # editor language id
    truncated: bool = False  # cut to fit the client's budget


@dataclass(frozen=True)
class ChatParams:
    conversation_id: str
    messages: tuple[ChatMessage, ...]  # oldest first; the last is the user's new turn
    context: tuple[ContextItem, ...] = ()
    max_tokens: int = 0  # 0: the server's default
    temperature: float = 0.0  # 0: greedy
    model: str = ""  # empty: the server's default


class EngineChatClient(Protocol):
    """What a chat through the local engine needs of its client
    (``local_models.client.EngineClient``): a chat reported by callbacks on the client's
    thread, and its cancel. Used by ``cloud_client.local_chat`` and ``app.services.bug_review``
    (neither may import the other's package)."""

    def chat(
        self,
        params: ChatParams,
        *,
        on_chunk: Callable[[int, str], None],
        on_done: Callable[[int, Any], None],
        on_error: Callable[[int, str], None],
        max_tokens: int | None = None,
    ) -> int: ...

    def cancel(self, request_id: int) -> None: ...


def params_to_json(params: ChatParams) -> dict[str, Any]:
    """``params`` as plain JSON values (the worker's ``chat`` request carries this)."""
    return {
        "conversation_id": params.conversation_id,
        "messages": [{"role": m.role, "content": m.content} for m in params.messages],
        "context": [
            {
                "kind": c.kind,
                "path": c.path,
                "text": c.text,
                "start_line": c.start_line,
                "end_line": c.end_line,
                "language": c.language,
                "truncated": c.truncated,
            }
            for c in params.context
        ],
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "model": params.model,
    }


def _field(
    d: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    if key not in d:
        if default is ...:
            raise ValueError(f"{where}: missing field {key!r}")
        return default
    value = d[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ValueError(f"{where}: field {key!r} has the wrong type (bool)")
    if not isinstance(value, kind):
        raise ValueError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def params_from_json(d: Any) -> ChatParams:
    """The inverse of ``params_to_json``; ValueError names the first bad field."""
    if not isinstance(d, dict):
        raise ValueError("chat params must be a JSON object")
    messages: list[ChatMessage] = []
    for i, m in enumerate(_field(d, "chat params", "messages", list)):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{where} must be an object")
        role = _field(m, where, "role", str)
        if role not in ROLES:
            raise ValueError(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
        messages.append(ChatMessage(Role(role), _field(m, where, "content", str)))
    context: list[ContextItem] = []
    for i, c in enumerate(_field(d, "chat params", "context", list, [])):
        where = f"context[{i}]"
        if not isinstance(c, dict):
            raise ValueError(f"{where} must be an object")
        kind = _field(c, where, "kind", str)
        if kind not in CONTEXT_KINDS:
            raise ValueError(
                f"{where}: unknown kind {kind!r} (expected one of {', '.join(CONTEXT_KINDS)})"
            )
        context.append(
            ContextItem(
                ContextKind(kind),
                _field(c, where, "path", str),
                _field(c, where, "text", str),
                _field(c, where, "start_line", int, 0),
                _field(c, where, "end_line", int, 0),
                _field(c, where, "language", str, ""),
                _field(c, where, "truncated", bool, False),
            )
        )
    return ChatParams(
        conversation_id=_field(d, "chat params", "conversation_id", str, ""),
        messages=tuple(messages),
        context=tuple(context),
        max_tokens=_field(d, "chat params", "max_tokens", int, 0),
        temperature=float(_field(d, "chat params", "temperature", (int, float), 0.0)),
        model=_field(d, "chat params", "model", str, ""),
    )


# A reply is a stream of the shared contract (``forecode_core.streams``): Started, (Delta |
# Notice)*, Done -- or ChatError raised instead. The chat names are the shared classes.

ChatStarted = Started
ChatDelta = Delta
ChatDone = Done
ChatNotice = Notice
ChatError = StreamError
ChatEvent = Started | Delta | Notice | Done
ChatCall = Call[ChatEvent]
"""One streamed reply (``cloud_client``'s, the router's, the local engine's, a test's fake)."""

CHAT = Subject(
    name="chat",
    service="The chat service",
    work="The reply",
    too_large="The question and its context are too large for the service",
)
"""The chat's nouns in the failure table (``forecode_core.streams.describe_failure``)."""
