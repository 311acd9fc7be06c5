"""The chat's context under a budget and ``@file`` mentions (``forecode_core.chat.context``), as
tables.

In the mention tables, ``«…»`` marks where each mention is in the text (the markers are removed
before parsing), so a case shows both what is found and where.
"""

from __future__ import annotations

import pytest

from forecode_core.chat.context import (
    CHARS_PER_TOKEN,
    ITEM_OVERHEAD_TOKENS,
    MIN_USEFUL_TOKENS,
    ContextSource,
    SourceKind,
    Status,
    assemble_context,
    codebase_query,
    codebase_sources,
    estimate_tokens,
    find_mentions,
    format_mention,
    has_codebase_mention,
    parse_mentions,
    remove_codebase_mention,
    remove_mention,
    trim_history,
)
from forecode_core.chat.types import ChatMessage, ContextItem, ContextKind, Role
from forecode_core.index.codebase import CodeHit


def numbered(n: int, width: int = 20) -> str:
    """``n`` lines ``line 1 ....`` of exactly ``width`` characters each."""
    return "\n".join(f"line {i}".ljust(width, ".") for i in range(1, n + 1))


def cost(text: str) -> int:
    return estimate_tokens(text) + ITEM_OVERHEAD_TOKENS


# ----- estimates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abc", 1),
        ("abcd", 2),
        ("x" * 7, 2),
        ("x" * 35, 10),
        ("x" * 36, 11),
    ],
)
def test_estimate_tokens_rounds_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


# ----- the budget ----------------------------------------------------------------------------

SEL = ContextSource("selection", "app.py", "x = compute()\n", "python", start_line=12)
CUR = ContextSource("current_file", "app.py", numbered(40), "python", focus_line=30)
UTIL = ContextSource("file", "util.py", numbered(40), "python")
BIG = ContextSource("file", "big.py", numbered(400), "python")


@pytest.mark.parametrize(
    ("sources", "budget", "expected"),
    [
        # everything fits: all whole, in priority order (selection, current file, mentions)
        (
            [UTIL, CUR, SEL],
            10_000,
            [
                ("selection", "app.py", "full"),
                ("current_file", "app.py", "full"),
                ("file", "util.py", "full"),
            ],
        ),
        # the mention is what gives way first
        (
            [SEL, CUR, BIG],
            cost(SEL.text) + cost(CUR.text) + 100,
            [
                ("selection", "app.py", "full"),
                ("current_file", "app.py", "full"),
                ("file", "big.py", "truncated"),
            ],
        ),
        # too little left for a useful piece of the mention: dropped
        (
            [SEL, CUR, BIG],
            cost(SEL.text) + cost(CUR.text) + MIN_USEFUL_TOKENS,
            [
                ("selection", "app.py", "full"),
                ("current_file", "app.py", "full"),
                ("file", "big.py", "dropped"),
            ],
        ),
        # a tiny budget: the selection is cut, the rest dropped
        (
            [SEL, CUR],
            5,
            [("selection", "app.py", "dropped"), ("current_file", "app.py", "dropped")],
        ),
        # a mention of the current file, and the same file twice: sent once
        (
            [CUR, ContextSource("file", "app.py", CUR.text), UTIL, UTIL],
            10_000,
            [
                ("current_file", "app.py", "full"),
                ("file", "app.py", "full"),  # reported as the current file, not sent again
                ("file", "util.py", "full"),
                ("file", "util.py", "full"),
            ],
        ),
        # nothing at all
        ([], 1000, []),
    ],
)
def test_assemble_context_statuses(
    sources: list[ContextSource], budget: int, expected: list[tuple[str, str, str]]
) -> None:
    plan = assemble_context(sources, budget)
    assert [(r.kind, r.path, r.status) for r in plan.reports] == expected
    sent = [(r.kind, r.path) for r in plan.reports if r.status != "dropped" and not r.included_as]
    assert [(i.kind, i.path) for i in plan.items] == sent
    assert plan.used_tokens <= plan.budget_tokens == budget
    assert plan.used_tokens == sum(r.tokens for r in plan.reports)


@pytest.mark.parametrize("budget", [60, 100, 150, 233, 400, 1000, 5000])
def test_the_budget_is_never_exceeded(budget: int) -> None:
    plan = assemble_context([SEL, CUR, UTIL, BIG], budget)
    assert plan.used_tokens <= budget
    assert sum(cost(i.text) for i in plan.items) <= budget


def test_a_truncated_current_file_keeps_the_lines_around_the_caret() -> None:
    budget = 60 + ITEM_OVERHEAD_TOKENS  # room for 210 characters: 10 lines of 21
    plan = assemble_context([CUR], budget)
    (item,), (report,) = plan.items, plan.reports
    assert item.truncated and report.status == "truncated"
    assert "line 31." in item.text  # focus_line 30 is the 31st line
    assert report.start_line <= 31 <= report.end_line
    assert item.text.split("\n")[0].startswith(f"line {report.start_line}.")
    assert item.text.split("\n")[-1].startswith(f"line {report.end_line}.")
    assert (item.start_line, item.end_line) == (report.start_line, report.end_line)
    assert len(item.text) <= 60 * CHARS_PER_TOKEN
    assert report.end_line - report.start_line + 1 == 10
    assert (
        report.label == f"current file app.py (truncated to lines {report.start_line}–"
        f"{report.end_line})"
    )


def test_a_truncated_mention_keeps_its_top() -> None:
    plan = assemble_context([BIG], 100 + ITEM_OVERHEAD_TOKENS)
    (item,), (report,) = plan.items, plan.reports
    assert item.text.startswith("line 1.")
    assert report.start_line == 1 and report.end_line < 400
    assert item.text.count("\n") + 1 == report.end_line


def test_a_selection_keeps_its_place_in_the_file() -> None:
    sel = ContextSource("selection", "a.py", "one\ntwo\nthree", start_line=10)
    plan = assemble_context([sel], 1000)
    (item,), (report,) = plan.items, plan.reports
    assert (item.start_line, item.end_line) == (10, 12)
    assert report.label == "selection in a.py (lines 10–12)"
    whole = assemble_context([UTIL], 1000).items[0]
    assert (whole.start_line, whole.end_line, whole.truncated) == (0, 0, False)


def test_dropped_reports_say_why() -> None:
    plan = assemble_context([CUR, ContextSource("file", "app.py", "x"), BIG], 30)
    labels = [r.label for r in plan.reports]
    assert labels == [
        "current file app.py (not sent: over the context budget)",
        "app.py (not sent: the same file as the current file, over the context budget)",
        "big.py (not sent: over the context budget)",
    ]


BIG_CUR = ContextSource(
    SourceKind.CURRENT_FILE, "utils.py", numbered(700), "python", focus_line=300
)
MENTION = ContextSource(SourceKind.FILE, "environment.py", numbered(100), "python")
PROBLEMS = ContextSource(
    SourceKind.FILE, "utils.py (problems)", "line 301: undefined name", "python"
)


@pytest.mark.parametrize(
    ("sources", "budget", "expected"),
    [
        # a user run: the current file (659 lines) took all of the budget and the file named
        # with @ was dropped; now the current file leaves the mention what it needs
        (
            [BIG_CUR, MENTION],
            2000,
            [("current_file", "truncated"), ("file", "full")],
        ),
        # the servers' problems and the mention, both after it, both kept
        (
            [BIG_CUR, PROBLEMS, MENTION],
            2000,
            [("current_file", "truncated"), ("file", "full"), ("file", "full")],
        ),
        # a mention bigger than half the budget gets the half, cut from its top
        (
            [BIG_CUR, ContextSource(SourceKind.FILE, "big.py", numbered(2000))],
            2000,
            [("current_file", "truncated"), ("file", "truncated")],
        ),
        # the current file named again leaves it nothing to keep room for (the mention is
        # that file, cut as it is, sent once)
        (
            [BIG_CUR, ContextSource(SourceKind.FILE, "utils.py", BIG_CUR.text)],
            2000,
            [("current_file", "truncated"), ("file", "truncated")],
        ),
    ],
)
def test_a_current_file_too_big_leaves_room_for_the_mentions(
    sources: list[ContextSource], budget: int, expected: list[tuple[str, str]]
) -> None:
    plan = assemble_context(sources, budget)
    assert [(r.kind, r.status) for r in plan.reports] == expected
    assert plan.used_tokens <= budget
    current = plan.reports[0]
    assert current.start_line <= 301 <= current.end_line  # still around the caret
    mention = plan.reports[-1]
    if mention.status != "dropped":
        assert current.tokens >= budget // 2 - ITEM_OVERHEAD_TOKENS  # the current file's half
    if len(sources) == 2 and sources[1].path == "utils.py":
        # the whole budget for the current file, as before: nothing else to keep room for
        assert current.tokens > budget - ITEM_OVERHEAD_TOKENS - 10


# ----- history -------------------------------------------------------------------------------


def turns(*contents: str) -> tuple[ChatMessage, ...]:
    roles = ("user", "assistant")
    return tuple(ChatMessage(roles[i % 2], c) for i, c in enumerate(contents))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("history", "budget", "kept"),
    [
        (turns(), 100, ()),
        (turns("q"), 0, ("q",)),  # the last turn is always sent
        (turns("q1", "a1", "q2"), 1000, ("q1", "a1", "q2")),
        # old turns go first; the kept part starts with a user turn
        (turns("q1" * 50, "a1" * 50, "q2", "a2", "q3"), 20, ("q2", "a2", "q3")),
        (turns("q1", "a1" * 50, "q2"), 10, ("q2",)),
    ],
)
def test_trim_history(history: tuple[ChatMessage, ...], budget: int, kept: tuple[str, ...]) -> None:
    out = trim_history(history, budget)
    assert tuple(m.content for m in out) == kept
    assert not out or out[0].role == "user"


# ----- mentions ------------------------------------------------------------------------------


def marked(case: str) -> tuple[str, list[tuple[int, int]]]:
    """``case`` without its ``«»`` markers, and the (start, end) of each marked span."""
    text, spans, start = "", [], -1
    for ch in case:
        if ch == "«":
            start = len(text)
        elif ch == "»":
            spans.append((start, len(text)))
        else:
            text += ch
    return text, spans


@pytest.mark.parametrize(
    ("case", "paths"),
    [
        ("explain «@util.py»", ["util.py"]),
        ("«@src/a.py» and «@src/b.py»", ["src/a.py", "src/b.py"]),
        ("what does «@util.py», do?", ["util.py"]),  # sentence punctuation is not the path
        ("see (@util.py)", []),  # "@" must start a word
        ("compare «@a.py» with «@a.py»", ["a.py", "a.py"]),
        ('open «@"my docs/notes.md"» please', ["my docs/notes.md"]),
        ("mail me@example.com", []),  # an address is no mention
        ("line one\n«@x.py»\n", ["x.py"]),
        ("just @ alone", []),
        ("«@x.py»!", ["x.py"]),
    ],
)
def test_find_mentions(case: str, paths: list[str]) -> None:
    text, spans = marked(case)
    found = find_mentions(text)
    assert [m.path for m in found] == paths
    assert [(m.start, m.end) for m in found] == spans


def test_parse_mentions_keeps_first_typed_order_once() -> None:
    assert parse_mentions("@b.py then @a.py then @b.py") == ["b.py", "a.py"]


@pytest.mark.parametrize(
    ("path", "mention"),
    [
        ("util.py", "@util.py"),
        ("src/pkg/mod.py", "@src/pkg/mod.py"),
        ("my docs/notes.md", '@"my docs/notes.md"'),
        ("weird.", '@"weird."'),  # a trailing dot would read as punctuation
    ],
)
def test_format_mention_round_trips(path: str, mention: str) -> None:
    assert format_mention(path) == mention
    assert parse_mentions(f"look at {mention} now") == [path]


@pytest.mark.parametrize(
    ("text", "path", "out"),
    [
        ("explain @util.py and @app.py", "util.py", "explain and @app.py"),
        ("@util.py why? @util.py", "util.py", "why? "),
        ('see @"my docs/n.md" now', "my docs/n.md", "see now"),
        ("nothing here", "x.py", "nothing here"),
        ("@other.py stays", "x.py", "@other.py stays"),
    ],
)
def test_remove_mention(text: str, path: str, out: str) -> None:
    assert remove_mention(text, path) == out


# ----- @codebase -----------------------------------------------------------------------------


def hit_source(path: str, start: int, n_lines: int, width: int = 20) -> ContextSource:
    (src,) = codebase_sources(
        [CodeHit(path, start, start + n_lines - 1, numbered(n_lines, width), 1.0)]
    )
    return src


def test_codebase_hits_come_after_the_mentions_as_file_ranges() -> None:
    hit = hit_source("lib/parse.py", 20, 5)
    plan = assemble_context([hit, UTIL, CUR], 10_000)
    assert [(r.kind, r.path, r.status) for r in plan.reports] == [
        ("current_file", "app.py", "full"),
        ("file", "util.py", "full"),
        ("codebase", "lib/parse.py", "full"),
    ]
    assert plan.items[-1] == ContextItem("file", "lib/parse.py", hit.text, 20, 24, "", False)
    assert plan.reports[-1].label == "lib/parse.py:20-24"


def test_codebase_hits_give_way_first_and_keep_their_top() -> None:
    big_hit = hit_source("lib/big.py", 100, 200)
    budget = cost(SEL.text) + cost(CUR.text) + cost(UTIL.text) + 80
    plan = assemble_context([SEL, CUR, UTIL, big_hit, hit_source("lib/x.py", 1, 3)], budget)
    statuses = [(r.kind, r.status) for r in plan.reports]
    assert statuses == [
        ("selection", "full"),
        ("current_file", "full"),
        ("file", "full"),
        ("codebase", "truncated"),
        ("codebase", "dropped"),
    ]
    item, report = plan.items[-1], plan.reports[3]
    assert item.kind == "file" and item.truncated and item.start_line == 100
    assert item.text.startswith("line 1.") and item.end_line == report.end_line < 299
    assert report.label == f"lib/big.py:100-299 (truncated to lines 100–{report.end_line})"
    assert plan.reports[4].label == "lib/x.py:1-3 (not sent: over the context budget)"
    assert plan.used_tokens <= budget


def test_codebase_hits_already_sent_are_dropped() -> None:
    sources = [
        UTIL,
        hit_source("util.py", 3, 4),  # inside a mention sent whole
        hit_source("lib/a.py", 10, 10),
        hit_source("lib/a.py", 12, 3),  # inside the hit before it
        hit_source("lib/a.py", 15, 10),  # overlaps it only in part: sent
    ]
    plan = assemble_context(sources, 10_000)
    labels = [r.label for r in plan.reports if r.kind == "codebase"]
    assert labels == [
        "util.py:3-6 (not sent: already included in a mention)",
        "lib/a.py:10-19",
        "lib/a.py:12-14 (not sent: already included in lib/a.py:10-19)",
        "lib/a.py:15-24",
    ]
    # a truncated current file covers only the lines it sent
    cur = ContextSource("current_file", "app.py", numbered(400), focus_line=200)
    plan = assemble_context([cur, hit_source("app.py", 199, 2), hit_source("app.py", 1, 2)], 200)
    first, last = plan.reports[0].start_line, plan.reports[0].end_line
    assert 2 < first <= 199 and last >= 200
    assert [r.label for r in plan.reports[1:]] == [
        "app.py:199-200 (not sent: already included in the current file)",
        "app.py:1-2 (not sent: over the context budget)",
    ]


def test_codebase_sources_skip_empty_hits_and_name_languages() -> None:
    hits = [CodeHit("a.py", 3, 4, "x = 1\r\ny = 2\n", 2.0), CodeHit("b.py", 1, 1, "  \n", 1.0)]
    (src,) = codebase_sources(hits, lambda path: "python")
    assert (src.kind, src.path, src.text, src.start_line, src.end_line, src.language) == (
        "codebase",
        "a.py",
        "x = 1\ny = 2",
        3,
        4,
        "python",
    )


@pytest.mark.parametrize(
    ("text", "asks", "query", "without"),
    [
        ("@codebase where is X?", True, "where is X?", "where is X?"),
        ("where is X? @codebase", True, "where is X?", "where is X? "),
        ("how, @codebase, is it done", True, "how, , is it done", "how, , is it done"),
        ("mail me@codebase now", False, "mail me@codebase now", "mail me@codebase now"),
        ("@codebases are", False, "@codebases are", "@codebases are"),
        ('@"codebase" is a file', False, '@"codebase" is a file', '@"codebase" is a file'),
        ("@codebase", True, "", ""),
    ],
)
def test_codebase_mention(text: str, asks: bool, query: str, without: str) -> None:
    assert has_codebase_mention(text) is asks
    assert codebase_query(text) == query
    assert remove_codebase_mention(text) == without


def test_codebase_is_no_file_mention() -> None:
    assert parse_mentions("@codebase and @util.py") == ["util.py"]
    assert parse_mentions('@"codebase"') == ["codebase"]


# ----- kinds and statuses are values (StrEnum): the wire's strings unchanged -----------------


@pytest.mark.parametrize(
    ("kind", "wire"),
    [
        (SourceKind.FILE, ContextKind.FILE),
        (SourceKind.SELECTION, ContextKind.SELECTION),
        (SourceKind.CURRENT_FILE, ContextKind.CURRENT_FILE),
        (SourceKind.CODEBASE, ContextKind.FILE),  # a hit travels as a file range
    ],
)
def test_a_source_kind_has_its_wire_kind(kind: SourceKind, wire: ContextKind) -> None:
    assert kind.wire is wire
    assert kind == kind.value and wire in ("file", "selection", "current_file")


@pytest.mark.parametrize(
    ("member", "string"),
    [
        (Status.FULL, "full"),
        (Status.TRUNCATED, "truncated"),
        (Status.DROPPED, "dropped"),
        (SourceKind.CODEBASE, "codebase"),
        (ContextKind.CURRENT_FILE, "current_file"),
        (Role.SYSTEM, "system"),
        (Role.USER, "user"),
        (Role.ASSISTANT, "assistant"),
    ],
)
def test_members_are_the_strings_they_replaced(member: str, string: str) -> None:
    assert member == string and f"{member}" == string and hash(member) == hash(string)


def test_a_plan_reports_members_and_sends_wire_kinds() -> None:
    plan = assemble_context(
        [
            ContextSource("current_file", "a.py", "x = 1\n"),  # a plain string is accepted
            ContextSource(SourceKind.CODEBASE, "b.py", "def f():\n    pass", start_line=3),
            ContextSource(SourceKind.FILE, "a.py", "x = 1\n"),
        ],
        10_000,
    )
    assert [(r.kind, r.status) for r in plan.reports] == [
        (SourceKind.CURRENT_FILE, Status.FULL),
        (SourceKind.FILE, Status.FULL),  # the current file again: sent once
        (SourceKind.CODEBASE, Status.FULL),
    ]
    assert [type(r.status) for r in plan.reports] == [Status] * 3
    assert [(i.kind, type(i.kind)) for i in plan.items] == [
        (ContextKind.CURRENT_FILE, ContextKind),
        (ContextKind.FILE, ContextKind),
    ]


def test_a_mention_of_the_current_file_is_that_file_sent_once() -> None:
    """A mention of the file that is already the current file (or a file mentioned twice)
    reports that file's own status and lines: included, never "dropped"; its text goes
    once."""
    again = ContextSource(SourceKind.FILE, "app.py", CUR.text, "python")
    plan = assemble_context([CUR, again, UTIL, UTIL], 1000)
    assert [(i.kind, i.path) for i in plan.items] == [
        ("current_file", "app.py"),
        ("file", "util.py"),
    ]
    cur, mention, util, util_again = plan.reports
    assert (mention.kind, mention.status, mention.tokens) == ("file", Status.FULL, 0)
    assert mention.included_as == "the current file" and not cur.included_as
    assert mention.label == "app.py (sent once, as the current file)"
    assert util_again.status == Status.FULL and util_again.included_as == "a mention"
    assert plan.used_tokens == cur.tokens + util.tokens
    # a current file cut to fit: the mention says the same lines
    big = ContextSource(SourceKind.CURRENT_FILE, "big.py", numbered(400), "python", focus_line=9)
    cut = assemble_context([big, ContextSource(SourceKind.FILE, "big.py", big.text)], 200)
    first, second = cut.reports
    assert first.status == second.status == Status.TRUNCATED and len(cut.items) == 1
    assert (second.start_line, second.end_line) == (first.start_line, first.end_line)
