"""Chat requests as plain data, shared by the service, the client, the router and the editor.

These types carry no gRPC or Qt: ``cloud_server`` and ``cloud_client`` convert them to and
from ``forecode.v1`` messages, the local engine's worker renders them into a prompt (the
router's fallback when the service is unreachable), and the chat panel builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CONTEXT_KINDS", "FINISH_REASONS", "ROLES",
    "ChatDelta", "ChatDone", "ChatError", "ChatEvent", "ChatMessage", "ChatNotice", "ChatParams",
    "ChatStarted", "ContextItem",
]

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")

ContextKind = Literal["file", "selection", "current_file"]
CONTEXT_KINDS: tuple[str, ...] = ("file", "selection", "current_file")

FinishReason = Literal["stop", "length", "cancelled"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "cancelled")


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ContextItem:
    """Code sent along with a question: the current file, the selection, an @file mention."""

    kind: ContextKind
    path: str                 # workspace-relative, "/" separated
    text: str
    start_line: int = 0       # 1-based inclusive; 0 for a whole file
    end_line: int = 0
    language: str = ""        # editor language id
    truncated: bool = False   # cut to fit the client's budget


@dataclass(frozen=True)
class ChatParams:
    conversation_id: str
    messages: tuple[ChatMessage, ...]      # oldest first; the last is the user's new turn
    context: tuple[ContextItem, ...] = ()
    max_tokens: int = 0                    # 0: the server's default
    temperature: float = 0.0               # 0: greedy
    model: str = ""                        # empty: the server's default


# Events of one streamed reply, in order: Started, Delta*, Done — or ChatError raised instead.
# ChatNotice may come at any point (the router says it switched to the local model).


@dataclass(frozen=True)
class ChatStarted:
    model: str
    source: Literal["cloud", "local"] = "cloud"
    queued_ms: int = 0


@dataclass(frozen=True)
class ChatDelta:
    text: str


@dataclass(frozen=True)
class ChatDone:
    finish_reason: FinishReason
    usage: dict[str, int] = field(default_factory=dict)   # prompt_tokens, cached_tokens, ...


@dataclass(frozen=True)
class ChatNotice:
    text: str


ChatEvent = ChatStarted | ChatDelta | ChatDone | ChatNotice


class ChatError(Exception):
    """A reply that could not be given. ``code`` is a short machine name: "unauthenticated",
    "unavailable", "deadline", "invalid", "too_large", "cancelled", "internal"."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}
