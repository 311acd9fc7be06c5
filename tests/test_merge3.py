"""The three-way merge a review's accept uses when the buffer changed meanwhile (issue 16:
"Accepting applies the reviewed diff to the user's buffers (three-way when the user edited
meanwhile)"): plain strings in, the merged text or ``None`` (a conflict) out."""

from __future__ import annotations

import pytest

from forecode_core.apply.merge import merge3

BASE = "import os\n\n\ndef a():\n    return 1\n\n\ndef b():\n    return 2\n"


@pytest.mark.parametrize(
    ("ours", "theirs", "merged"),
    [
        # the user added a line at the top; the review changed b: both kept
        (
            "# typed\n" + BASE,
            BASE.replace("return 2", "return 3"),
            "# typed\n" + BASE.replace("return 2", "return 3"),
        ),
        # the user changed a, the review changed b
        (
            BASE.replace("return 1", "return 10"),
            BASE.replace("return 2", "return 3"),
            BASE.replace("return 1", "return 10").replace("return 2", "return 3"),
        ),
        # the review adds a function at the end, the user removed the import
        (
            BASE.replace("import os\n", ""),
            BASE + "\n\ndef c():\n    return 3\n",
            BASE.replace("import os\n", "") + "\n\ndef c():\n    return 3\n",
        ),
        # both made the same change: once
        (
            BASE.replace("return 2", "return 3"),
            BASE.replace("return 2", "return 3"),
            BASE.replace("return 2", "return 3"),
        ),
        # the same change and another of the review's
        (
            BASE.replace("return 2", "return 3"),
            BASE.replace("return 2", "return 3").replace("import os", "import sys"),
            BASE.replace("return 2", "return 3").replace("import os", "import sys"),
        ),
        # nothing changed on one side: the other side's text
        (BASE, BASE.replace("return 1", "return 5"), BASE.replace("return 1", "return 5")),
        (BASE.replace("return 1", "return 5"), BASE, BASE.replace("return 1", "return 5")),
        # CRLF lines keep their endings
        ("X\r\ny\r\nz\r\nw\r\n", "x\r\ny\r\nz\r\nW\r\n", "X\r\ny\r\nz\r\nW\r\n"),
        # conflicts: the same line changed differently
        (BASE.replace("return 2", "return 20"), BASE.replace("return 2", "return 3"), None),
        # an insertion at the same place
        (BASE + "# mine\n", BASE + "# theirs\n", None),
        # neighbouring lines changed by each side (git's rule)
        (
            BASE.replace("def b():", "def b(x):"),
            BASE.replace("return 2", "return 3"),
            None,
        ),
        # one side deleted lines the other changed
        (BASE.replace("def a():\n    return 1\n", ""), BASE.replace("return 1", "return 9"), None),
    ],
)
def test_merge3(ours: str, theirs: str, merged: str | None) -> None:
    base = BASE if "\r\n" not in ours else "x\r\ny\r\nz\r\nw\r\n"
    assert merge3(base, ours, theirs) == merged
    # symmetric: which side is the buffer does not change the answer
    assert merge3(base, theirs, ours) == merged


def test_a_last_line_without_an_end_is_merged_as_a_line() -> None:
    base = "a\nb\nc\nd"
    assert merge3(base, "A\nb\nc\nd", "a\nb\nc\nD") == "A\nb\nc\nD"
