"""The end of a streamed apply, shared by the service, the client and the editor.

An apply streams like a chat reply (``forecode_core.chat.types``): ``ChatStarted`` when a model slot
takes it (not sent when the deterministic path answers), ``ChatDelta``s with the new file's
text in order, then one ``ApplyDone``. Plain data: no gRPC, no llama.cpp (the client and the
editor import it).

The text of the deltas: the deterministic path sends the whole new file at once, with the
original's line endings; the model path streams the file as the model writes it, in LF (a
consumer gives it the original's endings back with ``apply_block.to_file_text``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["APPLY_FINISH_REASONS", "APPLY_SOURCES", "ApplyDone"]

APPLY_SOURCES = ("deterministic", "model")
APPLY_FINISH_REASONS = ("stop", "length", "cancelled")


@dataclass(frozen=True)
class ApplyDone:
    """The apply ended. ``finish_reason``: "stop" (the new file is complete), "length" (the
    model did not finish it: the text streamed is not a file to apply), "cancelled"."""

    source: Literal["deterministic", "model", ""]
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: dict[str, int] = field(default_factory=dict)  # as ChatDone's usage
    drafted_tokens: int = 0  # speculative edits: draft tokens verified ...
    accepted_tokens: int = 0  # ... and kept
    batches: int = 0  # decodes while generating
    rejoins: int = 0  # times the answer came back to the original after an edit
    prefill_ms: int = 0
    decode_ms: int = 0
