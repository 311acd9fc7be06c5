"""The hunks of an apply's review: what changed, how much it matters, and applying a choice.

Pure: plain strings in, plain data out (the review view in ``app.ui`` draws them).

* ``diff_hunks(original, new)``: the changed line ranges, each classified so the review can
  gray the low-entropy ones: ``"whitespace-only"`` (the same tokens: indentation, spacing,
  blank lines, line endings), ``"rename"`` (every difference is an identifier replaced by
  another, and each of those substitutions occurs in at least ``RENAME_MIN_HUNKS`` hunks: the
  same rename repeated across the file) or ``"substantive"``. With ``indent_matters`` (the
  file is in a language whose indentation is syntax: ``indentation_matters(path, language)``),
  a hunk that changes a line's *leading* whitespace is substantive (a nested ``def`` dedented
  out of its function is another program); trailing whitespace and blank lines stay cosmetic.
* ``apply_hunks(original, hunks, accepted)``: the original with the accepted hunks applied and
  the others left out, exactly: lines keep their own endings (CRLF stays CRLF), so accepting
  every hunk gives the new text and accepting none gives the original.
* ``final_hunks(original, prefix)``: while the new file streams in, the hunks that can no longer
  change: those that end where the stream has rejoined the original, decided on lines that
  have arrived. Their ranges and lines are those of the finished diff; a kind can still turn
  from substantive to rename when a later hunk repeats the substitution.

How hunks are found: equal lines are skipped left to right; at a difference, difflib's
``SequenceMatcher`` (no junk heuristic) compares the next ``REJOIN_WINDOW`` lines of each side
(doubling the window while needed) and the change ends at its first matching run that has a
non-blank line. One global ``SequenceMatcher`` would align a little better in rare cases, but
its choices can change as more of the file arrives, so a streamed hunk could move; deciding
each hunk on a bounded window makes the streamed hunks final by construction (tests check it
on random edits of stdlib files).

Lines are split on ``\\n`` only (a form feed or a lone ``\\r`` is content), endings kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

__all__ = [
    "REJOIN_WINDOW",
    "RENAME_MIN_HUNKS",
    "Hunk",
    "HunkKind",
    "apply_hunks",
    "diff_hunks",
    "final_hunks",
    "indentation_matters",
    "split_lines",
]


class HunkKind(StrEnum):
    WHITESPACE_ONLY = "whitespace-only"
    RENAME = "rename"
    SUBSTANTIVE = "substantive"


# A substitution counts as a rename when it occurs in at least this many hunks.
RENAME_MIN_HUNKS = 2

# Lines of each side looked at (first) for where a change ends: a hunk is final once this many
# lines after its start have streamed in (or the stream ended).
REJOIN_WINDOW = 8


# Languages whose indentation is syntax (offside rule, YAML nesting, Makefile's recipe tab), by
# language id (``forecode_core.text.file_languages``) and, for those the table has no id for,
# by file extension.
INDENT_LANGUAGES = frozenset({"python", "yaml", "makefile"})
INDENT_EXTENSIONS = frozenset(
    {
        ".py", ".pyw", ".pyi", ".yaml", ".yml", ".mk", ".mak",
        ".coffee", ".litcoffee", ".nim", ".nims", ".fs", ".fsi", ".fsx", ".hs", ".lhs",
        ".elm", ".purs", ".idr", ".agda", ".sass", ".styl", ".pug", ".jade", ".haml", ".slim",
        ".gd", ".boo", ".cabal",
    }
)  # fmt: skip
INDENT_FILENAMES = frozenset({"Makefile", "GNUmakefile", "makefile", "SConstruct"})


def indentation_matters(path: str, language: str = "") -> bool:
    """Whether a change of a line's leading whitespace changes the program in this file
    (``language``: its language id, when known)."""
    if language in INDENT_LANGUAGES:
        return True
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name in INDENT_FILENAMES or (dot > 0 and name[dot:].lower() in INDENT_EXTENSIONS)


@dataclass(frozen=True)
class Hunk:
    """Original lines ``[old_start, old_end)`` become new lines ``[new_start, new_end)``
    (0-based line indices; an empty range is an insertion or a deletion point)."""

    index: int  # position among the diff's hunks, from 0
    old_start: int
    old_end: int
    new_start: int
    new_end: int
    old_lines: tuple[str, ...]  # with their line endings
    new_lines: tuple[str, ...]
    kind: HunkKind
    renames: tuple[tuple[str, str], ...] = ()  # (old identifier, new) when kind is "rename"

    @property
    def old_text(self) -> str:
        return "".join(self.old_lines)

    @property
    def new_text(self) -> str:
        return "".join(self.new_lines)


def split_lines(text: str) -> list[str]:
    """``text``'s lines with their endings; only ``\\n`` ends a line."""
    lines = text.split("\n")
    last = lines.pop()
    out = [line + "\n" for line in lines]
    if last:
        out.append(last)
    return out


_TOKEN = re.compile(r"\w+|\S")
_IDENTIFIER = re.compile(r"[^\W\d]\w*")


def _tokens(lines: Sequence[str]) -> list[str]:
    return _TOKEN.findall("".join(lines))


def _substitutions(old: Sequence[str], new: Sequence[str]) -> tuple[set[tuple[str, str]], bool]:
    """The identifier substitutions (old, new) among the token differences of ``old`` and
    ``new``, and whether they are all the differences."""
    a, b = _tokens(old), _tokens(new)
    pairs: set[tuple[str, str]] = set()
    only = True
    for tag, a1, a2, b1, b2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag != "replace" or a2 - a1 != b2 - b1:
            only = False
        # Tokens replaced in place pair up; "width" -> "size + 1" still renames width.
        for x, y in zip(a[a1:a2], b[b1:b2], strict=False):
            if _IDENTIFIER.fullmatch(x) and _IDENTIFIER.fullmatch(y):
                pairs.add((x, y))
            else:
                only = False
    return pairs, only


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_changed(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether a non-blank line's leading whitespace differs between ``old`` and ``new``:
    line by line when both have as many non-blank lines, else between the lines whose text
    (stripped) difflib pairs up."""
    a = [line for line in old if line.strip()]
    b = [line for line in new if line.strip()]
    if len(a) == len(b):
        return any(_lead(x) != _lead(y) for x, y in zip(a, b, strict=True))
    matcher = SequenceMatcher(None, [x.strip() for x in a], [y.strip() for y in b], autojunk=False)
    return any(
        _lead(a[block.a + k]) != _lead(b[block.b + k])
        for block in matcher.get_matching_blocks()
        for k in range(block.size)
    )


@dataclass(frozen=True)
class _Raw:
    old_start: int
    old_end: int
    new_start: int
    new_end: int


def _classify(
    old: list[str], new: list[str], raws: Sequence[_Raw], indent_matters: bool
) -> list[Hunk]:
    kinds: list[HunkKind] = []
    subs: list[tuple[set[tuple[str, str]], bool]] = []
    for raw in raws:
        a = old[raw.old_start : raw.old_end]
        b = new[raw.new_start : raw.new_end]
        if indent_matters and _indent_changed(a, b):
            kinds.append(HunkKind.SUBSTANTIVE)  # never grayed, nor a rename
            subs.append((set(), False))
        elif _tokens(a) == _tokens(b):
            kinds.append(HunkKind.WHITESPACE_ONLY)
            subs.append((set(), False))
        else:
            kinds.append(HunkKind.SUBSTANTIVE)
            subs.append(_substitutions(a, b) if a and b else (set(), False))
    seen: Counter[tuple[str, str]] = Counter()  # in how many hunks each substitution occurs
    for found, _ in subs:
        seen.update(found)
    hunks = []
    for index, (raw, kind, (pairs, only)) in enumerate(zip(raws, kinds, subs, strict=True)):
        renames: tuple[tuple[str, str], ...] = ()
        if only and pairs and all(seen[p] >= RENAME_MIN_HUNKS for p in pairs):
            kind = HunkKind.RENAME
            renames = tuple(sorted(pairs))
        hunks.append(
            Hunk(
                index,
                raw.old_start,
                raw.old_end,
                raw.new_start,
                raw.new_end,
                tuple(old[raw.old_start : raw.old_end]),
                tuple(new[raw.new_start : raw.new_end]),
                kind,
                renames,
            )
        )
    return hunks


def _rejoins(lines: Sequence[str]) -> bool:
    return any(line.strip() for line in lines)


def _align(old: Sequence[str], new: Sequence[str], complete: bool) -> list[_Raw]:
    """The hunks, left to right. After each mismatch the next rejoin is the first run of equal
    lines with a non-blank line in it that difflib finds between the next ``w`` lines of each
    side (``w`` = ``REJOIN_WINDOW``, doubled while no rejoin shows up). A decision only looks
    at lines that must have arrived, so with ``complete=False`` (a stream's prefix) the hunks
    returned are exactly the first hunks of the finished text."""
    raws: list[_Raw] = []
    a = b = 0
    n, m = len(old), len(new)
    while True:
        while a < n and b < m and old[a] == new[b]:
            a += 1
            b += 1
        if b == m and not complete:
            return raws  # wait: the next lines may still match or differ
        if a == n or b == m:
            if a < n or b < m:
                raws.append(_Raw(a, n, b, m))
            return raws
        window = REJOIN_WINDOW
        while True:
            if b + window > m and not complete:
                return raws  # wait for the window to arrive
            old_part, new_part = old[a : a + window], new[b : b + window]
            matcher = SequenceMatcher(None, old_part, new_part, autojunk=False)
            rejoin = next(
                (
                    block
                    for block in matcher.get_matching_blocks()
                    if block.size and _rejoins(new_part[block.b : block.b + block.size])
                ),
                None,
            )
            if rejoin is not None:
                raws.append(_Raw(a, a + rejoin.a, b, b + rejoin.b))
                a, b = a + rejoin.a, b + rejoin.b
                break
            if a + window >= n and b + window >= m:
                raws.append(_Raw(a, n, b, m))  # nothing left rejoins: one last hunk
                return raws
            window *= 2


def diff_hunks(original: str, new: str, *, indent_matters: bool = False) -> tuple[Hunk, ...]:
    """The hunks that turn ``original`` into ``new``, in order, classified (module doc;
    ``indent_matters``: a leading-whitespace change is substantive)."""
    old_lines, new_lines = split_lines(original), split_lines(new)
    raws = _align(old_lines, new_lines, True)
    return tuple(_classify(old_lines, new_lines, raws, indent_matters))


def apply_hunks(original: str, hunks: Sequence[Hunk], accepted: Collection[int]) -> str:
    """``original`` with the hunks whose ``index`` is in ``accepted`` applied and the others
    not. ``ValueError`` when a hunk does not fit ``original`` (it was computed for another
    text) or hunks overlap."""
    old = split_lines(original)
    out: list[str] = []
    pos = 0
    for hunk in sorted(hunks, key=lambda h: (h.old_start, h.old_end)):
        if hunk.old_start < pos or tuple(old[hunk.old_start : hunk.old_end]) != hunk.old_lines:
            raise ValueError(f"hunk {hunk.index} does not fit the original text")
        out.extend(old[pos : hunk.old_start])
        out.extend(hunk.new_lines if hunk.index in accepted else hunk.old_lines)
        pos = hunk.old_end
    out.extend(old[pos:])
    return "".join(out)


def final_hunks(original: str, prefix: str, *, indent_matters: bool = False) -> tuple[Hunk, ...]:
    """The hunks of a new file that is still streaming (``prefix`` is what has arrived) that
    can no longer change: each is a hunk of ``diff_hunks(original, finished)`` with the same
    ranges and lines, whatever the rest of the stream (module doc)."""
    cut = prefix.rfind("\n") + 1  # the last line is incomplete until its newline arrives
    old_lines, new_lines = split_lines(original), split_lines(prefix[:cut])
    raws = _align(old_lines, new_lines, False)
    return tuple(_classify(old_lines, new_lines, raws, indent_matters))
