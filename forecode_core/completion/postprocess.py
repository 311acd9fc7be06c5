"""Turning a model's raw completion into the suggestion the editor shows, or dropping it.

``postprocess`` runs ``RULES`` in order. Each rule is a small function ``(text, ctx) -> text``
that trims, or ``None`` to drop the completion with the rule's ``reason``; every rule can be
called (and is tested) alone. The order matters and is all in the tuple:

1. ``truncated_tail``  the output hit the token limit: its last line is partial, remove it
2. ``single_line``     single-line mode: keep the first line
3. ``block_end``       stop where the completion leaves the cursor's block (by indentation in
                       Python/YAML, by a ``}`` closing the enclosing block in brace languages)
4. ``trailing_space``  strip trailing whitespace and blank lines
5. ``repeats_suffix``  drop: the completion's first lines are the suffix's next lines; trim
                       its last lines where they are the lines after the cursor line
   ``repeats_prefix``  drop: the completed cursor line is the line just above it again (a
                       small model looping: ``import traceback`` offered under itself, line
                       after line; a short line such as ``pass`` or ``}`` may repeat)
6. ``suffix_overlap``  trim the end that duplicates the text after the cursor on its line
7. ``mid_line``        end before a later line that writes the cursor line's rest again
8. ``empty``           drop: nothing left
9. ``brackets``        drop: more closing brackets than the code around the cursor leaves open
                       (or of the wrong kind); on a later line: keep the lines before it
10. ``syntax``          drop (Python): the completed cursor line does not parse, where a line
                       can be judged alone and the error is in the completion's part (an
                       error at the line's end is a line not finished yet: kept)

Between rules 4 and 5, ``overwritten`` decides how many characters of the cursor line's rest
the suggestion replaces (``Suggestion.overwrite``). The rest of the line may hold closers the
editor auto-inserted (``def main(ˇ)``) or the user typed: a suggestion that types them itself
(``path):``) replaces them when accepted, as VS Code's ghost text does, instead of leaving
``path):)``. The characters replaced must appear in the suggestion's first line in order (the
user's text is never lost, only retyped), and the line after accepting must close nothing twice
(``_fits``). Rules 5-10 then judge the text against the line as it will be after accepting: the
context's suffix without the replaced characters (so the bracket count and the parse see the
real line). The smallest ``overwrite`` that fits and passes rules 5-10 wins; 0 (insert before the
rest, after trimming an overlap at the end: ``suffix_overlap``) is tried first.

Line endings: ``\\r\\n`` is read as ``\\n`` in the output, prefix and suffix; the suggestion uses
``\\n`` (the editor converts to the document's line ending when inserting).

Brackets are counted roughly: ``()``, ``[]`` and ``{}`` outside strings and comments, found by a
small per-language scanner (quotes with backslash escapes, single-quoted and double-quoted
strings ending at a line end, triple-quoted / backtick strings spanning lines, line and block
comments). Not handled: raw strings, nested template expressions, heredocs, Rust lifetimes
(Rust's ``'`` is not a quote at all). Only the last ``SCAN_CHARS`` of the prefix and the first
``SCAN_CHARS`` of the suffix are scanned (from a line start), so a string or comment opened
before that window is missed. The suggestion and the suffix are scanned starting in the state the
prefix ended in (inside a string, say). Languages without a known syntax (Markdown, plain text)
skip the bracket rules.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "RULES",
    "SCAN_CHARS",
    "Context",
    "Rule",
    "Suggestion",
    "block_end",
    "brackets",
    "empty",
    "make_context",
    "mid_line",
    "overwritten",
    "postprocess",
    "repeats_prefix",
    "repeats_suffix",
    "single_line",
    "suffix_overlap",
    "syntax",
    "trailing_space",
    "truncated_tail",
]

SCAN_CHARS = 20_000
_REPEAT_LINES = 3  # suffix lines compared by repeats_suffix
_REPEAT_MIN_CHARS = 8  # a line shorter than this (``pass``, ``}``, ``x += 1``) may repeat
_TAB_WIDTH = 8

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}

INDENT_LANGUAGES = frozenset({"python", "yaml", "nim", "coffeescript"})
BRACE_LANGUAGES = frozenset(
    {
        "c",
        "cpp",
        "csharp",
        "java",
        "javascript",
        "typescript",
        "javascriptreact",
        "typescriptreact",
        "go",
        "rust",
        "kotlin",
        "swift",
        "scala",
        "dart",
        "php",
        "css",
        "scss",
        "less",
        "json",
        "jsonc",
        "zig",
    }
)


@dataclass(frozen=True)
class Suggestion:
    """``text`` replaces the first ``overwrite`` characters of the cursor line after the cursor
    (closers the suggestion types itself; module doc) and is inserted at the cursor."""

    text: str
    reason_dropped: str | None = None
    overwrite: int = 0


# ---------------------------------------------------------------------------------------------
# A rough lexer: where the brackets are, outside strings and comments


@dataclass(frozen=True)
class _Syntax:
    line_comments: tuple[str, ...]
    block_comment: tuple[str, str] | None
    quotes: tuple[tuple[str, bool], ...]  # (delimiter, spans lines), longest delimiters first


_C_QUOTES = (('"', False), ("'", False))
_JS_QUOTES = (('"', False), ("'", False), ("`", True))
_C_SYNTAX = _Syntax(("//",), ("/*", "*/"), _C_QUOTES)
_HASH_SYNTAX = _Syntax(("#",), None, (('"', False), ("'", False)))
_SYNTAXES: dict[str, _Syntax] = {
    "python": _Syntax(("#",), None, (('"""', True), ("'''", True), ('"', False), ("'", False))),
    **dict.fromkeys(
        ("javascript", "typescript", "javascriptreact", "typescriptreact"),
        _Syntax(("//",), ("/*", "*/"), _JS_QUOTES),
    ),
    "go": _Syntax(("//",), ("/*", "*/"), (('"', False), ("'", False), ("`", True))),
    "rust": _Syntax(("//",), ("/*", "*/"), (('"', False),)),
    **dict.fromkeys(
        (
            "c",
            "cpp",
            "csharp",
            "java",
            "kotlin",
            "swift",
            "scala",
            "dart",
            "zig",
            "scss",
            "less",
            "json",
            "jsonc",
        ),
        _C_SYNTAX,
    ),
    "php": _Syntax(("//", "#"), ("/*", "*/"), _C_QUOTES),
    "css": _Syntax((), ("/*", "*/"), _C_QUOTES),
    **dict.fromkeys(
        ("shell", "ruby", "perl", "r", "toml", "makefile", "nim", "coffeescript"), _HASH_SYNTAX
    ),
    "yaml": _Syntax(("#",), None, (('"', False),)),
    **dict.fromkeys(("sql", "lua", "haskell"), _Syntax(("--",), None, (("'", False),))),
}


@dataclass(frozen=True, slots=True)
class _InString:
    delimiter: str  # the quote that opened it (and closes it)
    # what ends it: an escape (skipped), the delimiter, or a line end for a one-line string
    ends: re.Pattern[str] = field(compare=False)


@dataclass(frozen=True, slots=True)
class _InComment:
    end: str  # what closes the block comment


# Scanner state: None in code, else in a string or a block comment (with what ends it).
_State = _InString | _InComment | None


@functools.cache
def _code_pattern(syntax: _Syntax) -> re.Pattern[str]:
    tokens = [*syntax.line_comments, *(q for q, _ in syntax.quotes)]
    if syntax.block_comment:
        tokens.append(syntax.block_comment[0])
    tokens.sort(key=len, reverse=True)
    return re.compile("|".join([*(re.escape(t) for t in tokens), r"[()\[\]{}]"]))


@functools.cache
def _string_states(syntax: _Syntax) -> dict[str, _InString]:
    """The scanner's state inside each of the syntax's strings, by opening quote (values, made
    once: the scan only looks them up)."""
    return {
        quote: _InString(
            quote, re.compile(r"\\.|" + re.escape(quote) + ("" if spans else r"|\n"), re.DOTALL)
        )
        for quote, spans in syntax.quotes
    }


def _scan(text: str, syntax: _Syntax, state: _State = None) -> tuple[list[tuple[int, str]], _State]:
    """The brackets in ``text`` outside strings and comments, with their offsets; the end state."""
    found: list[tuple[int, str]] = []
    strings = _string_states(syntax)
    comment = _InComment(syntax.block_comment[1]) if syntax.block_comment else None
    code = _code_pattern(syntax)
    i, n = 0, len(text)
    while i < n:
        if state is None:
            m = code.search(text, i)
            if m is None:
                break
            token, i = m.group(), m.end()
            if token in _OPENERS or token in _CLOSERS:
                found.append((m.start(), token))
            elif token in syntax.line_comments:
                newline = text.find("\n", i)
                i = n if newline < 0 else newline
            elif syntax.block_comment and token == syntax.block_comment[0]:
                state = comment
            else:
                state = strings[token]
        elif isinstance(state, _InComment):
            end = text.find(state.end, i)
            if end < 0:
                break
            i = end + len(state.end)
            state = None
        else:
            m = state.ends.search(text, i)
            if m is None:
                break
            i = m.end()
            if not m.group().startswith("\\"):
                state = None  # the closing delimiter, or the line end for a one-line string
    return found, state


def _unclosed_openers(brackets: list[tuple[int, str]]) -> list[str]:
    """The openers still open at the end (a mismatched closer closes back to its own kind)."""
    stack: list[str] = []
    for _, ch in brackets:
        if ch in _OPENERS:
            stack.append(ch)
        elif _CLOSERS[ch] in stack:
            while stack.pop() != _CLOSERS[ch]:
                pass
    return stack


def _unmatched_closers(brackets: list[tuple[int, str]]) -> list[str]:
    """The closers that close something opened before the text, in order."""
    stack: list[str] = []
    out: list[str] = []
    for _, ch in brackets:
        if ch in _OPENERS:
            stack.append(ch)
        elif stack and stack[-1] == _CLOSERS[ch]:
            stack.pop()
        elif not stack:
            out.append(ch)
    return out


# ---------------------------------------------------------------------------------------------
# Context


@dataclass(frozen=True)
class Context:
    """What the rules know about the cursor (build it with ``make_context``)."""

    prefix: str
    suffix: str
    language: str
    multiline: bool = True
    truncated: bool = False  # the model stopped at its token limit
    line_prefix: str = ""  # the cursor line's text before the cursor
    line_suffix: str = ""  # the cursor line's text after the cursor
    syntax: _Syntax | None = None
    prefix_state: _State = None  # scanner state at the cursor
    open_stack: tuple[str, ...] = ()  # the prefix's unclosed openers, innermost last
    open_brackets: dict[str, int] = field(default_factory=dict)  # opener -> count still open,
    # net of the closers the suffix brings (what a completion may close)


def make_context(
    prefix: str, suffix: str, language: str, *, multiline: bool = True, truncated: bool = False
) -> Context:
    prefix, suffix = prefix.replace("\r\n", "\n"), suffix.replace("\r\n", "\n")
    syntax = _SYNTAXES.get(language)
    state, still_open, open_brackets = _brackets_at_cursor(prefix, suffix, language)
    return Context(
        prefix,
        suffix,
        language,
        multiline,
        truncated,
        line_prefix=prefix[prefix.rfind("\n") + 1 :],
        line_suffix=suffix.split("\n", 1)[0],
        syntax=syntax,
        prefix_state=state,
        open_stack=still_open,
        open_brackets=dict(open_brackets),
    )


@functools.lru_cache(maxsize=4)
def _prefix_at_cursor(prefix: str, syntax: _Syntax) -> tuple[_State, tuple[str, ...]]:
    """The scanner state at the cursor and the prefix's unclosed openers. Cached: a request's
    first line and its end are post-processed against the same prefix (the editor's UI thread
    pays for the scan once), with the whole suffix and without the closers a suggestion
    overwrites."""
    head = prefix[-SCAN_CHARS:]
    if len(prefix) > SCAN_CHARS and "\n" in head:
        head = head[head.index("\n") + 1 :]
    found, state = _scan(head, syntax)
    return state, tuple(_unclosed_openers(found))


@functools.lru_cache(maxsize=8)
def _brackets_at_cursor(
    prefix: str, suffix: str, language: str
) -> tuple[_State, tuple[str, ...], tuple[tuple[str, int], ...]]:
    """The scanner state at the cursor, the prefix's unclosed openers and what stays open net
    of the suffix's closers."""
    syntax = _SYNTAXES.get(language)
    if syntax is None:
        return None, (), ()
    state, still_open = _prefix_at_cursor(prefix, syntax)
    tail = suffix[:SCAN_CHARS]
    closed = _unmatched_closers(_scan(tail, syntax, state)[0])
    open_brackets = tuple(
        (o, max(0, still_open.count(o) - closed.count(_OPENERS[o]))) for o in _OPENERS
    )
    return state, still_open, open_brackets


# ---------------------------------------------------------------------------------------------
# The rules


def truncated_tail(text: str, ctx: Context) -> str | None:
    """Multi-line output cut by the token limit: remove its last, partial, line."""
    if ctx.truncated and ctx.multiline and "\n" in text:
        return text[: text.rfind("\n")]
    return text


def single_line(text: str, ctx: Context) -> str | None:
    """Single-line mode: only the first line."""
    return text if ctx.multiline else text.split("\n", 1)[0]


def _indent(line: str) -> int:
    return len(line.expandtabs(_TAB_WIDTH)) - len(line.expandtabs(_TAB_WIDTH).lstrip())


def block_end(text: str, ctx: Context) -> str | None:
    """Stop where the completion leaves the cursor's block.

    Indentation languages: the cursor's block is that of the first non-blank line of the
    completed text (the cursor line's start joined to the completion's first line); if that line
    opens a block (ends with ``:``) later lines must be indented deeper, else at least as deep.
    The first line that is not ends the completion.

    Brace languages: at the first ``}`` that closes a block opened before the cursor, the
    completion ends before the ``}`` if the suffix already closes that block, else after that
    ``}``'s line (it is the close the code needs).
    """
    if ctx.language in INDENT_LANGUAGES:
        lines = text.split("\n")
        full = [ctx.line_prefix + lines[0], *lines[1:]]
        first = next((i for i, line in enumerate(full) if line.strip()), None)
        if first is None:
            return text
        base = _indent(full[first])
        opens = full[first].rstrip().endswith(":")
        for i in range(first + 1, len(full)):
            if not full[i].strip():
                continue
            depth = _indent(full[i])
            if depth < base or (opens and depth <= base):
                return "\n".join(lines[:i])
        return text
    if ctx.language in BRACE_LANGUAGES and ctx.syntax is not None:
        depth = 0
        for pos, ch in _scan(text, ctx.syntax, ctx.prefix_state)[0]:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if depth < 0:
                if ctx.open_brackets.get("{", 0) == 0:
                    return text[:pos]
                line_end = text.find("\n", pos)
                return text if line_end < 0 else text[:line_end]
    return text


def trailing_space(text: str, ctx: Context) -> str | None:
    """Strip trailing whitespace and blank lines (never needed at the cursor)."""
    return text.rstrip()


def _words(line: str) -> str:
    return " ".join(line.split())


def _suffix_lines(suffix: str, count: int, start: int = 0) -> list[str]:
    """The first ``count`` non-empty lines of ``suffix`` from offset ``start``, normalised."""
    theirs: list[str] = []
    while len(theirs) < count and start <= len(suffix):
        end = suffix.find("\n", start)
        end = len(suffix) if end < 0 else end
        if suffix[start:end].strip():
            theirs.append(_words(suffix[start:end]))
        start = end + 1
    return theirs


def repeats_suffix(text: str, ctx: Context) -> str | None:
    """Drop if the completion's first non-empty lines are the suffix's next 1-3 non-empty lines
    (compared with whitespace normalised). Trim a multi-line completion's last lines where they
    are the lines that follow the cursor line (``max(ˇ)`` / ``return x`` answered with
    ``a, b)`` / ``return x``: the model went on with the code that is already there)."""
    lines = text.split("\n")
    mine = [_words(line) for line in lines if line.strip()]
    theirs = _suffix_lines(ctx.suffix, _REPEAT_LINES)
    k = min(len(mine), len(theirs))
    if k and mine[:k] == theirs[:k]:
        return None
    newline = ctx.suffix.find("\n")
    if len(lines) > 1 and newline >= 0:
        below = _suffix_lines(ctx.suffix, len(lines), newline + 1)
        for i in range(1, len(lines)):
            tail = [_words(line) for line in lines[i:] if line.strip()]
            if tail and tail == below[: len(tail)] and "\n".join(lines[:i]).strip():
                return "\n".join(lines[:i]).rstrip()
    return text


def repeats_prefix(text: str, ctx: Context) -> str | None:
    """Drop if the cursor line, completed with the first line of ``text``, is the nearest
    non-empty line above it again (whitespace normalised, at least ``_REPEAT_MIN_CHARS``
    characters that are not spaces). A user run (2026-12-06, Gemma 3 270M on httpx) was offered
    ``import traceback`` under ``import traceback`` twelve times in a row."""
    first = text.split("\n", 1)[0]
    line = _words(ctx.line_prefix + first)
    if len(line.replace(" ", "")) < _REPEAT_MIN_CHARS:
        return text
    above = ctx.prefix[: len(ctx.prefix) - len(ctx.line_prefix)].rstrip("\n").split("\n")
    previous = next((_words(x) for x in reversed(above[-50:]) if x.strip()), "")
    return None if line == previous else text


def suffix_overlap(text: str, ctx: Context) -> str | None:
    """Trim the completion's end where it repeats the start of the cursor line's suffix.

    E.g. ``foo(ˇ)`` with completion ``a, b)``: the ``)`` is already there. Only punctuation is
    trimmed (no letters, digits or ``_``: ``ma`` + ``x`` is not an overlap), and never a closing
    bracket the completion itself opened (``print(ˇ)`` with ``foo()`` keeps its ``)``).
    """
    after = ctx.line_suffix
    unmatched: int | None = None  # closers in text that close something opened before it
    for k in range(min(len(after), len(text)), 0, -1):
        overlap = after[:k]
        if not text.endswith(overlap) or any(c.isalnum() or c == "_" for c in overlap):
            continue
        if ctx.syntax is not None:
            if unmatched is None:
                found = _scan(text, ctx.syntax, ctx.prefix_state)[0]
                unmatched = len(_unmatched_closers(found))
            if sum(c in _CLOSERS for c in overlap) > unmatched:
                continue
        return text[: len(text) - k]
    return text


def mid_line(text: str, ctx: Context) -> str | None:
    """In the middle of a line whose rest holds no bracket (closing quotes, a word): a
    suggestion of several lines that writes that rest again on a later line ends before it,
    as a fill-in-the-middle answer ends where the suffix begins. ``\"\"\"Return ˇ\"\"\"``
    with ``a JSON text\n\n    \"\"\"\n    return …`` is ``a JSON text``: accepted whole, it
    left the auto-closed quotes after the ``return`` (seen in a user run)."""
    rest = ctx.line_suffix.strip()
    if not rest or "\n" not in text or any(c in rest for c in "()[]{}"):
        return text
    first, later = text.split("\n", 1)
    at = later.find(rest)
    if at < 0:
        return text
    return (first + "\n" + later[:at]).rstrip()


def empty(text: str, ctx: Context) -> str | None:
    """Drop an empty or whitespace-only completion."""
    return text if text.strip() else None


def brackets(text: str, ctx: Context) -> str | None:
    """Drop if the completion breaks bracket balance: it closes a bracket with the wrong kind
    (its own, or the prefix's innermost open ones, in order), or closes more brackets of a kind
    than the prefix leaves open net of the closers already in the suffix. Where that happens
    on a later line of a multi-line completion, keep the lines before it instead (the model
    went wrong further down: ``path):`` / ``print(path)`` / ``print(f(x))))``)."""
    if ctx.syntax is None:
        return text
    stack: list[str] = []
    outer = list(ctx.open_stack)
    closes = {o: 0 for o in _OPENERS}
    for pos, ch in _scan(text, ctx.syntax, ctx.prefix_state)[0]:
        if ch in _OPENERS:
            stack.append(ch)
            continue
        if stack:
            ok = stack.pop() == _CLOSERS[ch]
        else:
            ok = not outer or outer.pop() == _CLOSERS[ch]
            closes[_CLOSERS[ch]] += 1
            ok = ok and closes[_CLOSERS[ch]] <= ctx.open_brackets.get(_CLOSERS[ch], 0)
        if not ok:
            line_start = text.rfind("\n", 0, pos)
            kept = text[:line_start].rstrip() if line_start > 0 else ""
            return kept if kept.strip() else None
    return text


_BLOCK_CONTINUATIONS = {
    "elif": "if 1:\n pass\n",
    "else": "if 1:\n pass\n",
    "except": "try:\n pass\n",
    "finally": "try:\n pass\n",
}


def syntax(text: str, ctx: Context) -> str | None:
    """Python: drop a completion whose first line makes the cursor line invalid Python, where
    one line can be judged alone: the line opens no bracket it does not close, continues no
    bracket or string from the lines above, and the parser's error lies in the completion's
    part of the line (an error in the user's own text, say newer syntax than this Python
    knows, is not the completion's). Cheap: one small ``ast.parse``."""
    if ctx.language != "python" or ctx.syntax is None or ctx.prefix_state is not None:
        return text
    first = text.split("\n", 1)[0]
    line = ctx.line_prefix + first + ctx.line_suffix
    body = line.lstrip()
    indent = len(line) - len(body)
    if not body or body.startswith(("case ", "match ")) or body.rstrip().endswith("\\"):
        return text
    found, state = _scan(body, ctx.syntax)
    if state is not None or _unclosed_openers(found) or _unmatched_closers(found):
        return text  # a multi-line statement (or a string that goes on): not judged here
    if len(_unclosed_openers(_scan(ctx.line_prefix, ctx.syntax)[0])) < len(ctx.open_stack):
        return text  # the line continues a bracket opened above
    keyword = body.split(maxsplit=1)[0].rstrip(":")
    before = _BLOCK_CONTINUATIONS.get(keyword, "")
    after = "\n pass" if body.rstrip().endswith(":") else ""
    if body.startswith("@"):
        after = "\ndef _(): pass"
    try:
        try:
            ast.parse(before + body + after)
        except SyntaxError:
            if after or "#" not in body:
                raise
            ast.parse(before + body + "\n pass")  # a block opener with a comment after it
    except SyntaxError as exc:
        line_no = (exc.lineno or 1) - before.count("\n")
        col = (exc.offset or 1) - 1
        if line_no == 1 and col < len(ctx.line_prefix) - indent:
            return text  # the error is in the user's own text
        if line_no == 1 and col >= len(body.rstrip()):
            return text  # not wrong, unfinished: "def main(ˇ)" + "path" (the ":" comes next)
        return None
    except (ValueError, MemoryError, RecursionError):
        return text
    return text


# ---------------------------------------------------------------------------------------------
# Closers already on the line (auto-closed brackets and quotes)

#: A line rest a suggestion may overwrite: closing punctuation and blanks only (the rest the
#: editor asks for completions before).
_CLOSING_REST = re.compile(r"[ \t)\]}\"'`;,:]+")


def _subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(ch in it for ch in needle)


def _fits(text: str, tail: str, ctx: Context) -> bool:
    """Whether ``tail`` (what stays of the cursor line's rest) still does its job after
    ``text``: each of its closing brackets closes a bracket open at that point, its quotes close
    strings, and no string or comment swallows it. False for ``path):`` + ``)``: the ``)``
    would close nothing (the suggestion closed ``main(`` itself); or ``hi" + x`` + ``"``."""
    if not tail.strip() or ctx.syntax is None:
        return True
    merged = text + tail
    found, _ = _scan(merged + "(", ctx.syntax, ctx.prefix_state)  # the sentinel: in code?
    if not found or found[-1][0] != len(merged):
        return False
    stack = list(ctx.open_stack)
    in_tail = 0
    for pos, ch in found[:-1]:
        mine = pos < len(text)
        in_tail += not mine
        if ch in _OPENERS:
            stack.append(ch)
        elif stack and stack[-1] == _CLOSERS[ch]:
            stack.pop()
        elif not mine:
            return False
    return in_tail == sum(ch in _CLOSERS for ch in tail)  # none in a string or comment


def _overwrite_candidates(text: str, ctx: Context) -> list[int]:
    """The numbers of the line rest's characters ``text`` could replace, smallest first: 0
    (insert), then each k whose ``rest[:k]`` appears in order in the text's first line."""
    rest = ctx.line_suffix
    if ctx.syntax is None or not rest.strip() or not _CLOSING_REST.fullmatch(rest):
        return [0]
    first = text.split("\n", 1)[0]
    out = [0]
    for k in range(1, len(rest) + 1):
        if not _subsequence(rest[:k], first):
            break
        out.append(k)
    return out


def _without_rest(ctx: Context, k: int) -> Context:
    """The context as it is after accepting a suggestion that replaces ``k`` characters of the
    line's rest."""
    if k == 0:
        return ctx
    return make_context(
        ctx.prefix, ctx.suffix[k:], ctx.language, multiline=ctx.multiline, truncated=ctx.truncated
    )


def overwritten(text: str, ctx: Context) -> list[int]:
    """The numbers of characters of the cursor line's rest ``text`` may replace when accepted,
    smallest first (0: insert before the rest): those whose rest left after the text still
    fits (``_fits``), the text's end trimmed as ``suffix_overlap`` would trim it. ``[0]`` when
    none fits (the later rules judge that suggestion)."""
    out = []
    for k in _overwrite_candidates(text, ctx):
        after = _without_rest(ctx, k)
        if _fits(suffix_overlap(text, after) or "", after.line_suffix, after):
            out.append(k)
    return out or [0]


class Rule(NamedTuple):
    name: str
    apply: Callable[[str, Context], str | None]
    reason: str  # Suggestion.reason_dropped when apply returns None


RULES: tuple[Rule, ...] = (
    Rule("truncated_tail", truncated_tail, "truncated"),
    Rule("single_line", single_line, "single_line"),
    Rule("block_end", block_end, "left_block"),
    Rule("trailing_space", trailing_space, "whitespace"),
    Rule("repeats_suffix", repeats_suffix, "repeats_suffix"),
    Rule("repeats_prefix", repeats_prefix, "repeats_prefix"),
    Rule("suffix_overlap", suffix_overlap, "suffix_overlap"),
    Rule("mid_line", mid_line, "mid_line"),
    Rule("empty", empty, "empty"),
    Rule("brackets", brackets, "unbalanced_brackets"),
    Rule("syntax", syntax, "invalid_syntax"),
)


def postprocess(
    raw: str,
    prefix: str,
    suffix: str,
    language: str,
    *,
    multiline: bool = True,
    truncated: bool = False,
) -> Suggestion:
    """The suggestion to show for ``raw`` at the cursor between ``prefix`` and ``suffix``.

    ``truncated``: the model stopped because it hit ``max_tokens`` (llama.cpp's
    ``finish_reason == "length"``); only then is a partial last line removed.
    """
    ctx = make_context(prefix, suffix, language, multiline=multiline, truncated=truncated)
    text = raw.replace("\r\n", "\n")
    split = next(i for i, rule in enumerate(RULES) if rule.name == "repeats_suffix")
    for rule in RULES[:split]:
        result = rule.apply(text, ctx)
        if result is None:
            return Suggestion("", rule.reason)
        text = result
    first_drop: Suggestion | None = None
    for k in overwritten(text, ctx):
        after, got = _without_rest(ctx, k), text
        for rule in RULES[split:]:
            result = rule.apply(got, after)
            if result is None:
                first_drop = first_drop or Suggestion("", rule.reason)
                break
            got = result
        else:
            return Suggestion(got, overwrite=k)
    assert first_drop is not None
    return first_drop
