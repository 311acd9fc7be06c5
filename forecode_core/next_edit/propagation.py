"""Edit-pattern propagation: after the user makes an edit that is a pattern (a rename, an
argument added to a call, a changed literal, the same line transformation), the other sites
that match the edit's "before" shape are offered as the next edits, without a model.

- **Tokens, not regexes.** Matching runs on a small lexicon: identifier/number runs (``\\w+``),
  whole string literals (from the ``LexMask``), single punctuation characters; comments and
  whitespace sit between tokens. Sites are found by ``str.find`` of the pattern's rarest
  literal token, checked for token boundaries and for being code (never inside a string or
  comment), then matched token by token outward. Nothing is compiled from the user's text,
  so a long line or file costs linear time.
- **One example** (``example_of``): the edit's token diff, widened to a shape worth repeating:
  one identifier replaced by another is a rename (the identifier alone; a keyword or
  constant is no name); one string literal by another is a literal change; anything else
  widens to the innermost bracket group holding the change with the name chain before it
  (``fetch(url)`` -> ``fetch(url, timeout=5)``), or else to the lines touched (a line
  transformation: its sites are whole lines, and a line with no name in it, ``try:``, is no
  pattern, but for a bare ``except:`` narrowed). Before the bracket group, a name qualified
  or unqualified as a whole dotted chain (``main`` -> ``httpx.main`` at its uses, never where
  it is bound, imported or a keyword; ``typing.List`` -> ``List``; ``self.x`` -> ``x`` in its
  function, never ``x = self.x``; this file only). Whole lines deleted are deleted elsewhere
  with their indent and newline; whole lines inserted between two lines of code are read with
  those two lines, whose copies elsewhere are the sites (both: this file only, one example
  enough but for several lines deleted or a common call statement). A rename is offered
  where the name plays the same part: a bare name, an
  attribute (``.name``) or a keyword argument (``f(name=...)``), so renaming a parameter
  ``action`` leaves ``self.action`` and ``f(action=...)``; the rename of a Python
  function's parameter or local (bound in it: ``name =``, ``for name``, ``as name``; not
  ``global``) stays in that function's block (by indentation); a ``def``'s or ``class``'s
  own name renamed offers its uses, never another definition of the old name. One example
  matches its exact "before" text, unless one example of its shape is ambiguous
  (``ambiguity``: a rename to a name the file already uses (but for a Python function that
  now binds the new name and no longer binds the old one, which no builtin, module line nor
  enclosing function binds: the old name's uses left there dangle, ``_local_rename``; its
  sites are that function's) or to a name of another style,
  an edit that adds lines, a ``def``/``class`` line, a string without a word); then a
  second, consistent example is needed. An edit inside a string or comment, or one that
  changes the bracket balance (typed so far), is no pattern.
- **Prose** (``_prose_proposals``): the issue matches code patterns outside strings and
  comments, and that holds; but an edit made *inside* prose (a comment, a docstring: a
  triple-quoted string, another string) is offered again where the same words read in prose
  of the same class (a docstring's fix in docstrings, never in code, a comment or a message
  string), as a Cursor user expects a repeated docstring fix to be offered. Only when the
  code path offers nothing and the edit lies in prose (or changed a string literal that has
  no other copy: its words then); its old text (trimmed to whole words) needs a word and 3 or
  more other characters; one plain word (letters, not camelCase: ``valid``, ``json``) needs
  the same change twice (once, it is a sentence being rewritten) and the same character after
  it (``(optional) json data``, not ``:param json:``); a whole comment deleted is deleted where
  the same comment ends a line; where the words give no site (or wait), the same change is
  offered where the edit's whole old line (3+ words, from its indent or its prose's opening to
  its end) reads again in prose of that class (an insertion too: ``Dictionary`` gaining
  `` (will be form-encoded)`` in each identical ``:param data:`` line); never on the edit's
  own line; this file only. Measured on httpx/jinja/requests (``bench next_edit``,
  2026-12-05-d): one plain word changed once was wrong 11 times of 19.
- **Finishing and following an edit** (measured on ``bench next_edit``'s rename/template
  misses, 2026-12-05-e): a string's opening quote swapped or typed before a name is closed
  (``_quote_close``), a reST backquote doubled doubles its closing one (``_backquote_close``):
  offered before any pattern; a rename to a used name whose old binding a recent edit took
  away is no longer ambiguous (``_unbound_rename``); a code rename repeated in prose goes on
  in code (``_code_rename_again``); a number changed in a comment is offered in the code right
  below it (``_comment_number``); ``r``/``u`` typed before a string that needs it, before the
  others that need it (``_string_prefix``); ``m.X`` -> ``X`` with ``import m`` gone, at each
  ``m.Y`` the file binds bare (``_module_gone``); a glued dotted chain replaced by another
  (``chain="replace"``); an attribute renamed twice renames its class's one ``def``.
- **Two examples** (``generalise``): the same token shapes whose differing tokens are atoms
  (identifiers, numbers, strings) that bind one to one become a template with holes
  (``x.get("a")`` -> ``x.get("a", None)`` and ``y.get("b")`` -> ``y.get("b", None)`` give
  ``$1.get($2)`` -> ``$1.get($2, None)``); a hole must bind consistently at each site. A
  template that does not hold for both examples is not offered (the newest example is).
- **Guards**: never a site overlapping a recent edit (the caret's own above all) or another
  proposal, never a proposal that undoes one of the recent edits (its old/new are an edit's
  after/before); in Python, an edit that adds ``await`` only inside an ``async def``, a
  rename never in an import that already imports the new name, and a method's rename whose
  old name another ``def`` in the file still has only at ``self.`` uses in its own class.
  A change that crosses a bracket group's closer widens to whole lines, not to the group.
- **History**: any ``EditPair`` (``events.EditEvent`` as it is: offsets in the current
  document), newest last; an edit whose after text is no longer where it says is left out.
- **Order**: nearest below the caret first, then from the top of the file (of the function,
  for a parameter's rename) down to the caret.

``find_sites`` takes any text with its path, so a caller can run a pattern over other files
(the codebase index's hits) later. Offsets are ``str`` indices; the editor converts its UTF-8
byte positions and fills the ``LexMask`` from Scintilla's styles.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

from forecode_core.next_edit.events import Pair, compose_chains
from forecode_core.next_edit.lexmask import Kind, LexMask, mask_for

__all__ = [
    "Edit",
    "EditPair",
    "Example",
    "Hole",
    "Lit",
    "Pattern",
    "PatternKind",
    "Proposal",
    "Site",
    "TokenKind",
    "ambiguity",
    "anchor_text",
    "cross_file_pattern",
    "example_of",
    "find_sites",
    "generalise",
    "other_file_sites",
    "pattern_for_history",
    "propose",
    "shared_ends",
]


def shared_ends(before: Sequence[object], after: Sequence[object]) -> tuple[int, int]:
    """The lengths of ``before``'s and ``after``'s common prefix and of their common suffix
    after it (never overlapping the prefix): what an edit left alone at each end. Texts and
    token lists alike."""
    p = 0
    while p < min(len(before), len(after)) and before[p] == after[p]:
        p += 1
    q = 0
    while q < min(len(before), len(after)) - p and before[-1 - q] == after[-1 - q]:
        q += 1
    return p, q


#: A pattern longer than this many tokens is not propagated (and bounds the work per site).
MAX_PATTERN_TOKENS = 200
#: An edit's example reads at most this many characters of its lines either side of it.
MAX_CONTEXT = 4000
#: At most this many proposals are returned.
MAX_PROPOSALS = 500

TokenKind = Literal["ident", "string", "punct"]
#: a rename, a string literal's change, an exact shape, a template from two examples
PatternKind = Literal["rename", "literal", "exact", "template"]
IDENT: TokenKind = "ident"  # an identifier or number: a \w+ run
STRING: TokenKind = "string"  # a whole string literal
PUNCT: TokenKind = "punct"  # one punctuation character
_ATOMS: tuple[TokenKind, ...] = (IDENT, STRING)
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s*")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}

Token = tuple[int, int, TokenKind]  # start, end, kind


# One recent edit: the text ``before`` is now ``after``, at ``offset`` in the current document
# (``events.EditEvent`` is one: its offsets follow later changes). The protocol lives in
# ``events`` (which this module imports), so both name one type.
EditPair = Pair


@dataclass(frozen=True)
class Edit:
    """A plain ``EditPair`` (tests, the benchmark's replay)."""

    offset: int
    before: str
    after: str


@dataclass(frozen=True)
class Lit:
    text: str
    kind: TokenKind


@dataclass(frozen=True)
class Hole:
    n: int


@dataclass(frozen=True)
class Example:
    """An edit widened to a repeatable shape: its tokens and texts before and after, and
    where its after text lies in the document right after it."""

    before: tuple[Lit, ...]
    after: tuple[Lit, ...]
    before_text: str
    after_text: str
    before_pieces: tuple[str, ...]  # before_text split: gap, token, gap, token, ..., gap
    after_pieces: tuple[str, ...]  # after_text split: gap, token, gap, token, ..., gap
    kind: PatternKind  # "rename" | "literal" | "exact"
    start: int
    end: int
    dotted: bool = False  # a rename of an attribute (``.name``), not of a bare name
    #: a rename of a keyword argument (``f(name=...)``: True), of a name that is none (False)
    keyword: bool | None = None
    whole_line: bool = False  # widened to the lines touched: its sites are whole lines too
    definition: bool = False  # a rename of a ``def``'s or ``class``'s own name
    #: whole lines of code deleted: its sites are whole lines, deleted with their indent
    deletes_lines: bool = False
    #: a name qualified (``main`` -> ``httpx.main``: "qualify") or its qualifier removed
    #: (``typing.List`` -> ``List``: "unqualify"), as whole dotted chains; "" otherwise
    chain: str = ""
    #: whole lines inserted, read with the line above and the line below them
    inserts_lines: bool = False
    #: a rename of ``self.name``/``cls.name``: the class's ``def name`` is a site too
    own_method: bool = False


@dataclass(frozen=True)
class Pattern:
    before: tuple[Lit | Hole, ...]
    after: tuple[str | Hole, ...]  # pieces of the new text
    before_text: str  # an exact pattern's site must read exactly this ("" for a template)
    kind: PatternKind
    examples: int
    label: str
    #: a rename's sites are attributes (True) or bare names (False) as its example was
    dotted: bool | None = None
    #: a rename's sites are keyword arguments (True) or not (False), as its example was
    keyword: bool | None = None
    #: a line transformation: a site is a whole line's code too (``):`` alone, not the end
    #: of ``if f(x):``)
    whole_line: bool = False
    #: a rename made at a ``def``/``class`` name: other definitions of the old name are other
    #: functions (a duplicate test name in another class), never its sites; its sites are
    #: bare names and, in its file, attributes of ``self``/``cls`` only (``self.send()``, not
    #: ``self.dispatch.send()``: another object's), in other files any attribute (``mod.f``)
    definition: bool = False
    own_attributes: bool = False
    #: whole lines deleted: a site is its lines with their indent and newline
    deletes_lines: bool = False
    #: a rename made at ``self.name``: a ``def name`` is a site too (the method renamed)
    own_method: bool = False
    #: ``Example.chain``: a site is a whole dotted chain (never after a ``.``); a name
    #: qualified is never one being bound, imported or passed as a keyword
    chain: str = ""


@dataclass(frozen=True)
class Site:
    start: int
    end: int
    old: str
    new: str


@dataclass(frozen=True)
class Proposal:
    start: int
    end: int
    old: str
    new: str
    rank: int  # 0 is offered first
    reason: str


# ---------------------------------------------------------------- tokens


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _next_token(text: str, pos: int, mask: LexMask) -> Token | None:
    n = len(text)
    while True:
        m = _SPACE.match(text, pos)
        pos = m.end() if m else pos
        if pos >= n:
            return None
        span = mask.span_at(pos)
        if span is not None:
            if span[2] is Kind.COMMENT:
                pos = span[1]
                continue
            return pos, span[1], STRING
        w = _WORD.match(text, pos)
        if w is not None:
            return pos, w.end(), IDENT
        return pos, pos + 1, PUNCT


def _prev_token(text: str, pos: int, mask: LexMask) -> Token | None:
    while True:
        while pos > 0 and text[pos - 1].isspace():
            pos -= 1
        if pos <= 0:
            return None
        span = mask.span_ending_at(pos)
        if span is None:
            inside = mask.span_at(pos - 1)
            if inside is not None:
                span = inside
        if span is not None:
            if span[2] is Kind.COMMENT:
                pos = span[0]
                continue
            return span[0], pos, STRING
        if _is_word(text[pos - 1]):
            start = pos - 1
            while start > 0 and _is_word(text[start - 1]):
                start -= 1
            return start, pos, IDENT
        return pos - 1, pos, PUNCT


def _tokens(text: str, mask: LexMask) -> list[Token]:
    out: list[Token] = []
    tok = _next_token(text, 0, mask)
    while tok is not None:
        out.append(tok)
        tok = _next_token(text, tok[1], mask)
    return out


def _snippet_mask(snippet: str, path: str) -> LexMask:
    # Line-local, by the scanner (a few lines rarely parse on their own).
    return mask_for(snippet, path)


# ---------------------------------------------------------------- examples


#: Words that are no names to rename (Python's keywords, the C family's and JS's constants):
#: a change of one is a literal change, widened like a number.
_NOT_NAMES = frozenset(keyword.kwlist) | {"true", "false", "null", "nil", "undefined"}


def _is_name(word: str) -> bool:
    return not word[0].isdigit() and word not in _NOT_NAMES


def _line_start(text: str, pos: int) -> int:
    return text.rfind("\n", 0, pos) + 1


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _bracket_group(toks: Sequence[Lit], i: int, j: int) -> tuple[int, int] | None:
    """The innermost bracket group (opener index, closer index) around tokens [i, j); None
    when the change crosses the group's closer (``f(a=1)\\n  g()`` -> ``f()``: the group
    does not hold it)."""
    depth = 0
    opener = -1
    for k in range(i - 1, -1, -1):
        t = toks[k]
        if t.kind != PUNCT:
            continue
        if t.text in _CLOSE:
            depth += 1
        elif t.text in _OPEN:
            if depth == 0:
                opener = k
                break
            depth -= 1
    if opener < 0:
        return None
    depth = 0
    for k in range(i, len(toks)):
        t = toks[k]
        if t.kind != PUNCT:
            continue
        if t.text in _OPEN:
            depth += 1
        elif t.text in _CLOSE:
            if depth == 0:
                ok = k >= j and _OPEN[toks[opener].text] == t.text
                return (opener, k) if ok else None
            depth -= 1
    return None


def _widen(tb: list[Lit], i: int, j: int) -> tuple[int, int] | None:
    """Before-token range to repeat: the bracket group with its name chain (None: none)."""
    group = _bracket_group(tb, i, j)
    if group is None:
        return None
    lo, hi = group
    while lo > 0 and (tb[lo - 1].kind == IDENT or tb[lo - 1].text == "."):
        if tb[lo - 1].text == "." and (lo < 2 or tb[lo - 2].kind != IDENT):
            break
        lo -= 1
    return lo, hi + 1


def _lines_end(doc: str, offset: int, text: str, other: str) -> int:
    """The end of the lines ``text`` (at ``offset`` in ``doc``) touches: whole lines end at
    their last newline (the next line is not touched); an empty side of a whole-line edit
    (lines inserted or deleted) touches nothing."""
    end = offset + len(text)
    if text.endswith("\n"):
        return end - 1
    if not text and other.endswith("\n") and _line_start(doc, offset) == offset:
        return offset
    return _line_end(doc, end)


def _pieces(snip: str, toks: Sequence[Token], start: int = -1) -> tuple[str, ...]:
    """gap, token, gap, token, ..., gap over the tokens' extent (from ``start`` if none)."""
    cursor = toks[0][0] if toks else start
    out: list[str] = []
    for ts, te, _k in toks:
        out.append(snip[cursor:ts])
        out.append(snip[ts:te])
        cursor = te
    out.append("")
    return tuple(out)


def _rename_context(
    doc: str, start: int, end: int, path: str, doc_mask: LexMask | None = None
) -> tuple[bool, bool | None]:
    """(dotted, keyword) of the renamed name at ``doc[start:end]``: an attribute; a keyword
    argument (True) or not (False: a parameter of a ``def``, defaulted or not, is a name
    whose uses are no keywords). Read with the document's mask when given, else in a window
    around it (whose start may fall inside a string: the mask's guess)."""
    if doc_mask is not None:
        lo, window, mask = 0, doc, doc_mask
    else:
        lo = max(0, start - 2000)
        window = doc[lo : end + 200]
        mask = mask_for(window, path)
    s, e = start - lo, end - lo
    prev = _prev_token(window, s, mask)
    before = window[prev[0] : prev[1]] if prev is not None and prev[2] == PUNCT else ""
    if before == ".":
        return True, False
    # the bracket around it: a def's parameters?
    depth = 0
    tok = prev
    for _ in range(256):
        if tok is None:
            break
        word = window[tok[0] : tok[1]]
        if tok[2] == PUNCT and word in _CLOSE:
            depth += 1
        elif tok[2] == PUNCT and word in _OPEN:
            if depth == 0:
                name = _prev_token(window, tok[0], mask)
                kw = _prev_token(window, name[0], mask) if name is not None else None
                if kw is not None and window[kw[0] : kw[1]] == "def":
                    return False, False
                break
            depth -= 1
        tok = _prev_token(window, tok[0], mask)
    return False, _is_keyword_arg(window, before, e, mask)


def _shape(
    tb: list[Lit], ta: list[Lit], changed: tuple[int, int, int], clipped: bool
) -> tuple[PatternKind, bool, tuple[int, int, int, int]] | None:
    """The example's kind, whether it is whole lines, and its token ranges (before lo, hi,
    after lo, hi), from the changed tokens ``tb[i:jb]`` -> ``ta[i:ja]``; None: no pattern."""
    i, jb, ja = changed
    if jb - i == 1 and ja - i == 1 and tb[i].kind == ta[i].kind:
        if tb[i].kind == IDENT and _is_name(tb[i].text) and _is_name(ta[i].text):
            return "rename", False, (i, jb, i, ja)
        if tb[i].kind == STRING:
            return "literal", False, (i, jb, i, ja)
    widened = _widen(tb, i, jb)
    whole_line = widened is None
    w_lo, w_hi = (0, len(tb)) if widened is None else widened
    if clipped and (w_lo == 0 or w_hi == len(tb)):
        return None
    named = any(t.kind == IDENT and _is_name(t.text) for t in tb)
    if whole_line and not named and not _narrows_except(tb, ta):
        return None  # a line with no name in it (``try:``, ``):``) is too generic
    a_hi = w_hi + len(ta) - len(tb)
    if whole_line and not ta and tb:
        return "exact", True, (0, len(tb), 0, 0)  # whole lines deleted (``example_of``)
    if w_hi <= w_lo or a_hi <= w_lo or w_hi - w_lo > MAX_PATTERN_TOKENS:
        return None  # nothing to repeat, or whole lines deleted (sites would leave blanks)
    return "exact", whole_line, (w_lo, w_hi, w_lo, a_hi)


def _narrows_except(tb: Sequence[Lit], ta: Sequence[Lit]) -> bool:
    """Whether a bare ``except:`` line gains the names it catches (``except Exception:``):
    the one line without a name whose change repeats (every bare ``except`` of the file)."""
    return (
        len(tb) == 2
        and [t.text for t in tb] == ["except", ":"]
        and len(ta) > 2
        and ta[0].text == "except"
        and ta[-1].text == ":"
        and any(t.kind == IDENT and _is_name(t.text) for t in ta)
    )


def _chainy(snip: str, tok: Token) -> bool:
    return tok[2] == IDENT or (tok[2] == PUNCT and snip[tok[0]] == ".")


def _is_chain(toks: Sequence[Lit]) -> bool:
    """Whether the tokens read ``name(.name)*`` (names, never keywords nor numbers)."""
    if len(toks) % 2 == 0:
        return False
    for k, t in enumerate(toks):
        if k % 2 == 0 and not (t.kind == IDENT and _is_name(t.text)):
            return False
        if k % 2 == 1 and t.text != ".":
            return False
    return True


def _chain_change(
    snips: tuple[str, str],
    toks: tuple[list[Token], list[Token]],
    lits: tuple[list[Lit], list[Lit]],
    changed: tuple[int, int, int],
) -> tuple[str, tuple[int, int, int, int]] | None:
    """A name qualified or unqualified: the changed tokens widened to whole dotted chains
    (tokens glued to each other), leftwards to the chain's start, rightwards only until both
    sides end in a name, that read ``name`` -> ``q.name`` or ``q.name`` -> ``name`` (``q``
    one or more names: ``self.decoder`` -> ``decoder``, not ``...decoder.decode``).
    ``("qualify" | "unqualify", (before lo, hi, after lo, hi))``, or None for any other
    change."""
    (bs, as_), (bt, at), (tb, ta) = snips, toks, lits
    i, jb, ja = changed

    def joins(ts: list[Token], k: int, empty: bool) -> bool:
        # token k may join the chain at k + 1 (an empty side's chain joins anything)
        return empty or ts[k][1] == ts[k + 1][0]

    lo, rb, ra = i, jb, ja
    while (
        lo > 0
        and _chainy(bs, bt[lo - 1])
        and _chainy(as_, at[lo - 1])
        and joins(bt, lo - 1, rb == lo)
        and joins(at, lo - 1, ra == lo)
    ):
        lo -= 1
    while not (_is_chain(tb[lo:rb]) and _is_chain(ta[lo:ra])) and (
        rb < len(bt)
        and ra < len(at)
        and _chainy(bs, bt[rb])
        and _chainy(as_, at[ra])
        and joins(bt, rb - 1, rb == lo)
        and joins(at, ra - 1, ra == lo)
    ):
        rb, ra = rb + 1, ra + 1
    before, after = tb[lo:rb], ta[lo:ra]
    if not _is_chain(before) or not _is_chain(after) or len(before) == len(after):
        return None
    if not (_glued(bt, lo, rb) and _glued(at, lo, ra)):
        return None
    short, long_ = (before, after) if len(before) < len(after) else (after, before)
    if long_[len(long_) - len(short) :] != short:
        # another chain: ``self.extensions.itervalues`` -> ``self.iter_extensions``,
        # ``obj.__class__`` -> ``cls`` (one name replaced waits for a second example)
        return "replace", (lo, rb, lo, ra)
    kind = "qualify" if short is before else "unqualify"
    return kind, (lo, rb, lo, ra)


def _glued(ts: list[Token], lo: int, hi: int) -> bool:
    """Whether tokens ``ts[lo:hi]`` touch each other (no space nor comment between)."""
    return all(ts[k][1] == ts[k + 1][0] for k in range(lo, hi - 1))


def example_of(
    before_doc: str,
    after_doc: str,
    edit: EditPair,
    path: str = "",
    *,
    after_mask: LexMask | None = None,
) -> Example | None:
    """One edit, widened to its repeatable shape (see the module's doc); None when the edit
    changes no token (whitespace, a comment) or touches nothing to repeat. ``after_mask``:
    ``after_doc``'s mask when the caller has it (the editor's styles)."""
    # the lines touched, at most MAX_CONTEXT characters either side of the edit (a minified
    # file's one line is never tokenized whole); a clipped snippet never widens to its ends
    line_lo = _line_start(after_doc, edit.offset)
    lo = max(line_lo, edit.offset - MAX_CONTEXT)
    b_line_hi = _lines_end(before_doc, edit.offset, edit.before, edit.after)
    b_hi = min(b_line_hi, edit.offset + len(edit.before) + MAX_CONTEXT)
    a_hi = min(
        _lines_end(after_doc, edit.offset, edit.after, edit.before),
        edit.offset + len(edit.after) + MAX_CONTEXT,
    )
    clipped = lo > line_lo or b_hi < b_line_hi
    inserted = _insertion_context(before_doc, edit)
    if inserted is not None:  # lines inserted: the line above and the line below them too
        lo, b_hi, a_hi = inserted
    b_snip = before_doc[lo:b_hi]
    a_snip = after_doc[lo:a_hi]
    b_toks = _tokens(b_snip, _snippet_mask(b_snip, path))
    a_toks = _tokens(a_snip, _snippet_mask(a_snip, path))
    tb = [Lit(b_snip[s:e], k) for s, e, k in b_toks]
    ta = [Lit(a_snip[s:e], k) for s, e, k in a_toks]
    p, s = shared_ends(tb, ta)
    i, jb, ja = p, len(tb) - s, len(ta) - s
    if i == jb and i == ja:
        return None
    chain = _chain_change((b_snip, a_snip), (b_toks, a_toks), (tb, ta), (i, jb, ja))
    shape: tuple[PatternKind, bool, tuple[int, int, int, int]] | None = (
        ("exact", False, chain[1]) if chain is not None else _shape(tb, ta, (i, jb, ja), clipped)
    )
    if shape is None:
        return None
    kind, whole_line, (b_lo, b_hi2, a_lo, a_hi2) = shape
    deletes = a_hi2 == a_lo
    if deletes and not _deletes_whole_lines(after_doc, edit):
        return None  # the line stays (a comment now, blank): nothing to repeat
    before_text = b_snip[b_toks[b_lo][0] : b_toks[b_hi2 - 1][1]]
    if deletes:
        a_start = a_end = edit.offset - lo
    else:
        a_start, a_end = a_toks[a_lo][0], a_toks[a_hi2 - 1][1]
    after_text = a_snip[a_start:a_end]
    dotted, keyword = False, None
    definition = own = False
    if kind == "rename":
        dotted, keyword = _rename_context(after_doc, lo + a_start, lo + a_end, path, after_mask)
        definition = a_lo > 0 and ta[a_lo - 1].text in _DEFINERS
        at = lo + a_start
        own = dotted and _OWN_DOT.search(after_doc[max(0, at - 40) : at]) is not None
    return Example(
        before=tuple(tb[b_lo:b_hi2]),
        after=tuple(ta[a_lo:a_hi2]),
        before_text=before_text,
        after_text=after_text,
        before_pieces=_pieces(b_snip, b_toks[b_lo:b_hi2]),
        after_pieces=_pieces(a_snip, a_toks[a_lo:a_hi2], a_start),
        kind=kind,
        start=lo + a_start,
        end=lo + a_end,
        dotted=dotted,
        keyword=keyword,
        whole_line=whole_line,
        definition=definition,
        deletes_lines=deletes,
        chain=chain[0] if chain is not None else "",
        inserts_lines=inserted is not None,
        own_method=own,
    )


#: ``self.`` or ``cls.`` at the end of the text before a name
_OWN_DOT = re.compile(r"(?<![\w.])(?:self|cls)\s*\.\s*\Z")


def _insertion_context(before_doc: str, edit: EditPair) -> tuple[int, int, int] | None:
    """For whole lines inserted between two lines of code: the snippet's start (the line
    above) and its ends in the before and after documents (the line below), so the example
    is those two lines with the new ones between them (``max_connections=m,`` / ``)`` gaining
    ``keepalive_expiry=k,``): its sites are the same two lines elsewhere. None otherwise."""
    at = edit.offset
    if edit.before or not edit.after.endswith("\n") or at == 0:
        return None
    if _line_start(before_doc, at) != at:
        return None
    above = _line_start(before_doc, at - 1)
    below_end = _line_end(before_doc, at)
    lines = (before_doc[above : at - 1].strip(), before_doc[at:below_end].strip())
    if any(not code or code.startswith("#") for code in lines):
        return None
    if not any(_WORD.search(code) for code in lines):
        return None
    if below_end - above > MAX_CONTEXT:
        return None
    return above, below_end, below_end + len(edit.after)


def _deletes_whole_lines(doc: str, edit: EditPair) -> bool:
    """Whether the edit deleted whole lines (from a line's start, through a newline, leaving
    at most whitespace)."""
    return (
        not edit.after.strip()
        and edit.before.endswith("\n")
        and _line_start(doc, edit.offset) == edit.offset
    )


def _exact(ex: Example, examples: int = 1) -> Pattern:
    return Pattern(
        before=ex.before,
        after=(ex.after_text,),
        before_text=ex.before_text,
        kind=ex.kind,
        examples=examples,
        label=f"{ex.before_text} → {ex.after_text}",
        # a definition's name is used bare and as an attribute (``self.run()``, ``mod.f``)
        dotted=ex.dotted if ex.kind == "rename" and not ex.definition else None,
        keyword=ex.keyword if ex.kind == "rename" else None,
        whole_line=ex.whole_line,
        definition=ex.definition and ex.kind == "rename",
        own_attributes=ex.definition and ex.kind == "rename",
        deletes_lines=ex.deletes_lines,
        chain=ex.chain,
        own_method=ex.own_method and ex.kind == "rename",
    )


def _bind(pairs: dict[str, str], back: dict[str, str], t1: str, t2: str) -> bool:
    return pairs.setdefault(t1, t2) == t2 and back.setdefault(t2, t1) == t1


def _before_template(
    older: Example, newer: Example
) -> tuple[list[Lit | Hole], dict[tuple[str, str], Hole]] | None:
    """The before side with holes where the examples differ in atoms bound one to one."""
    pairs: dict[str, str] = {}
    back: dict[str, str] = {}
    holes: dict[tuple[str, str], Hole] = {}
    before: list[Lit | Hole] = []
    for a, b in zip(older.before, newer.before, strict=True):
        if a.kind != b.kind or (a.kind in _ATOMS and not _bind(pairs, back, a.text, b.text)):
            return None
        if a.text == b.text:
            before.append(b)
        elif a.kind in _ATOMS:
            before.append(holes.setdefault((a.text, b.text), Hole(len(holes) + 1)))
        else:
            return None
    return before, holes


def _after_template(
    older: Example, newer: Example, holes: dict[tuple[str, str], Hole]
) -> list[str | Hole] | None:
    """The after side's pieces (the newer example's spacing), holes where both bind."""
    after: list[str | Hole] = []
    for k, (a, b) in enumerate(zip(older.after, newer.after, strict=True)):
        after.append(newer.after_pieces[2 * k])
        hole = holes.get((a.text, b.text))
        if hole is not None and a.kind == b.kind:
            after.append(hole)
        elif a == b:
            after.append(b.text)
        else:
            return None
    after.append(newer.after_pieces[-1])
    return after


def generalise(older: Example, newer: Example) -> Pattern | None:
    """The template two examples agree on, or None when none holds for both (the same edit
    twice is an exact pattern from two examples)."""
    if older.before == newer.before and older.after == newer.after:
        return _exact(newer, examples=2)
    if len(older.before) != len(newer.before) or len(older.after) != len(newer.after):
        return None
    found = _before_template(older, newer)
    if found is None:
        return None
    before, holes = found
    if not holes or not any(isinstance(t, Lit) for t in before):
        return None
    after = _after_template(older, newer, holes)
    if after is None:
        return None
    shown = list(newer.before_pieces)
    for k, t in enumerate(before):
        if isinstance(t, Hole):
            shown[2 * k + 1] = f"${t.n}"
    after_shown = "".join(f"${p.n}" if isinstance(p, Hole) else p for p in after)
    return Pattern(
        before=tuple(before),
        after=tuple(after),
        before_text="",
        kind="template",
        examples=2,
        whole_line=older.whole_line and newer.whole_line,
        chain=newer.chain if older.chain == newer.chain else "",
        # whole lines deleted twice: each site is its lines with their indent and newline
        deletes_lines=older.deletes_lines and newer.deletes_lines,
        label=f"{''.join(shown)} → {after_shown}",
    )


def _holds(text: str, edit: EditPair) -> bool:
    """Whether the edit's after text is where it says in ``text`` (a stale one is not)."""
    return edit.offset >= 0 and text.startswith(edit.after, edit.offset)


def _examples(
    text: str, history: Sequence[EditPair], path: str, mask: LexMask | None = None
) -> list[Example | None]:
    """The history's examples, newest first: None for the newest when it does not hold or is
    no pattern; older edits that do not hold are left out. Each edit's before document is the
    current text with that edit alone taken back."""
    out: list[Example | None] = []
    for k, edit in enumerate(reversed(history)):
        if not _holds(text, edit):
            if k == 0:
                return [None]
            continue
        end = edit.offset + len(edit.after)
        before_doc = text[: edit.offset] + edit.before + text[end:]
        out.append(example_of(before_doc, text, edit, path, after_mask=mask))
    return out


_PY_SUFFIXES = (".py", ".pyi", ".pyw")
#: the words whose next name is a definition's (Python, JS/TS, Rust, Go, Kotlin, Swift)
_DEFINERS = frozenset({"def", "class", "function", "fn", "func", "fun", "struct", "interface"})
_QUOTED = re.compile(r"^\w*[\"'`]+|[\"'`]+$")  # a literal's prefix and quotes
_BINDING_LINE = re.compile(r"(?:async\s+)?(?:def|class)\b")


def _suffix(path: str) -> str:
    return path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""


def _code_word_elsewhere(
    text: str, word: str, lo: int, hi: int, mask: LexMask, start: int = 0, *, bare: bool = False
) -> bool:
    """Whether ``word`` occurs as a whole code word in ``text[start:]`` outside ``[lo, hi)``.
    ``bare``: only as a bare name, not as an attribute (``resp.history`` is another namespace
    than a local ``history``: a user run renamed ``hist`` -> ``history`` beside
    ``resp.history`` and was offered nothing)."""
    p = text.find(word, start)
    n = len(text)
    while p >= 0:
        end = p + len(word)
        if (
            not (lo <= p < hi)
            and not (p > 0 and _is_word(text[p - 1]))
            and not (end < n and _is_word(text[end]))
            and mask.span_at(p) is None
            and not (bare and _after_dot(text, p))
        ):
            return True
        p = text.find(word, end)
    return False


def _after_dot(text: str, p: int) -> bool:
    """Whether the word at ``p`` follows a ``.`` (spaces or tabs between): an attribute."""
    q = p - 1
    while q >= 0 and text[q] in " \t":
        q -= 1
    return q >= 0 and text[q] == "."


def _name_style(word: str) -> str:
    """``UPPER`` (a constant), ``Cap`` (a class) or ``lower`` (a function, a variable)."""
    core = word.strip("_")
    if not core or core[0].isdigit():
        return "lower"
    if core.upper() == core and any(c.isalpha() for c in core):
        return "UPPER"
    return "Cap" if core[0].isupper() else "lower"


def ambiguity(
    ex: Example,
    text: str,
    mask: LexMask,
    path: str = "",
    *,
    older: Sequence[Example | None] = (),
) -> str | None:
    """Why one example alone is no pattern (None: it is one). A second, consistent example
    (the same edit again, or a template) lifts it. Measured on real commits (httpx, jinja,
    requests), each of these one-example shapes was wrong more often than a third of the
    time:

    - a rename to a name the file already uses (``loop_frame`` -> ``frame``, ``PY3`` ->
      ``PY2``): one reference swapped for another binding, not a binding renamed;
    - a rename to a name of another style (``UnicodeMixin`` -> ``implements_to_string``,
      ``PY2`` -> ``UnicodeMixin``, ``object`` -> ``Base``): a class, function or constant
      swapped for another kind of thing, whose uses change otherwise;
    - an edit that adds lines (``for x in xs:`` -> two lines): new code written there, not a
      shape to repeat;
    - a ``def`` or ``class`` line changed: one function's signature, not every function's;
    - a string without a word in it changed (``")"`` -> ``"))"``): too common to mean one thing;
    - a string with ``MAX_LITERAL_COPIES`` or more other copies in the file changed
      (``'undefined'`` -> ``'param'`` in a table of expectations): one copy, not all;
    - an exact edit that only adds or only removes strings or ``None``/``True``/``False``
      (``[]`` -> ``["x"]``, ``encode("utf-8")`` -> ``encode()``): this place's data.

    And, however many examples: an edit inside a string or comment (by the document's mask:
    a docstring's words) is no code pattern (``propose`` offers it in prose alone:
    ``_prose_proposals``), nor one that changes the bracket balance (an edit in progress:
    ``except OSError:`` -> ``except (OSError:``). A rename to a name already used is none
    when ``_local_rename`` says the old name dangles in its function, or ``_unbound_rename``
    (with the ``older`` examples) that a recent edit took away the file's only binding of it.
    """
    if _inside_text(ex, mask):
        return "the edit is inside a string or comment"
    if ex.kind == "rename":
        if (
            _code_word_elsewhere(text, ex.after_text, ex.start, ex.end, mask, bare=not ex.dotted)
            and not _local_rename(ex, text, mask, path)
            and not _unbound_rename(ex, older, text, mask, path)
        ):
            return f"{ex.after_text} is already used in the file"
        if _name_style(ex.before_text) != _name_style(ex.after_text):
            return "a name of another kind (class, function, constant)"
        return None
    if ex.after_text.count("\n") > ex.before_text.count("\n") and not ex.inserts_lines:
        return "the edit adds lines"
    if ex.deletes_lines:
        return _deletion_ambiguity(ex, text, mask)
    if ex.kind == "literal" and len(_WORD.findall(_QUOTED.sub("", ex.before_text))) == 0:
        return "a string without a word in it"
    if ex.kind == "literal" and _copies(text, ex, mask) >= MAX_LITERAL_COPIES:
        return "a common value: one of its copies changed is not all of them"
    if (
        ex.chain == "replace"
        and len(ex.before) == 1
        and not _unbound_rename(ex, older, text, mask, path)
    ):
        return "a name replaced by another expression"
    if ex.kind == "exact" and _BINDING_LINE.match(ex.before_text):
        return "a def or class line"
    if ex.kind == "exact" and _values_only(ex):
        return "a value added, removed or changed"
    return None


_CALL_STATEMENT = re.compile(r"(?:await\s+)?[\w.]+\(.*\)$")


def _deletion_ambiguity(ex: Example, text: str, mask: LexMask) -> str | None:
    """Why one deleted line is no pattern alone: several lines (a block of this place), or a
    call made for its effect that the file makes ``MAX_LITERAL_COPIES`` or more times
    elsewhere (``self.indent()`` in a code generator: one of its steps)."""
    if "\n" in ex.before_text:
        return "several lines deleted"
    if _CALL_STATEMENT.match(ex.before_text) and (
        _line_copies(text, ex.before_text, mask) >= MAX_LITERAL_COPIES
    ):
        return "a common statement: one of its copies deleted is not all of them"
    return None


def _line_copies(text: str, code: str, mask: LexMask) -> int:
    """How many lines of ``text`` hold exactly ``code`` (indent aside), in code."""
    n, p = 0, text.find(code)
    while p >= 0:
        if mask.span_at(p) is None and _alone_on_lines(text, p, p + len(code), mask):
            n += 1
        p = text.find(code, p + len(code))
    return n


#: A string changed once whose old text has this many other copies in the file is a common
#: value (``'undefined'`` in a table of expectations), not one message.
MAX_LITERAL_COPIES = 3
_VALUE_WORDS = frozenset({"None", "True", "False", "null", "true", "false", "nil", "undefined"})


def _copies(text: str, ex: Example, mask: LexMask) -> int:
    """How many other string literals of the file read exactly as the example's old text."""
    n, p = 0, text.find(ex.before_text)
    while p >= 0:
        end = p + len(ex.before_text)
        if mask.span_at(p) == (p, end, Kind.STRING) and not (ex.start <= p < ex.end):
            n += 1
        p = text.find(ex.before_text, end)
    return n


def _is_value(t: Lit) -> bool:
    return t.kind == STRING or (t.kind == IDENT and t.text in _VALUE_WORDS)


def _values_only(ex: Example) -> bool:
    """Whether the example's change (its tokens between the common ends) only adds or only
    removes strings or ``None``/``True``/``False`` with their punctuation: ``[]`` ->
    ``["12345\\n"]``, ``encode("utf-8")`` -> ``encode()``, ``Union[A, B]`` -> ``Union[A, B,
    None]``: data of this place, not a shape to repeat (real commits: wrong each time). A
    value replaced (``sleep(30)`` -> ``sleep(60)``, ``x=None`` -> ``x=True``) and a number
    added (``f(x)`` -> ``f(x, 2)``) stay patterns."""
    b, a = ex.before, ex.after
    p, q = shared_ends(b, a)
    removed, added = b[p : len(b) - q], a[p : len(a) - q]
    if removed and added:
        return False
    changed = removed or added
    return any(_is_value(t) for t in changed) and all(
        _is_value(t) or t.kind == PUNCT for t in changed
    )


def _inside_text(ex: Example, mask: LexMask) -> bool:
    """Whether the example lies inside a string or comment of the document (a literal's own
    whole string is code)."""
    span = mask.span_at(ex.start)
    return span is not None and (ex.kind != "literal" or span[:2] != (ex.start, ex.end))


def _brackets(tokens: Sequence[Lit]) -> tuple[int, int, int]:
    """Openers minus closers of ``()``, ``[]``, ``{}`` among the tokens (strings are whole)."""
    counts = {"(": 0, "[": 0, "{": 0}
    for t in tokens:
        if t.kind == PUNCT and t.text in _OPEN:
            counts[t.text] += 1
        elif t.kind == PUNCT and t.text in _CLOSE:
            counts[_CLOSE[t.text]] -= 1
    return counts["("], counts["["], counts["{"]


def _unfinished(ex: Example) -> bool:
    """Whether the edit changes the bracket balance (``except OSError:`` -> ``except
    (OSError:``, typed so far): an edit in progress, whose sites would not balance."""
    return _brackets(ex.before) != _brackets(ex.after)


def _choose(
    examples: Sequence[Example | None], text: str, mask: LexMask, path: str
) -> Pattern | None:
    if not examples or examples[0] is None:
        return None
    newest = examples[0]
    if newest.kind == "rename" and newest.after_text == "_":
        return None  # a value discarded where it is bound, not a name renamed
    if _inside_text(newest, mask) or _unfinished(newest):
        return None
    for older in examples[1:]:
        if older is not None:
            template = generalise(older, newest)
            if template is not None:
                return template
    if ambiguity(newest, text, mask, path, older=examples[1:]) is not None:
        return None
    return _exact(newest)


def pattern_for_history(
    text: str, history: Sequence[EditPair], path: str = "", *, mask: LexMask | None = None
) -> Pattern | None:
    """The pattern the history's newest edit makes: a template with the newest older example
    it generalises with, else the newest example's exact text unless one example of it is
    ambiguous (``ambiguity``); None when it is no pattern."""
    history = compose_chains(history)  # ``rv`` -> ``copy`` -> ``dup``: one edit (events.py)
    if mask is None:
        mask = mask_for(text, path)
    return _choose(_examples(text, history, path, mask), text, mask, path)


# ---------------------------------------------------------------- sites


def _anchor(before: Sequence[Lit | Hole]) -> int:
    best, best_key = -1, (-1, -1)
    for k, t in enumerate(before):
        if isinstance(t, Lit):
            key = (1 if t.kind != PUNCT else 0, len(t.text))
            if key > best_key:
                best, best_key = k, key
    return best


def _anchor_ok(text: str, p: int, lit: Lit, mask: LexMask) -> bool:
    end = p + len(lit.text)
    if lit.kind == STRING:
        return mask.span_at(p) == (p, end, Kind.STRING)
    if mask.span_at(p) is not None:
        return False
    if lit.kind == IDENT:
        if p > 0 and _is_word(text[p - 1]):
            return False
        if end < len(text) and _is_word(text[end]):
            return False
    return True


def _accept(tok: Token | None, want: Lit | Hole, text: str, bound: dict[int, str]) -> bool:
    if tok is None:
        return False
    got = text[tok[0] : tok[1]]
    if isinstance(want, Lit):
        return want.kind == tok[2] and want.text == got
    if tok[2] not in _ATOMS:
        return False
    have = bound.get(want.n)
    if have is None:
        if got in bound.values():
            return False
        bound[want.n] = got
        return True
    return have == got


def _is_keyword_arg(text: str, before: str, end: int, mask: LexMask) -> bool:
    """Whether the name ending at ``end``, after the punctuation ``before``, is a keyword
    argument: ``(`` or ``,`` before it, one ``=`` (not ``==``) after it."""
    if before not in ("(", ","):
        return False
    nxt = _next_token(text, end, mask)
    if nxt is None or text[nxt[0] : nxt[1]] != "=":
        return False
    nxt2 = _next_token(text, nxt[1], mask)
    return nxt2 is None or text[nxt2[0] : nxt2[1]] != "="


def _alone_on_lines(text: str, start: int, end: int, mask: LexMask) -> bool:
    """Whether ``text[start:end]`` is all the code of its lines."""
    if text[_line_start(text, start) : start].strip():
        return False
    nxt = _next_token(text, end, mask)
    return nxt is None or "\n" in text[end : nxt[0]]


def _own(text: str, dot: Token | None, mask: LexMask) -> bool:
    """Whether the ``.`` token ``dot`` follows a bare ``self`` or ``cls``."""
    if dot is None:
        return False
    obj = _prev_token(text, dot[0], mask)
    if obj is None or text[obj[0] : obj[1]] not in ("self", "cls"):
        return False
    before = _prev_token(text, obj[0], mask)
    return before is None or text[before[0] : before[1]] != "."


def _plays_the_part(text: str, first: int, pos: int, pattern: Pattern, mask: LexMask) -> bool:
    """Whether a rename's site ``text[first:pos]`` plays the part its example did (a bare
    name, an attribute, a keyword argument; not another definition)."""
    if pattern.dotted is None and pattern.keyword is None and not pattern.definition:
        return True
    prev = _prev_token(text, first, mask)
    if pattern.definition and prev is not None and text[prev[0] : prev[1]] in _DEFINERS:
        return False
    before = text[prev[0] : prev[1]] if prev is not None and prev[2] == PUNCT else ""
    if pattern.own_method and prev is not None and text[prev[0] : prev[1]] == "def":
        # ``self.send()`` renamed: the method ``def send`` (indented: a class's) too
        return _indent_of(text, _line_start(text, prev[0]))[0] > 0
    if pattern.dotted is not None and (before == ".") != pattern.dotted:
        return False
    if before == "." and pattern.own_attributes and not _own(text, prev, mask):
        return False
    return pattern.keyword is None or _is_keyword_arg(text, before, pos, mask) == pattern.keyword


def _match_at(text: str, p: int, pattern: Pattern, a: int, mask: LexMask) -> Site | None:
    bound: dict[int, str] = {}
    first = p
    pos = p
    for want in reversed(pattern.before[:a]):
        tok = _prev_token(text, pos, mask)
        if not _accept(tok, want, text, bound):
            return None
        assert tok is not None
        pos = first = tok[0]
    pos = p + len(pattern.before[a].text)  # type: ignore[union-attr]
    for want in pattern.before[a + 1 :]:
        tok = _next_token(text, pos, mask)
        if not _accept(tok, want, text, bound):
            return None
        assert tok is not None
        pos = tok[1]
    if pattern.whole_line and not _alone_on_lines(text, first, pos, mask):
        return None
    if not _plays_the_part(text, first, pos, pattern, mask):
        return None
    if pattern.chain and not _whole_chain(text, first, pos, pattern, mask):
        return None
    old = text[first:pos]
    if pattern.before_text and old != pattern.before_text:
        return None
    new = "".join(bound[part.n] if isinstance(part, Hole) else part for part in pattern.after)
    if new == old:
        return None
    if pattern.deletes_lines:
        first, pos = _line_start(text, first), min(len(text), _line_end(text, pos) + 1)
        return Site(first, pos, text[first:pos], "")
    if pattern.kind == "rename" and _imported_already(text, first, new, mask):
        return None
    return Site(first, pos, old, new)


#: words after which a name is being bound or imported, not used (no qualifier goes there)
_BINDS = frozenset(
    {"def", "class", "import", "from", "as", "global", "nonlocal", "for", "function", "fn"}
)


def _assigns_to_itself(text: str, prev: Token | None, new: str, mask: LexMask) -> bool:
    """Whether the site, after ``prev``, is the value that its statement assigns to ``new``
    (``decoder = self.decoder`` -> ``decoder = decoder``: the local's own binding)."""
    if prev is None or text[prev[0] : prev[1]] != "=":
        return False
    target = _prev_token(text, prev[0], mask)
    return target is not None and text[target[0] : target[1]] == new


def _whole_chain(text: str, first: int, pos: int, pattern: Pattern, mask: LexMask) -> bool:
    """Whether a chain pattern's site ``text[first:pos]`` is a whole dotted chain (no ``.``
    before it) and, for a name to qualify, a use: not bound there (``name =``, ``def name``,
    ``for name``), not a keyword argument's name, not in an import statement."""
    prev = _prev_token(text, first, mask)
    word = text[prev[0] : prev[1]] if prev is not None else ""
    chain = pattern.chain
    new = pattern.after[0] if len(pattern.after) == 1 else None
    if word == ".":
        return False
    if isinstance(new, str) and _assigns_to_itself(text, prev, new, mask):
        return False
    if chain == "unqualify":
        return True
    if word in _BINDS:
        return False
    nxt = _next_token(text, pos, mask)
    if nxt is not None and text[nxt[0] : nxt[1]] == "=":
        after = _next_token(text, nxt[1], mask)
        if after is None or text[after[0] : after[1]] != "=":
            return False  # bound or a keyword's name (``x = main``: only the use)
    if nxt is not None and text[nxt[0] : nxt[1]] == ":" and _annotated(text, first, mask):
        return False  # a parameter or a variable annotated (``pgettext: t.Optional[...]``)
    return not _in_import(text, first)


def _local_name(text: str, pos: int, name: str, mask: LexMask) -> bool:
    """Whether the Python function around ``pos`` has ``name`` as a parameter, binds it
    (``_local_in``) or defines it in a nested ``def``/``class``: a use there is its local,
    not the module's name."""
    block = _python_function(text, pos, mask)
    if block is None:
        return False
    nested = re.compile(rf"[ \t]+(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b", re.M)
    body = text[block[0] : block[1]]
    return _local_in(text, block, {name}, mask) or any(
        mask.span_at(block[0] + m.start()) is None for m in nested.finditer(body, 1)
    )


def _annotated(text: str, first: int, mask: LexMask) -> bool:
    """Whether the name at ``first``, before a ``:``, is being declared: a parameter of a
    ``def`` (on its line or a line of its own in the def's brackets) or a name annotated at a
    line's start (``x: int = 0``), not a dict's key nor a slice."""
    lo = _line_start(text, first)
    if lo + _indent_of(text, lo)[0] == first:
        return True
    return _a_parameter(text, first, mask)


def _in_import(text: str, pos: int) -> bool:
    """Whether ``pos`` lies in an import statement: its line, or a line above it that the
    statement continues (an open bracket or a backslash), starts with ``import``/``from``."""
    line = _line_start(text, pos)
    for _ in range(100):
        indent = _indent_of(text, line)[0]
        if _IMPORT_LINE.match(text, line + indent):
            return True
        if line == 0:
            return False
        above = _line_start(text, line - 1)
        tail = text[above : line - 1].rstrip()
        if not tail.endswith(("(", ",", "\\")):
            return False
        line = above
    return False


def _imported_already(text: str, pos: int, name: str, mask: LexMask) -> bool:
    """Whether ``pos`` lies in an import statement (its first line) that already imports
    ``name``: a rename there would import it twice (``from .compat import str, bytes``, with
    ``bytes`` -> ``str`` renamed at its uses, is no site)."""
    line = _line_start(text, pos)
    indent = _indent_of(text, line)[0]
    if not _IMPORT_LINE.match(text, line + indent):
        return False
    end = _line_end(text, line)
    tok = _next_token(text, line + indent, mask)
    depth = 0
    while tok is not None and (tok[0] < end or depth > 0):
        word = text[tok[0] : tok[1]]
        if tok[2] == PUNCT and word in _OPEN:
            depth += 1
        elif tok[2] == PUNCT and word in _CLOSE:
            depth = max(0, depth - 1)
        elif tok[2] == IDENT and word == name:
            return True
        tok = _next_token(text, tok[1], mask)
    return False


def find_sites(
    text: str,
    pattern: Pattern,
    *,
    path: str = "",
    mask: LexMask | None = None,
    start: int = 0,
    stop: int | None = None,
    limit: int | None = None,
) -> list[Site]:
    """The sites in ``text`` matching the pattern's "before" shape in code, in text order,
    without overlaps (the earlier site wins): those whose anchor token starts in
    ``[start, stop)``, at most ``limit``. Any file's text: the seam for other files."""
    a = _anchor(pattern.before)
    if a < 0 or len(pattern.before) > MAX_PATTERN_TOKENS:
        return []
    if mask is None:
        mask = mask_for(text, path)
    anchor = pattern.before[a]
    assert isinstance(anchor, Lit)
    stop = len(text) if stop is None else stop
    sites: list[Site] = []
    last = stop + len(anchor.text) - 1  # an anchor starts before ``stop``
    p = text.find(anchor.text, start, last)
    n = len(text)
    word = anchor.kind == IDENT and _is_word(anchor.text[0]) and _is_word(anchor.text[-1])
    awaits = _suffix(path) in _PY_SUFFIXES and _adds_await(pattern)
    while p >= 0 and (limit is None or len(sites) < limit):
        end = p + len(anchor.text)
        if word and ((p > 0 and _is_word(text[p - 1])) or (end < n and _is_word(text[end]))):
            # inside a longer word: skip the whole word at C speed
            m = _WORD.match(text, end)
            p = text.find(anchor.text, m.end() if m else end, last)
            continue
        if _anchor_ok(text, p, anchor, mask):
            site = _match_at(text, p, pattern, a, mask)
            if (
                site is not None
                and (not sites or site.start >= sites[-1].end)
                and (not awaits or _in_async_def(text, site.start, mask))
            ):
                sites.append(site)
        p = text.find(anchor.text, p + 1, last)
    return sites


def _adds_await(pattern: Pattern) -> bool:
    """Whether the pattern's new text has more ``await`` words than its old one."""
    after = "".join(p for p in pattern.after if isinstance(p, str))
    before = sum(1 for t in pattern.before if isinstance(t, Lit) and t.text == "await")
    return len(_AWAIT.findall(after)) > before


def _in_async_def(text: str, pos: int, mask: LexMask) -> bool:
    """Whether ``pos`` lies in an ``async def``'s block (Python: ``await`` is valid only
    there; ``send()`` -> ``await send()`` in an async client is no edit for the sync one)."""
    found = _enclosing_def(text, pos, mask)
    return found >= 0 and text.startswith("async", found + _indent_of(text, found)[0])


_AWAIT = re.compile(r"\bawait\b")
_SPACE_TABS = re.compile(r"[ \t]*")
_DEF = re.compile(r"(?:async[ \t]+)?def[ \t]")


def _indent_of(text: str, lo: int) -> tuple[int, bool]:
    """(indent width, whether the line from ``lo`` is blank)."""
    m = _SPACE_TABS.match(text, lo)
    end = m.end() if m else lo
    blank = end >= len(text) or text[end] in "\r\n"
    return end - lo, blank


def _enclosing_def(text: str, pos: int, mask: LexMask) -> int:
    """The start of the nearest enclosing ``def`` line by indentation (the line at ``pos``
    itself when it is one), or -1; lines starting in a string or comment do not count."""
    line = _line_start(text, pos)
    threshold = _indent_of(text, line)[0] + 1  # the edit's own line may be the def
    while True:
        indent, blank = _indent_of(text, line)
        first = line + indent
        # a line opening with a closer (``) -> T:`` of a wrapped def) continues one above
        closer = not blank and text[first] in ")]}"
        if not blank and not closer and indent < threshold and mask.span_at(first) is None:
            if _DEF.match(text, first):
                return line
            threshold = indent
            if indent == 0:
                return -1
        if line == 0:
            return -1
        line = _line_start(text, line - 1)


def _python_function(text: str, pos: int, mask: LexMask) -> tuple[int, int] | None:
    """The Python function block around ``pos``: its def line to the block's end."""
    found = _enclosing_def(text, pos, mask)
    if found < 0:
        return None
    def_indent = _indent_of(text, found)[0]
    # the block ends at the first line whose first token sits at the def's indent or less,
    # outside brackets (continuation lines, strings and comments never end it)
    depth = 0
    prev_end = found
    tok = _next_token(text, found, mask)
    while tok is not None:
        line = _line_start(text, tok[0])
        if depth == 0 and line > prev_end and tok[0] - line <= def_indent:
            return found, line
        if tok[2] == PUNCT:
            if text[tok[0]] in _OPEN:
                depth += 1
            elif text[tok[0]] in _CLOSE:
                depth = max(0, depth - 1)
        prev_end = tok[1]
        tok = _next_token(text, tok[1], mask)
    return found, len(text)


def _local_rename(ex: Example, text: str, mask: LexMask, path: str) -> bool:
    """Whether a rename to a name the file already uses is still unambiguous: a bare name
    (Python) in a function that now binds the new name (a parameter, ``name =``, ``for``,
    ``as``) and no longer binds the old one, which nothing around that function can bind
    either (no builtin; no line outside the function at its ``def``'s indent or less holds
    it: the module's names, an enclosing function's): the old name's uses left there are
    dangling, their binding renamed (``tmpl = ...`` -> ``t = ...``, then ``tmpl.render()``;
    other functions' own ``tmpl`` are theirs). Its sites are that function's
    (``_rename_scope``). Where the function still binds the old name, one reference swapped
    for another binding is ambiguous (``name`` -> ``cache_key``: not every ``name``), and so is
    a new name the function has elsewhere (two variables merged, or a line rewritten)."""
    if ex.dotted or ex.keyword or ex.definition or _suffix(path) not in _PY_SUFFIXES:
        return False
    if hasattr(builtins, ex.before_text):
        return False
    block = _python_function(text, ex.start, mask)
    if block is None:
        return False
    if not _local_in(text, block, {ex.after_text}, mask) or _local_in(
        text, block, {ex.before_text}, mask
    ):
        return False
    # the new name is the edit's alone in the function: else two variables would merge
    # (``request = Request(...)`` rewritten as ``response = ...`` above
    # ``response = send(request)``)
    lo, hi = block
    if _code_word_elsewhere(text[:hi], ex.after_text, ex.start, ex.end, mask, lo, bare=True):
        return False
    return not _outer_use(text, ex.before_text, block, mask)


def _unbound_rename(
    ex: Example, older: Sequence[Example | None], text: str, mask: LexMask, path: str
) -> bool:
    """Whether a rename to a name the file already uses is still unambiguous because a recent
    edit (an ``older`` example) took away the old name's binding: it removed the name from an
    import (``MutableMapping,`` deleted from ``from typing import (...)``; ``_encode_filename``
    swapped for ``encode_filename`` in an import) or from a ``def``/``class``/assignment line,
    and nothing in the file binds the old name now (``_binds``), so each use left is a
    ``NameError`` that the rename mends (httpx ``MutableMapping`` -> ``Mapping``, jinja
    ``_encode_filename`` -> ``encode_filename``). Python only; a builtin never."""
    if ex.dotted or ex.keyword or ex.definition or _suffix(path) not in _PY_SUFFIXES:
        return False
    name = ex.before_text
    if hasattr(builtins, name) or _STAR_IMPORT.search(text):
        return False
    took = False
    for e in older:
        if e is None:
            continue
        had = any(t.kind == IDENT and t.text == name for t in e.before)
        has = any(t.kind == IDENT and t.text == name for t in e.after)
        if (
            had
            and not has
            and (_in_import(text, e.start) or _BINDS_NAME.match(e.before_text.lstrip()))
        ):
            took = True
            break
    return took and not _binds(text, name, mask)


_STAR_IMPORT = re.compile(r"^\s*from\s+\S+\s+import\s+\*", re.M)
#: a line that binds its first name: ``def name``, ``class name``, ``name =`` (``name: T =``)
_BINDS_NAME = re.compile(r"(?:async\s+)?(?:def|class)\s|\w+\s*(?::[^=]*)?=(?!=)")
_BINDERS = frozenset({"def", "class", "import", "as", "for", "global", "nonlocal", "lambda", "del"})


def _binds(text: str, name: str, mask: LexMask) -> bool:
    """Whether ``name`` may be bound anywhere in ``text`` (conservatively: an import
    statement, after ``def``/``class``/``as``/``for``/..., assigned, annotated, a parameter or
    tuple target on its own line, ``name :=``)."""
    p = text.find(name)
    n = len(text)
    while p >= 0:
        end = p + len(name)
        if (
            not (p > 0 and _is_word(text[p - 1]))
            and not (end < n and _is_word(text[end]))
            and mask.span_at(p) is None
        ):
            prev = _prev_token(text, p, mask)
            before = text[prev[0] : prev[1]] if prev is not None else ""
            if before != "." and _binding_use(text, (p, end, IDENT), before, mask):
                return True
        p = text.find(name, end)
    return False


def _binding_use(text: str, tok: Token, before: str, mask: LexMask) -> bool:
    """``_binds``'s test of one bare occurrence ``tok`` after the token text ``before``."""
    if before in _BINDERS or _in_import(text, tok[0]) or _a_parameter(text, tok[0], mask):
        return True
    if _assigned(text, tok, mask):
        return True
    nxt = _next_token(text, tok[1], mask)
    after = text[nxt[0] : nxt[1]] if nxt is not None else ""
    if after == ":":
        return True  # annotated (a parameter, a class field) or ``name :=``
    lo = _line_start(text, tok[0])
    own_line = lo + _indent_of(text, lo)[0] == tok[0]
    if after == "," and (own_line or before == ","):
        return True  # a parameter on its own line, a tuple target (``a, name = ...``)
    line = text[tok[0] : _line_end(text, tok[0])]
    return text[lo : tok[0]].lstrip().startswith("for ") and " in " in line


def _outer_use(text: str, name: str, block: tuple[int, int], mask: LexMask) -> bool:
    """Whether ``name`` occurs as a code word outside the function ``block`` on a line
    indented no deeper than its ``def`` (where it could be bound for the function)."""
    def_indent = _indent_of(text, block[0])[0]
    p = text.find(name)
    n = len(text)
    while p >= 0:
        end = p + len(name)
        if (
            not (block[0] <= p < block[1])
            and not (p > 0 and _is_word(text[p - 1]))
            and not (end < n and _is_word(text[end]))
            and mask.span_at(p) is None
            and _indent_of(text, _line_start(text, p))[0] <= def_indent
            and not _a_parameter(text, p, mask)
        ):
            return True
        p = text.find(name, end)
    return False


def _a_parameter(text: str, pos: int, mask: LexMask) -> bool:
    """Whether the name at ``pos`` sits in a ``def``'s parentheses on the def's own line
    (another function's parameter: its own binding)."""
    line = _line_start(text, pos)
    m = _DEF.match(text, line + _indent_of(text, line)[0])
    if m is None:
        return False
    opened = text.find("(", m.end(), pos)
    return opened >= 0 and mask.span_at(opened) is None


def _local_in(text: str, block: tuple[int, int], names: set[str], mask: LexMask) -> bool:
    """Whether one of ``names`` is a parameter of the function ``block`` (its def line to its
    end) or bound in its body (``_bound_in``)."""
    depth = 0
    tok = _next_token(text, block[0], mask)
    while tok is not None and tok[0] < block[1]:
        word = text[tok[0] : tok[1]]
        if tok[2] == PUNCT:
            if word in _OPEN:
                depth += 1
            elif word in _CLOSE:
                depth -= 1
            elif word == ":" and depth == 0:
                return _bound_in(text, tok[1], block[1], names, mask)
        elif depth == 1 and tok[2] == IDENT and word in names:
            return True
        tok = _next_token(text, tok[1], mask)
    return False


def _rename_scope(
    text: str, pattern: Pattern, newest: Example, mask: LexMask, path: str
) -> tuple[int, int] | None:
    """Where a rename applies: a Python function's block when the name (old or new) is one
    of that function's parameters or is bound in it (``name = ...``, ``for name in``, ``as
    name``; not declared ``global``/``nonlocal``): a local; else None (the whole text)."""
    whole = None
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if pattern.kind != "rename" or pattern.dotted or pattern.keyword or pattern.definition:
        return whole
    if suffix not in (".py", ".pyi", ".pyw"):
        return whole
    block = _python_function(text, newest.start, mask)
    if block is None:
        return whole
    # the def's header: its tokens up to the ':' outside brackets, then its body
    return block if _local_in(text, block, {newest.before_text, newest.after_text}, mask) else whole


def _self_scope(
    text: str, pattern: Pattern, newest: Example, mask: LexMask
) -> tuple[int, int] | None:
    """Where ``self.x`` -> ``x`` applies: the function around the example (a local now holds
    what the attribute did there; another method's ``self.x`` is the attribute still)."""
    first = pattern.before[0] if pattern.before else None
    if pattern.chain != "unqualify" or not isinstance(first, Lit):
        return None
    if first.text not in ("self", "cls"):
        return None
    return _python_function(text, newest.start, mask)


_CLASS = re.compile(r"class[ \t(:]")


def _top_code_line(text: str, line: int, mask: LexMask) -> bool:
    """Whether the line starting at ``line`` starts, unindented, with code."""
    indent, blank = _indent_of(text, line)
    return indent == 0 and not blank and mask.span_at(line) is None


def _top_class(text: str, pos: int, mask: LexMask) -> tuple[int, int] | None:
    """The top-level Python ``class`` block around ``pos`` (its line to the next unindented
    line of code), or None when ``pos`` is not inside one."""
    line = _line_start(text, pos)
    if _top_code_line(text, line, mask):
        return None
    while line > 0:
        line = _line_start(text, line - 1)
        if _top_code_line(text, line, mask):
            break
    else:
        return None
    if not _CLASS.match(text, line):
        return None
    nxt = _line_end(text, line) + 1
    while nxt < len(text):
        if _top_code_line(text, nxt, mask) and text[nxt] not in ")]}":
            return line, nxt
        nxt = _line_end(text, nxt) + 1
    return line, len(text)


def _own_class(
    text: str, pattern: Pattern, newest: Example, mask: LexMask, path: str
) -> tuple[int, int] | None:
    """Where a method's rename reaches as ``self.name``/``cls.name`` when another definition
    in the file still has its old name (``def get_source`` in one loader class:
    ``self.get_source()`` in another class calls that class's own): its class; else None."""
    if not pattern.own_attributes or _suffix(path) not in _PY_SUFFIXES:
        return None
    if not _defined_elsewhere(text, newest, mask):
        return None
    return _top_class(text, newest.start, mask)


def _attribute(text: str, site: Site, mask: LexMask) -> bool:
    prev = _prev_token(text, site.start, mask)
    return prev is not None and text[prev[0] : prev[1]] == "."


def _defined_elsewhere(text: str, newest: Example, mask: LexMask) -> bool:
    """Whether a ``def``/``class`` other than the example's defines its old name (the
    example's own reads the new name now)."""
    return _defines(text, newest.before_text, mask)


def _bound_in(text: str, lo: int, hi: int, names: set[str], mask: LexMask) -> bool:
    """Whether one of ``names`` is bound by a statement in ``text[lo:hi]`` (a function's
    body): assigned at bracket depth 0 (``name =``, ``name: T =``, ``name +=``), a ``for``
    or ``as`` target; False when the body declares it ``global`` or ``nonlocal``."""
    depth = 0
    bound = False
    prev = ""
    tok = _next_token(text, lo, mask)
    while tok is not None and tok[0] < hi:
        word = text[tok[0] : tok[1]]
        if tok[2] == PUNCT and word in _OPEN:
            depth += 1
        elif tok[2] == PUNCT and word in _CLOSE:
            depth = max(0, depth - 1)
        elif tok[2] == IDENT and word in names and prev != ".":
            if prev in ("global", "nonlocal"):
                return False
            bound = bound or prev in ("for", "as") or (depth == 0 and _assigned(text, tok, mask))
        prev = word
        tok = _next_token(text, tok[1], mask)
    return bound


def _assigned(text: str, tok: Token, mask: LexMask) -> bool:
    """Whether the name ``tok`` is followed by ``=`` (not ``==``), ``op=`` or ``:`` then
    ``=`` on its line (an annotated assignment)."""
    nxt = _next_token(text, tok[1], mask)
    if nxt is None:
        return False
    first = text[nxt[0] : nxt[1]]
    after = _next_token(text, nxt[1], mask)
    second = text[after[0] : after[1]] if after is not None else ""
    if first == "=":
        return second != "="
    if first in "+-*/%&|^@" and second == "=" and after is not None and after[0] == nxt[1]:
        return True
    if first == ":":
        end = _line_end(text, nxt[1])
        line = text[nxt[1] : end]
        return "=" in line and "==" not in line
    return False


def _overlaps(start: int, end: int, lo: int, hi: int) -> bool:
    if lo == hi:
        return start < lo < end
    return start < hi and lo < end


def propose(
    text: str,
    history: Sequence[EditPair],
    caret: int,
    *,
    path: str = "",
    mask: LexMask | None = None,
) -> list[Proposal]:
    """The next edits the history's pattern offers in ``text``: nearest below the caret
    first, then from the top down to the caret; none overlaps a recent edit (the caret's own
    above all) nor another proposal, and none undoes a recent edit. When the code path offers
    nothing and the newest edit was made in prose (a comment, a docstring, a string: or a
    string literal changed with no other copy), its repeats in prose (``_prose_proposals``)."""
    history = compose_chains(history)  # ``rv`` -> ``copy`` -> ``dup``: one edit (events.py)
    if mask is None:
        mask = mask_for(text, path)
    closing = (
        (_quote_close(text, history[-1], path) or _backquote_close(text, history[-1], mask))
        if history
        else []
    )
    if closing:  # a string's opening quote changed or typed: its closing quote first
        return closing
    examples = _examples(text, history, path, mask)
    pattern = _choose(examples, text, mask, path)
    found = (
        []
        if pattern is None
        else _code_proposals(text, history, caret, path, mask, examples, pattern)
    )
    module = None if pattern is None else _module_gone(text, pattern, mask, path)
    if module is not None:  # ``collections.X`` -> ``X`` for each ``X`` the file imports
        sites = _code_proposals(text, history, caret, path, mask, examples, module)
        kept = [x for x in sites if _binds(text, x.new, mask)]
        found = [replace(x, rank=k) for k, x in enumerate(kept)] or found
    newest = examples[0] if examples else None
    again = None if found or not history else _code_rename_again(text, history[-1], examples, mask)
    if again is not None:  # the newest edit in prose repeats an older rename made in code
        rest = [e for e in examples if e is not again]
        found = _code_proposals(text, history, caret, path, mask, [again, *rest], _exact(again, 2))
    if not found and history:
        found = _comment_number(text, history[-1], mask) or _string_prefix(
            text, history[-1], caret, mask
        )
    prose = (
        not found
        and bool(history)
        and _holds(text, history[-1])
        and (
            newest is None
            or _inside_text(newest, mask)
            or (pattern is not None and pattern.kind == "literal")
        )
    )
    return _prose_proposals(text, history, caret, mask, path) if prose else found


_QUOTES = ("'", '"')


def _quote_close(text: str, edit: EditPair, path: str) -> list[Proposal]:
    """The other end of a string whose opening quote the newest edit changed or typed: an
    edit in progress, finished where the string (or the name it quotes) ends. A string's
    opening ``'`` swapped for ``"`` (httpx ``encode('ascii')``, requests ``'requests"``):
    its closing quote on the same line, unless the string holds the new quote or is
    triple-quoted. A quote typed before a name in code (``app: "WSGIApplication,``): a
    closing one right after the name's dotted chain. Read on the line before the edit."""
    q, at = edit.after, edit.offset
    if q not in _QUOTES or edit.before not in ("", *_QUOTES) or edit.before == q:
        return []
    if not _holds(text, edit):
        return []
    lo, hi = _line_start(text, at), _line_end(text, at)
    line = text[lo:at] + edit.before + text[at + 1 : hi]
    spans = mask_for(line, path)
    span = spans.span_at(at - lo)
    if edit.before:  # swapped: the string that opened there, on this line, without ``q``
        if span is None or span[2] is not Kind.STRING or span[0] > at - lo:
            return []
        if text[at - 1 : at] == edit.before or line.startswith(edit.before * 3, at - lo):
            return []
        close = lo + span[1] - 1
        inner = line[at - lo + 1 : span[1] - 1]
        if close <= at or line[span[1] - 1] != edit.before or q in inner or "\\" in inner:
            return []
        return [Proposal(close, close + 1, edit.before, q, 0, f"the string's closing {q}")]
    # typed before a name in code: close it after the name's dotted chain
    if span is not None or (at > lo and _is_word(text[at - 1])):
        return []
    end = at + 1
    while end < hi and (_is_word(text[end]) or text[end] == "."):
        end += 1
    if end == at + 1 or not _is_word(text[end - 1]) or (end < hi and text[end] in "'\"`"):
        return []
    return [Proposal(end, end, "", q, 0, f"the quoted name's closing {q}")]


def _backquote_close(text: str, edit: EditPair, mask: LexMask) -> list[Proposal]:
    """In prose, a backquote typed beside an opening one (reST's `` `name` `` made
    ````name````): the closing one doubled too (jinja's docstrings: ``The ``attribute`
    parameter`` -> ``The ``attribute`` parameter``). The closing one is the next single
    backquote on the line; the pair opened where an even number of backquotes stood before it
    on the line."""
    at = edit.offset
    if edit.before or edit.after != "`" or not _holds(text, edit):
        return []
    if mask.span_at(at) is None:
        return []
    lo, hi = _line_start(text, at), _line_end(text, at)
    if text[at - 1 : at] == "`" and text[at + 1 : at + 2] != "`":
        first = at - 1
    elif text[at + 1 : at + 2] == "`" and text[at - 1 : at] != "`":
        first = at
    else:
        return []
    if text.count("`", lo, first) % 2:
        return []  # the pair closes a span: not an opening one
    close = text.find("`", first + 2, hi)
    if close < 0 or text[close + 1 : close + 2] == "`" or not text[first + 2 : close].strip():
        return []
    return [Proposal(close, close, "", "`", 0, "the closing backquote doubled")]


#: what a backslash may escape in a Python string (anything else warns: ``"\\*"``, ``"\\d"``)
_VALID_ESCAPES = frozenset("\n\\'\"abfnrtvx01234567NuU")


def _invalid_escape(body: str) -> bool:
    """Whether a string's text holds a backslash escape Python does not know (``\\*``)."""
    i = body.find("\\")
    while 0 <= i < len(body) - 1:
        if body[i + 1] not in _VALID_ESCAPES:
            return True
        i = body.find("\\", i + 2)
    return False


#: a prefix typed before a string, and what a string needs for it (``_string_prefix``)
def _non_ascii(body: str) -> bool:
    return not body.isascii()


_PREFIX_NEEDS = {"r": _invalid_escape, "u": _non_ascii}


def _string_prefix(text: str, edit: EditPair, caret: int, mask: LexMask) -> list[Proposal]:
    """A prefix typed before a string for what the string holds, offered before the other
    strings of its kind (a docstring, another string) that hold it too and have no prefix:
    ``r`` before a string with a backslash escape Python does not know (requests' docstrings
    with ``:param \\*\\*kwargs:``), ``u`` before one with non-ASCII text (``u'имя'``, then
    ``'пароль'``), a string that is no docstring only where the token after it is the same
    (``.``: another ``'føø'`` passed as a value stays). Never a string that already has a
    prefix, nor one that does not need it."""
    need = _PREFIX_NEEDS.get(edit.after.lower())
    at = edit.offset
    if need is None or edit.before or not _holds(text, edit) or (at and _is_word(text[at - 1])):
        return []
    span = mask.span_at(at)
    if span is None or span[0] != at or span[2] is not Kind.STRING:
        return []
    where = _prose_class(text, span)
    if not need(text[span[0] : span[1]]):
        return []

    def then(end: int) -> str:  # the token after a string (``.`` of ``'имя'.encode``)
        tok = _next_token(text, end, mask)
        return "" if tok is None else text[tok[0] : tok[1]]

    # a string that is no docstring is used as the edited one was: the same token after it
    used = None if where[1] else then(span[1])
    sites: list[Site] = []
    for k, start in enumerate(mask.starts):
        end, kind = mask.ends[k], mask.kinds[k]
        if kind is not Kind.STRING or start == at or text[start] not in _QUOTES:
            continue
        one = (start, end, kind)
        if (
            _prose_class(text, one) == where
            and need(text[start:end])
            and (used is None or then(end) == used)
        ):
            sites.append(Site(start, start, "", edit.after))
    sites = sites[:MAX_PROPOSALS]
    return _ordered(
        [x for x in sites if x.start >= caret],
        [x for x in sites if x.start < caret],
        f"a string prefix, 1 example: {edit.after}",
    )


def _module_gone(text: str, pattern: Pattern, mask: LexMask, path: str) -> Pattern | None:
    """For a name unqualified from a module (``collections.Callable`` -> ``Callable``) that
    the file no longer binds (its ``import collections`` deleted): the template ``m.$1`` ->
    ``$1``, whose sites ``propose`` keeps where the file binds ``$1`` now (requests:
    ``Callable, Mapping`` imported from ``.compat`` instead; ``collections.Mapping`` follows
    ``collections.Callable``). Python only; None otherwise."""
    if pattern.chain != "unqualify" or len(pattern.before) != 3 or pattern.kind == "template":
        return None
    module = pattern.before[0]
    if not isinstance(module, Lit) or _suffix(path) not in _PY_SUFFIXES:
        return None
    if hasattr(builtins, module.text) or module.text in ("self", "cls"):
        return None
    if _binds(text, module.text, mask) or _STAR_IMPORT.search(text):
        return None
    return replace(
        pattern,
        before=(module, pattern.before[1], Hole(1)),
        after=(Hole(1),),
        before_text="",
        kind="template",
        label=f"{module.text}.$1 → $1 ({module.text} no longer imported)",
    )


#: a number changed in a comment is looked for in this many lines of code below it
COMMENT_NUMBER_LINES = 3
_DIGITS = re.compile(r"\d+")


def _comment_number(text: str, edit: EditPair, mask: LexMask) -> list[Proposal]:
    """A number changed in a comment, offered where the code right below the comment holds
    it once: the comment describes those lines (requests: ``# urllib3 >= 1.21.1, <= 1.26``
    over ``assert minor <= 25``; ``# chardet_version >= 3.0.2, < 6.0.0`` over ``< (5, 0,
    0)``). The code lines are the next ``COMMENT_NUMBER_LINES`` up to a blank line; a number
    read there twice or more (or never) is no site."""
    if not _holds(text, edit):
        return []
    p, old, new = _to_words(edit.before, edit.after)
    if not _DIGITS.fullmatch(old) or not _DIGITS.fullmatch(new) or old == new:
        return []
    span = mask.span_at(edit.offset + p)
    if span is None or span[2] is not Kind.COMMENT:
        return []
    found: list[Token] = []
    line = _line_end(text, edit.offset + p) + 1
    for _ in range(COMMENT_NUMBER_LINES):
        if line >= len(text) or _indent_of(text, line)[1]:
            break
        end = _line_end(text, line)
        tok = _next_token(text, line, mask)
        while tok is not None and tok[0] < end:
            if tok[2] == IDENT and text[tok[0] : tok[1]] == old:
                found.append(tok)
            tok = _next_token(text, tok[1], mask)
        line = end + 1
    if len(found) != 1:
        return []
    at, end, _k = found[0]
    return [Proposal(at, end, old, new, 0, f"a number in a comment, 1 example: {old} → {new}")]


def _renames_its_method(text: str, pattern: Pattern, mask: LexMask, path: str) -> bool:
    """Whether an attribute renamed twice at its uses (``http_versions.alpn_strings`` ->
    ``.alpn_identifiers``, twice) also renames the method it calls: the file's one ``def``
    of the old name, in a class (indented), with no ``def`` of the new name. Python only."""
    if pattern.kind != "rename" or pattern.dotted is not True or pattern.examples < 2:
        return False
    if pattern.own_method or _suffix(path) not in _PY_SUFFIXES:
        return False
    new = pattern.after[0] if len(pattern.after) == 1 else None
    if not isinstance(new, str) or _defines(text, new, mask):
        return False
    defs = [
        m.start()
        for m in re.finditer(
            rf"^([ \t]*)(?:async[ \t]+)?def[ \t]+{re.escape(pattern.before_text)}\b", text, re.M
        )
        if mask.span_at(m.start()) is None
    ]
    return len(defs) == 1 and _indent_of(text, defs[0])[0] > 0


def _code_rename_again(
    text: str, edit: EditPair, examples: Sequence[Example | None], mask: LexMask
) -> Example | None:
    """The older rename made in code that the newest edit, made in prose or a string literal,
    repeats word for word (httpx: ``HTTPError`` -> ``HTTPStatusError`` in an import, then in a
    docstring; ``BaseTCPStream`` -> ``BaseSocketStream`` at its ``class``, then in a quoted
    annotation): the rename's second example, so its code sites are offered. None otherwise."""
    newest = examples[0] if examples else None
    if newest is not None and not _inside_text(newest, mask) and newest.kind != "literal":
        return None
    if not _holds(text, edit):
        return None
    _p, old, new = _to_words(edit.before, edit.after)
    if not _WORD.fullmatch(old) or not _WORD.fullmatch(new):
        return None
    for e in examples[1:]:
        if (
            e is not None
            and e.kind == "rename"
            and (e.before_text, e.after_text) == (old, new)
            and not _inside_text(e, mask)
        ):
            return e
    return None


def _ordered(below: list[Site], above: list[Site], what: str) -> list[Proposal]:
    """Proposals below the caret first, then those above it (wrapped) that end before the first
    one below."""
    first_below = below[0].start if below else None
    if first_below is not None:
        above = [s for s in above if s.end <= first_below]
    above = above[: MAX_PROPOSALS - len(below)]
    ordered = [(s, "below the caret") for s in below] + [
        (s, "above the caret (wrapped)") for s in above
    ]
    return [
        Proposal(site.start, site.end, site.old, site.new, rank, f"{what}; {where}")
        for rank, (site, where) in enumerate(ordered)
    ]


def _prose_proposals(
    text: str, history: Sequence[EditPair], caret: int, mask: LexMask, path: str
) -> list[Proposal]:
    """The newest edit repeated in prose (``_prose_edit``): the same words in a comment, a
    docstring or another string (the class the edit was in), else the same change where the
    edit's whole line reads again in prose of that class (``_prose_line_sites``); this file
    only; none overlapping a recent edit, none undoing one."""
    edit = history[-1]
    prose = _prose_edit(text, edit, mask, path)
    held = [e for e in history if _holds(text, e)]
    reverts = {_to_words(e.after, e.before)[1:] for e in held}
    regions = [(e.offset, e.offset + len(e.after)) for e in held]
    # the edit's own line: the words it left beside it (``requests/requests/1979`` ->
    # ``requests/psf/1979``) are that line's, not a second copy
    regions.append((_line_start(text, edit.offset), _line_end(text, edit.offset)))

    def keep(found: list[Site]) -> list[Site]:
        return [
            s
            for s in found
            if not any(_overlaps(s.start, s.end, lo, hi) for lo, hi in regions)
            and (s.old, s.new) not in reverts
        ]

    sites: list[Site] = []
    label = ""
    if prose is not None and (
        not prose.plain
        or any(_to_words(e.before, e.after)[1:] == (prose.old, prose.new) for e in history[:-1])
    ):  # one plain word of a sentence rewritten once waits for the same change again
        sites = keep(_prose_sites(text, prose, mask))
        label = f"{_prose_name(prose.where)}), 1 example: {prose.old} → {prose.new}"
    if not sites:
        line = _prose_line(text, edit, mask)
        if line is not None:
            sites = keep(_prose_line_sites(text, line, mask))
            label = f"{_prose_name(line[3])}, a line), 1 example: {line[0]} → {line[1]}"
    return _ordered(
        [s for s in sites if s.start >= caret],
        [s for s in sites if s.start < caret],
        f"prose ({label}",
    )


def _prose_name(where: ProseClass) -> str:
    return "comment" if where[0] is Kind.COMMENT else "docstring" if where[1] else "string"


#: a prose line repeated whole needs this many words (``Returns:`` alone is everywhere)
MIN_LINE_WORDS = 3


def _prose_line(
    text: str, edit: EditPair, mask: LexMask
) -> tuple[str, str, int, ProseClass] | None:
    """The newest edit as a change of one prose line: the line before and after it (indent
    aside), where the change starts in it, and its prose class; None unless the edit stays on
    one line inside one comment or string and the old line has ``MIN_LINE_WORDS`` words."""
    if "\n" in edit.before or "\n" in edit.after:
        return None
    lo, hi = _line_start(text, edit.offset), _line_end(text, edit.offset)
    indent = _indent_of(text, lo)[0]
    span = mask.span_at(edit.offset) or mask.span_at(max(lo, edit.offset - 1))
    if span is None or not (span[0] < edit.offset and hi <= span[1]):
        return None
    start = max(lo + indent, span[0])
    after = text[start:hi]
    at = edit.offset - start
    before = after[:at] + edit.before + after[at + len(edit.after) :]
    if len(_WORD.findall(before)) < MIN_LINE_WORDS or before == after:
        return None
    return before, after, start - lo, _prose_class(text, span)


def _prose_line_sites(
    text: str, line: tuple[str, str, int, ProseClass], mask: LexMask
) -> list[Site]:
    """Lines reading exactly as the edit's old line (from the same column of prose: its indent
    or its string's opening) to their end, inside prose of the same class: the change made
    there, trimmed to what differs."""
    before, after, _column, where = line
    p, old, new = _to_words(before, after)
    out: list[Site] = []
    at = text.find(before)
    while at >= 0 and len(out) < MAX_PROPOSALS:
        end = at + len(before)
        lo = _line_start(text, at)
        span = mask.span_at(at)
        if (
            (end == len(text) or text[end] in "\r\n")
            and span is not None
            and end <= span[1]
            and _prose_class(text, span) == where
            # the prose starts there: the line's indent inside it, or its own opening
            and (at == span[0] or (span[0] < lo and at == lo + _indent_of(text, lo)[0]))
        ):
            out.append(Site(at + p, at + p + len(old), old, new))
        at = text.find(before, at + 1)
    return out


def _code_proposals(
    text: str,
    history: Sequence[EditPair],
    caret: int,
    path: str,
    mask: LexMask,
    examples: list[Example | None],
    pattern: Pattern,
) -> list[Proposal]:
    """``propose``'s sites of a code pattern."""
    newest = examples[0]
    assert newest is not None
    reverts = {(e.after_text, e.before_text) for e in examples if e is not None}
    held = [e for e in history if _holds(text, e)]
    reverts |= {(e.after, e.before) for e in held}
    regions = [(e.start, e.end) for e in examples if e is not None]
    regions += [(e.offset, e.offset + len(e.after)) for e in held]

    own = _own_class(text, pattern, newest, mask, path)
    if _renames_its_method(text, pattern, mask, path):
        pattern = replace(pattern, own_method=True)
    # a name qualified is no local's (a parameter ``pgettext`` stays)
    qualify = pattern.chain == "qualify" and _suffix(path) in _PY_SUFFIXES

    def keep(found: list[Site]) -> list[Site]:
        return [
            s
            for s in found
            if not any(_overlaps(s.start, s.end, lo, hi) for lo, hi in regions)
            and (s.old, s.new) not in reverts
            and (own is None or own[0] <= s.start < own[1] or not _attribute(text, s, mask))
            and not (qualify and _local_name(text, s.start, s.old, mask))
        ]

    scope = _rename_scope(text, pattern, newest, mask, path) or _self_scope(
        text, pattern, newest, mask
    )
    lo, hi = scope or (0, len(text))
    caret = min(max(caret, lo), hi)
    # below the caret first (by anchor), then from the top: each search stops at the limit
    sites = partial(find_sites, text, pattern, path=path, mask=mask, limit=MAX_PROPOSALS)
    below = keep(sites(start=caret, stop=hi))
    above = keep(sites(start=lo, stop=caret))
    plural = "s" if pattern.examples > 1 else ""
    return _ordered(
        below, above, f"{pattern.kind}, {pattern.examples} example{plural}: {pattern.label}"
    )


# ---------------------------------------------------------------- prose


#: A prose edit's old text needs this many characters besides whitespace (``an`` -> ``a``
#: would reach every article of every docstring) and at most ``MAX_PROSE_CHARS`` in all.
MIN_PROSE_CHARS = 3
MAX_PROSE_CHARS = 200
#: one word of prose, letters only and not camelCase (``valid``, ``Returns``, ``cookielib``):
#: changed once, it is a sentence being rewritten as often as a term renamed
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]*")
_TRIPLE = re.compile(r"[A-Za-z]{0,3}(?:\"\"\"|''')")

#: where prose lies: a comment, a triple-quoted string (a docstring), another string
ProseClass = tuple[Kind, bool]


def _to_words(before: str, after: str) -> tuple[int, str, str]:
    """An edit's texts trimmed of what both ends share, then widened back to whole words (the
    words a user would select and type over): ``(offset of the kept part, before, after)``."""
    p, q = shared_ends(before, after)

    def word(text: str, i: int) -> bool:
        return 0 <= i < len(text) and _is_word(text[i])

    while p > 0 and word(after, p - 1) and (word(after, p) or word(before, p)):
        p -= 1
    while (
        q > 0
        and word(after, len(after) - q)
        and (word(after, len(after) - q - 1) or word(before, len(before) - q - 1))
    ):
        q -= 1
    return p, before[p : len(before) - q], after[p : len(after) - q]


def _prose_class(text: str, span: tuple[int, int, Kind]) -> ProseClass:
    return span[2], span[2] is Kind.STRING and _TRIPLE.match(text, span[0]) is not None


def _whole_comment(text: str, start: int, end: int, mask: LexMask) -> bool:
    """Whether ``text[start:end]`` is whitespace, then one whole comment to its line's end."""
    lead = len(text[start:end]) - len(text[start:end].lstrip())
    span = mask.span_at(start + lead)
    return (
        span is not None
        and span[2] is Kind.COMMENT
        and span[:2] == (start + lead, end)
        and (end == len(text) or text[end] in "\r\n")
        and not text[start : start + lead].strip()
    )


@dataclass(frozen=True)
class _Prose:
    """An edit inside prose: ``old`` -> ``new`` in prose of ``where`` (or a whole comment
    deleted: ``comment``)."""

    start: int  # of ``new`` in the current text
    old: str
    new: str
    where: ProseClass
    comment: bool = False
    right: str = ""  # the character after the edit ("" at the text's end)
    left: str = ""  # the character before it ("" at the text's start)

    @property
    def plain(self) -> bool:
        """Whether the old text is one plain word (``_PLAIN_WORD``)."""
        return _PLAIN_WORD.fullmatch(self.old.strip()) is not None


def _prose_edit(text: str, edit: EditPair, mask: LexMask, path: str) -> _Prose | None:
    """The newest edit as a prose edit, or None: its words (``_to_words``) lie inside one
    comment or string of the current text (the new text, or for a deletion the place it
    left), or it deleted a whole comment; its old text has a word, ``MIN_PROSE_CHARS`` or
    more characters besides whitespace and no more than ``MAX_PROSE_CHARS``."""
    p, old, new = _to_words(edit.before, edit.after)
    start = edit.offset + p
    core = old.strip()
    if len(core) < MIN_PROSE_CHARS or len(old) > MAX_PROSE_CHARS or not _WORD.search(core):
        return None
    span = mask.span_at(start) if new else mask.span_at(max(0, start - 1))
    if span is not None and span[0] < start and start + len(new) <= span[1]:
        if not new and start >= span[1]:
            return None
        end = start + len(new)
        return _Prose(
            start,
            old,
            new,
            _prose_class(text, span),
            right=text[end : end + 1],
            left=text[start - 1 : start],
        )
    if new or old[len(old) - len(old.lstrip()) :][:1] != "#":
        return None
    # a whole comment deleted (``  # type: ignore``): read the old text as a line alone
    line = old.lstrip() + "\n"
    if not _whole_comment(line, 0, len(line) - 1, mask_for(line, path)):
        return None
    if not (start == len(text) or text[start] in "\r\n"):
        return None
    return _Prose(start, old, new, (Kind.COMMENT, False), comment=True)


def _prose_sites(text: str, prose: _Prose, mask: LexMask) -> list[Site]:
    """Where the prose edit's old text reads again, as whole words between the same characters
    as at the edit, inside prose of the same class (a comment, a docstring, another string);
    a deleted comment where the same whole comment ends a line; text order."""
    old = prose.old
    first_word, last_word = _is_word(old[0]), _is_word(old[-1])
    out: list[Site] = []
    n = len(text)
    p = text.find(old)
    while p >= 0 and len(out) < MAX_PROPOSALS:
        end = p + len(old)
        if (first_word and p > 0 and _is_word(text[p - 1])) or (
            last_word and end < n and _is_word(text[end])
        ):
            p = text.find(old, p + 1)
            continue
        if prose.comment:
            ok = _whole_comment(text, p, end, mask)
        else:
            span = mask.span_at(p)
            ok = (
                span is not None
                and span[0] < p
                and (end < span[1] or (end == span[1] and span[2] is Kind.COMMENT))
                and _prose_class(text, span) == prose.where
                # a plain word in the same part of a sentence, by the character after it:
                # ``(optional) json data``, not ``:param json:``
                and (not prose.plain or text[end : end + 1] == prose.right)
                # words deleted, where the same character stands before them
                # (``:exc:`jinja2.exceptions.UndefinedError```, not a traceback's line)
                and (bool(prose.new) or text[p - 1 : p] == prose.left)
            )
        if ok:
            out.append(Site(p, end, old, prose.new))
            p = text.find(old, end)
            continue
        p = text.find(old, p + 1)
    return out


# ---------------------------------------------------------------- other files


def anchor_text(pattern: Pattern) -> str:
    """The literal text every site of ``pattern`` holds (its rarest token: the old name of a
    rename): a file without it has no site, the other files' text prefilter."""
    a = _anchor(pattern.before)
    if a < 0:
        return ""
    anchor = pattern.before[a]
    assert isinstance(anchor, Lit)
    return anchor.text


def cross_file_pattern(
    text: str, history: Sequence[EditPair], path: str = "", *, mask: LexMask | None = None
) -> Pattern | None:
    """The history's pattern when other files may hold its sites, else None. Shapes (a call's
    arguments, a line, a template) reach every file; a string literal changed once does not
    (another file's equal string is another message), nor a name added to an import once
    (each file imports what it uses). A rename reaches them only when the
    name is defined or bound at the top level here: a ``def``'s or ``class``'s own name (a
    method's: as an attribute, ``obj.name``; a function's or class's: bare or ``mod.name``),
    or a name in a top-level statement (an import, a module constant), never a builtin's.
    An attribute's or a keyword argument's rename at a use, a parameter's or a local's stays
    in its file (``propose``'s sites): the attribute may be another type's, the keyword
    another function's. Measured on real commits (httpx, requests: the first hunk of a
    commit's first file, the first site in the parent tree's other files, nearest first).

    Run the pattern over another file with ``find_sites(other_text, pattern, path=other)``
    (its mask from the editor's styles when the file is open), after ``anchor_text``'s
    prefilter; ``app.services.propagation_sites`` does it for the workspace."""
    history = compose_chains(history)  # ``rv`` -> ``copy`` -> ``dup``: one edit (events.py)
    if mask is None:
        mask = mask_for(text, path)
    examples = _examples(text, history, path, mask)
    pattern = _choose(examples, text, mask, path)
    if pattern is None or not anchor_text(pattern):
        return None
    if pattern.kind == "literal" and pattern.examples == 1:
        return None
    newest = examples[0]
    assert newest is not None
    if _this_file_only(pattern, newest):
        return None
    if pattern.kind != "rename":
        return pattern
    if _suffix(path) in _PY_SUFFIXES and hasattr(builtins, newest.before_text):
        return None  # ``next`` -> ``anext`` here is not every file's ``next``
    if _DUNDER.match(newest.before_text):
        return None  # ``__next__``: the language's protocol, every class's own
    if newest.definition:
        method = _indent_of(text, _line_start(text, newest.start))[0] > 0
        # a method's name is an attribute elsewhere; a function's or class's, bare or mod.f
        return replace(pattern, own_attributes=False, dotted=True if method else None)
    if newest.dotted or newest.keyword:
        return None
    if _rename_scope(text, pattern, newest, mask, path) is not None:
        return None  # a parameter's: its function's
    if _top_level(text, newest.start, mask):
        # a name in a top-level statement (an import's, a constant's): bare or ``mod.NAME``
        return replace(pattern, dotted=None)
    return None


def other_file_sites(
    text: str,
    pattern: Pattern,
    *,
    path: str = "",
    mask: LexMask | None = None,
    limit: int | None = None,
) -> list[Site]:
    """``cross_file_pattern``'s sites in another file's ``text``: ``find_sites``, less the
    files where a rename is no rename. Such a file already uses the new name as code (the
    site would merge two names: ``import platform`` -> ``import sys`` where ``sys`` is
    imported, ``get_encoding_from_headers`` -> ``extract_zipped_paths`` in the file that
    defines both), or, for a method's rename, defines the old name itself (its ``.send()``
    may be its own ``send``). Measured on real commits' parent trees (httpx, jinja,
    requests: ``bench/propagation_cross_file.py``)."""
    if mask is None:
        mask = mask_for(text, path)
    if pattern.kind == "rename" and pattern.after and isinstance(pattern.after[0], str):
        new = pattern.after[0]
        if _code_word_elsewhere(text, new, 0, 0, mask):
            return []
        if pattern.definition and pattern.dotted and _defines(text, pattern.before_text, mask):
            return []
    return find_sites(text, pattern, path=path, mask=mask, limit=limit)


def _defines(text: str, name: str, mask: LexMask) -> bool:
    """Whether a ``def``/``class`` in ``text`` defines ``name``."""
    p = text.find(name)
    while p >= 0:
        end = p + len(name)
        word = not (p > 0 and _is_word(text[p - 1])) and not (
            end < len(text) and _is_word(text[end])
        )
        if word and mask.span_at(p) is None:
            prev = _prev_token(text, p, mask)
            if prev is not None and text[prev[0] : prev[1]] in _DEFINERS:
                return True
        p = text.find(name, end)
    return False


def _this_file_only(pattern: Pattern, newest: Example) -> bool:
    """Whether the pattern's sites are this file's alone: a name added to an import once, a
    name (un)qualified (each file imports what it uses), lines deleted or inserted once (not
    measured across files)."""
    if pattern.examples == 1 and (
        _import_grows(newest) or pattern.deletes_lines or newest.inserts_lines
    ):
        return True
    return bool(pattern.chain)


def _import_grows(ex: Example) -> bool:
    """Whether the edit adds names to an import and takes none away."""
    if not _IMPORT_LINE.match(ex.before_text) or not _IMPORT_LINE.match(ex.after_text):
        return False
    before = {t.text for t in ex.before if t.kind == IDENT}
    after = {t.text for t in ex.after if t.kind == IDENT}
    return before < after


_IMPORT_LINE = re.compile(r"(?:from|import)\b")
_DUNDER = re.compile(r"__\w+__$")


def _top_level(text: str, pos: int, mask: LexMask) -> bool:
    """Whether ``pos`` lies in a statement at the file's top level: its line has no indent,
    or it continues, inside brackets, one that has none (an import's parenthesised names)."""
    line = _line_start(text, pos)
    if _indent_of(text, line)[0] == 0:
        return True
    top = line
    for _ in range(2000):  # the nearest line above without indent, in code
        if top == 0:
            return False
        top = _line_start(text, top - 1)
        indent, blank = _indent_of(text, top)
        if not blank and indent == 0 and mask.span_at(top) is None:
            break
    else:
        return False
    depth = 0
    tok = _next_token(text, top, mask)
    while tok is not None and tok[0] < pos:
        if depth == 0 and tok[0] > top and text[_line_start(text, tok[0]) : tok[0]].isspace():
            return False  # a line began outside brackets: the top-level statement ended
        if tok[2] == PUNCT and text[tok[0]] in _OPEN:
            depth += 1
        elif tok[2] == PUNCT and text[tok[0]] in _CLOSE:
            depth = max(0, depth - 1)
        tok = _next_token(text, tok[1], mask)
    return depth > 0
