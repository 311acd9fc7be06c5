"""Table tests for the bug finder's pure core (forecode_core.bugs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from forecode_core.bugs.contrast import (
    Change,
    build_fill,
    change_kind,
    excerpt,
    fill_vote,
    replaced_lines,
)
from forecode_core.bugs.functions import (
    Function,
    changed_functions,
    changed_lines,
    functions_in,
    head_version,
)
from forecode_core.bugs.review import (
    KINDS,
    AnswerError,
    Finding,
    Sample,
    agree,
    build_messages,
    dismissal_key,
    numbered,
    parse_answer,
    sample_plan,
)
from forecode_core.bugs.rules import TIER1_REASONS, TIER1_RULES
from forecode_core.bugs.runner import Ask, review_function

SOURCE = """\
import os


def top(a, b):
    return a + b


class Box:
    @property
    def size(self):
        def inner():
            return 1
        return inner()

    def put(self, x):
        self.x = x
"""


# -- changed lines and functions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        ("@@ -5 +5 @@\n-x\n+y\n", {5}),
        ("@@ -3,0 +4,2 @@\n+a\n+b\n", {4, 5}),
        ("@@ -7,2 +6,0 @@\n-a\n-b\n", {6, 7}),  # a deletion: the lines around it
        ("@@ -1,0 +1 @@\n+a\n@@ -9 +10,3 @@ def f():\n", {1, 10, 11, 12}),
        ("diff --git a/x b/x\n--- a/x\n+++ b/x\n", set()),
    ],
)
def test_changed_lines(diff: str, expected: set[int]) -> None:
    assert changed_lines(diff) == expected


def test_functions_in_python_one_per_function_with_decorators_and_nesting() -> None:
    assert functions_in("m.py", SOURCE) == [
        Function("top", 4, 5),
        Function("Box.size", 9, 13),
        Function("Box.size.inner", 11, 12),
        Function("Box.put", 15, 16),
    ]


@pytest.mark.parametrize(
    ("lines", "names"),
    [
        ({5}, ["top"]),
        ({12}, ["Box.size.inner"]),  # the innermost holder
        ({13, 9}, ["Box.size"]),
        ({1, 2, 7}, []),  # imports and class lines hold no function
        ({5, 16, 12}, ["top", "Box.size.inner", "Box.put"]),
    ],
)
def test_changed_functions(lines: set[int], names: list[str]) -> None:
    assert [f.name for f in changed_functions("m.py", SOURCE, lines)] == names


def test_function_text_and_broken_python_falls_back_to_the_chunker() -> None:
    assert Function("top", 4, 5).text(SOURCE) == "def top(a, b):\n    return a + b\n"
    broken = SOURCE + "\ndef bad(:\n"
    # ast refuses it; the tree-sitter chunker still finds definitions (or nothing): no raise
    assert isinstance(functions_in("m.py", broken), list)


# -- the prompt ------------------------------------------------------------------------------


def test_numbered_uses_file_lines() -> None:
    assert numbered("def f():\n    pass\n", 9) == " 9| def f():\n10|     pass"


def test_sample_plan_first_greedy_then_hotter() -> None:
    plan = sample_plan(3, seed=7)
    assert plan == [Sample(7, 0.0), Sample(8, 0.5), Sample(9, 0.8)]


def _position_in(user: str) -> Callable[[int], int]:
    return lambda i: user.index(f"c{i}()")


def test_prompt_shuffles_context_per_sample_and_fences_backticks() -> None:
    context = [f"def c{i}(): pass" for i in range(6)] + ["x = '```'"]
    system, first = build_messages("def f():\n    return 1\n", 4, context, Sample(0, 0.0))
    assert "NO BUG" in system and "BUG <line number>: <kind>" in first
    assert first.index("c0") < first.index("c1") < first.index("c5")  # greedy: as given
    orders = set()
    for seed in range(1, 6):
        _s, user = build_messages("def f():\n    return 1\n", 4, context, Sample(seed, 0.5))
        orders.add(tuple(sorted(range(6), key=_position_in(user))))
        assert "````python" in user  # a fence longer than the context's ``` run
        assert "4| def f():" in user
    assert len(orders) > 1


# -- the strict parser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("NO BUG", None),
        ("  no bug.\n", None),
        (
            "BUG 5: off-by-one: range stops one short",
            Finding(5, "off-by-one", "range stops one short"),
        ),
        (
            "BUG line 6: Wrong-Variable: uses a, not b",
            Finding(6, "wrong-variable", "uses a, not b"),
        ),
        ("```\nBUG 4: other: x\n```", Finding(4, "other", "x")),
    ],
)
def test_parse_answer_accepts(answer: str, expected: Finding | None) -> None:
    assert parse_answer(answer, 4, 8) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("BUG 5: off-by-one: a\nBUG 6: other: b", "more than one line"),
        ("Looks fine to me", "not 'BUG"),
        ("BUG 5: typo: a", "unknown kind"),
        ("BUG 30: other: a", "outside the function"),
        ("BUG 5: other:", "not 'BUG"),
        ("NO BUG, but maybe line 5", "not 'BUG"),
    ],
)
def test_parse_answer_rejects_with_reason(answer: str, reason: str) -> None:
    with pytest.raises(AnswerError, match=reason):
        parse_answer(answer, 4, 8)


def test_kinds_are_the_prompts() -> None:
    _system, user = build_messages("def f(): pass\n", 1, [], Sample(0, 0.0))
    assert all(kind in user for kind in KINDS)


# -- agreement -------------------------------------------------------------------------------

A5 = Finding(5, "off-by-one", "a")
A6 = Finding(6, "off-by-one", "b")
A7 = Finding(7, "off-by-one", "c")
W5 = Finding(5, "wrong-variable", "d")


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([A5, A5, None], Finding(5, "off-by-one", "a", 2)),
        ([A5, A6, None], Finding(5, "off-by-one", "a", 2)),  # within one line; the earliest
        ([A6, A5, A6], Finding(6, "off-by-one", "b", 3)),  # the line most named
        ([A5, A7, None], None),  # two lines apart
        ([A5, W5, None], None),  # same line, other kind
        ([A5, None, None], None),
        ([None, None, None], None),
        ([W5, W5, A6, A6, A6], Finding(6, "off-by-one", "b", 3)),  # most votes wins
        ([A5, A6, A7], Finding(6, "off-by-one", "b", 3)),  # the line all three are near
    ],
)
def test_agree(samples: list[Finding | None], expected: Finding | None) -> None:
    assert agree(samples) == expected


def test_agree_min_votes() -> None:
    assert agree([A5, None, None], min_votes=1) == Finding(5, "off-by-one", "a", 1)
    assert agree([A5, A5, None], min_votes=3) is None


# -- dismissal keys --------------------------------------------------------------------------


def test_dismissal_key_moves_with_the_function_and_changes_with_it() -> None:
    text = "def f(a):\n    return a[1:]\n"
    key = dismissal_key(text, 10, Finding(11, "off-by-one", "x"))
    assert key == dismissal_key(text, 40, Finding(41, "off-by-one", "other words"))  # moved
    assert key == dismissal_key(text.replace("\n", "\r\n"), 10, Finding(11, "off-by-one", "x"))
    assert key != dismissal_key(text + "    # edited\n", 10, Finding(11, "off-by-one", "x"))
    assert key != dismissal_key(text, 10, Finding(11, "wrong-variable", "x"))
    assert key != dismissal_key(text, 10, Finding(10, "off-by-one", "x"))


def test_tier1_rules_are_ruff_rules_and_in_the_servers_selection() -> None:
    from forecode_core.lsp.servers import PRESETS

    assert {"F821", "F841", "B006", "B023"} <= set(TIER1_RULES)
    assert all(TIER1_REASONS[r] for r in TIER1_RULES)
    selected = PRESETS["ruff"].init_options["settings"]["lint"]["extendSelect"]
    assert set(TIER1_RULES) <= set(selected)


def test_dismissals_round_trip_cap_and_bad_files() -> None:
    import json

    from forecode_core.bugs import dismissals as dm
    from forecode_core.store.json_store import CorruptDocument

    d = dm.Dismissals()
    d.add("a")
    d.add("b")
    d.add("a")  # newest last
    again = dm.Dismissals.from_bytes(json.dumps(d.to_json()).encode())
    assert "a" in again and "b" in again and "c" not in again
    assert again.to_json()["keys"] == ["b", "a"]
    for bad, reason in [
        (b"{", "invalid JSON"),
        (b'{"format": "other", "version": 1}', "not a Forecode"),
        (b'{"format": "forecode-bug-dismissals", "version": 1, "keys": [1]}', "list of strings"),
    ]:
        with pytest.raises(CorruptDocument, match=reason):
            dm.Dismissals.from_bytes(bad)
    many = dm.Dismissals()
    for i in range(dm.MAX_KEYS + 3):
        many.add(str(i))
    assert len(many) == dm.MAX_KEYS and "0" not in many and str(dm.MAX_KEYS + 2) in many


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a\nb\nc\n", "a\nB\nc\n", {2}),
        ("a\nb\nc\n", "a\nb\nx\ny\nc\n", {3, 4}),
        ("a\nb\nc\nd\n", "a\nd\n", {1, 2}),  # b, c deleted after line 1
        ("a\n", "a\n", set()),
    ],
)
def test_changed_lines_between(old: str, new: str, expected: set[int]) -> None:
    from forecode_core.bugs.functions import changed_lines_between

    assert changed_lines_between(old, new) == expected


# -- the contrastive question (a changed line against HEAD's) --------------------------------

HEAD_FN = """\
def clip(items, limit):
    out = []
    for item in items:
        if len(out) < limit:
            out.append(item)
    return out
"""


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (HEAD_FN, []),
        (
            HEAD_FN.replace("len(out) < limit", "len(out) <= limit"),
            [Change(14, 14, ("        if len(out) < limit:",), ("        if len(out) <= limit:",))],
        ),
        (HEAD_FN.replace("limit:", "limit:   "), []),  # trailing white space only
        (HEAD_FN.replace("limit:", "limit:  # the cap"), []),  # a comment only
        (
            HEAD_FN.replace("out.append(item)", "out.append('#')"),  # '#' in a string is code
            [Change(15, 15, ("            out.append(item)",), ("            out.append('#')",))],
        ),
        (HEAD_FN.replace("    out = []\n", "    out = []\n    seen = set()\n"), []),  # added
        (
            HEAD_FN.replace("    for item in items:\n", "".join(f"    x{i}()\n" for i in range(5))),
            [],  # a rewrite longer than MAX_CHANGE_LINES: the open question's
        ),
    ],
)
def test_replaced_lines(after: str, expected: list[Change]) -> None:
    assert replaced_lines(HEAD_FN, after, 11) == expected


def test_excerpt_keeps_a_short_function_whole_and_windows_a_long_one() -> None:
    change = Change(13, 13, ("    x = 1",), ("    x = 2",))
    assert excerpt(HEAD_FN, change, 11) == HEAD_FN.rstrip("\n")
    long = "def f():\n" + "".join(f"    a{i} = {i}\n" for i in range(1, 30))
    shown = excerpt(long, Change(20, 20, ("    a19 = 19",), ("    a19 = 0",)), 1).split("\n")
    assert shown[:3] == ["def f():", "    ...", "    a11 = 11"]  # 8 lines before the change
    assert shown[-1] == "    a22 = 22"  # and 3 after it
    assert excerpt(long, Change(3, 3, ("",), ("",)), 1).split("\n")[:2] == [
        "def f():",
        "    a1 = 1",
    ]


def test_the_fill_prompt_holds_neither_version() -> None:
    change = Change(4, 4, ("    if a < b:",), ("    if a <= b:",))
    function = "def f(a, b):\n    x = 1\n    if a <= b:\n        return a\n"
    _system, user = build_fill(function, change, 2)
    assert "    <MISSING>\n        return a" in user and "a <= b" not in user
    assert "a < b" not in user and user.rstrip().endswith("Write the line at <MISSING>.")
    _system, narrow = build_fill(function, change, 2, before=0)  # a sample's narrower window
    assert "x = 1" in user and "x = 1" not in narrow and "    <MISSING>" in narrow


@pytest.mark.parametrize(
    ("answer", "vote"),
    [
        ("if a < b:", "head"),
        ("```python\n    if a < b:  # the bound\n```", "head"),
        ("if a<=b:", "buffer"),
        ("return a", None),
        ("The line is probably a comparison.", None),
        ("", None),
    ],
)
def test_fill_vote(answer: str, vote: str | None) -> None:
    assert fill_vote(answer, Change(4, 4, ("    if a < b:",), ("    if a <= b:",))) == vote


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("if a < b:", "if a <= b:", "off-by-one"),
        ("if a >= b:", "if a > b:", "off-by-one"),
        ("if a == b:", "if a != b:", "inverted-condition"),
        ("if a is None:", "if a is not None:", "inverted-condition"),
        ("if x in seen:", "if x not in seen:", "inverted-condition"),
        ("if not ok:", "if ok:", "inverted-condition"),
        ("f(a, b)", "f(b, a)", "swapped-arguments"),
        ("return total", "return count", "wrong-variable"),
        ("x = a + 1", "x = a + 2", "other"),
    ],
)
def test_change_kind(old: str, new: str, kind: str) -> None:
    assert change_kind(Change(1, 1, (old,), (new,))) == kind


def test_head_version_by_name_and_none_for_a_new_function() -> None:
    head = SOURCE.replace("return a + b", "return a - b")
    assert head_version("m.py", head, Function("top", 4, 5)) == "def top(a, b):\n    return a - b\n"
    assert head_version("m.py", head, Function("Box.put", 30, 31)) is not None
    assert head_version("m.py", head, Function("gone", 4, 5)) is None


def _writer(line: str, asked: list[str], temperatures: list[float]) -> Ask:
    """A model that writes ``line`` for the left-out line."""

    def ask(_system: str, user: str, temperature: float) -> str:
        asked.append(user)
        temperatures.append(temperature)
        return f"```python\n{line}\n```"

    return ask


@pytest.mark.parametrize(
    ("line", "finding", "asks"),
    [
        (
            "if len(out) < limit:",
            Finding(14, "off-by-one", "HEAD had `if len(out) < limit:`", 2),
            2,
        ),
        ("if len(out) <= limit:", None, 1),  # the buffer's line: no second sample
        ("out.append(item)", None, 1),  # another line
    ],
)
def test_review_function_asks_for_a_replaced_line(
    line: str, finding: Finding | None, asks: int
) -> None:
    source = "\n" * 10 + HEAD_FN.replace("len(out) < limit", "len(out) <= limit")
    function = functions_in("m.py", source)[0]
    asked: list[str] = []
    temperatures: list[float] = []
    review = review_function(
        _writer(line, asked, temperatures), source, function, [], before=HEAD_FN
    )
    assert review.finding == finding and len(asked) == asks
    assert all("<MISSING>" in user and "limit:" not in user for user in asked)
    if asks == 2:  # a short function: the narrower window is the same prompt, drawn hotter
        assert asked[0] == asked[1] and temperatures == [0.0, 0.5]


def test_a_long_functions_samples_see_two_windows() -> None:
    head = "def f(a, b):\n" + "".join(f"    a{i} = {i}\n" for i in range(20)) + "    return a < b\n"
    source = head.replace("a < b", "a <= b")
    function = functions_in("m.py", source)[0]
    asked: list[str] = []
    temperatures: list[float] = []
    review = review_function(
        _writer("return a < b", asked, temperatures), source, function, [], before=head
    )
    assert review.finding is not None and review.finding.line == 22
    assert temperatures == [0.0, 0.0] and "a13 = 13" in asked[0] and "a13 = 13" not in asked[1]


def test_review_function_without_a_replacement_asks_the_open_question() -> None:
    source = HEAD_FN.replace("    out = []\n", "    out = []\n    seen = set()\n")
    function = functions_in("m.py", source)[0]
    asked: list[str] = []

    def ask(_s: str, user: str, _t: float) -> str:
        asked.append(user)
        return "BUG 4: other: seen is unused"

    review = review_function(ask, source, function, [], before=HEAD_FN)
    assert len(asked) == 3 and "Does this function have a bug?" in asked[0]
    assert review.finding == Finding(4, "other", "seen is unused", 3)
