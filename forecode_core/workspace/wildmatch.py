"""Git's wildmatch (the glob language of ``.gitignore`` lines), matched without backtracking.

A pattern is compiled once into tokens: a literal byte, ``?`` or a bracket class (one byte
that is not ``/``), ``*`` (any run of bytes without ``/``) and ``**`` (any run of bytes; only
where git gives it that meaning: a run of two or more stars that starts the pattern or follows
``/``, and ends the pattern or precedes ``/``; ``/**/`` also matches a single ``/``). Text is
matched by simulating the set of pattern positions reached so far, as the bits of one
integer (a bit-parallel NFA): one step per byte of text, each a handful of integer operations
over the pattern's positions. The cost is O(len(text) * len(pattern) / 64) whatever the
pattern: ``a*a*a*a*a*a*a*a*b`` against 60 ``a``'s is 60 steps, where a backtracking matcher
(a Python regex, or git's own ``dowild``) takes exponential time.

Semantics are git's (``wildmatch(pattern, text, WM_PATHNAME)``), byte for byte: patterns and
paths are matched as UTF-8 bytes (undecodable file names round-trip through
``surrogateescape``), so ``?`` is one byte as in git.

- ``\\x`` is the literal ``x``; a trailing lone ``\\`` never matches.
- ``[...]``: ``!`` or ``^`` first negates; ``]`` first is a member; ``a-z`` is a byte range
  (``-`` first or last is literal); ``\\`` escapes inside; ``[:alpha:]`` and the other eleven
  POSIX classes (ASCII only, as git's ctype); an unknown ``[:name:]`` or an unclosed ``[``
  makes the pattern match nothing, as git does. A class never matches ``/``.
- ``*`` and ``?`` never match ``/``; ``**`` as above, anything else of two or more stars is
  one ``*``.

``dstar_start`` reproduces a quirk of git's ``match_pathname``: it compares the pattern's
wildcard-free prefix itself and hands only the rest to wildmatch, so a ``**`` right after that
prefix counts as starting the pattern (``x/a**`` matches ``x/ab/c``). Pass the prefix's
length (in bytes) for a pattern that contains a slash, 0 otherwise.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Pattern", "PatternSet", "compile_pattern", "wildmatch"]

_SLASH = 0x2F
_STAR = 0x2A
_QMARK = 0x3F
_LBRACKET = 0x5B
_RBRACKET = 0x5D
_BACKSLASH = 0x5C
_COLON = 0x3A
_DASH = 0x2D

_ALL = (1 << 256) - 1
_SLASH_BIT = 1 << _SLASH


def _bits(values: Iterable[int]) -> int:
    out = 0
    for value in values:
        out |= 1 << value
    return out


def _range(low: int, high: int) -> int:
    """The bits of the bytes ``low..high`` (empty when ``low > high``)."""
    if low > high:
        return 0
    return ((1 << (high + 1)) - 1) ^ ((1 << low) - 1)


_UPPER = _range(0x41, 0x5A)
_LOWER = _range(0x61, 0x7A)
_DIGIT = _range(0x30, 0x39)
_ALPHA = _UPPER | _LOWER
_PRINT = _range(0x20, 0x7E)
_GRAPH = _range(0x21, 0x7E)
# git's ctype: its isspace is " \t\n\r" only (checked against git: \v and \f are not).
_SPACE = _bits(b" \t\n\r")
_POSIX_CLASSES: dict[bytes, int] = {
    b"alnum": _ALPHA | _DIGIT,
    b"alpha": _ALPHA,
    b"blank": _bits(b" \t"),
    b"cntrl": _range(0x00, 0x1F) | (1 << 0x7F),
    b"digit": _DIGIT,
    b"graph": _GRAPH,
    b"lower": _LOWER,
    b"print": _PRINT,
    b"punct": _GRAPH & ~(_ALPHA | _DIGIT),
    b"space": _SPACE,
    b"upper": _UPPER,
    b"xdigit": _DIGIT | _range(0x41, 0x46) | _range(0x61, 0x66),
}

# Token kinds. A token is (kind, accept): ``accept`` is the 256-bit set of bytes it consumes.
_LIT = 0  # one given byte
_ONE = 1  # ``?`` or a class: one byte from ``accept``
_STAR1 = 2  # ``*``: any run of bytes but ``/``
_STAR2 = 3  # ``**`` that may cross ``/``
_FORK = 4  # before ``**/``: consumes nothing; goes on to the ``**`` or past the ``/``
_Token = tuple[int, int]


def _parse_class(pat: bytes, start: int) -> tuple[int, int] | None:
    """Parse the bracket expression at ``pat[start] == '['``, the way git's wildmatch reads
    it. Returns (accepted bytes, index of the closing ``]``), or None when the pattern can
    never match (unclosed class, unknown ``[:name:]``, dangling escape)."""
    n = len(pat)
    p = start + 1
    if p >= n:
        return None
    negated = False
    if pat[p] in (0x21, 0x5E):  # '!' or '^'
        negated = True
        p += 1
    members = 0
    prev = 0  # the previous member byte, 0 when a range cannot start here
    while True:
        if p >= n:
            return None
        ch = pat[p]
        if ch == _BACKSLASH:
            p += 1
            if p >= n:
                return None
            ch = pat[p]
            members |= 1 << ch
        elif ch == _DASH and prev and p + 1 < n and pat[p + 1] != _RBRACKET:
            p += 1
            ch = pat[p]
            if ch == _BACKSLASH:
                p += 1
                if p >= n:
                    return None
                ch = pat[p]
            members |= _range(prev, ch)
            ch = 0
        elif ch == _LBRACKET and p + 1 < n and pat[p + 1] == _COLON:
            s = p + 2
            q = s
            while q < n and pat[q] != _RBRACKET:
                q += 1
            if q >= n:
                return None
            if q - s - 1 < 0 or pat[q - 1] != _COLON:
                members |= 1 << _LBRACKET  # not a [:class:]: a plain '[' member
            else:
                found = _POSIX_CLASSES.get(pat[s : q - 1])
                if found is None:
                    return None
                members |= found
                ch = 0
                p = q
        else:
            members |= 1 << ch
        prev = ch
        p += 1
        if p >= n:
            return None
        if pat[p] == _RBRACKET:
            break
    accept = (_ALL & ~members) if negated else members
    return accept & ~_SLASH_BIT, p


def _tokenize(pat: bytes, dstar_start: int) -> tuple[list[_Token], set[int]] | None:
    """Tokens and the indices of the ``/`` tokens that a preceding ``**`` makes optional;
    None when the pattern can never match."""
    tokens: list[_Token] = []
    optional: set[int] = set()
    n = len(pat)
    i = 0
    while i < n:
        c = pat[i]
        if c == _STAR:
            j = i
            while j < n and pat[j] == _STAR:
                j += 1
            double = False
            if j - i >= 2:
                before = i <= dstar_start or pat[i - 1] == _SLASH
                after = (
                    j == n
                    or pat[j] == _SLASH
                    or (pat[j] == _BACKSLASH and j + 1 < n and pat[j + 1] == _SLASH)
                )
                double = before and after
            if double:
                zero = j < n and pat[j] == _SLASH
                if zero:
                    if len(tokens) >= 3 and tokens[-3][0] == _FORK and len(tokens) - 1 in optional:
                        # "**/**/" means what "**/" means: keep one (keeps the NFA's
                        # epsilon chains short).
                        i = j + 1
                        continue
                    # "**/": either nothing at all (the fork skips ahead), or "**" then "/".
                    tokens.append((_FORK, 0))
                    tokens.append((_STAR2, _ALL))
                    tokens.append((_LIT, _SLASH_BIT))
                    optional.add(len(tokens) - 1)
                    j += 1
                else:
                    tokens.append((_STAR2, _ALL))
            else:
                tokens.append((_STAR1, _ALL & ~_SLASH_BIT))
            i = j
        elif c == _QMARK:
            tokens.append((_ONE, _ALL & ~_SLASH_BIT))
            i += 1
        elif c == _LBRACKET:
            parsed = _parse_class(pat, i)
            if parsed is None:
                return None
            accept, end = parsed
            tokens.append((_ONE, accept))
            i = end + 1
        elif c == _BACKSLASH:
            if i + 1 >= n:
                return None
            tokens.append((_LIT, 1 << pat[i + 1]))
            i += 2
        else:
            tokens.append((_LIT, 1 << c))
            i += 1
    return tokens, optional


def _lit_byte(token: _Token) -> int:
    return token[1].bit_length() - 1


class _BitAutomaton:
    """What a single pattern and a set of them share: positions as bits of one integer, the
    moves that consume no byte, and the per-byte masks of the positions a byte may take."""

    __slots__ = ("_classes", "_eps1", "_eps3", "_lits", "_masks")

    _classes: dict[int, int]
    _eps1: int
    _eps3: int
    _lits: dict[int, int]
    _masks: dict[int, int]

    def _closure(self, state: int) -> int:
        """Add the positions reachable without consuming a byte: past a star (matching
        nothing), and from a fork to its ``**`` or past its ``/``. Without forks that is one
        step: a star is never followed by a star (runs of stars are one token)."""
        eps1, eps3 = self._eps1, self._eps3
        if not eps3:
            return state | ((state & eps1) << 1)
        while True:
            grown = state | ((state & eps3) << 3)
            grown |= (grown & eps1) << 1
            grown |= (grown & eps1) << 1
            if grown == state:
                return state
            state = grown

    def _mask(self, byte: int) -> int:
        mask = self._lits.get(byte, 0)
        for accept, bits in self._classes.items():
            if accept >> byte & 1:
                mask |= bits
        self._masks[byte] = mask
        return mask


class Pattern(_BitAutomaton):
    """One compiled wildmatch pattern; ``match(text)`` says whether it matches all of
    ``text`` (bytes). Immutable after construction except for a per-byte mask cache, so one
    instance may be used from several threads.

    Also exposes what an index of many patterns can bucket on: ``prefix`` and ``suffix`` (the
    literal bytes every match starts / ends with; ``exact`` when the pattern is all literal)
    and ``never`` (matches nothing).
    """

    __slots__ = (
        "_final",
        "_kind",
        "_loop_other",
        "_loop_slash",
        "_ones",
        "_required",
        "_slashes",
        "_start",
        "_tokens",
        "exact",
        "min_length",
        "never",
        "prefix",
        "source",
        "suffix",
    )

    def __init__(self, source: bytes, dstar_start: int = 0) -> None:
        self.source = source
        self.never = False
        self.exact = False
        self.prefix = b""
        self.suffix = b""
        self.min_length = 0
        self._kind = 0  # 0: NFA; the middle is 1: "*", 2: "**", 3: "**/", 4: starless
        self._required = b""
        self._slashes = -1
        self._lits: dict[int, int] = {}
        self._ones: list[tuple[int, int]] = []  # a starless middle: (position, accepted bytes)
        self._classes: dict[int, int] = {}  # accepted bytes of "?" and classes -> positions
        self._loop_slash = 0
        self._loop_other = 0
        self._eps1 = 0
        self._eps3 = 0
        self._start = 0
        self._final = 0
        self._masks: dict[int, int] = {}
        self._tokens: tuple[_Token, ...] = ()  # all of them, kept when the NFA is needed
        parsed = _tokenize(source, dstar_start)
        if parsed is None:
            self.never = True
            return
        tokens, optional = parsed

        def literal(index: int) -> bool:
            return tokens[index][0] == _LIT and index not in optional

        head = 0
        while head < len(tokens) and literal(head):
            head += 1
        if head == len(tokens):
            self.exact = True
            self.prefix = self.suffix = bytes(_lit_byte(t) for t in tokens)
            self.min_length = len(tokens)
            return
        tail = len(tokens)
        while tail > head and literal(tail - 1):
            tail -= 1
        self.prefix = bytes(_lit_byte(t) for t in tokens[:head])
        self.suffix = bytes(_lit_byte(t) for t in tokens[tail:])
        middle = tokens[head:tail]
        mid_optional = {i - head for i in optional if head <= i < tail}
        self.min_length = (
            head
            + (len(tokens) - tail)
            + sum(1 for i, t in enumerate(middle) if t[0] in (_LIT, _ONE) and i not in mid_optional)
        )
        kinds = [t[0] for t in middle]
        if kinds == [_STAR1]:
            self._kind = 1
            return
        if kinds == [_STAR2]:
            self._kind = 2
            return
        if kinds == [_FORK, _STAR2, _LIT] and 2 in mid_optional:
            self._kind = 3  # "**/": nothing, or anything that ends with a slash
            return
        if _STAR1 not in kinds and _STAR2 not in kinds:
            self._kind = 4  # one byte per token: compared position by position
            self._ones = [(i, accept) for i, (_kind, accept) in enumerate(middle)]
            return
        # The longest literal run every match must contain.
        run: list[int] = []
        best: list[int] = []
        for i, token in enumerate(middle):
            if token[0] == _LIT and i not in mid_optional:
                run.append(_lit_byte(token))
                if len(run) > len(best):
                    best = list(run)
            else:
                run = []
        self._required = bytes(best)
        if _STAR2 not in kinds:
            # Nothing but a literal "/" consumes a slash: the counts must agree.
            self._slashes = sum(1 for t in middle if t == (_LIT, _SLASH_BIT))
        for i, (kind, accept) in enumerate(middle):
            bit = 1 << i
            if kind == _LIT:
                byte = _lit_byte((kind, accept))
                self._lits[byte] = self._lits.get(byte, 0) | bit
            elif kind == _ONE:
                self._classes[accept] = self._classes.get(accept, 0) | bit
            elif kind == _STAR1:
                self._loop_other |= bit
                self._eps1 |= bit
            elif kind == _STAR2:
                self._loop_other |= bit
                self._loop_slash |= bit
                self._eps1 |= bit
            else:  # _FORK
                self._eps1 |= bit
                self._eps3 |= bit
        self._final = 1 << len(middle)
        self._start = self._closure(1)
        self._tokens = tuple(tokens)

    @property
    def needs_nfa(self) -> bool:
        """Whether matching simulates the automaton (otherwise it is a comparison of the
        literal parts and at most one slash search)."""
        return not (self.never or self.exact or self._kind)

    def match(self, text: bytes) -> bool:
        """Whether the pattern matches all of ``text``."""
        if self.never or len(text) < self.min_length:
            return False
        if self.exact:
            return text == self.prefix
        if not (text.startswith(self.prefix) and text.endswith(self.suffix)):
            return False
        mid = text[len(self.prefix) : len(text) - len(self.suffix)]
        kind = self._kind
        if kind == 1:
            return _SLASH not in mid
        if kind == 2:
            return True
        if kind == 3:
            return not mid or mid.endswith(b"/")
        if kind == 4:
            return len(mid) == len(self._ones) and all(
                accept >> byte & 1 for byte, (_i, accept) in zip(mid, self._ones, strict=True)
            )
        if self._required and self._required not in mid:
            return False
        if self._slashes >= 0 and mid.count(b"/") != self._slashes:
            return False
        state = self._start
        masks = self._masks
        loop_slash, loop_other = self._loop_slash, self._loop_other
        for byte in mid:
            mask = masks.get(byte)
            if mask is None:
                mask = self._mask(byte)
            state = ((state & mask) << 1) | (state & (loop_slash if byte == _SLASH else loop_other))
            if not state:
                return False
            state = self._closure(state)
        return bool(state & self._final)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


class PatternSet(_BitAutomaton):
    """Many automaton patterns (``Pattern.needs_nfa``) run as one automaton: their positions
    side by side in one integer, so a text is matched against all of them in one pass whose
    steps cost O(total pattern length / 64) each, in C, instead of one Python loop per
    pattern. ``run(text)`` gives the final positions reached; ``members(hits)`` says whose
    they are. Members are laid out in order, so the highest hit is the last member matched.
    """

    __slots__ = (
        "_finals",
        "_loop_other",
        "_loop_slash",
        "_start",
        "bits",
        "final_bits",
    )

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        # Positions are collected first and each mask built once (OR-ing bit by bit into a
        # growing integer would cost the square of the total length).
        lits: dict[int, list[int]] = {}
        classes: dict[int, list[int]] = {}
        loop_other: list[int] = []
        loop_slash: list[int] = []
        eps1: list[int] = []
        eps3: list[int] = []
        starts: list[int] = []
        self.final_bits: list[int] = []  # member -> the bit of its final position
        self._finals: dict[int, int] = {}  # final bit position -> member
        offset = 0
        for member, pattern in enumerate(patterns):
            if not pattern.needs_nfa:
                raise ValueError(f"{pattern!r} does not need the automaton")
            starts.append(offset)
            for i, (kind, accept) in enumerate(pattern._tokens):
                position = offset + i
                if kind == _LIT:
                    lits.setdefault(accept.bit_length() - 1, []).append(position)
                elif kind == _ONE:
                    classes.setdefault(accept, []).append(position)
                elif kind == _STAR1:
                    loop_other.append(position)
                    eps1.append(position)
                elif kind == _STAR2:
                    loop_other.append(position)
                    loop_slash.append(position)
                    eps1.append(position)
                else:  # _FORK
                    eps1.append(position)
                    eps3.append(position)
            final = offset + len(pattern._tokens)
            self.final_bits.append(1 << final)
            self._finals[final] = member
            offset = final + 1
        self.bits = offset
        size = offset // 8 + 1

        def mask(positions: list[int]) -> int:
            buffer = bytearray(size)
            for position in positions:
                buffer[position >> 3] |= 1 << (position & 7)
            return int.from_bytes(buffer, "little")

        self._lits = {byte: mask(found) for byte, found in lits.items()}
        self._classes = {accept: mask(found) for accept, found in classes.items()}
        self._loop_other, self._loop_slash = mask(loop_other), mask(loop_slash)
        self._eps1, self._eps3 = mask(eps1), mask(eps3)
        self._masks: dict[int, int] = {}
        self._start = self._closure(mask(starts))

    def run(self, text: bytes, finals: int) -> int:
        """The bits of ``finals`` (a union of ``final_bits``) whose patterns match all of
        ``text``."""
        state = self._start
        masks = self._masks
        loop_slash, loop_other = self._loop_slash, self._loop_other
        for byte in text:
            mask = masks.get(byte)
            if mask is None:
                mask = self._mask(byte)
            state = ((state & mask) << 1) | (state & (loop_slash if byte == _SLASH else loop_other))
            if not state:
                return 0
            state = self._closure(state)
        return state & finals

    def last(self, hits: int) -> int:
        """The highest member among ``hits`` (a non-zero result of ``run``)."""
        return self._finals[hits.bit_length() - 1]


def compile_pattern(pattern: str | bytes, dstar_start: int = 0) -> Pattern:
    """Compile ``pattern`` (str is encoded as UTF-8 with ``surrogateescape``)."""
    if isinstance(pattern, str):
        pattern = pattern.encode("utf-8", "surrogateescape")
    return Pattern(pattern, dstar_start)


def wildmatch(pattern: str | bytes, text: str | bytes) -> bool:
    """Whether ``pattern`` matches all of ``text`` with git's ``WM_PATHNAME`` semantics."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    return compile_pattern(pattern).match(text)
