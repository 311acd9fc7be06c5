"""The completion context policy (forecode_core.completion.open_buffers): which open buffers give
snippets and which lines, as table tests on marked text.

A buffer is written as marked text: ``|`` marks the caret (its line is the caret line), a
leading ``*`` marks a modified buffer, a leading ``!`` a read-only one. The expected snippets
are written as ``path:start_line:kind`` and their text."""

from __future__ import annotations

import pytest

from forecode_core.completion.open_buffers import (
    TextBuffer,
    line_window,
    open_buffer_snippets,
)


def buffer(path: str, marked: str) -> TextBuffer:
    dirty = marked.startswith("*")
    read_only = marked.startswith("!")
    body = marked[1:] if dirty or read_only else marked
    caret = body.index("|")
    text = body.replace("|", "", 1)
    line = TextBuffer(path, body[:caret]).line_count - 1
    return TextBuffer(path, text, caret_line=line, dirty=dirty, read_only=read_only)


CASES = [
    (
        "the current buffer gives nothing; another gives its caret line and one line around",
        {"a.py": "1\n2\n3|\n4\n5", "b.py": "x\ny|\nz"},
        "b.py",
        [("a.py", 2, "open_file", "2\n3\n4")],
    ),
    (
        "the window is clipped at the start and the end of the buffer",
        {"a.py": "|1\n2\n3", "b.py": "only|", "c.py": "q|"},
        "c.py",
        [("a.py", 1, "open_file", "1\n2"), ("b.py", 1, "open_file", "only")],
    ),
    (
        "a modified buffer is a recent edit and comes first; each group in tab order",
        {"a.py": "a|", "b.py": "*b|", "c.py": "c|", "d.py": "*d|", "e.py": "e|"},
        "a.py",
        [
            ("b.py", 1, "recent_edit", "b"),
            ("d.py", 1, "recent_edit", "d"),
            ("c.py", 1, "open_file", "c"),
        ],
    ),
    (
        "the three are taken in tab order before the recent edits are put first",
        {"a.py": "a|", "b.py": "*b|", "c.py": "c|", "d.py": "*d|"},
        "",
        [
            ("b.py", 1, "recent_edit", "b"),
            ("a.py", 1, "open_file", "a"),
            ("c.py", 1, "open_file", "c"),
        ],
    ),
    (
        "at most three buffers, the first three in tab order (a later recent edit is left out)",
        {"a.py": "a|", "b.py": "b|", "c.py": "c|", "d.py": "*d|"},
        "",
        [
            ("a.py", 1, "open_file", "a"),
            ("b.py", 1, "open_file", "b"),
            ("c.py", 1, "open_file", "c"),
        ],
    ),
    (
        "a read-only buffer gives nothing and takes no place",
        {"bin": "!x|", "a.py": "a|", "b.py": "b|", "c.py": "c|"},
        "",
        [
            ("a.py", 1, "open_file", "a"),
            ("b.py", 1, "open_file", "b"),
            ("c.py", 1, "open_file", "c"),
        ],
    ),
    (
        "the last line's ending is left out; the ones inside are kept as they are",
        {"a.py": "1\r\n2|\r\n3\r\n4", "cur.py": "|"},
        "cur.py",
        [("a.py", 1, "open_file", "1\r\n2\r\n3")],
    ),
    (
        "a caret on the empty last line",
        {"a.py": "1\n2\n|", "cur.py": "|"},
        "cur.py",
        [("a.py", 2, "open_file", "2\n")],
    ),
]


@pytest.mark.parametrize(("why", "tabs", "current", "expected"), CASES, ids=[c[0] for c in CASES])
def test_open_buffer_snippets(
    why: str, tabs: dict[str, str], current: str, expected: list[tuple[str, int, str, str]]
) -> None:
    buffers = [buffer(path, marked) for path, marked in tabs.items()]
    index = list(tabs).index(current) if current else -1
    snippets = open_buffer_snippets(buffers, index, radius=1)
    assert [(s.path, s.start_line, s.kind, s.text) for s in snippets] == expected, why


def test_the_default_window_is_twenty_lines_each_side() -> None:
    text = "\n".join(str(n) for n in range(100))
    (snippet,) = open_buffer_snippets([TextBuffer("a.py", text, caret_line=50)], -1)
    assert snippet.start_line == 31
    assert snippet.text.split("\n") == [str(n) for n in range(30, 71)]


@pytest.mark.parametrize(
    ("caret", "count", "radius", "window"),
    [(0, 1, 20, (0, 0)), (5, 100, 20, (0, 25)), (50, 100, 20, (30, 70)), (99, 100, 20, (79, 99))],
)
def test_line_window(caret: int, count: int, radius: int, window: tuple[int, int]) -> None:
    assert line_window(caret, count, radius) == window


@pytest.mark.parametrize(
    ("text", "count", "first", "last", "lines"),
    [
        ("", 1, 0, 0, ""),
        ("a\nb", 2, 0, 1, "a\nb"),
        ("a\nb\n", 3, 1, 2, "b\n"),
        ("a\rb\r\nc", 3, 0, 1, "a\rb"),
        ("a\x0cb\u2028c", 1, 0, 0, "a\x0cb\u2028c"),  # only CR and LF end lines (Scintilla)
    ],
)
def test_text_buffer_lines(text: str, count: int, first: int, last: int, lines: str) -> None:
    buf = TextBuffer("a", text)
    assert buf.line_count == count
    assert buf.lines(first, last) == lines
