"""Add Selection to Next Find Match (Ctrl+D) and Select All Occurrences (Ctrl+Shift+L), as
VS Code does them, on the editor's UTF-8 bytes (positions are byte offsets, as Scintilla's).

- From a bare caret the first Ctrl+D selects the word at the caret; the next ones add the
  next **whole-word, case-sensitive** occurrence of that word (from ``param``, never the
  ``param`` inside ``params``).
- From a selection the user made, they add the next occurrence of the selection's **exact
  text** (case-sensitive, not whole-word: ``ram`` finds the one in ``params``).
- Search starts after the main (last added) selection and wraps; ranges already selected are
  skipped; when every occurrence is selected nothing more is added.

Word characters are Scintilla's defaults for UTF-8: ASCII letters and digits, ``_``, and every
byte of a non-ASCII character.
"""

from __future__ import annotations

import re

__all__ = ["all_occurrences", "is_word_byte", "next_occurrence", "word_at"]

Range = tuple[int, int]  # (start, end) byte offsets, start <= end
#: Ctrl+Shift+L selects at most this many occurrences (as the find bar counts).
MAX_OCCURRENCES = 10_000
_WORD_BYTE = rb"0-9A-Za-z_\x80-\xff"


def is_word_byte(b: int) -> bool:
    return b >= 0x80 or b == 0x5F or 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


def word_at(text: bytes, pos: int) -> Range | None:
    """The word touching ``pos`` (the one after it first, as VS Code), or None between
    non-word characters."""
    n = len(text)
    pos = max(0, min(pos, n))
    if pos < n and is_word_byte(text[pos]):
        start = pos
    elif pos > 0 and is_word_byte(text[pos - 1]):
        start = pos - 1
    else:
        return None
    while start > 0 and is_word_byte(text[start - 1]):
        start -= 1
    end = start
    while end < n and is_word_byte(text[end]):
        end += 1
    return start, end


def _is_whole_word(text: bytes, start: int, end: int) -> bool:
    return (start == 0 or not is_word_byte(text[start - 1])) and (
        end == len(text) or not is_word_byte(text[end])
    )


def _whole_word_pattern(needle: bytes) -> re.Pattern[bytes]:
    # An escaped literal between fixed-width look-arounds: linear, no backtracking.
    return re.compile(
        b"(?<![" + _WORD_BYTE + b"])" + re.escape(needle) + b"(?![" + _WORD_BYTE + b"])"
    )


def _find(text: bytes, needle: bytes, start: int, stop: int, whole_word: bool) -> int:
    """First index of ``needle`` in ``text[start:stop]`` (whole words only if asked), or -1.
    The search runs in C (``bytes.find`` or ``re``), so a big file costs milliseconds."""
    if not whole_word:
        return text.find(needle, start, stop)
    match = _whole_word_pattern(needle).search(text, start, stop)
    if match is None:
        return -1
    i = match.start()
    # ``pos``/``endpos`` hide the bytes around the window from the look-arounds: recheck.
    if _is_whole_word(text, i, i + len(needle)):
        return i
    return _find(text, needle, i + 1, stop, whole_word)


def next_occurrence(
    text: bytes, selections: list[Range], main: int, whole_word: bool
) -> Range | None:
    """The next occurrence of the main selection's text after it (wrapping), that is not
    already selected; None when there is none. ``whole_word`` is VS Code's mode after a
    Ctrl+D from a bare caret."""
    start, end = selections[main]
    needle = text[start:end]
    if not needle:
        return None
    taken = {(s, e) for s, e in selections}
    for lo, hi in ((end, len(text)), (0, end)):
        pos = lo
        while True:
            i = _find(text, needle, pos, hi, whole_word)
            if i < 0:
                break
            found = (i, i + len(needle))
            if found not in taken:
                return found
            pos = i + 1
    return None


def all_occurrences(
    text: bytes, needle: bytes, whole_word: bool, limit: int = MAX_OCCURRENCES
) -> list[Range]:
    """The first ``limit`` non-overlapping occurrences of ``needle``, in order."""
    out: list[Range] = []
    if not needle:
        return out
    if whole_word:
        for match in _whole_word_pattern(needle).finditer(text):
            if len(out) >= limit:
                break
            out.append(match.span())
        return out
    pos = 0
    while len(out) < limit:
        i = text.find(needle, pos)
        if i < 0:
            break
        out.append((i, i + len(needle)))
        pos = i + len(needle)
    return out
