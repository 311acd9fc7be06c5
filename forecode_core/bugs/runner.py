"""One function's tier-2 review: its context, the samples asked of a model, the agreement.

The model is a callable ``ask(system, user, temperature) -> answer`` (blocking; the caller runs
this on a worker thread): ``app.services.bug_review.EngineAsk`` is the local engine's chat, a
test passes a scripted one. ``should_stop`` is checked between samples (the editor's typing
or another model request stops a review).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from forecode_core.bugs.functions import Function
from forecode_core.bugs.review import (
    AnswerError,
    Finding,
    Sample,
    agree,
    build_messages,
    parse_answer,
    sample_plan,
)

__all__ = ["Ask", "Review", "context_for", "review_function"]

Ask = Callable[[str, str, float], str]
CONTEXT_CHARS = 1500
MIN_VOTES = 2  # of the 3 samples by default: a majority


@dataclass(frozen=True)
class Review:
    """The agreed finding (or None), each sample's parsed finding, and the answers that did
    not parse with their reasons."""

    function: Function
    finding: Finding | None
    votes: tuple[Finding | None, ...] = ()
    errors: tuple[str, ...] = field(default=())
    stopped: bool = False


def context_for(
    source: str, function: Function, functions: Sequence[Function], budget: int = CONTEXT_CHARS
) -> list[str]:
    """Pieces of the file around ``function`` (each a separate piece the samples reorder):
    the import lines, then the header line of each other top-level or sibling function
    nearest first, within ``budget`` characters."""
    lines = source.splitlines()
    pieces: list[str] = []
    imports = [ln for ln in lines[:200] if ln.startswith(("import ", "from "))]
    if imports:
        pieces.append("\n".join(imports))
    others = sorted(
        (f for f in functions if f != function and not _inside(f, function)),
        key=lambda f: abs(f.start_line - function.start_line),
    )
    for other in others:
        header = _header(lines, other)
        if header:
            pieces.append(header)
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > budget:
            continue
        out.append(piece)
        used += len(piece)
    return out


def _inside(inner: Function, outer: Function) -> bool:
    return outer.start_line <= inner.start_line and inner.end_line <= outer.end_line


def _header(lines: list[str], function: Function) -> str:
    """The ``def`` line(s) up to the colon that ends the signature (at most 6 lines)."""
    out: list[str] = []
    for line in lines[function.start_line - 1 : min(function.end_line, function.start_line + 6)]:
        out.append(line)
        if line.rstrip().endswith(":") and "def " in "\n".join(out):
            return "\n".join(out) + " ..."
    return ""


def review_function(
    ask: Ask,
    source: str,
    function: Function,
    context: Sequence[str],
    *,
    samples: Sequence[Sample] | None = None,
    path: str = "",
    should_stop: Callable[[], bool] = lambda: False,
) -> Review:
    """Ask each sample, parse strictly, keep what the samples agree on."""
    plan = list(samples) if samples is not None else sample_plan()
    text = function.text(source)
    votes: list[Finding | None] = []
    errors: list[str] = []
    for sample in plan:
        if should_stop():
            return Review(function, None, tuple(votes), tuple(errors), stopped=True)
        system, user = build_messages(text, function.start_line, context, sample, path=path)
        answer = ask(system, user, sample.temperature)
        try:
            votes.append(parse_answer(answer, function.start_line, function.end_line))
        except AnswerError as exc:
            votes.append(None)
            errors.append(str(exc))
    return Review(function, agree(votes, MIN_VOTES), tuple(votes), tuple(errors))
