"""The editor ↔ engine-worker protocol: newline-delimited JSON, one message per line.

The editor writes requests to the worker's stdin; the worker writes events to its stdout. Its
stderr carries llama.cpp's logs and is never parsed. Every line is one JSON object with a
``"type"`` field naming the message; the other fields are those of the dataclass below.
Unknown extra fields are ignored (a newer peer may add some); missing or mistyped ones are a
``ProtocolError``.

Requests (editor → worker)::

    {"type": "complete", "id": 7, "input": {...CompletionInput...}, "max_tokens": null,
     "speculative": true}
    {"type": "warm", "id": 8, "input": {...}}
    {"type": "next_edit", "id": 10, "input": {...NextEditInput...}, "max_tokens": null}
    {"type": "chat", "id": 9, "params": {...ChatParams (chat.params_to_json)...},
     "max_tokens": null}
    {"type": "score", "id": 11, "prefix": "def f(x):\n", "continuation": "    return x\n"}
    {"type": "cancel", "id": 7}
    {"type": "shutdown"}

Events (worker → editor)::

    {"type": "ready", "protocol": 1, "model": {...ModelInfo fields...}, "profile": "gemma3",
     "pid": 1234}
    {"type": "chunk", "id": 7, "text": "def "}
    {"type": "done", "id": 7, "text": "def f():", "stop_reason": "eos", "metrics": {...}}
    {"type": "warmed", "id": 8, "metrics": {...}}
    {"type": "failed", "id": 7, "message": "...", "fatal": false}

Each Complete and each Chat ends with exactly one Done or Failed (a Chat streams its reply as
Chunks too: the router's local fallback when the service is unreachable); each NextEdit with
one Done (the model's rewrite of the editable region, no Chunks; ``metrics`` as
``local_models.next_edit``) or Failed; each Warm with one Warmed or Failed (a request
cancelled before it started ends with ``Done(stop_reason="cancelled")`` / ``Warmed``). A newer
Complete supersedes older Completes and Warms, not a NextEdit (the suggestion being predicted
stays useful while the user types a completion); a newer NextEdit supersedes older NextEdits
and Warms, not a Complete (the user waits for that one); a newer Chat supersedes older Chats
only. A Score (the bug finder's: the model's log-probability of each token of
``continuation`` after ``prefix``, generating nothing) ends with one Done whose ``metrics``
hold ``"scores"``: ``[[logp, top_logp], ...]`` a token (``stop_reason`` "stop"; "cancelled"
and no scores when cancelled) or Failed; a newer Score supersedes older Scores only.
``Failed(id=None, fatal=False)`` answers a line the worker could not read; ``fatal=True`` means
the worker cannot run at all (a bad model file) and is about to exit with ``EXIT_FATAL``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, TypeAlias

__all__ = [
    "EXIT_FATAL",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "STOP_REASONS",
    "Cancel",
    "Chat",
    "Chunk",
    "Complete",
    "Done",
    "Event",
    "Failed",
    "Message",
    "NextEdit",
    "ProtocolError",
    "Ready",
    "Request",
    "Score",
    "Shutdown",
    "Warm",
    "Warmed",
    "decode_message",
    "encode_message",
    "read_line",
]

PROTOCOL_VERSION = 1
"""Bumped on any incompatible change; the worker puts it in Ready and the client checks it."""

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""The longest line either side accepts (a completion input with big snippets fits easily)."""

EXIT_FATAL = 3
"""The worker's exit code when it cannot run at all (bad model): the client does not restart."""

STOP_REASONS = ("eos", "stop", "length", "cancelled")


class ProtocolError(ValueError):
    """A line that is not a valid message; the text says what is wrong with it."""


# ---------------------------------------------------------------------------------------------
# field checks


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_Check = Callable[[Any], bool]
_CHECKS: dict[str, tuple[_Check, str]] = {
    "int": (_is_int, "an integer"),
    "int?": (lambda v: v is None or _is_int(v), "an integer or null"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "a boolean"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
}


def _get(d: dict[str, Any], type_name: str, name: str, kind: str, default: Any = ...) -> Any:
    if name not in d:
        if default is not ...:
            return default
        raise ProtocolError(f"{type_name!r} message is missing the field {name!r}")
    value = d[name]
    check, wanted = _CHECKS[kind]
    if not check(value):
        raise ProtocolError(
            f"{type_name!r} message: field {name!r} must be {wanted}, not {_describe(value)}"
        )
    return value


def _int_id(type_name: str, d: dict[str, Any]) -> int:
    value: int = _get(d, type_name, "id", "int")
    if value < 0:
        raise ProtocolError(f"{type_name!r} message: field 'id' must not be negative")
    return value


# ---------------------------------------------------------------------------------------------
# requests


@dataclass(frozen=True)
class Complete:
    """Complete at the cursor described by ``input`` (``CompletionInput.to_json()``)."""

    TYPE: ClassVar[str] = "complete"
    id: int
    input: dict[str, Any]
    max_tokens: int | None = None
    speculative: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "input": self.input,
            "max_tokens": self.max_tokens,
            "speculative": self.speculative,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Complete:
        max_tokens = _get(d, cls.TYPE, "max_tokens", "int?", None)
        if max_tokens is not None and max_tokens <= 0:
            raise ProtocolError("'complete' message: field 'max_tokens' must be positive")
        return cls(
            id=_int_id(cls.TYPE, d),
            input=_get(d, cls.TYPE, "input", "dict"),
            max_tokens=max_tokens,
            speculative=_get(d, cls.TYPE, "speculative", "bool", False),
        )


@dataclass(frozen=True)
class Chat:
    """Answer the chat in ``params`` (``forecode_core.chat.types.params_to_json``) with the model's
    chat format (``forecode_core.chat.prompt_formats``); ``max_tokens`` None: the params' or the
    worker's default."""

    TYPE: ClassVar[str] = "chat"
    id: int
    params: dict[str, Any]
    max_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "params": self.params,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Chat:
        max_tokens = _get(d, cls.TYPE, "max_tokens", "int?", None)
        if max_tokens is not None and max_tokens <= 0:
            raise ProtocolError("'chat' message: field 'max_tokens' must be positive")
        return cls(
            id=_int_id(cls.TYPE, d),
            params=_get(d, cls.TYPE, "params", "dict"),
            max_tokens=max_tokens,
        )


@dataclass(frozen=True)
class NextEdit:
    """Predict the next edit for ``input`` (``forecode_core.next_edit.input.NextEditInput``'s
    ``to_json()``): the model's rewrite of its editable region. ``max_tokens`` None: the
    region's length plus some slack (``local_models.next_edit``)."""

    TYPE: ClassVar[str] = "next_edit"
    id: int
    input: dict[str, Any]
    max_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "input": self.input,
            "max_tokens": self.max_tokens,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NextEdit:
        max_tokens = _get(d, cls.TYPE, "max_tokens", "int?", None)
        if max_tokens is not None and max_tokens <= 0:
            raise ProtocolError("'next_edit' message: field 'max_tokens' must be positive")
        return cls(
            id=_int_id(cls.TYPE, d),
            input=_get(d, cls.TYPE, "input", "dict"),
            max_tokens=max_tokens,
        )


@dataclass(frozen=True)
class Warm:
    """Evaluate the prompt for ``input`` into the KV cache so a later Complete starts fast."""

    TYPE: ClassVar[str] = "warm"
    id: int
    input: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "id": self.id, "input": self.input}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Warm:
        return cls(id=_int_id(cls.TYPE, d), input=_get(d, cls.TYPE, "input", "dict"))


@dataclass(frozen=True)
class Score:
    """The model's log-probabilities of ``continuation``'s tokens after ``prefix`` (the two
    tokenized apart); see the module docstring."""

    TYPE: ClassVar[str] = "score"
    id: int
    prefix: str
    continuation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "prefix": self.prefix,
            "continuation": self.continuation,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Score:
        return cls(
            id=_int_id(cls.TYPE, d),
            prefix=_get(d, cls.TYPE, "prefix", "str"),
            continuation=_get(d, cls.TYPE, "continuation", "str"),
        )


@dataclass(frozen=True)
class Cancel:
    """Stop request ``id`` (within one decode step); unknown or finished ids are ignored."""

    TYPE: ClassVar[str] = "cancel"
    id: int

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "id": self.id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Cancel:
        return cls(id=_int_id(cls.TYPE, d))


@dataclass(frozen=True)
class Shutdown:
    """Cancel everything and exit with code 0."""

    TYPE: ClassVar[str] = "shutdown"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Shutdown:
        return cls()


# ---------------------------------------------------------------------------------------------
# events


@dataclass(frozen=True)
class Ready:
    """The model is loaded. ``model`` holds the ModelInfo fields; ``profile`` names the prompt
    profile in use; ``protocol`` is the worker's PROTOCOL_VERSION."""

    TYPE: ClassVar[str] = "ready"
    model: dict[str, Any]
    profile: str
    pid: int
    protocol: int = PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "protocol": self.protocol,
            "model": self.model,
            "profile": self.profile,
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Ready:
        return cls(
            model=_get(d, cls.TYPE, "model", "dict"),
            profile=_get(d, cls.TYPE, "profile", "str"),
            pid=_get(d, cls.TYPE, "pid", "int"),
            protocol=_get(d, cls.TYPE, "protocol", "int"),
        )


@dataclass(frozen=True)
class Chunk:
    """More completion text for request ``id`` (chunks concatenate to Done.text)."""

    TYPE: ClassVar[str] = "chunk"
    id: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "id": self.id, "text": self.text}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Chunk:
        return cls(id=_int_id(cls.TYPE, d), text=_get(d, cls.TYPE, "text", "str"))


@dataclass(frozen=True)
class Done:
    """Request ``id`` finished: the whole text, why it stopped, and the engine's metrics."""

    TYPE: ClassVar[str] = "done"
    id: int
    text: str
    stop_reason: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "id": self.id,
            "text": self.text,
            "stop_reason": self.stop_reason,
            "metrics": self.metrics,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Done:
        reason = _get(d, cls.TYPE, "stop_reason", "str")
        if reason not in STOP_REASONS:
            raise ProtocolError(
                f"'done' message: unknown stop_reason {reason!r} "
                f"(expected one of {', '.join(STOP_REASONS)})"
            )
        return cls(
            id=_int_id(cls.TYPE, d),
            text=_get(d, cls.TYPE, "text", "str"),
            stop_reason=reason,
            metrics=_get(d, cls.TYPE, "metrics", "dict"),
        )


@dataclass(frozen=True)
class Warmed:
    """Warm request ``id`` finished (or was cancelled)."""

    TYPE: ClassVar[str] = "warmed"
    id: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "id": self.id, "metrics": self.metrics}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Warmed:
        return cls(id=_int_id(cls.TYPE, d), metrics=_get(d, cls.TYPE, "metrics", "dict"))


@dataclass(frozen=True)
class Failed:
    """Request ``id`` failed (``id`` None: not about one request). ``fatal``: the worker cannot
    run at all and exits with EXIT_FATAL; restarting it would fail the same way."""

    TYPE: ClassVar[str] = "failed"
    id: int | None
    message: str
    fatal: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"type": self.TYPE, "id": self.id, "message": self.message, "fatal": self.fatal}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Failed:
        ident = _get(d, cls.TYPE, "id", "int?")
        if ident is not None and ident < 0:
            raise ProtocolError("'failed' message: field 'id' must not be negative")
        return cls(
            id=ident,
            message=_get(d, cls.TYPE, "message", "str"),
            fatal=_get(d, cls.TYPE, "fatal", "bool"),
        )


Request: TypeAlias = Complete | Chat | NextEdit | Warm | Score | Cancel | Shutdown
Event: TypeAlias = Ready | Chunk | Done | Warmed | Failed
Message: TypeAlias = Request | Event

_TYPES: dict[str, Any] = {
    cls.TYPE: cls
    for cls in (
        Complete,
        Chat,
        NextEdit,
        Warm,
        Score,
        Cancel,
        Shutdown,
        Ready,
        Chunk,
        Done,
        Warmed,
        Failed,
    )
}
REQUEST_TYPES = (Complete, Chat, NextEdit, Warm, Score, Cancel, Shutdown)
EVENT_TYPES = (Ready, Chunk, Done, Warmed, Failed)


# ---------------------------------------------------------------------------------------------
# wire format


def encode_message(message: Message) -> bytes:
    """One line: compact ASCII JSON (lone surrogates and newlines escaped) ending in ``\\n``."""
    try:
        text = json.dumps(
            message.to_json(), ensure_ascii=True, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{message.TYPE!r} message cannot be encoded: {exc}") from None
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"{message.TYPE!r} message is {len(text)} bytes, longer than "
            f"the limit of {MAX_MESSAGE_BYTES} bytes"
        )
    return text.encode("ascii") + b"\n"


def decode_message(line: bytes | str) -> Message:
    """The message on one line (trailing newline optional); ProtocolError says what is wrong."""
    size = len(line) - (1 if line[-1:] in (b"\n", "\n") else 0)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"message of {size} bytes is longer than the limit of {MAX_MESSAGE_BYTES} bytes"
        )
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"message is not UTF-8: {exc}") from None
    else:
        text = line
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ProtocolError("empty message line")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("message is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"message must be a JSON object, not {_describe(data)}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(
            "message has no 'type' string field"
            if kind is None
            else f"message field 'type' must be a string, not {_describe(kind)}"
        )
    cls = _TYPES.get(kind)
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    message: Message = cls.from_json(data)
    return message


def read_line(stream: IO[bytes]) -> bytes | None:
    """The next line of ``stream`` (with its newline), ``None`` at EOF.

    A line longer than MAX_MESSAGE_BYTES is read to its end and discarded, and a ProtocolError
    raised, so the reader stays in step with the stream without holding the whole line.
    """
    line = stream.readline(MAX_MESSAGE_BYTES + 1)
    if not line:
        return None
    if line.endswith(b"\n") or len(line) <= MAX_MESSAGE_BYTES:
        return line  # at most MAX_MESSAGE_BYTES before the newline (or the last line at EOF)
    total = len(line)
    while True:
        more = stream.readline(MAX_MESSAGE_BYTES)
        total += len(more)
        if not more or more.endswith(b"\n"):
            break
    raise ProtocolError(
        f"message of at least {total} bytes is longer than the limit of {MAX_MESSAGE_BYTES} bytes"
    )
