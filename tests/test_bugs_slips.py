"""Tier 2 questions slips, not rewrites (forecode_core.bugs.slips), as tables."""

from __future__ import annotations

import pytest

from forecode_core.bugs.contrast import Change
from forecode_core.bugs.slips import is_slip, prose_lines, slip_tokens


@pytest.mark.parametrize(
    ("old", "new", "size", "code"),
    [
        # the injected kinds: one to three tokens of code
        ("if a < b:", "if a >= b:", 1, True),
        ("return f(x, y)", "return f(y, x)", 4, True),
        ("total += item", "total += count", 1, True),
        ("end = start + n", "end = start + n + 1", 2, True),
        # real commits' edits the score flagged (bench bugs --real-edits, 2026-12-05)
        ('raise Err("Header %s bad")', 'raise Err("Value for %s is bad")', 1, False),
        ('"""Sends a GET request."""', 'r"""Sends a GET request."""', 1, False),
        ("x = 1  # old note", "x = 1  # new note", 0, False),
        ("data = await r.read(self.N, timeout)", "data = await r.read(", 6, True),
        # a small real edit is still a slip by size: the score's margin decides
        ("host = host.encode('idna').decode('u')", "host = idna.encode(host).decode('u')", 2, True),
    ],
)
def test_slip_tokens(old: str, new: str, size: int, code: bool) -> None:
    assert slip_tokens([old], [new]) == (size, code)


FUNCTION = '''    def get(self, url):
        r"""Sends a GET request.

        :param url: URL.
        """
        # say hello
        return self.request("GET", url)
'''


def test_prose_lines_are_docstrings_and_comment_lines() -> None:
    assert prose_lines(FUNCTION) == {1, 2, 3, 4, 5}
    assert prose_lines("def broken(:\n    '''\n") == set()  # no tokens: all code


@pytest.mark.parametrize(
    ("start", "old", "new", "slip"),
    [
        (17, 'return self.request("GET", url)', 'return self.request("POST", url)', False),
        (17, 'return self.request("GET", url)', 'return self.request("GET", uri)', True),
        (12, 'r"""Sends a GET request.', '"""Sends a GET request.', False),
        (14, ":param url: URL.", ":param url: the URL.", False),
        (16, "# say hello", "# say goodbye", False),
        (
            17,
            'return self.request("GET", url)',
            'return self.send(Request("GET", url)).json()',
            False,
        ),
    ],
)
def test_only_slips_in_code_are_questioned(start: int, old: str, new: str, slip: bool) -> None:
    change = Change(start, start, (old,), (new,))
    assert is_slip(change, 11, prose_lines(FUNCTION)) is slip
