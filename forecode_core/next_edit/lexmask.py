"""Where a text's strings and comments are, as plain data: the lexer's classification that
edit-pattern propagation matches around.

A ``LexMask`` is the sorted, non-overlapping spans of a text that are not code, each a
string or a comment; everything else is code. The editor fills one from Scintilla's style
runs (``LexMask.from_spans``; offsets are the caller's: ``str`` indices here, so the editor
converts its UTF-8 byte positions), tests fill one from marked text, and ``mask_for`` is a
fallback without Qt: a small scanner for Python-like (``#``, quotes, triple quotes) or
C-like (``//``, ``/* */``, quotes, backticks) syntax, or the stdlib ``tokenize`` for Python
where it parses (``exact=True``). Every scan is linear: the scanner jumps between quote and
comment starts with a fixed pattern and ``str.find``; nothing is compiled from user text.
"""

from __future__ import annotations

import io
import re
import tokenize
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "KIND_CODES",
    "Kind",
    "LexMask",
    "c_like_mask",
    "mask_for",
    "mask_from_style_kinds",
    "prefers_scanner",
    "python_like_mask",
    "python_mask",
]


class Kind(Enum):
    CODE = "code"
    STRING = "string"
    COMMENT = "comment"


@dataclass(frozen=True)
class LexMask:
    """Non-code spans, sorted by start and disjoint: ``starts[i]..ends[i]`` is ``kinds[i]``."""

    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    kinds: tuple[Kind, ...] = ()

    @classmethod
    def from_spans(cls, spans: Iterable[tuple[int, int, Kind]]) -> LexMask:
        """From (start, end, kind) runs in any order; CODE runs and empty runs are dropped,
        adjacent runs of one kind merged; an overlap keeps the earlier run."""
        starts: list[int] = []
        ends: list[int] = []
        kinds: list[Kind] = []
        for start, end, kind in sorted(spans, key=lambda s: (s[0], s[1])):
            if kind is Kind.CODE or end <= start:
                continue
            if ends and start < ends[-1]:
                start = ends[-1]
                if end <= start:
                    continue
            if ends and start == ends[-1] and kinds[-1] is kind and kind is Kind.COMMENT:
                ends[-1] = end
                continue
            starts.append(start)
            ends.append(end)
            kinds.append(kind)
        return cls(tuple(starts), tuple(ends), tuple(kinds))

    def span_at(self, pos: int) -> tuple[int, int, Kind] | None:
        """The non-code span holding ``pos`` (start <= pos < end), or None in code."""
        i = bisect_right(self.starts, pos) - 1
        if i >= 0 and pos < self.ends[i]:
            return self.starts[i], self.ends[i], self.kinds[i]
        return None

    def span_ending_at(self, pos: int) -> tuple[int, int, Kind] | None:
        """The non-code span whose end is ``pos``, or None."""
        i = bisect_right(self.starts, pos - 1) - 1
        if i >= 0 and self.ends[i] == pos:
            return self.starts[i], self.ends[i], self.kinds[i]
        return None

    def spans(self) -> list[tuple[int, int, Kind]]:
        return list(zip(self.starts, self.ends, self.kinds, strict=True))

    def kind_at(self, pos: int) -> Kind:
        span = self.span_at(pos)
        return Kind.CODE if span is None else span[2]


PYTHON_SUFFIXES = frozenset({".py", ".pyi", ".pyw"})
_PY_HASH_SUFFIXES = frozenset(
    {".sh", ".bash", ".rb", ".pl", ".r", ".toml", ".yaml", ".yml", ".cfg", ".conf", ".cmake"}
)
# Fixed patterns (never built from user text): where the next string or comment may start.
_PY_START = re.compile(r"#|'''|\"\"\"|'|\"")
_C_START = re.compile(r"//|/\*|\"|'|`")


def mask_for(text: str, path: str = "", *, exact: bool = False) -> LexMask:
    """The fallback mask for a file by its name: the Python-like scanner for Python and other
    ``#``-comment languages, else the C-like one. ``exact`` asks the stdlib tokenizer for a
    Python file (the scanner where it does not parse): the same spans on ordinary code (the
    stdlib's argparse and typing, tests/test_next_edit_propagation.py) but some 20 times
    slower (30 ms against 1.5 ms on argparse.py), over propagation's 20 ms budget."""
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix in PYTHON_SUFFIXES:
        return python_mask(text) if exact else python_like_mask(text)
    if suffix in _PY_HASH_SUFFIXES:
        return python_like_mask(text)
    return c_like_mask(text)


def python_mask(text: str) -> LexMask:
    """Strings and comments by the stdlib tokenizer; the scanner when it does not parse."""
    line_starts = [0]
    newline = text.find("\n")
    while newline >= 0:
        line_starts.append(newline + 1)
        newline = text.find("\n", newline + 1)
    spans: list[tuple[int, int, Kind]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.STRING, tokenize.COMMENT):
                kind = Kind.STRING if tok.type == tokenize.STRING else Kind.COMMENT
                start = line_starts[tok.start[0] - 1] + tok.start[1]
                end = line_starts[tok.end[0] - 1] + tok.end[1]
                spans.append((start, end, kind))
    except (tokenize.TokenError, SyntaxError):
        return python_like_mask(text)
    return LexMask.from_spans(spans)


def _string_end(text: str, start: int, quote: str) -> int:
    """The end of a string opened by ``quote`` at ``start``: past the closing quote, honouring
    backslashes; a one-line quote ends at the line's end when unclosed."""
    n = len(text)
    pos = start + len(quote)
    multiline = len(quote) == 3 or quote == "`"
    while pos < n:
        close = text.find(quote, pos)
        stop = n if close < 0 else close
        if not multiline:
            newline = text.find("\n", pos, stop)
            if newline >= 0:
                return newline
        if close < 0:
            return n
        backslashes = 0
        k = close - 1
        while k >= pos and text[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2 == 0:
            return close + len(quote)
        pos = close + 1
    return n


def _scan(text: str, starts: re.Pattern[str], hash_comments: bool) -> LexMask:
    spans: list[tuple[int, int, Kind]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = starts.search(text, pos)
        if m is None:
            break
        tok = m.group()
        start = m.start()
        if tok == "#" or tok == "//":
            newline = text.find("\n", start)
            end = n if newline < 0 else newline
            spans.append((start, end, Kind.COMMENT))
        elif tok == "/*":
            close = text.find("*/", start + 2)
            end = n if close < 0 else close + 2
            spans.append((start, end, Kind.COMMENT))
        else:
            if hash_comments:  # string prefixes: r"", b'', f"""...
                while start > 0 and text[start - 1] in "rRbBuUfF" and start > m.start() - 2:
                    start -= 1
                if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
                    start = m.start()
            end = _string_end(text, m.start(), tok)
            spans.append((start, end, Kind.STRING))
        pos = max(end, start + 1)
    return LexMask.from_spans(spans)


def python_like_mask(text: str) -> LexMask:
    """``#`` comments and ``'`` ``"`` ``'''`` ``\"\"\"`` strings (with r/b/u/f prefixes)."""
    return _scan(text, _PY_START, hash_comments=True)


def c_like_mask(text: str) -> LexMask:
    """``//`` and ``/* */`` comments, ``'`` ``"`` strings and backtick template strings."""
    return _scan(text, _C_START, hash_comments=False)


# ---------------------------------------------------------------- the editor's lexer styles

#: One byte per text byte in ``mask_from_style_kinds``: what the editor's lexer styled it as.
KIND_CODES: dict[Kind, int] = {Kind.CODE: 0, Kind.STRING: 1, Kind.COMMENT: 2}
_KIND_OF_CODE = {1: Kind.STRING, 2: Kind.COMMENT}
_STYLE_RUNS = re.compile(rb"\x01+|\x02+")  # fixed: runs of string or comment codes


def prefers_scanner(path: str) -> bool:
    """Whether propagation reads ``path``'s strings and comments with this module's scanner
    (Python: the propagation rules are tuned on it, and it agrees with ``tokenize``) rather
    than with the editor's lexer styles (every other language with a lexer: the C-like
    scanner cannot know a JavaScript regex literal, a C string continued by a backslash, a
    Rust raw string)."""
    name = path.rsplit("/", 1)[-1]
    return "." in name and name[name.rfind(".") :].lower() in PYTHON_SUFFIXES


def mask_from_style_kinds(text: str, kinds: bytes) -> LexMask:
    """The mask from the lexer's styles: ``kinds`` holds one ``KIND_CODES`` value per byte of
    ``text`` in UTF-8 (the editor maps each lexer's style numbers to string / comment / code,
    ``app.ui.lex_kinds``). Runs of one kind become spans in ``str`` offsets; bytes past
    ``kinds``' end are code, codes past the text's end are ignored. Linear: one fixed pattern
    over the codes and one decode per span boundary's stretch."""
    encoded = text.encode("utf-8", "surrogatepass")
    kinds = kinds[: len(encoded)]
    runs = [
        (m.start(), m.end(), _KIND_OF_CODE[kinds[m.start()]]) for m in _STYLE_RUNS.finditer(kinds)
    ]
    if not runs:
        return LexMask()
    if len(encoded) == len(text):  # ASCII: bytes are characters
        return LexMask.from_spans(runs)
    to_char = _byte_to_char(encoded, sorted({b for s, e, _ in runs for b in (s, e)}))
    return LexMask.from_spans((to_char[s], to_char[e], kind) for s, e, kind in runs)


def _byte_to_char(encoded: bytes, offsets: list[int]) -> dict[int, int]:
    """``str`` offsets of sorted UTF-8 byte ``offsets`` (one inside a character counts from
    that character's first byte)."""
    out: dict[int, int] = {}
    prev_b = prev_c = 0
    for b in offsets:
        at = b
        while 0 < at < len(encoded) and encoded[at] & 0xC0 == 0x80:
            at -= 1
        prev_c += len(encoded[prev_b:at].decode("utf-8", "surrogatepass"))
        prev_b = at
        out[b] = prev_c
    return out
