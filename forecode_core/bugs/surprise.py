"""Tier 2's surprise score: how much less likely the model finds a changed line as it is now
than as it was at HEAD, read from its own per-token log-probabilities.

A bug injected into a line makes that line's tokens unlikely where the code around it expects
something else; the fix of that bug is not flagged, because then the line as it is now is the
likely one. Nothing is generated, so there is no answer format to miss and no position bias
between two shown options: each version is scored in the same context, the model's own
continuation of the code before the line (``score_prompt``).

- ``score_prompt``: (prefix, continuation) for one sample: the context pieces (imports, other
  functions' headers) in the sample's order, then the function up to the changed lines; the
  continuation is the changed lines (HEAD's or the buffer's) and the ``AFTER`` unchanged
  lines after them, which are the same text in both versions but read differently after each
  (the code after a line is evidence about it, as the fill question's excerpt shows).
- ``margin``: HEAD's version's total log-probability minus the buffer's (nats): positive
  when the model prefers HEAD's.
- ``agreed``: a finding when every sample's margin is at least ``threshold`` (the samples
  differ in the context's order: an answer that depends on the order is not kept).
- ``surprise``: without HEAD's version, a line's tokens' shortfall against the model's own
  top choice (the open variant; see ``runner``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = [
    "AFTER",
    "DEFAULT_SAMPLES",
    "DEFAULT_THRESHOLD",
    "agreed",
    "context_order",
    "margin",
    "score_prompt",
    "surprise",
    "whole_pieces",
]

AFTER = 2  # unchanged lines after the change scored with it
DEFAULT_SAMPLES = 2
DEFAULT_THRESHOLD = 2.0  # nats; tuned on httpx/jinja/requests (bench bugs)
CONTEXT_CHARS = 600  # a sample's context: small, every sample evaluates its own prompt

TokenScores = Sequence[tuple[float, float]]  # (log p(token), log p(the top token)) a token


def context_order(pieces: Sequence[str], sample: int) -> list[str]:
    """The context pieces for sample ``sample``: as given for sample 0, shuffled (seeded by
    the sample) for the others; then cut to ``CONTEXT_CHARS`` whole pieces."""
    order = list(pieces)
    if sample:
        random.Random(sample).shuffle(order)
    return whole_pieces(order, CONTEXT_CHARS)


def whole_pieces(pieces: Sequence[str], budget: int) -> list[str]:
    """The pieces, in order, that fit ``budget`` characters together, each whole (one that
    would overflow is skipped; a later, smaller one may still fit)."""
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > budget:
            continue
        out.append(piece)
        used += len(piece)
    return out


def score_prompt(
    function_text: str,
    start_line: int,
    span: tuple[int, int],
    lines: Sequence[str],
    context: Sequence[str],
    *,
    path: str = "",
    after: int = AFTER,
) -> tuple[str, str]:
    """(prefix, continuation): the code before the function's file lines ``span`` (first,
    last, inclusive) with ``lines`` in their place, the prefix ending at that line's start.
    ``context``: the pieces shown before the function (already in the sample's order)."""
    first, last = span
    body = function_text.rstrip("\n").split("\n")
    i, j = first - start_line, last - start_line + 1
    if not 0 <= i < j <= len(body):
        raise ValueError(f"lines {first}..{last} are not in the function")
    head = f"# {path}\n" if path else ""
    pieces = "".join(f"{piece}\n\n" for piece in context)
    prefix = head + pieces + "".join(f"{line}\n" for line in body[:i])
    rest = body[j : j + after]
    continuation = "".join(f"{line}\n" for line in [*lines, *rest])
    return prefix, continuation


def margin(head: TokenScores, now: TokenScores) -> float:
    """HEAD's version's log-probability minus the buffer's (each its tokens' sum)."""
    return sum(lp for lp, _ in head) - sum(lp for lp, _ in now)


def agreed(margins: Sequence[float], threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Every sample prefers HEAD's version by at least ``threshold`` (no samples: no)."""
    return bool(margins) and min(margins) >= threshold


def surprise(scores: TokenScores) -> float:
    """The tokens' shortfall against the model's own top choice, summed (0 when the model
    would have written every token itself)."""
    return sum(top - lp for lp, top in scores)
