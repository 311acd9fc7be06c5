"""One function's tier-2 review: its context, the samples asked of a model, the agreement.

With HEAD's version of the function (``before``; the editor has it), each small replacement
is scored (``Scoring``: the model's log-probabilities, ``forecode_core.bugs.surprise``): a
finding when every sample (the context in another order) prefers HEAD's version by the
threshold's margin. Without a score (or with ``Scoring.fill``, where no score agreed), with
``ask``, it is the fill question
(``forecode_core.bugs.contrast``): the model writes the line left out, in two contexts; a
finding only when both write HEAD's version exactly (measured on injected bugs: the open
question found none, a choice between the two versions was position bias). A function
whose change has no small replacement (added lines, a rewrite), or one without HEAD's
version (an untracked file), gets the open question (``review.build_messages``, 3 samples,
``agree``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

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
from forecode_core.bugs.slips import is_slip, prose_lines
from forecode_core.bugs.surprise import (
    DEFAULT_SAMPLES,
    DEFAULT_THRESHOLD,
    agreed,
    context_order,
    margin,
    score_prompt,
    whole_pieces,
)

__all__ = [
    "Ask",
    "Review",
    "Score",
    "Scoring",
    "Target",
    "context_for",
    "review",
    "review_function",
]


Ask = Callable[[str, str, float], str]
# (prefix, continuation) -> each continuation token's (log p, log p of the top token); None
# when the model was stopped
Score = Callable[[str, str], "Sequence[tuple[float, float]] | None"]
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
    # each scored change: its first line and every sample's margin (nats, HEAD over now)
    margins: tuple[tuple[int, tuple[float, ...]], ...] = ()


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
    return whole_pieces(pieces, budget)


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


@dataclass(frozen=True)
class Scoring:
    """The surprise score's settings: ``score`` the model's log-probabilities, a finding at a
    margin of ``threshold`` in every one of ``samples`` context orders; ``fill``: ask the fill
    question too where no score agreed (with an ``ask``). Off by default: measured on the 24
    injected bugs (bench bugs, 1.5B), every bug the fill found the score found too."""

    score: Score
    threshold: float = DEFAULT_THRESHOLD
    samples: int = DEFAULT_SAMPLES
    fill: bool = False


@dataclass(frozen=True)
class Target:
    """One function to review: the buffer's text, the function, its context pieces, the
    file's path, HEAD's version of the function (None: none known) and the function's own
    text when already cut out (None: cut from ``source`` here)."""

    source: str
    function: Function
    context: Sequence[str]
    path: str = ""
    before: str | None = None
    function_text: str | None = None

    def text(self) -> str:
        """The function's text (cutting it from ``source`` splits the whole buffer)."""
        if self.function_text is not None:
            return self.function_text
        return self.function.text(self.source)


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
    """``review`` with questions only (no score)."""
    return review(Target(source, function, context, path, before), ask, None, should_stop)


def review(
    target: Target,
    ask: Ask | None,
    scoring: Scoring | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Review:
    """Review one function. With HEAD's version (``target.before``) and small replacements
    against it: each is scored (``scoring``) and, where no score agreed and ``scoring.fill``
    (or without a score), asked as the fill question. Else the open question (each sample
    parsed strictly, the samples' agreement kept). ``ask`` None: no question is asked."""
    function, before = target.function, target.before
    text = target.text()
    changes = replaced_lines(before, text, function.start_line) if before is not None else []
    if changes:
        prose = prose_lines(text)
        slips = [c for c in changes if is_slip(c, function.start_line, prose)]
        if not slips:  # reworded prose, a rewritten call: an edit, not a slip to question
            return Review(function, None)
        return _review_changes(target, slips, ask, scoring, should_stop)
    if ask is None:
        return Review(function, None)
    votes: list[Finding | None] = []
    errors: list[str] = []
    for sample in sample_plan():
        if should_stop():
            return Review(function, None, tuple(votes), tuple(errors), stopped=True)
        system, user = build_messages(
            text, function.start_line, target.context, sample, path=target.path
        )
        answer = ask(system, user, sample.temperature)
        try:
            votes.append(parse_answer(answer, function.start_line, function.end_line))
        except AnswerError as exc:
            votes.append(None)
            errors.append(str(exc))
    return Review(function, agree(votes, MIN_VOTES), tuple(votes), tuple(errors))


def _review_changes(
    target: Target,
    changes: Sequence[Change],
    ask: Ask | None,
    scoring: Scoring | None,
    should_stop: Callable[[], bool],
) -> Review:
    function = target.function
    text = target.text()
    scored = _Scored()
    if scoring is not None:
        plan = _Plan(text, function, changes, target.context, target.path, should_stop)
        scored = _scores(scoring.score, plan, scoring.threshold, scoring.samples)
    fill = scoring is None or scoring.fill
    if scored.stopped or scored.finding is not None or ask is None or not fill:
        return Review(
            function, scored.finding, stopped=scored.stopped, margins=tuple(scored.margins)
        )
    found = _contrast(ask, text, function, changes, should_stop)
    return replace(found, margins=tuple(scored.margins))


@dataclass(frozen=True)
class _Plan:
    text: str
    function: Function
    changes: Sequence[Change]
    context: Sequence[str]
    path: str
    should_stop: Callable[[], bool]


@dataclass
class _Scored:
    finding: Finding | None = None
    margins: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)
    stopped: bool = False


def _scores(score: Score, plan: _Plan, threshold: float, samples: int) -> _Scored:
    """Each change scored in ``samples`` context orders (HEAD's lines, then the buffer's,
    after the same prefix: the second evaluates only its own tokens); a change stops at its
    first sample below ``threshold``; the first change all samples agree on is the finding."""
    out = _Scored()
    start = plan.function.start_line
    for change in plan.changes:
        margins: list[float] = []
        for sample in range(samples):
            if plan.should_stop():
                out.stopped = True
                return out
            context = context_order(plan.context, sample)
            prefix, was = score_prompt(
                plan.text, start, (change.start, change.end), change.old, context, path=plan.path
            )
            _, now = score_prompt(
                plan.text, start, (change.start, change.end), change.new, context, path=plan.path
            )
            head_scores = score(prefix, was)
            now_scores = score(prefix, now)
            if head_scores is None or now_scores is None:
                out.stopped = True
                return out
            margins.append(margin(head_scores, now_scores))
            if margins[-1] < threshold:
                break
        out.margins.append((change.start, tuple(margins)))
        if len(margins) == samples and agreed(margins, threshold):
            was_text = " / ".join(line.strip() for line in change.old)
            reason = f"HEAD had `{was_text}` (the model prefers it by {min(margins):.1f})"
            out.finding = Finding(change.start, change_kind(change), reason, samples)
            return out
    return out


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
