"""Bracket balance outside strings and comments: a small scanner, no parser.

Used to snap the next-edit region (``input``) and to reject an answer that unbalances brackets
(``answer``). Comments: the language's line comment (``completion.prompt.comment_style``), and
``/* */`` where the line comment is ``//``. Strings: ``'``, ``"`` and, for C-like languages,
backticks; a triple quote for ``#`` languages (Python); a backslash escapes; a one-quote string
ends at the line's end. A string or comment left open at the end simply ends there.
"""

from __future__ import annotations

from dataclasses import dataclass

from forecode_core.completion.prompt import comment_style

__all__ = ["Balance", "balance", "line_depths"]

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


@dataclass(frozen=True)
class Balance:
    unclosed: int  # openers never closed
    unmatched: int  # closers with no opener, or the wrong one

    @property
    def errors(self) -> int:
        return self.unclosed + self.unmatched


def _code_chars(text: str, language: str) -> list[tuple[int, str]]:
    """``(offset, char)`` of every bracket in code (outside strings and comments)."""
    line_comment = comment_style(language)[0] if not comment_style(language)[1] else ""
    c_like = line_comment == "//"
    triple = line_comment == "#"
    quotes = "'\"`" if c_like else "'\""
    out: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if line_comment and text.startswith(line_comment, i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c_like and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif triple and text.startswith(ch * 3, i) and ch in "'\"":
            j = text.find(ch * 3, i + 3)
            i = n if j < 0 else j + 3
        elif ch in quotes:
            i += 1
            while i < n and text[i] != ch and (ch == "`" or text[i] != "\n"):
                i += 2 if text[i] == "\\" else 1
            i += 1
        else:
            if ch in _OPEN or ch in _CLOSE:
                out.append((i, ch))
            i += 1
    return out


def balance(text: str, language: str) -> Balance:
    """How far ``text``'s brackets (in code) are from balanced."""
    stack: list[str] = []
    unmatched = 0
    for _, ch in _code_chars(text, language):
        if ch in _OPEN:
            stack.append(_OPEN[ch])
        elif stack and stack[-1] == ch:
            stack.pop()
        else:
            unmatched += 1
    return Balance(len(stack), unmatched)


def line_depths(lines: list[str], language: str) -> list[int]:
    """The bracket depth (openers minus closers, in code) before each line and after the last:
    ``len(lines) + 1`` numbers, the first 0."""
    text = "".join(line + "\n" for line in lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    depths = [0] * (len(lines) + 1)
    brackets = _code_chars(text, language)
    depth, k = 0, 0
    for li, start in enumerate(starts):
        while k < len(brackets) and brackets[k][0] < start:
            depth += 1 if brackets[k][1] in _OPEN else -1
            k += 1
        depths[li] = depth
    return depths
