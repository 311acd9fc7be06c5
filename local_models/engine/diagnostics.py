"""Checks of the engine's lossless speeding-up, for tests and benchmarks only (the product never
calls them): plain single-token greedy decoding as the reference, teacher-forced checks of a
generated continuation, and how much batched arithmetic's rounding moves the logits. Each
leaves the engine's cache empty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import llama_cpp.llama_cpp as C

from forecode_core.completion.model import Metrics
from local_models.engine.decode import DecodeResult
from local_models.engine.drafters import MAX_DRAFT

if TYPE_CHECKING:
    from local_models.engine.core import Engine

__all__ = ["greedy_check", "greedy_reference", "rounding_flips", "rounding_noise"]


def greedy_reference(
    engine: Engine, prompt: Sequence[int], max_tokens: int
) -> tuple[list[int], list[float]]:
    """Plain greedy decoding, one token per decode, from an empty cache; also the gap between
    the two best logits at each step."""
    import numpy as np

    engine._check_open()
    tokens = engine._checked_prompt(prompt)
    engine._clear()
    kv = engine._kv
    out: list[int] = []
    gaps: list[float] = []
    n_vocab = engine._n_vocab
    try:
        engine._prefill(tokens, 0, len(tokens), None, _sink())
        row = kv.tail
        assert row is not None
        for step in range(max_tokens):
            logits = engine._logits(row)
            best = int(np.argmax(logits))
            top = float(logits[best])
            second = float(np.partition(logits, n_vocab - 2)[n_vocab - 2])
            if engine._is_eog(best):
                break
            out.append(best)
            gaps.append(top - second)
            if step + 1 == max_tokens:
                break
            engine._decode_one(best, len(kv.tokens))
            kv.tokens.append(best)
            row = 0
    finally:
        engine._clear()
    return out, gaps


def greedy_check(
    engine: Engine, prompt: Sequence[int], tokens: Sequence[int]
) -> list[tuple[int, int, int, float]]:
    """Teacher-forced check of ``tokens`` as a continuation of ``prompt``: at every step, plain
    single-token decoding's greedy choice after ``prompt + tokens[:i]``. Returns the steps where
    it differs as ``(step, greedy_token, got_token, gap)``, ``gap`` being how far the greedy
    token's logit is above the emitted one's. Unlike comparing two free runs, this checks every
    token, not only up to the first difference."""
    import numpy as np

    engine._check_open()
    base = engine._checked_prompt(prompt)
    want = list(tokens)
    engine._clear()
    kv = engine._kv
    diffs: list[tuple[int, int, int, float]] = []
    try:
        engine._prefill(base, 0, len(base), None, _sink())
        row = kv.tail
        assert row is not None
        for step, got in enumerate(want):
            logits = engine._logits(row)
            best = int(np.argmax(logits))
            if best != got:
                diffs.append((step, best, got, float(logits[best] - logits[got])))
            if step + 1 < len(want):
                engine._decode_one(got, len(kv.tokens))
                kv.tokens.append(got)
                row = 0
    finally:
        engine._clear()
    return diffs


def rounding_noise(
    engine: Engine, prompt: Sequence[int], positions: int = 96, batch: int | None = None
) -> list[float]:
    """How much batched arithmetic moves the gap between the two best logits: for the last
    ``positions`` positions of ``prompt``, logits from single-token decodes against the same
    positions decoded in batches of ``batch`` tokens with logits for every row (default
    ``MAX_DRAFT + 1``, the verify size of ``complete(speculative=True)``; ``rewrite`` uses
    longer ones, up to ``max_outputs``); one figure per position, |gap_single - gap_batched|
    over the single decode's top two tokens. Zero where the two agree bit for bit (short
    contexts, short batches); on two threads past ~256 tokens of context ggml's single-token
    attention adds up in another order and the figures reach tenths of a logit."""
    return [n for n, _ in _rounding(engine, prompt, positions, batch)]


def rounding_flips(
    engine: Engine, prompt: Sequence[int], positions: int = 96, batch: int | None = None
) -> tuple[list[float], int]:
    """``rounding_noise`` and how many of those positions had a different best token batched
    than single (a near-tie flipped by rounding)."""
    pairs = _rounding(engine, prompt, positions, batch)
    return [n for n, _ in pairs], sum(1 for _, flip in pairs if flip)


def _rounding(
    engine: Engine, prompt: Sequence[int], positions: int, batch: int | None
) -> list[tuple[float, bool]]:
    import numpy as np

    engine._check_open()
    tokens = engine._checked_prompt(prompt)
    size = MAX_DRAFT + 1 if batch is None else batch
    if not 1 <= size <= engine.max_outputs:
        raise ValueError(f"batch must be between 1 and max_outputs ({engine.max_outputs})")
    count = min(positions, len(tokens) - 1) // size * size
    if count <= 0:
        return []
    start = len(tokens) - count
    engine._clear()
    noise: list[tuple[float, bool]] = []
    dec = engine._dec
    try:
        engine._prefill(tokens, 0, start, None, _sink(), logits=False)
        for g in range(start, len(tokens), size):
            single = []
            for i in range(size):
                engine._decode_one(tokens[g + i], g + i)
                single.append(engine._logits(0).copy())
            C.llama_memory_seq_rm(engine._mem, -1, g, -1)
            for i in range(size):
                dec.put(i, tokens[g + i], g + i)
            if engine._step(size) is not DecodeResult.OK:
                raise RuntimeError("llama_decode failed while measuring rounding noise")
            for i in range(size):
                a, c = single[i], engine._logits(i)
                i2, i1 = (int(x) for x in np.argsort(a)[-2:])
                noise.append(
                    (abs(float((a[i1] - a[i2]) - (c[i1] - c[i2]))), int(np.argmax(c)) != i1)
                )
    finally:
        engine._clear()
    return noise


def _sink() -> Metrics:
    return Metrics()
