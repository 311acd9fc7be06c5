"""A diagnostic inside lines an edit only re-indented (or otherwise replaced one for one) is
not new: the line map keeps its offset in the replaced stretch.

Seen in a user run: Ctrl+K on a 15-line nested function whose answer came back dedented; the
review listed the function's own old problems (a type error and a ruff warning five lines
into it) among "6 new problems this edit introduces", because every line of a replaced
stretch was mapped to the stretch's first line, farther than ``NEAR`` from where the same
diagnostic stood. Tables on plain data (``forecode_core.workspace.diagnostics_diff``)."""

from __future__ import annotations

import pytest

from forecode_core.workspace.diagnostics_diff import (
    Diagnostic,
    Severity,
    line_map,
    new_diagnostics,
)

BODY = ["def f(s):", "    n = ord(s) + 'x'", "    if n:", "        return n", "    return 0"]
NESTED = "def outer():\n" + "".join(f"    {line}\n" for line in BODY) + "x = 1\n"
DEDENTED = "def outer():\n" + "".join(f"{line}\n" for line in BODY) + "x = 1\n"


def d(line: int, message: str = 'Operator "+" not supported', code: str = "op") -> Diagnostic:
    return Diagnostic("a.py", line, message, Severity.ERROR, code, "basedpyright")


@pytest.mark.parametrize(
    ("before", "after", "fresh"),
    [
        # the old error five lines into the re-indented stretch: the same one, not new
        ([d(2)], [d(2)], []),
        ([d(2), d(4, "unused", "F841")], [d(2), d(4, "unused", "F841")], []),
        # a problem the re-indent really causes is still new
        ([d(2)], [d(2), d(6, "not defined", "F821")], [d(6, "not defined", "F821")]),
    ],
)
def test_a_reindented_stretch_keeps_its_diagnostics(
    before: list[Diagnostic], after: list[Diagnostic], fresh: list[Diagnostic]
) -> None:
    assert new_diagnostics(before, after, {"a.py": line_map(NESTED, DEDENTED)}) == fresh


@pytest.mark.parametrize(
    ("old", "new", "mapping"),
    [
        # replaced one for one: each line keeps its offset in the stretch
        (NESTED, DEDENTED, {0: 0, 1: 1, 3: 3, 5: 5, 6: 6}),
        # a stretch replaced by a shorter one: past its end, the new stretch's last line
        ("a\nb\nc\nd\ne\n", "a\nB\ne\n", {1: 1, 2: 1, 3: 1, 4: 2}),
    ],
)
def test_line_map_inside_a_replaced_stretch(old: str, new: str, mapping: dict[int, int]) -> None:
    shift = line_map(old, new)
    assert {line: shift(line) for line in mapping} == mapping
