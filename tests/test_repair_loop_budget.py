"""A repair round's request fits the model's context (a user run: the request for a 15-line
selection needed 4,487 tokens, the service's slots hold 4,096, so the round failed). The
request is measured with the apply path's own estimate and narrowed (the region to the changed
lines, then the report capped) while still holding the changed lines and the report."""

from __future__ import annotations

from dataclasses import replace

from app.ui.repair_loop import (
    HEADROOM_TOKENS,
    SLOT_CONTEXT_TOKENS,
    fit_repair,
    repair_input,
    repair_region,
)
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.budget import request_tokens
from forecode_core.apply.review import diff_hunks
from forecode_core.apply.windows import plan_windows
from forecode_core.workspace.diagnostics_diff import Diagnostic, Severity

BUDGET = SLOT_CONTEXT_TOKENS - HEADROOM_TOKENS


def big_file(functions: int = 150) -> str:
    parts = []
    for k in range(functions):
        parts.append(
            f"def function_{k}(value, scale={k}):\n"
            f'    """Scale value number {k}."""\n'
            f"    if value is None:\n"
            f"        return None\n"
            f"    result = value * scale + {k}\n"
            f"    return result\n\n\n"
        )
    return "".join(parts)


ORIGINAL = big_file()
SELECTION = 60 * 8  # function_60's first line
_lines = ORIGINAL.splitlines(keepends=True)
# The edit: function_60 (and a nested helper, 15 lines) dedented by the model.
NESTED = [
    "def function_60(value, scale=60):\n",
    '    """Scale value number 60."""\n',
    "    def replace(match):\n",
    "        text = match.group(0)\n",
    "        if text:\n",
    "            return text.upper()\n",
    "        return text\n",
    "    if value is None:\n",
    "        return None\n",
    "    result = value * scale + 60\n",
    "    result = replace(result)\n",
    "    return result\n",
]
DEDENTED = [NESTED[0], NESTED[1], *(line[4:] for line in NESTED[2:7]), *NESTED[7:]]
BUFFER = "".join(_lines[:SELECTION] + NESTED + _lines[SELECTION + 6 :])
PROPOSED = "".join(_lines[:SELECTION] + DEDENTED + _lines[SELECTION + 6 :])
LONG = (
    'Argument of type "str" cannot be assigned to parameter "match" of type "Match[str]"\n'
    '  "str" is not assignable to "Match[str]"\n' * 12
)


def report() -> list[Diagnostic]:
    # 20 new problems: one at the changed lines, the others far away (top and bottom of the
    # file: old problems a line map once misplaced), with basedpyright's long messages.
    n = PROPOSED.count("\n")
    out = [Diagnostic("pkg/scale.py", SELECTION + 7, '"text" is not defined', code="F821")]
    for k in range(19):
        line = 3 + k if k % 2 else n - 3 - k
        out.append(Diagnostic("pkg/scale.py", line, LONG, Severity.WARNING, "reportArgumentType"))
    return out


def request() -> ApplyInput:
    return ApplyInput("pkg/scale.py", "python", BUFFER, "".join(NESTED), "add a docstring")


def test_the_unfitted_request_would_overflow_the_slot() -> None:
    """The case is one the old request did not fit (else the next test proves nothing)."""
    hunks = diff_hunks(BUFFER, PROPOSED)
    lines = [d.line for d in report()]
    old = repair_input(request(), repair_region(PROPOSED, hunks, lines), report(), 1)
    assert request_tokens(replace(old, original=PROPOSED)) > SLOT_CONTEXT_TOKENS


def test_a_repair_request_fits_the_slot_and_keeps_the_selection_and_the_report() -> None:
    hunks = diff_hunks(BUFFER, PROPOSED)
    new = report()
    fitted = fit_repair(request(), PROPOSED, hunks, [d.line for d in new], new, 1)
    assert request_tokens(replace(fitted, original=PROPOSED)) <= BUDGET
    assert fitted.original == BUFFER  # the review diffs the answer against the buffer
    # the changed lines are what the model rewrites, as a window (not the whole file)
    assert "".join(DEDENTED[2:7]) in fitted.block
    plan = plan_windows(PROPOSED, fitted.block, fitted.instruction)
    assert plan is not None and [w.how for w in plan.windows] == ["selection"]
    # the report: the request, the error first, and the rest said to exist
    assert fitted.instruction.startswith("add a docstring")
    assert '> pkg/scale.py:488:1: error: "text" is not defined [F821]' in fitted.instruction
    assert "more" in fitted.instruction or "reportArgumentType" in fitted.instruction


def test_a_request_that_fits_is_sent_as_it_is() -> None:
    hunks = diff_hunks(BUFFER, PROPOSED)
    new = report()[:3]
    short = [replace(d, message=d.message[:60]) for d in new]
    lines = [SELECTION + 1, SELECTION + 10]
    fitted = fit_repair(request(), PROPOSED, hunks, lines, short, 2)
    assert fitted == repair_input(request(), repair_region(PROPOSED, hunks, lines), short, 2)


def test_a_smaller_context_narrows_further() -> None:
    hunks = diff_hunks(BUFFER, PROPOSED)
    new = report()
    small = fit_repair(request(), PROPOSED, hunks, [], new, 1, n_ctx=1024)
    assert request_tokens(replace(small, original=PROPOSED)) <= 1024 - HEADROOM_TOKENS
    assert "".join(DEDENTED[2:7]) in small.block
    assert "[F821]" in small.instruction
    default = fit_repair(request(), PROPOSED, hunks, [], new, 1)
    assert small.instruction.count("> pkg/") < default.instruction.count("> pkg/")
    assert "... and 19 more" in small.instruction  # the model is told the report goes on
