"""An editable *excerpt* of a file too big for a multi-file edit's budget (issue 16).

In "Edit files" mode a target file (the current file, an ``@`` mention) that does not fit the
service slot whole is not sent as read-only context: the model sees the part that matters,
answers with an edit that leaves the rest out (``... existing code ...``), and the apply
engine merges that edit into the whole file, as Cursor does with a big file.

On the wire (no change to ``proto/``): the item is a ``file`` or ``current_file`` whose text is
the WHOLE file, not truncated, with ``start_line``/``end_line`` naming the excerpt's lines
(``excerpt_range``). A range item whose text is only its lines (a selection, a codebase hit,
a truncated file) has exactly as many lines as its range, so the two never meet. The service
renders only the excerpt's lines (``excerpt_text``) in the prompt, marked as lines a-b of the
file that may be edited with elisions, resolves the answer's block against the whole text,
and refuses (a ``FAILED`` change with the reason) an edit that lands outside the lines the
model saw (``outside_excerpt``). A service older than this reads such an item as a range and
sends it whole as read-only context (its slot then refuses the request as too large).

``choose_excerpt`` is pure: whole definitions around the focus line (the caret, or the
definition of a name the question mentions: ``symbol_line``; the file's top otherwise),
snapped by the apply engine's ``definition_extent`` and grown by whole neighbouring blocks
(the next-edit input's block starts at the definition's indentation or less) while they fit.
"""

from __future__ import annotations

import difflib
import re

from forecode_core.apply.windows import _definitions, definition_extent
from forecode_core.chat.types import ContextItem, ContextKind
from forecode_core.next_edit.input import _block_starts

__all__ = [
    "choose_excerpt",
    "excerpt_note",
    "excerpt_range",
    "excerpt_text",
    "outside_excerpt",
    "symbol_line",
]

_DECORATORS = 8
_MIN_LINE_CHARS = 8
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def excerpt_range(item: ContextItem) -> tuple[int, int] | None:
    """``(first, last)``, 1-based inclusive, when ``item`` is an editable excerpt (module
    doc): a file whose whole text travels with the excerpt's lines as its range."""
    if item.kind not in (ContextKind.FILE, ContextKind.CURRENT_FILE) or item.truncated:
        return None
    first, last = item.start_line, item.end_line
    if not item.path or first < 1 or last < first:
        return None
    lines = item.text.count("\n") + 1
    if lines <= last - first + 1 or last > lines:
        return None
    return first, last


def excerpt_text(text: str, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, inclusive) of ``text``."""
    return "\n".join(text.split("\n")[first - 1 : last])


def excerpt_note(first: int, last: int, total: int) -> str:
    """The prompt's line above an excerpt's path (``forecode_core.edits.prompt``)."""
    return (
        f"An excerpt of the next file, lines {first}-{last} of its {total}; the rest is not "
        "shown. You may change these lines; write # ... existing code ... for the lines you "
        "leave out.\n"
    )


def symbol_line(text: str, question: str) -> int:
    """The 0-based line of the definition of the first name in ``question`` that ``text``
    defines (``def``/``class``/``function``... headers, as the apply engine finds them); 0
    (the top) when the question names none."""
    defined = _definitions(text.split("\n"))
    for word in _WORD.findall(question):
        headers = defined.get(word)
        if headers:
            return headers[0]
    return 0


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _size(lines: list[str], a: int, b: int) -> int:
    return sum(len(lines[k]) + 1 for k in range(a, b))


def _cut(lines: list[str], focus: int, max_chars: int) -> tuple[int, int]:
    """Whole lines around ``focus`` that fit (``[a, b)``): the last resort, when even the
    focus's innermost definition does not fit."""
    from forecode_core.chat.context import _cut_lines

    first, last = _cut_lines(lines, focus, max_chars)
    return first, last + 1


def _unit(lines: list[str], focus: int, max_chars: int) -> tuple[int, int] | None:
    """``[a, b)``: the outermost definition around ``focus`` that fits ``max_chars``; the
    block around it when no definition holds it; None when the innermost does not fit."""
    # A header below the focus holds it only through its decorators (a few lines above it).
    headers = sorted(
        h for found in _definitions(lines).values() for h in found if h <= focus + _DECORATORS
    )
    holding = sorted(
        (ext for ext in (definition_extent(lines, h) for h in headers) if ext[0] <= focus < ext[1]),
        key=lambda ext: ext[1] - ext[0],
    )
    fitting = [ext for ext in holding if _size(lines, *ext) <= max_chars]
    if holding:
        return fitting[-1] if fitting and fitting[0] == holding[0] else None
    starts = _block_starts(lines)
    a = max(s for s in starts if s <= focus)
    b = min(s for s in starts if s > focus)
    return (a, b) if _size(lines, a, b) <= max_chars else None


def _grow(lines: list[str], a: int, b: int, max_chars: int) -> tuple[int, int]:
    """``[a, b)`` grown by whole blocks at its indentation or less, below and above in turn,
    while the text fits ``max_chars``."""
    level = _indent(lines[a])
    bounds = [s for s in _block_starts(lines) if s == len(lines) or _indent(lines[s]) <= level]
    used = _size(lines, a, b)
    down_first = True
    while True:
        below = next((s for s in bounds if s > b), None)
        above = next((s for s in reversed(bounds) if s < a), None)
        can_down = below is not None and used + _size(lines, b, below) <= max_chars
        can_up = above is not None and used + _size(lines, above, a) <= max_chars
        if not (can_down or can_up):
            return a, b
        if can_down and below is not None and (down_first or not can_up):
            used += _size(lines, b, below)
            b = below
        elif above is not None:
            used += _size(lines, above, a)
            a = above
        down_first = not down_first


def choose_excerpt(text: str, max_chars: int, focus_line: int = 0) -> tuple[int, int]:
    """``(first, last)``, 1-based inclusive: the lines of ``text`` to send as an editable
    excerpt in about ``max_chars`` characters around ``focus_line`` (0-based; module doc)."""
    every = text.split("\n")
    focus = max(0, min(focus_line, len(every) - 1))
    # Only the lines an excerpt can reach are read (a 10,000-line file cost ~30 ms on the UI
    # thread's context refresh): lines of 8 characters or more on average.
    reach = max_chars // _MIN_LINE_CHARS + 1
    lo = max(0, focus - reach)
    lines = every[lo : focus + reach + 1]
    focus -= lo
    unit = _unit(lines, focus, max_chars)
    a, b = _grow(lines, *unit, max_chars) if unit is not None else _cut(lines, focus, max_chars)
    while b - 1 > a and not lines[b - 1].strip():
        b -= 1
    return lo + a + 1, lo + b


def outside_excerpt(original: str, new_text: str, first: int, last: int) -> bool:
    """Whether ``new_text`` changes a line of ``original`` outside lines ``first``..``last``
    (1-based; lines added right above or below the excerpt are inside)."""
    old, new = original.splitlines(), new_text.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return any(
        tag != "equal" and (i1 < first - 1 or i2 > last)
        for tag, i1, i2, _j1, _j2 in matcher.get_opcodes()
    )
