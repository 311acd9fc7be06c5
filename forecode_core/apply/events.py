"""An apply as a stream of the shared contract (``forecode_core.streams``), shared by the
service, the client and the editor.

An apply streams like a chat reply: ``Started`` when a model slot takes it (not sent when the
deterministic path answers), ``Notice``s (which path runs: the editor's pipeline says so),
``Delta``s with the new file's text in order, then one ``ApplyDone``; a failure raises
``StreamError``. Plain data: no gRPC, no llama.cpp.

The text of the deltas: the deterministic path sends the whole new file at once, with the
original's line endings; the model path streams the file as the model writes it, in LF (a
consumer gives it the original's endings back with ``apply_block.to_file_text``).
"""

from __future__ import annotations

from dataclasses import dataclass

from forecode_core.streams import Call, Delta, Done, Notice, Started, Subject

__all__ = [
    "APPLY",
    "APPLY_SOURCES",
    "ApplyCall",
    "ApplyDone",
    "ApplyEvent",
]

APPLY_SOURCES = ("deterministic", "model")


@dataclass(frozen=True, kw_only=True)
class ApplyDone(Done):
    """The apply ended. ``finish_reason``: "stop" (the new file is complete), "length" (the
    model did not finish it: the text streamed is not a file to apply), "cancelled".

    ``source``: the path that wrote it, "deterministic" or "model"; the editor's pipeline
    says where the model ran ("cloud", "local": its ``Started``) when the model path did not
    say; "" for a cancelled apply."""

    source: str = ""
    placements: int = 0  # the deterministic path: where the block went
    drafted_tokens: int = 0  # speculative edits: draft tokens verified ...
    accepted_tokens: int = 0  # ... and kept
    batches: int = 0  # decodes while generating
    rejoins: int = 0  # times the answer came back to the original after an edit
    prefill_ms: int = 0
    decode_ms: int = 0


ApplyEvent = Started | Delta | Notice | Done
"""An apply's events; its ``Done`` is an ``ApplyDone`` (a plain ``Done`` from a model path
that streams like a chat is taken as one with no counters)."""

ApplyCall = Call[ApplyEvent]

APPLY = Subject(
    name="apply",
    service="The apply service",
    work="The apply",
    too_large="The file is too large for the apply service",
)
"""The apply's nouns in the failure table (``forecode_core.streams.describe_failure``)."""
