"""What a completion model is to its callers: the ``CompletionModel`` protocol (the methods the
worker, the service's llama backend, apply and calibration call) and the plain data it returns.

``local_models.engine.Engine`` (llama.cpp) and the test fakes both satisfy it; mypy checks both
against it, and a test checks the signatures, so a fake cannot drift from the engine. Plain
types only: no llama.cpp here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

__all__ = [
    "STOP_REASONS",
    "Completion",
    "CompletionModel",
    "Metrics",
    "ModelFacts",
    "RewriteMetrics",
    "RewriteModel",
]

# How a request ended: an end-of-generation token, a stop string, the token cap (or the
# context's end), or ``should_stop``.
STOP_REASONS = ("eos", "stop", "length", "cancelled")


@dataclass
class Metrics:
    """One request's figures (all plain ints/floats: ``dataclasses.asdict`` is JSON-ready)."""

    prompt_tokens: int = 0
    reused_prefix_tokens: int = 0
    reused_shifted_tokens: int = 0  # cached tokens moved to new positions (chunk reuse)
    evaluated_tokens: int = 0  # prompt tokens run through the model
    generated_tokens: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    prefill_ms: float = 0.0
    first_token_ms: float = 0.0  # from the start of complete()
    decode_ms: float = 0.0  # from the first token to the end
    total_ms: float = 0.0

    def add(self, other: Metrics) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class RewriteMetrics(Metrics):
    """A ``rewrite``'s figures: ``Metrics`` (``drafted_tokens``/``accepted_tokens`` count draft
    tokens verified and kept, from the known text and from prompt lookup together) plus how the
    speculation went."""

    draft_tokens: int = 0  # length of the known text given as the draft
    batches: int = 0  # generation decodes (each verifies one draft, or emits one token)
    draft_batches: int = 0  # of which verified a draft from the known text
    draft_accepted: int = 0  # draft tokens from the known text verified and kept
    lookup_batches: int = 0  # of which verified a prompt-lookup draft (off the known text)
    alt_batches: int = 0  # of which verified a draft from ``alt`` (the edit's own code)
    rejoins: int = 0  # times the output rejoined the known text after leaving it
    largest_batch: int = 0  # tokens in the largest verify batch


@dataclass
class Completion:
    text: str
    tokens: list[int]
    metrics: Metrics
    stop_reason: str  # one of STOP_REASONS


class ModelFacts(Protocol):
    """What callers read of a loaded model's header (``local_models.gguf_info.ModelInfo``)."""

    @property
    def path(self) -> str | os.PathLike[str]: ...
    @property
    def name(self) -> str: ...
    @property
    def architecture(self) -> str: ...
    @property
    def context_length(self) -> int | None: ...
    @property
    def bos_id(self) -> int | None: ...
    @property
    def eos_id(self) -> int | None: ...
    @property
    def fim_prefix_id(self) -> int | None: ...
    @property
    def fim_suffix_id(self) -> int | None: ...
    @property
    def fim_middle_id(self) -> int | None: ...
    @property
    def chat_template(self) -> str | None: ...


@runtime_checkable
class CompletionModel(Protocol):
    """One loaded model with its KV cache, one request at a time (``should_stop`` may be
    flipped from any thread). Greedy decoding; ``complete`` streams safe text increments to
    ``on_text`` and never emits a stop string."""

    @property
    def info(self) -> ModelFacts: ...
    @property
    def n_ctx(self) -> int: ...
    @property
    def totals(self) -> Metrics: ...

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def warm(
        self,
        prompt: Sequence[int],
        should_stop: Callable[[], bool] | None = None,
        *,
        keep_on_cancel: bool = False,
        fresh_from: int | None = None,
    ) -> Metrics:
        """Make the cache hold ``prompt``, generating nothing."""
        ...

    def reuse_cost(self, prompt: Sequence[int], fresh_from: int | None = None) -> int:
        """How many of ``prompt``'s tokens a request would evaluate now."""
        ...

    def complete(
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
        speculative: bool = False,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        fresh_from: int | None = None,
        force_prefix: str = "",
    ) -> Completion: ...

    def reset(self) -> None:
        """Empty the cache."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RewriteModel(CompletionModel, Protocol):
    """A completion model that also does speculative edits (apply's model path)."""

    @property
    def max_outputs(self) -> int: ...

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        max_batch: int | None = None,
        alt: Sequence[int] = (),
    ) -> Completion: ...
