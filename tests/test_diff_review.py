"""The review's hunks: ranges, low-entropy classification, accept/reject subsets, streaming.

Random edits (fixed seeds) of real files of the Python standard library that ships with the
interpreter check the properties the review relies on: accepting every hunk gives the new text
exactly, accepting none gives the original, any subset gives the text with exactly those hunks
applied, CRLF files stay CRLF, and a hunk reported final while the new file streams in is a
hunk of the finished diff.
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest

from forecode_core.apply.review import (
    REJOIN_WINDOW,
    Hunk,
    apply_hunks,
    diff_hunks,
    final_hunks,
    split_lines,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FILES = ("textwrap.py", "shlex.py", "json/encoder.py")


def stdlib(name: str) -> str:
    return (STDLIB / name).read_text(encoding="utf-8")


def kinds(original: str, new: str) -> list[str]:
    return [h.kind for h in diff_hunks(original, new)]


def test_split_lines_keeps_endings_and_splits_on_newline_only() -> None:
    assert split_lines("a\r\nb\x0cc\nd") == ["a\r\n", "b\x0cc\n", "d"]
    assert split_lines("") == []
    assert split_lines("\n") == ["\n"]


def test_hunk_ranges_and_text() -> None:
    original = "a\nb\nc\nd\ne\n"
    new = "a\nB\nc\ne\nf\n"
    hunks = diff_hunks(original, new)
    assert [(h.old_start, h.old_end, h.new_start, h.new_end) for h in hunks] == [
        (1, 2, 1, 2),
        (3, 4, 3, 3),
        (5, 5, 4, 5),
    ]
    assert [(h.old_text, h.new_text) for h in hunks] == [("b\n", "B\n"), ("d\n", ""), ("", "f\n")]
    assert [h.index for h in hunks] == [0, 1, 2]
    assert diff_hunks(original, original) == ()


# (original, new, kinds of its hunks in order)
CLASSIFIED = {
    "indentation": (
        "if x:\n    y = 1\nz = 2\n",
        "if x:\n        y = 1\nz = 2\n",
        ["whitespace-only"],
    ),
    "trailing_spaces_and_blank_line": (
        "a = 1\nb = 2\n\nc = 3\n",
        "a = 1   \nb = 2\n\n\nc = 3\n",
        ["whitespace-only", "whitespace-only"],
    ),
    "line_ending": ("a = 1\r\nb = 2\r\n", "a = 1\nb = 2\r\n", ["whitespace-only"]),
    "spacing_that_joins_tokens_is_not_whitespace": ("x = a b\n", "x = ab\n", ["substantive"]),
    "rename_repeated": (
        "def f(width):\n    return width\n\nx = 1\n\nprint(width)\n",
        "def f(max_width):\n    return max_width\n\nx = 1\n\nprint(max_width)\n",
        ["rename", "rename"],
    ),
    "rename_once_is_substantive": ("a = width\nb = 2\n", "a = height\nb = 2\n", ["substantive"]),
    "rename_with_another_change": (
        "f(width)\nx = 1\ng(width)\n",
        "f(size)\nx = 1\ng(size + 1)\n",
        ["rename", "substantive"],
    ),
    "code_added": ("a = 1\n", "a = 1\nb = 2\n", ["substantive"]),
    "code_removed": ("a = 1\nb = 2\n", "a = 1\n", ["substantive"]),
}


@pytest.mark.parametrize("name", sorted(CLASSIFIED))
def test_classification(name: str) -> None:
    original, new, expected = CLASSIFIED[name]
    assert kinds(original, new) == expected


def test_classification_on_a_real_file() -> None:
    original = stdlib("textwrap.py")
    new = (
        original.replace("self.width", "self.max_width")
        .replace("        if self.expand_tabs:\n", "        if self.expand_tabs:   \n")
        .replace("    def _split(self, text):", "    def _split(self, text, limit=None):")
    )
    hunks = diff_hunks(original, new)
    by_kind = {
        k: [h for h in hunks if h.kind == k] for k in ("rename", "whitespace-only", "substantive")
    }
    assert len(by_kind["rename"]) == original.count("self.width") - 1  # two share a hunk
    assert all(h.renames == (("width", "max_width"),) for h in by_kind["rename"])
    assert [h.new_text for h in by_kind["whitespace-only"]] == ["        if self.expand_tabs:   \n"]
    assert [h.new_text for h in by_kind["substantive"]] == [
        "    def _split(self, text, limit=None):\n"
    ]


# ---------------------------------------------------------------------------------------------
# Accept / reject


def random_edit(text: str, rng: random.Random, edits: int = 6) -> str:
    """``text`` with a few random line edits of the kinds an apply makes."""
    lines = split_lines(text)
    eol = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    for _ in range(edits):
        if not lines:
            break
        k = rng.randrange(len(lines))
        op = rng.choice(("insert", "delete", "replace", "indent", "rename", "move"))
        body = lines[k].rstrip("\r\n")
        if op == "insert":
            lines[k:k] = [
                f"    inserted_{rng.randrange(1000)} = {k}{eol}" for _ in range(rng.randint(1, 3))
            ]
        elif op == "delete":
            del lines[k : k + rng.randint(1, 6)]
        elif op == "replace":
            lines[k] = f"{body} + 1{eol}" if body.strip() else f"pass{eol}"
        elif op == "indent":
            lines[k] = f"    {lines[k]}"
        elif op == "rename":
            lines = [x.replace("self", "this") for x in lines]
        else:
            chunk = lines[k : k + 3]
            del lines[k : k + 3]
            at = rng.randrange(len(lines) + 1)
            lines[at:at] = chunk
    if rng.random() < 0.3 and lines:  # the last line loses (or keeps) its newline
        lines[-1] = lines[-1].rstrip("\r\n")
    return "".join(lines)


def apply_by_hand(original: str, hunks: tuple[Hunk, ...], accepted: set[int]) -> str:
    lines = split_lines(original)
    for hunk in sorted(hunks, key=lambda h: h.old_start, reverse=True):
        if hunk.index in accepted:
            lines[hunk.old_start : hunk.old_end] = list(hunk.new_lines)
    return "".join(lines)


@pytest.mark.parametrize("seed", range(12))
def test_accepting_all_gives_the_new_text_and_none_the_original(seed: int) -> None:
    rng = random.Random(seed)
    original = stdlib(FILES[seed % len(FILES)])
    if seed % 2:
        original = original.replace("\n", "\r\n")
    for _ in range(4):
        new = random_edit(original, rng)
        hunks = diff_hunks(original, new)
        assert hunks
        everything = {h.index for h in hunks}
        assert apply_hunks(original, hunks, everything) == new
        assert apply_hunks(original, hunks, set()) == original
        for _ in range(5):
            subset = {i for i in everything if rng.random() < 0.5}
            text = apply_hunks(original, hunks, subset)
            assert text == apply_by_hand(original, hunks, subset)
            if seed % 2:  # a CRLF file stays CRLF whatever is accepted
                assert "\n" not in text.replace("\r\n", "")
            # What is left to review is exactly the hunks not accepted.
            rest = diff_hunks(text, new)
            assert len(rest) <= len(hunks) - len(subset) or not subset


def test_apply_hunks_refuses_hunks_of_another_text() -> None:
    hunks = diff_hunks("a\nb\n", "a\nc\n")
    with pytest.raises(ValueError, match="hunk 0 does not fit"):
        apply_hunks("x\ny\n", hunks, {0})


# ---------------------------------------------------------------------------------------------
# Streaming


def key(hunk: Hunk) -> tuple[object, ...]:
    return (
        hunk.index,
        hunk.old_start,
        hunk.old_end,
        hunk.new_start,
        hunk.new_end,
        hunk.old_lines,
        hunk.new_lines,
    )


@pytest.mark.parametrize("seed", range(8))
def test_streamed_final_hunks_are_hunks_of_the_finished_diff(seed: int) -> None:
    rng = random.Random(100 + seed)
    original = stdlib(FILES[seed % len(FILES)])
    new = random_edit(original, rng, edits=4)
    full = {key(h) for h in diff_hunks(original, new)}
    previous = 0
    step = max(1, len(new) // 60)
    for cut in [*range(0, len(new), step), len(new)]:
        final = final_hunks(original, new[:cut])
        assert {key(h) for h in final} <= full, f"cut at {cut}"
        assert len(final) >= previous  # what was final stays final
        previous = len(final)


def test_first_hunk_is_final_long_before_the_stream_ends() -> None:
    original = stdlib("textwrap.py")
    new = original.replace("import re\n", "import re\nimport sys\n", 1).replace(
        "def dedent(text):", "def dedent(text, strict=False):"
    )
    first, last = diff_hunks(original, new)
    lines = split_lines(new)
    # Final once REJOIN_WINDOW lines from its start have arrived, not before.
    arrived = "".join(lines[: first.new_start + REJOIN_WINDOW])
    assert [key(h) for h in final_hunks(original, arrived)] == [key(first)]
    assert final_hunks(original, arrived[:-1]) == ()  # the last line is not complete
    assert len(arrived) < len(new) / 20
    # The last hunk likewise, near the end.
    assert len(final_hunks(original, "".join(lines[: last.new_start + REJOIN_WINDOW - 1]))) == 1
    assert [
        key(h) for h in final_hunks(original, "".join(lines[: last.new_start + REJOIN_WINDOW]))
    ] == [key(first), key(last)]


def test_a_lone_blank_line_does_not_end_a_hunk() -> None:
    original = "".join(f"line {i}\n" if i % 5 else "\n" for i in range(1, 30))
    # Two changed lines around a blank one: one hunk (a matching blank line rejoins too
    # easily to end a change).
    new = original.replace("line 4\n", "LINE 4\n").replace("line 6\n", "LINE 6\n")
    (hunk,) = final_hunks(original, new)
    assert (hunk.old_start, hunk.old_end) == (3, 6)
    assert diff_hunks(original, new) == (hunk,)
