"""Which changed lines tier 2 may question: slips, not rewrites.

Tier 2 scores a changed line against HEAD's (``surprise``): a line the model finds much less
likely than HEAD's is flagged. Injected bugs are slips -- one to three tokens: an operator
turned, two arguments swapped, one name for another, ``+ 1``. A developer's ordinary edits
are mostly not: replayed over 40 functions changed by real commits of httpx, jinja and
requests (``python -m bench bugs --real-edits 40``, 2026-12-05, 1.5B), the score flagged 17
(0.425), with margins as large as the injected bugs'. Among them: docstrings and comments
reworded, a string's text changed, a call rewritten, an ``except`` that names its error.

So a change is questioned only when it is a slip:

- at most ``MAX_SLIP_TOKENS`` tokens differ (difflib over the lines' tokens; a string literal
  is one token, a comment is left out);
- some differing token is code: not only string literals' text;
- its new lines are code lines, not inside a multi-line string (a docstring's middle) or
  comment lines.
"""

from __future__ import annotations

import difflib
import io
import re
import textwrap
import tokenize
from collections.abc import Sequence

from .contrast import Change

__all__ = ["MAX_SLIP_TOKENS", "is_slip", "prose_lines", "slip_tokens"]

MAX_SLIP_TOKENS = 4

_TOKEN = re.compile(
    r"""
    (?P<str>[rRbBuUfF]{0,2}(?:\"\"\"|''').*$
      | [rRbBuUfF]{0,2}"(?:\\.|[^"\\])*"?
      | [rRbBuUfF]{0,2}'(?:\\.|[^'\\])*'?)
    | (?P<com>\#.*$)
    | (?P<word>\w+)
    | (?P<op>==|!=|<=|>=|\*\*|//|->|<<|>>|:=|[-+*/%&|^@]=|\S)
    """,
    re.VERBOSE,
)


def _tokens(lines: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, text) of each token, comments left out."""
    out: list[tuple[str, str]] = []
    for line in lines:
        for match in _TOKEN.finditer(line):
            kind = match.lastgroup or "op"
            if kind != "com":
                out.append((kind, match.group()))
    return out


def slip_tokens(old: Sequence[str], new: Sequence[str]) -> tuple[int, bool]:
    """How many tokens differ between ``old`` and ``new`` lines (the larger side of each
    difference), and whether any differing token is code (not a string literal)."""
    a, b = _tokens(old), _tokens(new)
    matcher = difflib.SequenceMatcher(None, [t for _, t in a], [t for _, t in b], autojunk=False)
    size = 0
    code = False
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        size += max(i2 - i1, j2 - j1)
        code = code or any(kind != "str" for kind, _ in (*a[i1:i2], *b[j1:j2]))
    return size, code


def prose_lines(function_text: str) -> set[int]:
    """0-based lines of ``function_text`` with no code: inside a string that spans lines
    (a docstring's middle and its ends, when nothing else is on them) or a comment alone.
    Empty when the text does not tokenize (then every line counts as code)."""
    text = textwrap.dedent(function_text)
    code: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and tok.start[0] != tok.end[0]:
                continue  # a string over lines: prose unless code shares its lines
            if tok.type not in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.ENDMARKER,
                tokenize.STRING,
            ):
                code.update(range(tok.start[0] - 1, tok.end[0]))
            elif tok.type == tokenize.STRING:
                code.add(tok.start[0] - 1)  # a one-line string is part of a code line
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set()
    total = len(text.splitlines())
    return {i for i in range(total) if i not in code}


def is_slip(change: Change, function_start: int, prose: set[int]) -> bool:
    """Whether tier 2 may question ``change`` (see the module docstring); ``prose``:
    ``prose_lines`` of the buffer's function, which starts at file line ``function_start``."""
    rows = range(change.start - function_start, change.end - function_start + 1)
    if all(row in prose for row in rows):
        return False
    size, code = slip_tokens(change.old, change.new)
    return 0 < size <= MAX_SLIP_TOKENS and code
