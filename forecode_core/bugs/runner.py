"""One function's tier-2 review: its context, the samples asked of a model, the agreement.

With HEAD's version of the function (``before``; the editor has it), each small replacement
is asked as a contrastive question (``forecode_core.bugs.contrast``): the two versions in
both orders, a finding only when both orders pick HEAD's (measured on injected bugs: the
open question found none). A function whose change has no small replacement (added lines,
a rewrite), or one without HEAD's version (an untracked file), gets the open question
(``review.build_messages``, 3 samples, ``agree``).

The model is a callable ``ask(system, user, temperature) -> answer`` (blocking; the caller runs
this on a worker thread): ``app.services.bug_review.EngineAsk`` is the local engine's chat, a
test passes a scripted one. ``should_stop`` is checked between samples (the editor's typing
or another model request stops a review).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from forecode_core.bugs.contrast import (
    Change,
    build_choice,
    change_kind,
    judge,
    parse_choice,
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

CHOICE_ORDERS = (True, False)  # the buffer's version shown first, then second

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
    path: str = "",
    should_stop: Callable[[], bool] = lambda: False,
    before: str | None = None,
) -> Review:
    """Review one function: contrastive questions on its small replacements against
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
    """Each change asked in both orders (greedy); the first one both orders blame is the
    function's finding. A sample that picks the buffer's version ends that change's
    questions (``judge`` would not flag it)."""
    votes: list[Finding | None] = []
    errors: list[str] = []
    for change in changes:
        choices: list[tuple[bool, int | None]] = []
        for new_first in CHOICE_ORDERS:
            if should_stop():
                return Review(function, None, tuple(votes), tuple(errors), stopped=True)
            system, user = build_choice(text, change, new_first, function.start_line)
            answer = ask(system, user, 0.0)
            option = parse_choice(answer)
            if option is None:
                errors.append(f"no option in {answer.strip()[:60]!r}")
            choices.append((new_first, option))
            blamed = option is not None and option == (2 if new_first else 1)
            votes.append(_finding(change, 1) if blamed else None)
            if option is not None and not blamed:
                break
        if judge(choices, min_votes=len(CHOICE_ORDERS)):
            return Review(function, _finding(change, len(choices)), tuple(votes), tuple(errors))
    return Review(function, None, tuple(votes), tuple(errors))


def _finding(change: Change, votes: int) -> Finding:
    was = " / ".join(line.strip() for line in change.old)
    return Finding(change.start, change_kind(change), f"HEAD had `{was}`", votes)
