"""A completion of several lines in the middle of a line ends before a later line that writes
the line's rest again (fill-in-the-middle: the middle ends where the suffix begins). Seen in a
user run: a docstring ``\"\"\"Return ˇ\"\"\"`` took four lines and left the closing quotes
after a ``return``."""

from __future__ import annotations

import pytest

from forecode_core.completion.postprocess import postprocess

DOC_PREFIX = 'def dump_pretty(obj):\n    """Return '
DOC_SUFFIX = '"""\n'


@pytest.mark.parametrize(
    ("raw", "prefix", "suffix", "want"),
    [
        # mid-line: the completion writes the line's rest again later: it ends before it
        (
            'a pretty-printed JSON text of obj\n\n    """\n    return dumps(obj, indent=2)',
            DOC_PREFIX,
            DOC_SUFFIX,
            "a pretty-printed JSON text of obj",
        ),
        # a bracket in the rest: left to suffix_overlap and the bracket rule
        ("x,\n    y", "f(", ")\n", "x,\n    y"),
        # the rest is not written again: the lines stay
        ("a JSON text\n    of obj", DOC_PREFIX, DOC_SUFFIX, "a JSON text\n    of obj"),
        # at the line's end: several lines are fine
        ("a = 1\n    b = 2", "def f():\n    ", "\n", "a = 1\n    b = 2"),
        # the suggestion types the closers itself (they are overwritten): several lines stay
        ("path):\n    return path", "def main(", ")\n", "path):\n    return path"),
    ],
)
def test_a_mid_line_suggestion_ends_before_it_writes_the_lines_rest_again(
    raw: str, prefix: str, suffix: str, want: str
) -> None:
    got = postprocess(raw, prefix, suffix, "python")
    assert got.reason_dropped is None
    assert got.text == want
