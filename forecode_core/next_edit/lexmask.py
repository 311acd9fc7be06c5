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
    nested = 0  # inside an f-string (Python 3.12+ tokenizes its fields): _python_string reads it
    read_to = 0  # where the last string read ended (3.11 splits f"{d["k"]}" in three tokens)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            start = line_starts[min(tok.start[0], len(line_starts)) - 1] + tok.start[1]
            if tok.type in (tokenize.STRING, _FSTRING_START) and not nested and start >= read_to:
                quote = tok.string.lstrip(_PREFIX_CHARS)[:3]
                quote = quote if quote in ("'''", '"""') else quote[:1]
                quote_at = start + len(tok.string) - len(tok.string.lstrip(_PREFIX_CHARS))
                read_to = _python_string(text, start, quote_at, quote, spans)
            elif tok.type == tokenize.COMMENT and not nested and start >= read_to:
                spans.append((start, line_starts[tok.end[0] - 1] + tok.end[1], Kind.COMMENT))
            nested += (tok.type == _FSTRING_START) - (tok.type == _FSTRING_END)
    except (tokenize.TokenError, SyntaxError):
        return python_like_mask(text)
    return LexMask.from_spans(spans)


# Python 3.12 tokenizes f-strings in parts; older Pythons have one STRING token (never -1).
_FSTRING_START: int = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END: int = getattr(tokenize, "FSTRING_END", -1)


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


# ---------------------------------------------------------------- Python f-strings

_Span = tuple[int, int, Kind]
_PREFIX_CHARS = "rRbBuUfF"


def _prefix_start(text: str, quote_at: int, lo: int) -> int:
    """Where the string whose quote is at ``quote_at`` starts: before its prefix of up to two
    of ``rRbBuUfF`` letters (none when a word character precedes them), not before ``lo``."""
    start = quote_at
    while start > lo and text[start - 1] in _PREFIX_CHARS and start > quote_at - 2:
        start -= 1
    if start > lo and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return quote_at
    return start


class _TooDeep(Exception):
    """Fields nested past ``_MAX_NESTING``: the outermost literal is read as a plain string."""


#: Nested f-strings and format-spec fields read as such (CPython allows 2 spec levels and
#: some 150 f-string levels; real code has one or two): deeper, the scan stays linear.
_MAX_NESTING = 8


def _python_string(
    text: str, start: int, quote_at: int, quote: str, out: list[_Span], *, level: int = 0
) -> int:
    """Append the Python string at ``start`` (its quote ``quote`` at ``quote_at``) to ``out``
    and return its end. An f-string adds its text parts only: the expressions of its
    replacement fields are code (``_fstring``). ``level``: how deep in fields this string is;
    past ``_MAX_NESTING`` the outermost f-string is one plain string again."""
    prefix = text[start:quote_at].lower()
    if "f" in prefix:
        raw = "r" in prefix
        if level > _MAX_NESTING:
            raise _TooDeep
        if level:
            return _fstring(text, start, quote_at, quote, raw, out, level)
        parts: list[_Span] = []
        try:
            end = _fstring(text, start, quote_at, quote, raw, parts, 0)
        except _TooDeep:
            pass
        else:
            out.extend(parts)
            return end
    end = _string_end(text, quote_at, quote)
    out.append((start, end, Kind.STRING))
    return end


# How a stretch of f-string text or a field's expression stopped: at the string's closing
# quote, a field's "{", a field's closing "}", the line's end (a one-line quote left open), or
# the text's end; an expression also at "!" (conversion), ":" (format spec) or "=" ({x=}).
_QUOTE, _FIELD, _CLOSE, _EOL, _EOF = "quote", "field", "close", "eol", "eof"
_CONV, _SPEC, _SELF = "conv", "spec", "self"


def _fstring(
    text: str, start: int, quote_at: int, quote: str, raw: bool, out: list[_Span], level: int
) -> int:
    """Scan the f-string from ``start`` (its prefix) whose ``quote`` opens at ``quote_at``:
    append its text parts (prefix and quotes, literal text with ``{{`` ``}}``, the braces, a
    conversion, a format spec's text, the ``=`` of ``{x=}``) as strings, leave each field's
    expression code (a string inside it is a string again, nested f-strings recursively), and
    return the end. Quotes inside a field open a nested string (Python 3.12's rule; older
    Pythons allow only the other quote there, which reads the same); a one-line f-string
    ends at its line's end when left open, also inside a field."""
    pos = quote_at + len(quote)
    lit = start  # where the current text part began
    while True:
        pos, stop = _text_part(text, pos, quote, raw, in_spec=False)
        if stop == _FIELD:
            out.append((lit, pos + 1, Kind.STRING))
            pos, lit, stop = _replacement(text, pos + 1, quote, raw, out, level)
            if stop == _CLOSE:
                continue
        if stop == _QUOTE:
            pos += len(quote)
        out.append((lit, pos, Kind.STRING))
        return pos


def _text_part(text: str, pos: int, quote: str, raw: bool, *, in_spec: bool) -> tuple[int, str]:
    """Literal f-string text from ``pos``: where it stops and why. ``{{`` and ``}}`` are text
    (in a format spec every ``{`` opens a nested field and ``}`` closes the spec's field);
    a backslash escapes the next character but never a brace, ``\\N{...}`` is one escape."""
    n = len(text)
    one_line = len(quote) == 1
    while pos < n:
        c = text[pos]
        if c == "\\" and pos + 1 < n:
            if not raw and text.startswith("N{", pos + 1):
                close = text.find("}", pos + 3)
                pos = n if close < 0 else close + 1
            else:
                pos += 1 if text[pos + 1] in "{}" else 2
            continue
        if text.startswith(quote, pos):
            return pos, _QUOTE
        if c == "\n" and one_line:
            return pos, _EOL
        if c == "{":
            if in_spec or not text.startswith("{", pos + 1):
                return pos, _FIELD
            pos += 2
            continue
        if c == "}":
            if in_spec:
                return pos, _CLOSE
            pos += 2 if text.startswith("}", pos + 1) else 1
            continue
        pos += 1
    return n, _EOF


def _replacement(
    text: str, pos: int, quote: str, raw: bool, out: list[_Span], level: int
) -> tuple[int, int, str]:
    """A replacement field from ``pos`` (just past its ``{``): its expression is code, then
    ``=``, a ``!r`` conversion and a format spec are text, the spec's own ``{...}`` fields
    again code. Returns (the position after the field's ``}`` or where the string stopped,
    where the text part that follows the expression began, _CLOSE or why it stopped)."""
    n = len(text)
    pos, stop = _expression(text, pos, quote, out, level)
    lit = pos
    if stop == _SELF:
        pos += 1
        while pos < n and text[pos] in " \t":
            pos += 1
        stop = _CONV if text.startswith("!", pos) else _SPEC if text.startswith(":", pos) else stop
    if stop == _CONV:
        while pos < n and text[pos] not in ":}\n" and not text.startswith(quote, pos):
            pos += 1
        stop = _SPEC if text.startswith(":", pos) else _CLOSE if text.startswith("}", pos) else ""
    if stop == _SPEC:
        pos += 1
        while True:
            pos, stop = _text_part(text, pos, quote, raw, in_spec=True)
            if stop != _FIELD:
                break
            out.append((lit, pos + 1, Kind.STRING))
            if level >= _MAX_NESTING:
                raise _TooDeep
            pos, lit, stop = _replacement(text, pos + 1, quote, raw, out, level + 1)
            if stop != _CLOSE:
                return pos, lit, stop
    if stop in (_CLOSE, _SELF, ""):  # _SELF here: "{x=" then neither "!" nor ":"
        if text.startswith("}", pos):
            return pos + 1, lit, _CLOSE
        return pos, lit, _QUOTE if text.startswith(quote, pos) else _EOL if pos < n else _EOF
    return pos, lit, stop


def _expression(text: str, pos: int, quote: str, out: list[_Span], level: int) -> tuple[int, str]:
    """A replacement field's expression from ``pos``: code up to a top-level ``}``, ``!``
    (not ``!=``), ``:``, or a ``=`` that ends ``{x=}``; strings inside it (any quote, a
    prefix, f-strings recursively) and ``#`` comments go to ``out``."""
    n = len(text)
    first = pos
    depth = 0
    while pos < n:
        c = text[pos]
        if c in "'\"":
            at = _prefix_start(text, pos, first)
            q = c * 3 if text.startswith(c * 3, pos) else c
            pos = _python_string(text, at, pos, q, out, level=level + 1)
            continue
        if c == "\n" and len(quote) == 1:
            return pos, _EOL
        if c == "#":
            eol = text.find("\n", pos)
            eol = n if eol < 0 else eol
            out.append((pos, eol, Kind.COMMENT))
            pos = eol
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0 and c == "}":
                return pos, _CLOSE
            depth = max(0, depth - 1)
        elif depth == 0:
            stop = _top_level_stop(text, pos)
            if stop is not None:
                return pos, stop
        pos += 1
    return n, _EOF


def _top_level_stop(text: str, pos: int) -> str | None:
    """Whether the character at ``pos``, outside brackets in a field, ends its expression:
    ``!`` but ``!=``, ``:``, and ``=`` that is no comparison and only blanks before ``}``,
    ``!`` or ``:`` follow (``{x=}``, ``{x = !r}``)."""
    c = text[pos]
    nxt = text[pos + 1 : pos + 2]
    if c == "!":
        return None if nxt == "=" else _CONV
    if c == ":":
        return _SPEC
    if c == "=" and nxt != "=" and text[pos - 1] not in "=!<>":
        k = pos + 1
        while k < len(text) and text[k] in " \t":
            k += 1
        if text[k : k + 1] in ("}", "!", ":") and k < len(text):
            return _SELF
    return None


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
        elif hash_comments:  # string prefixes: r"", b'', f"""...
            start = _prefix_start(text, start, 0)
            end = _python_string(text, start, m.start(), tok, spans)
        else:
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
