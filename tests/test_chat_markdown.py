"""How a chat reply is cut into prose and code blocks (``app.ui.chat_markdown``), as tables;
and a streamed reply, fed a few characters at a time, ends as the whole reply does."""

from __future__ import annotations

import pytest

from app.ui.chat_markdown import (
    StreamSegmenter,
    fence_language,
    render_markdown,
    segments_of,
)

FENCE = "```"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Just words.", [("markdown", "Just words.", "")]),
        (
            f"Try:\n\n{FENCE}python\nx = 1\n{FENCE}\n\nDone.",
            [("markdown", "Try:", ""), ("code", "x = 1", "python"), ("markdown", "Done.", "")],
        ),
        # a closing fence at the very end of the reply, with no newline after it
        (
            f"Try:\n\n{FENCE}python\nx = 1\n{FENCE}",
            [("markdown", "Try:", ""), ("code", "x = 1", "python")],
        ),
        # an unclosed fence runs to the end (CommonMark)
        (f"{FENCE}js\nlet a;\nlet b;\n", [("code", "let a;\nlet b;", "js")]),
        # tildes, a longer fence holding a shorter one, an info string with a path
        (f"~~~\n{FENCE}\n~~~", [("code", FENCE, "")]),
        (f"````md\n{FENCE}py\nx\n{FENCE}\n````", [("code", f"{FENCE}py\nx\n{FENCE}", "md")]),
        (f"{FENCE}python app/util.py\npass\n{FENCE}", [("code", "pass", "python app/util.py")]),
        # paragraphs are separate segments (so a stream re-renders only the last one); a list
        # stays with the paragraph before it, so a loose list renders as one list
        (
            "One.\n\nTwo.\n\n- a\n\n- b",
            [("markdown", "One.", ""), ("markdown", "Two.\n\n- a\n\n- b", "")],
        ),
        # a fence indented four spaces is list content, left to the markdown renderer
        (
            "1. step\n\n    ```\n    x\n    ```",
            [("markdown", "1. step\n\n    ```\n    x\n    ```", "")],
        ),
        # backticks inside the info string: inline code, not a fence
        ("``` not `a` fence", [("markdown", "``` not `a` fence", "")]),
    ],
)
def test_segments(reply: str, expected: list[tuple[str, str, str]]) -> None:
    segments = segments_of(reply)
    assert [(s.kind, s.text, s.info) for s in segments] == expected
    assert all(s.closed for s in segments)


@pytest.mark.parametrize(
    "reply",
    [
        f"Try:\n\n{FENCE}python\ndef f():\n    return 1\n{FENCE}\n\nThen **run** it.\n",
        f"A\n\nB\n\n{FENCE}\nx\n{FENCE}",
        f"{FENCE}js\nlet a;\n",
        "No code at all, but\n\ntwo paragraphs.",
    ],
)
@pytest.mark.parametrize("step", [1, 3, 7])
def test_a_streamed_reply_ends_as_the_whole_reply(reply: str, step: int) -> None:
    seg = StreamSegmenter()
    for end in range(step, len(reply) + step, step):
        closed = [s for s in seg.segments if s.closed]
        done = closed[-1].end if closed else 0
        first = seg.update(reply[:end])
        assert 0 <= first <= len(seg.segments)
        # only the open tail is re-read, never the segments closed before this update
        assert seg.rendered_chars == len(reply[:end]) - done
    seg.update(reply, final=True)
    assert seg.segments == segments_of(reply)


def test_an_update_that_is_not_an_extension_starts_over() -> None:
    seg = StreamSegmenter()
    seg.update("Half of a cloud answer\n\nmore")
    assert seg.update("A local answer", final=True) == 0
    assert [s.text for s in seg.segments] == ["A local answer"]


@pytest.mark.parametrize(
    ("info", "language", "path"),
    [
        ("python", "python", ""),
        ("py", "python", ""),
        ("Python3", "python", ""),
        ("ts", "typescript", ""),
        ("bash", "shell", ""),
        ("python app/x.py", "python", "app/x.py"),
        ("app/x.py", "python", "app/x.py"),
        ('py title="x.py"', "python", "x.py"),
        ("rust path=src/main.rs", "rust", "src/main.rs"),
        ("{.python}", "python", ""),
        ("", "plaintext", ""),
        ("klingon", "plaintext", ""),
    ],
)
def test_fence_language(info: str, language: str, path: str) -> None:
    lang, hint = fence_language(info)
    assert (lang.id, hint) == (language, path)


@pytest.mark.parametrize(
    ("source", "present", "absent"),
    [
        ("**bold** and `code`", ["<strong>bold</strong>", "<code>code</code>"], []),
        ("<script>alert(1)</script>", ["&lt;script&gt;"], ["<script>"]),  # no raw HTML
        ("| a | b |\n|---|---|\n| 1 | 2 |", ["<table>", "<td>1</td>"], []),
        ("~~gone~~", ["<s>gone</s>"], []),
    ],
)
def test_render_markdown(source: str, present: list[str], absent: list[str]) -> None:
    html = render_markdown(source)
    for part in present:
        assert part in html
    for part in absent:
        assert part not in html
