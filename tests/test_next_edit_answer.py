"""The next-edit answer: parsing the rewritten region, the filters that reject it, and the
minimal diff it becomes.

Each case is a document with the caret marked ``ˇ`` (the input is what ``input_at`` builds for
it), an answer written as the region with some text replaced, and what comes out: the document
with the suggestion's edits shown as ``[-removed-]{+inserted+}``, its kind, whether it is at the
caret (and ghost text), its line; or the reason it was rejected."""

from __future__ import annotations

import pytest

from forecode_core.next_edit.answer import (
    Rejected,
    Suggestion,
    check_answer,
    diff_edits,
    parse_answer,
)
from forecode_core.next_edit.input import (
    CARET,
    REGION_END,
    REGION_START,
    EditPair,
    NextEditInput,
    input_at,
)

DOC = """import os


def area(w, h):
    return w * h


def perimeter(w, h):
    return 2 * (w + h)ˇ


def main():
    print(area(2, 3))
    print(perimeter(2, 3))
"""


@pytest.fixture(autouse=True)
def _region_of_the_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases were written for a region of at least 6 lines, up to 10 above and 12 below
    (the filters do not depend on the region's size; the region's own rules are
    tests/test_next_edit_input.py's)."""
    import forecode_core.next_edit.input as input_module

    monkeypatch.setattr(input_module, "REGION_MIN_LINES", 6)
    monkeypatch.setattr(input_module, "REGION_MAX_ABOVE", 10)
    monkeypatch.setattr(input_module, "REGION_MAX_BELOW", 12)


def make(marked: str, events: tuple[EditPair, ...] = (), language: str = "python") -> NextEditInput:
    offset = marked.index("ˇ")
    return input_at(
        marked.replace("ˇ", ""), offset, path="geo.py", language=language, events=events
    )


def shown(text: str, s: Suggestion) -> str:
    """The document with the edits marked."""
    for e in reversed(s.edits):
        removed = f"[-{text[e.start : e.end]}-]" if e.end > e.start else ""
        inserted = f"{{+{e.text}+}}" if e.text else ""
        text = text[: e.start] + removed + inserted + text[e.end :]
    return text


def rewrite(inp: NextEditInput, old: str, new: str, end: str = REGION_END + "\n") -> str:
    assert old in inp.region, old
    return inp.region.replace(old, new, 1) + end


def test_the_doc_region_is_what_the_cases_assume() -> None:
    inp = make(DOC)
    assert inp.region == (
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n\n\n"
    )


# (old text in the region, new text) -> (marked line(s) of the result, kind, at caret, ghost,
# 0-based line of the first edit)
SUGGESTIONS = {
    "ghost_at_caret": (
        ("(w + h)\n", "(w + h) + 0\n"),
        ("    return 2 * (w + h){+ + 0+}\n", "insertion", True, True, 8),
    ),
    "replacement_on_the_caret_line": (
        ("2 * (w + h)", "(w + h) * 2"),
        ("    return[- 2 *-] (w + h){+ * 2+}\n", "replacement", True, False, 8),
    ),
    # lines added below a caret at its line's end: ghost text from the caret
    "lines_below_the_caret": (
        ("(w + h)\n", "(w + h)\n    # the sum of the sides\n"),
        (
            "(w + h){+\n    # the sum of the sides+}\n",
            "insertion",
            True,
            True,
            8,
        ),
    ),
    "insertion_elsewhere_is_a_jump": (
        ("    return w * h\n", "    assert w >= 0\n    return w * h\n"),
        ("{+    assert w >= 0\n+}    return w * h\n", "insertion", False, False, 4),
    ),
    "a_line_deleted": (
        ("def perimeter(w, h):\n    return 2 * (w + h)\n", "def perimeter(w, h):\n"),
        ("[-    return 2 * (w + h)\n-]\n", "deletion", True, False, 8),
    ),
    "word_replaced_elsewhere": (
        ("def perimeter(w, h):", "def perimeter(width, h):"),
        ("def perimeter(w{+idth+}, h):\n", "insertion", False, False, 7),
    ),
    "deletion": (
        ("    return w * h\n", "    return w\n"),
        ("    return w[- * h-]\n", "deletion", False, False, 4),
    ),
    "two_sites": (
        ("return w * h\n\n\ndef perimeter(w, h):", "return w * h\n\n\ndef perimeter(w, h, d):"),
        ("def perimeter(w, h{+, d+}):\n", "insertion", False, False, 7),
    ),
}


@pytest.mark.parametrize("case", sorted(SUGGESTIONS))
def test_suggestions(case: str) -> None:
    (old, new), (marked_line, kind, at_caret, ghost, line) = SUGGESTIONS[case]
    inp = make(DOC)
    text = DOC.replace("ˇ", "")
    got = check_answer(inp, rewrite(inp, old, new))
    assert isinstance(got, Suggestion), got
    assert marked_line in shown(text, got)
    assert (got.kind, got.at_caret, got.ghost, got.line) == (kind, at_caret, ghost, line)
    assert got.apply(text) == text.replace(old, new, 1)


def test_several_edits_are_sorted_and_apply_to_the_rewrite() -> None:
    inp = make(DOC)
    text = DOC.replace("ˇ", "")
    answer = inp.region.replace("w * h", "h * w").replace("(w, h)", "(h, w)") + REGION_END
    got = check_answer(inp, answer)
    assert isinstance(got, Suggestion)
    assert len(got.edits) >= 2
    assert [e.start for e in got.edits] == sorted(e.start for e in got.edits)
    assert got.apply(text) == text.replace(inp.region, answer.removesuffix(REGION_END))
    assert got.kind == "replacement" and got.line == 3 and not got.at_caret


PERIMETER_RENAMED = EditPair("geo.py", 7, "def perim(w, h):\n", "def perimeter(w, h):\n")

# (answer built from the region, finished, events) -> reason
REJECTIONS = {
    "cut_off_at_the_length_limit": (
        lambda inp: inp.region[:40],
        False,
        (),
        "cut_off",
    ),
    "no_end_marker_and_an_unfinished_line": (
        lambda inp: inp.region[:45],
        True,
        (),
        "cut_off",
    ),
    "text_after_the_end_marker": (
        lambda inp: rewrite(inp, "(w + h)", "(w + h) + 0", REGION_END + "\ndef more(): pass\n"),
        True,
        (),
        "outside_region",
    ),
    "a_second_region": (
        lambda inp: inp.region + REGION_START + "\nx\n" + REGION_END,
        True,
        (),
        "outside_region",
    ),
    "repeats_the_line_above": (
        lambda inp: "import os\n" + inp.region + REGION_END,
        True,
        (),
        "outside_region",
    ),
    "loses_the_format_with_a_code_fence": (
        lambda inp: inp.region + "```\nupdated:\n" + REGION_END,
        True,
        (),
        "outside_region",
    ),
    "repeats_the_line_below": (
        lambda inp: inp.region + "def main():\n" + REGION_END,
        True,
        (),
        "outside_region",
    ),
    # the model ended its turn early, at a line end: not a deletion of the rest
    "no_end_marker_and_the_region_not_reached": (
        lambda inp: inp.region[:40],
        True,
        (),
        "cut_off",
    ),
    "no_change": (lambda inp: inp.region + REGION_END, True, (), "no_change"),
    "reverts_the_last_edit": (
        lambda inp: rewrite(inp, "def perimeter(w, h):", "def perim(w, h):"),
        True,
        (PERIMETER_RENAMED,),
        "reverts_edit",
    ),
    "reverts_it_while_changing_more": (
        lambda inp: rewrite(inp, "def perimeter(w, h):", "def perim(w, h):").replace(
            "2 * (w + h)", "(w + h) * 2"
        ),
        True,
        (PERIMETER_RENAMED,),
        "reverts_edit",
    ),
    "reverts_an_insertion": (
        lambda inp: rewrite(inp, "(w + h)\n", "(w + h\n"),
        True,
        (EditPair("geo.py", 8, "    return 2 * (w + h\n", "    return 2 * (w + h)\n"),),
        "reverts_edit",
    ),
    "changes_most_of_the_region": (
        lambda inp: "class Shape:\n    pass\n" + REGION_END,
        True,
        (),
        "changes_too_much",
    ),
    "unbalances_brackets": (
        lambda inp: rewrite(inp, "(w + h)\n", "(w + h\n"),
        True,
        (),
        "unbalances_brackets",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejections(case: str) -> None:
    build, finished, events, reason = REJECTIONS[case]
    inp = make(DOC, events)
    got = check_answer(inp, build(inp), finished=finished)
    assert isinstance(got, Rejected), got
    assert got.reason == reason


CLICK_TEST = """def test_nargs_envvar(runner):
    @click.command()
    @param
    def cmd(arg):
        click.echo(f"len {len(arg)}")

    result = runner.invoke(cmd, env={"X": value})
    assert result.exit_code == code
    assert output in result.output == "foo|bar\\n"ˇ


def test_next():
    pass
"""


def test_a_revert_among_several_edits_is_rejected() -> None:
    """bench next_edit's held-out click case: the rewrite changes several lines; on the last
    recent edit's line it takes the inserted words back out while changing the rest of the
    line too, and the diff cuts the deletion at another space than the pair's trim does
    (" output in" / "output in ")."""
    pair = EditPair(
        "geo.py",
        8,
        '    assert result.output == "foo|bar\\n"\n',
        '    assert output in result.output == "foo|bar\\n"\n',
    )
    inp = make(CLICK_TEST, (pair,))
    answer = (
        inp.region.replace("@param", '@click.argument("arg", nargs=-1)')
        .replace("== code", "== 0")
        .replace('assert output in result.output == "foo|bar', 'assert result.output == "arg:')
        + REGION_END
    )
    got = check_answer(inp, answer, finished=True)
    assert isinstance(got, Rejected) and got.reason == "reverts_edit", got
    # the same rewrite without the revert is shown
    kept = answer.replace(
        'assert result.output == "arg:', 'assert output in result.output == "arg:'
    )
    assert isinstance(check_answer(inp, kept, finished=True), Suggestion)


def test_the_same_edit_in_another_file_is_no_revert() -> None:
    other = EditPair("other.py", 7, "def perim(w, h):\n", "def perimeter(w, h):\n")
    inp = make(DOC, (other,))
    got = check_answer(inp, rewrite(inp, "def perimeter(w, h):", "def perim(w, h):"))
    assert isinstance(got, Suggestion)


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    inp = make(DOC)
    got = check_answer(inp, rewrite(inp, "(w + h)\n", "(w + h)  # (\n"))
    assert isinstance(got, Suggestion) and got.ghost
    got = check_answer(inp, rewrite(inp, "return w * h\n", "return w * h, '['\n"))
    assert isinstance(got, Suggestion)


@pytest.mark.parametrize(
    ("answer", "finished", "expected"),
    [
        # the end marker ends the region; whitespace or a fence after it is fine
        ("a\nb\n" + REGION_END, False, ("a\nb\n", True)),
        ("a\n" + REGION_END + "\n```\n", True, ("a\n", True)),
        # the prompt prefilled the start marker; a model that repeats it is understood
        (REGION_START + "\na\n" + REGION_END, True, ("a\n", True)),
        # the caret marker is dropped
        ("a" + CARET + "b\n" + REGION_END, True, ("ab\n", True)),
        # no end marker: the engine stopped on it (a stop string) or the turn ended
        ("a\nb\n", True, ("a\nb\n", False)),
        # no end marker at the length limit: cut off
        ("a\nb\n", False, "cut_off"),
        ("a\n" + REGION_END + " and more", True, "outside_region"),
    ],
)
def test_parse_answer(answer: str, finished: bool, expected: object) -> None:
    got = parse_answer(answer, finished=finished)
    if isinstance(expected, str):
        assert isinstance(got, Rejected) and got.reason == expected
    else:
        assert not isinstance(got, Rejected)
        assert (got.text, got.ended) == expected


def test_a_missing_end_marker_is_tolerated_when_the_model_finished() -> None:
    inp = make(DOC)
    got = check_answer(inp, rewrite(inp, "(w + h)\n", "(w + h) + 0\n", end=""), finished=True)
    assert isinstance(got, Suggestion) and got.ghost


def test_crlf_documents_get_crlf_rewrites() -> None:
    marked = DOC.replace("\n", "\r\n")
    inp = make(marked)
    text = marked.replace("ˇ", "")
    answer = inp.region.replace("\r\n", "\n").replace("(w + h)\n", "(w + h) + 0\n") + REGION_END
    got = check_answer(inp, answer)
    assert isinstance(got, Suggestion) and got.ghost
    assert got.apply(text) == text.replace("(w + h)\r\n", "(w + h) + 0\r\n")


def test_a_file_without_a_final_line_break() -> None:
    marked = "x = 1\ny = 2ˇ"
    inp = make(marked)
    assert inp.region == "x = 1\ny = 2"
    got = check_answer(inp, "x = 1\ny = 2 + x\n" + REGION_END)  # the prompt ended the line
    assert isinstance(got, Suggestion) and got.ghost
    assert got.apply("x = 1\ny = 2") == "x = 1\ny = 2 + x"


@pytest.mark.parametrize(
    ("old", "new", "edits"),
    [
        ("foo(a)", "foo(a, b)", [(5, 5, ", b")]),
        ("value = 1", "variant = 1", [(2, 5, "riant")]),
        ("a b c", "a c", [(2, 4, "")]),
        ("x", "x", []),
        ("", "new\n", [(0, 0, "new\n")]),
        ("one two three", "one 2 three", [(4, 7, "2")]),
    ],
)
def test_diff_edits(old: str, new: str, edits: list[tuple[int, int, str]]) -> None:
    assert diff_edits(old, new) == edits
    out = old
    for s, e, t in reversed(edits):
        out = out[:s] + t + out[e:]
    assert out == new


LOOP = """def upper(items):
    out = []
    for item in items:
        if not item:
            continue
        out.append(item.upper())
        count = len(out)ˇ
    return out


def lower(items):
    return [i.lower() for i in items]
"""


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        # the model starts at the function's head, above the region (small models do)
        (lambda inp, above: above[0] + "\n" + above[1] + "\n" + inp.region, "outside_region"),
        # ... or goes on past its end into the next function
        (lambda inp, above: inp.region + "\n\ndef lower(items):\n", "outside_region"),
        # a line that only looks like one above it is the model's own: judged as an edit
        (lambda inp, above: "    # upper-case them\n" + inp.region, None),
    ],
)
def test_a_rewrite_that_starts_or_ends_in_the_context_is_rejected(
    monkeypatch: pytest.MonkeyPatch, build: object, reason: str | None
) -> None:
    import forecode_core.next_edit.input as input_module

    monkeypatch.setattr(input_module, "REGION_MIN_LINES", 4)
    monkeypatch.setattr(input_module, "REGION_MAX_ABOVE", 3)
    monkeypatch.setattr(input_module, "REGION_MAX_BELOW", 5)
    inp = make(LOOP)
    above = [ln for ln in inp.excerpt[: inp.region_start].split("\n") if ln.strip()]
    assert above[:2] == ["def upper(items):", "    out = []"]  # the region starts lower
    got = check_answer(inp, build(inp, above) + REGION_END)  # type: ignore[operator]
    if reason is None:
        assert isinstance(got, Suggestion), got
    else:
        assert isinstance(got, Rejected) and got.reason == reason, got
