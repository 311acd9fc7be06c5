"""One event contract for every stream: chat replies, applies, and the streams to come
(next-edit predictions, multi-file edits, agent runs).

A stream is a ``Call[E]``: a *blocking* iterator of events (run it on a worker thread) with a
thread-safe ``cancel()``. Its events, in order::

    Started?  (Delta | Notice)*  Done        -- or StreamError raised instead of Done

- ``Started``: a model took the request (where: ``source``, and how long it queued). A stream
  that answers without a model (apply's deterministic path) sends none; a stream that starts
  over elsewhere (the router's fallback to the local model) sends a second one, and a consumer
  treats every ``Started`` as "the answer begins here".
- ``Delta``: more of the answer's text, in order (the stream concatenates to the answer).
- ``Notice``: a sentence for the user about the stream itself (which path runs, a fallback).
- ``Done``: the end, with why (``finish_reason``) and the usage counters. A stream with more
  to say at its end subclasses it with typed fields (``forecode_core.apply.events.ApplyDone``).
- A failure is raised, not yielded: ``StreamError(code, message)``. Where a failure must
  travel as a value (from a worker thread to the UI thread), it is a ``Failed``, the same
  code and message; ``StreamError.failed`` and ``Failed.error()`` convert.

The failure table (``FAILURES``) holds the user's words for every code, for every stream:
``describe_failure(code, message, subject)`` fills in the stream's nouns (``Subject``: "The
chat service", "The apply", ...). The service's gRPC statuses are mapped to these codes by
``cloud_client.convert.chat_error``.

Plain data: no gRPC, no Qt.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "FAILURES",
    "FAILURE_CODES",
    "FINISH_REASONS",
    "SOURCES",
    "UNKNOWN_FAILURE",
    "Call",
    "Delta",
    "Done",
    "Event",
    "Failed",
    "FailureCode",
    "FinishReason",
    "Notice",
    "Source",
    "Started",
    "StreamError",
    "Subject",
    "describe_failure",
]

Source = Literal["cloud", "local"]
SOURCES: tuple[str, ...] = ("cloud", "local")


class FinishReason(StrEnum):
    """Why a stream ended (``Done.finish_reason``); each member equals the string the wire and
    the stored conversations carry."""

    STOP = "stop"  # the answer is complete
    LENGTH = "length"  # cut at a limit: not complete
    CANCELLED = "cancelled"  # ``cancel()`` was called


FINISH_REASONS: tuple[str, ...] = tuple(FinishReason)


@dataclass(frozen=True)
class Started:
    """A model took the request: which, where (``source``), after how long in the queue."""

    model: str
    source: Source = "cloud"
    queued_ms: int = 0


@dataclass(frozen=True)
class Delta:
    """More of the answer's text."""

    text: str


@dataclass(frozen=True)
class Notice:
    """A sentence for the user about the stream (which path runs, a fallback)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The stream ended: "stop" (the answer is complete), "length" (cut at a limit: not
    complete), "cancelled" (``cancel()`` was called)."""

    finish_reason: FinishReason
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, cached_tokens, ...


Event = Started | Delta | Notice | Done
"""Any stream's events (a stream's own ``Done`` subclass included)."""


@dataclass(frozen=True)
class Failed:
    """A failure as a value (a ``StreamError`` that crosses a thread)."""

    code: str
    message: str
    retryable: bool = False

    def error(self) -> StreamError:
        return StreamError(self.code, self.message, retryable=self.retryable)


class StreamError(Exception):
    """A stream that could not answer. ``code`` is a short machine name (the keys of
    ``FAILURES``: "unauthenticated", "unavailable", "busy" (every model slot taken: try again
    soon), "deadline", "invalid", "too_large", "cancelled", "no_model", "incomplete"; anything
    else, such as "internal", is a failure the user can only report). ``message`` is a
    sentence a user can read; ``retryable``: the same request may succeed later."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    @property
    def failed(self) -> Failed:
        return Failed(self.code, self.message, self.retryable)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


E_co = TypeVar("E_co", covariant=True)


class Call(Protocol[E_co]):
    """One stream: iterate it (it blocks) on a worker thread for its events; ``cancel()``
    from any thread ends the iteration soon (with ``Done("cancelled")`` or simply its end).
    A failure is raised from the iteration as ``StreamError``."""

    def __iter__(self) -> Iterator[E_co]: ...

    def cancel(self) -> None: ...


# ----- the failure table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A stream's nouns for the failure table: ``name`` ("chat": "The chat failed ..."),
    ``service`` ("The chat service"), ``work`` ("The reply": "... was cancelled"),
    ``too_large`` (what is too large for what)."""

    name: str
    service: str
    work: str
    too_large: str


class FailureCode(StrEnum):
    """A ``StreamError``'s ``code``: the failure table's keys, and ``INTERNAL`` (a failure the
    user can only report). The values are the strings the worker's JSON lines and the logs
    carry; a code from elsewhere that is none of these is kept as the string it is."""

    UNAVAILABLE = "unavailable"
    UNAUTHENTICATED = "unauthenticated"
    DEADLINE = "deadline"
    BUSY = "busy"
    TOO_LARGE = "too_large"
    INVALID = "invalid"
    CANCELLED = "cancelled"
    NO_MODEL = "no_model"
    INCOMPLETE = "incomplete"
    INTERNAL = "internal"


FAILURES: Mapping[str, str] = {
    FailureCode.UNAVAILABLE: "{service} is not reachable: {m}",
    FailureCode.UNAUTHENTICATED: (
        "{service} refused the token: {m} Set it with “Cloud: Set Service Token”."
    ),
    FailureCode.DEADLINE: "{service} did not answer in time: {m}",
    FailureCode.BUSY: "{service} is busy with other requests; try again in a moment. {m}",
    FailureCode.TOO_LARGE: "{too_large}: {m}",
    FailureCode.INVALID: "{service} rejected the request: {m}",
    FailureCode.CANCELLED: "{work} was cancelled: {m}",
    # the message says it all (the stream wrote it for the user)
    FailureCode.NO_MODEL: "{m}",
    FailureCode.INCOMPLETE: "{m}",
}
"""code -> the user's words; ``{m}`` is the failure's message, the rest the ``Subject``'s."""

UNKNOWN_FAILURE = "The {name} failed ({c}): {m}"
"""The words for a code the table does not know ("internal", ...)."""

FAILURE_CODES: tuple[str, ...] = tuple(FAILURES)


def describe_failure(code: str, message: str, subject: Subject) -> str:
    """The sentence a user reads for a failure of ``subject``'s stream."""
    template = FAILURES.get(code, UNKNOWN_FAILURE)
    return template.format(
        m=message,
        c=code,
        name=subject.name,
        service=subject.service,
        work=subject.work,
        too_large=subject.too_large,
    )
