"""The bug finder's surprise score (forecode_core.bugs.surprise) and its use in the runner:
tables on plain data, and the runner with a scripted score at the seam."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from forecode_core.bugs.functions import Function
from forecode_core.bugs.runner import Review, Scoring, Target, review
from forecode_core.bugs.surprise import (
    AFTER,
    CONTEXT_CHARS,
    agreed,
    context_order,
    margin,
    score_prompt,
    surprise,
)

HEAD_FN = """\
def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value
"""
BUGGY_FN = HEAD_FN.replace("value > high", "value < high")
START = 10  # the function's first file line
FUNCTION = Function("clamp", START, START + 5)


@pytest.mark.parametrize(
    ("head", "now", "expected"),
    [
        ([(-1.0, 0.0), (-0.5, 0.0)], [(-1.0, 0.0), (-4.5, -0.1)], 4.0),
        ([(-3.0, 0.0)], [(-1.0, 0.0)], -2.0),  # the buffer's line is the likelier one
        ([(-1.0, 0.0)], [(-1.0, 0.0), (-1.0, 0.0)], 1.0),  # a longer line costs its tokens
        ([], [], 0.0),
    ],
)
def test_margin_is_heads_log_probability_minus_the_buffers(
    head: list[tuple[float, float]], now: list[tuple[float, float]], expected: float
) -> None:
    assert margin(head, now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("margins", "threshold", "expected"),
    [
        ([3.0, 2.5], 2.0, True),
        ([3.0, 1.5], 2.0, False),  # one sample below: the order decided it
        ([2.0, 2.0], 2.0, True),  # at the threshold counts
        ([-5.0], 2.0, False),
        ([], 2.0, False),  # nothing scored is no finding
        ([0.1, 0.2], 0.0, True),
    ],
)
def test_agreed_needs_every_sample_at_the_threshold(
    margins: list[float], threshold: float, expected: bool
) -> None:
    assert agreed(margins, threshold) is expected


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([(0.0, 0.0), (-0.1, -0.1)], 0.0),  # the model's own choices
        ([(-3.0, -0.5), (-0.1, -0.1)], 2.5),
        ([], 0.0),
    ],
)
def test_surprise_is_the_shortfall_against_the_top_choice(
    scores: list[tuple[float, float]], expected: float
) -> None:
    assert surprise(scores) == pytest.approx(expected)


def test_score_prompt_cuts_before_the_line_and_scores_it_with_the_lines_after() -> None:
    prefix, continuation = score_prompt(
        BUGGY_FN,
        START,
        (START + 3, START + 3),
        ["    if value > high:"],
        ["import os"],
        path="m.py",
    )
    assert prefix == (
        "# m.py\nimport os\n\ndef clamp(value, low, high):\n    if value < low:\n"
        "        return low\n"
    )
    assert continuation == "    if value > high:\n        return high\n    return value\n"
    assert AFTER == 2


def test_score_prompt_same_prefix_for_both_versions_and_several_lines() -> None:
    a = score_prompt(HEAD_FN, START, (START + 1, START + 2), ["x", "y"], [])
    b = score_prompt(BUGGY_FN, START, (START + 1, START + 2), ["z"], [], after=0)
    assert a[0] == b[0] == "def clamp(value, low, high):\n"
    assert a[1] == "x\ny\n    if value > high:\n        return high\n"
    assert b[1] == "z\n"
    with pytest.raises(ValueError, match="not in the function"):
        score_prompt(HEAD_FN, START, (START + 9, START + 9), ["x"], [])


def test_context_order_keeps_sample_0_and_shuffles_the_others_within_the_budget() -> None:
    pieces = [f"def f{i}(): ..." for i in range(8)]
    assert context_order(pieces, 0) == pieces
    shuffled = context_order(pieces, 1)
    assert sorted(shuffled) == sorted(pieces) and shuffled != pieces
    assert context_order(pieces, 1) == shuffled  # seeded
    big = ["x" * (CONTEXT_CHARS - 10), "y" * 20, "z" * 5]
    assert context_order(big, 0) == [big[0], big[2]]  # a piece over the budget is skipped


def _scripted(margins_by_sample: Sequence[float]):  # type: ignore[no-untyped-def]
    """A score whose HEAD line gets log-probability ``m`` and the buffer's 0 in sample i (by
    call order: HEAD then the buffer, per sample); records the prompts."""
    calls: list[tuple[str, str]] = []

    def score(prefix: str, continuation: str) -> list[tuple[float, float]]:
        sample = len(calls) // 2
        calls.append((prefix, continuation))
        if len(calls) % 2:  # HEAD's line
            return [(margins_by_sample[sample], 0.0)]
        return [(0.0, 0.0)]

    return score, calls


def _review(margins: Sequence[float], **scoring: float) -> tuple[Review, list[tuple[str, str]]]:
    score, calls = _scripted(margins)
    source = "\n" * (START - 1) + BUGGY_FN
    found = review(
        Target(source, FUNCTION, ["import os"], "m.py", HEAD_FN),
        None,
        Scoring(score, **scoring),  # type: ignore[arg-type]
    )
    return found, calls


def test_review_flags_a_change_every_sample_prefers_heads_version_of() -> None:
    found, calls = _review([3.0, 2.5], threshold=2.0, samples=2)
    assert found.finding is not None
    assert found.finding.line == START + 3
    assert found.finding.kind == "other"  # a comparison turned around
    assert "value > high" in found.finding.reason
    assert found.margins == ((START + 3, (3.0, 2.5)),)
    # HEAD's line then the buffer's after one prefix, per sample
    assert calls[0][0] == calls[1][0] and calls[0][1] != calls[1][1]
    assert calls[0][1].startswith("    if value > high:")
    assert calls[1][1].startswith("    if value < high:")


def test_review_keeps_nothing_when_a_sample_disagrees_and_stops_scoring_there() -> None:
    found, calls = _review([-1.0, 9.0], threshold=2.0, samples=2)
    assert found.finding is None
    assert found.margins == ((START + 3, (-1.0,)),)
    assert len(calls) == 2  # the second sample was not needed


def test_review_without_head_or_change_scores_nothing() -> None:
    score, calls = _scripted([9.0])
    source = "\n" * (START - 1) + HEAD_FN
    same = review(Target(source, FUNCTION, [], "m.py", HEAD_FN), None, Scoring(score))
    assert same.finding is None and not calls
    untracked = review(Target(source, FUNCTION, [], "m.py", None), None, Scoring(score))
    assert untracked.finding is None and not calls


def test_review_falls_back_to_the_fill_question_when_the_score_does_not_agree() -> None:
    score, _ = _scripted([0.5, 0.5])
    asked: list[str] = []

    def ask(_system: str, user: str, _temperature: float) -> str:
        asked.append(user)
        return "    if value > high:"  # HEAD's line, in both windows

    source = "\n" * (START - 1) + BUGGY_FN
    target = Target(source, FUNCTION, [], "m.py", HEAD_FN)
    found = review(target, ask, Scoring(score, threshold=2.0, fill=True))
    assert found.finding is not None and found.finding.line == START + 3
    assert asked and found.margins == ((START + 3, (0.5,)),)
    asked.clear()
    assert review(target, ask, Scoring(score, threshold=2.0)).finding is None  # fill: off
    assert not asked


def test_a_stopped_score_is_a_stopped_review() -> None:
    def score(_prefix: str, _continuation: str) -> None:
        return None

    source = "\n" * (START - 1) + BUGGY_FN
    found = review(Target(source, FUNCTION, [], "m.py", HEAD_FN), None, Scoring(score))
    assert found.stopped and found.finding is None
