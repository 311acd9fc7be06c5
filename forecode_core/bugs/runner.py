"""One function's tier-2 review: its context, the samples asked of a model, the agreement.

With HEAD's version of the function (``before``; the editor has it), each small replacement
is asked as a fill question (``forecode_core.bugs.contrast``): the model writes the line left
out, in two contexts; a finding only when both write HEAD's version exactly (measured on
injected bugs: the open question found none, a choice between the two versions was position
bias). A function whose change has no small replacement (added lines, a rewrite), or one
without HEAD's version (an untracked file), gets the open question (``review.build_messages``,
3 samples, ``agree``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from forecode_core.bugs.contrast import (
    FILL_WINDOWS,
    Change,
    build_fill,
    change_kind,
    fill_vote,
    replaced_lines,
)
from forecode_core.bugs.functions import Function
from forecode_core.bugs.review import (
    AnswerError,
    Finding,
    agree,
    build_messages,
    parse_answer,
    sample_plan,
)

__all__ = ["Ask", "Review", "context_for", "review_function"]


Ask = Callable[[str, str, float], str]
CONTEXT_CHARS = 1500
MIN_VOTES = 2  # of the 3 samples by default: a majority
FILL_RETRY_TEMPERATURE = 0.5


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
    path: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    before: str | None = None,
) -> Review:
    """Review one function: the fill question on each of its small replacements against
    ``before`` (HEAD's version of it) when there are any, else the open question (each
    sample parsed strictly, the samples' agreement kept)."""
    text = function.text(source)
    changes = replaced_lines(before, text, function.start_line) if before is not None else []
    if changes:
        return _contrast(ask, text, function, changes, should_stop)
    plan = sample_plan()
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


def _contrast(
    ask: Ask,
    text: str,
    function: Function,
    changes: Sequence[Change],
    should_stop: Callable[[], bool],
) -> Review:
    """Each change: the model writes the left-out line, once per ``FILL_WINDOWS`` context
    (greedy; a repeated prompt at ``FILL_RETRY_TEMPERATURE``); a finding when every sample
    writes HEAD's version exactly. A sample that writes anything else ends that change's
    questions."""
    votes: list[Finding | None] = []
    errors: list[str] = []
    for change in changes:
        agreed = True
        asked: set[str] = set()
        for window in FILL_WINDOWS:
            if should_stop():
                return Review(function, None, tuple(votes), tuple(errors), stopped=True)
            system, user = build_fill(text, change, function.start_line, window)
            # a short function's windows can be the same prompt: then the sample is drawn
            # at a temperature, so that two votes are two answers
            answer = ask(system, user, 0.0 if user not in asked else FILL_RETRY_TEMPERATURE)
            asked.add(user)
            vote = fill_vote(answer, change)
            if vote is None:
                errors.append(f"neither version: {answer.strip()[:60]!r}")
            votes.append(_finding(change, 1) if vote == "head" else None)
            if vote != "head":
                agreed = False
                break
        if agreed:
            return Review(
                function, _finding(change, len(FILL_WINDOWS)), tuple(votes), tuple(errors)
            )
    return Review(function, None, tuple(votes), tuple(errors))


def _finding(change: Change, votes: int) -> Finding:
    was = " / ".join(line.strip() for line in change.old)
    return Finding(change.start, change_kind(change), f"HEAD had `{was}`", votes)
