"""Comment toggling, written as before/after tables."""

import pytest

from forecode_core.text.comments import toggle_block_comment, toggle_line_comment


@pytest.mark.parametrize(
    ("before", "prefix", "after"),
    [
        (["x = 1"], "#", ["# x = 1"]),
        (["# x = 1"], "#", ["x = 1"]),
        (["#x = 1"], "#", ["x = 1"]),
        (["    a()", "", "        b()"], "#", ["    # a()", "", "    #     b()"]),
        (["    # a()", "", "    #     b()"], "#", ["    a()", "", "        b()"]),
        (["// a", "b"], "//", ["// // a", "// b"]),  # mixed: comment all, like VS Code
        (["", "  "], "#", ["", "  "]),
        (["\tif x:", "\t\ty"], "#", ["\t# if x:", "\t# \ty"]),
    ],
)
def test_toggle_line_comment(before: list[str], prefix: str, after: list[str]) -> None:
    assert toggle_line_comment(before, prefix) == after
    if any(ln.strip() for ln in before) and not all(
        ln.lstrip().startswith(prefix) for ln in before if ln.strip()
    ):
        assert toggle_line_comment(after, prefix) == before  # toggling twice restores


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["<p>hi</p>"], ["<!-- <p>hi</p> -->"]),
        (["  <a>", "  </a>"], ["  <!-- <a>", "  </a> -->"]),
        (["", "<b/>", ""], ["", "<!-- <b/> -->", ""]),
    ],
)
def test_toggle_block_comment_round_trip(before: list[str], after: list[str]) -> None:
    assert toggle_block_comment(before, "<!--", "-->") == after
    assert toggle_block_comment(after, "<!--", "-->") == before
