"""Table tests for ``forecode_core.lsp.paint_diff.plan``: what a new diagnostics report repaints."""

from __future__ import annotations

import pytest

from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.paint_diff import PaintPlan, plan
from forecode_core.lsp.positions import Position

E, W = Severity.ERROR, Severity.WARNING


def d(
    line: int, a: int, b: int, sev: Severity = E, msg: str = "m", end_line: int = -1
) -> Diagnostic:
    return Diagnostic(Position(line, a), Position(line if end_line < 0 else end_line, b), sev, msg)


MANY = [d(i, 0, 3, msg=f"m{i}") for i in range(1000)]


@pytest.mark.parametrize(
    ("old", "new", "dirty", "clear", "tail", "fill"),
    [
        # one added at the end of 1,000: one fill
        (MANY, [*MANY, d(1000, 0, 1)], None, [], None, [d(1000, 0, 1)]),
        # one message changed: its old value cleared, the new one filled
        (
            MANY,
            [*MANY[:5], d(5, 0, 3, msg="x"), *MANY[6:]],
            None,
            [MANY[5]],
            None,
            [d(5, 0, 3, msg="x")],
        ),
        # same set: nothing
        (MANY, list(MANY), None, [], None, []),
        # a severity changed is a different diagnostic
        (
            [d(0, 0, 3), *MANY[1:5]],
            [d(0, 0, 3, W), *MANY[1:5]],
            None,
            [d(0, 0, 3)],
            None,
            [d(0, 0, 3, W)],
        ),
        # a clear cuts a kept one of the same layer on the same line: it is filled again
        (
            [d(0, 0, 9, msg="a"), d(0, 2, 4, msg="b"), d(3, 0, 1), d(4, 0, 1)],
            [d(0, 0, 9, msg="a"), d(3, 0, 1), d(4, 0, 1), d(5, 0, 1)],
            None,
            [d(0, 2, 4, msg="b")],
            None,
            [d(5, 0, 1), d(0, 0, 9, msg="a")],
        ),
        # another layer on the same line is not cut
        (
            [d(0, 0, 9, W), d(0, 2, 4), d(3, 0, 1), d(4, 0, 1)],
            [d(0, 0, 9, W), d(3, 0, 1), d(4, 0, 1), d(5, 0, 1)],
            None,
            [d(0, 2, 4)],
            None,
            [d(5, 0, 1)],
        ),
        # an edit on line 997: the tail from there is repainted, the rest kept
        (MANY, MANY, 997, [], 997, MANY[997:]),
        # a diagnostic spanning the edited line lowers the tail to its start
        (
            [*MANY[:10], d(10, 0, 2, end_line=20), *MANY[21:30]],
            [*MANY[:10], d(10, 0, 2, end_line=20), *MANY[21:30]],
            15,
            [],
            10,
            [d(10, 0, 2, end_line=20), *MANY[21:30]],
        ),
        # an empty range on an empty line widens to the line before: the tail starts there
        ([*MANY[:10], d(10, 0, 0)], [*MANY[:10], d(10, 0, 0)], 10, [], 9, [MANY[9], d(10, 0, 0)]),
        # an edit at the top of 1,000 (every line moved): a full repaint is cheaper
        (MANY, MANY, 0, None, None, MANY),
    ],
)
def test_plan(
    old: list[Diagnostic],
    new: list[Diagnostic],
    dirty: int | None,
    clear: list[Diagnostic] | None,
    tail: int | None,
    fill: list[Diagnostic],
) -> None:
    got = plan(old, new, dirty)
    if clear is None:
        assert got.full and list(got.fill) == fill
        return
    assert not got.full
    assert sorted(got.clear, key=repr) == sorted(clear, key=repr)
    assert got.clear_from_line == tail
    assert sorted(got.fill, key=repr) == sorted(fill, key=repr)
    # what is neither cleared nor filled is what stays, and all of new is painted
    assert sorted([*got.kept, *got.fill], key=repr) == sorted(new, key=repr)


def test_empty_sides_are_full() -> None:
    assert plan([], [d(0, 0, 1)]) == PaintPlan(full=True, fill=(d(0, 0, 1),))
    assert plan(MANY, []) == PaintPlan(full=True, fill=(), drop=frozenset(range(1000)))


def test_duplicates_are_a_multiset() -> None:
    twice = [d(0, 0, 3), d(0, 0, 3), d(1, 0, 1), d(2, 0, 1)]
    got = plan(twice, [d(0, 0, 3), d(1, 0, 1), d(2, 0, 1)])
    # one copy gone: clearing its range cuts the other copy, which is filled again
    assert got.clear == (d(0, 0, 3),) and got.fill == (d(0, 0, 3),)
    assert plan(twice, twice).calls() == 0


def test_an_edit_within_a_line_repaints_what_touches_it() -> None:
    spans = d(20, 0, 2, end_line=22)
    old = [*MANY[:20], spans, *MANY[23:100]]
    got = plan(old, old, edited_lines={21, 50})
    assert not got.full and got.clear_lines == (21, 50) and got.clear_from_line is None
    assert sorted(got.clear, key=repr) == sorted([spans, MANY[50]], key=repr)
    assert sorted(got.fill, key=repr) == sorted([spans, MANY[50]], key=repr)
    assert got.drop == {20, 48}  # indices in old (line 50 is the 49th)
    # with lines added above, the tail covers the edited line
    got = plan(old, old, dirty_line=40, edited_lines={50})
    assert got.clear_lines == () and got.clear_from_line == 40
