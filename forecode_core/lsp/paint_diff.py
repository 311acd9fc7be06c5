"""What a new diagnostics report must repaint: the squiggles that changed, not the file's all.

A report replaces a document's diagnostics; the editor used to clear every squiggle and paint
the whole set again (1,000 diagnostics: 15-18 ms of the UI thread on each report). ``plan``
compares the set painted (``old``) with the new one and says which ranges to clear and which
to fill so that the squiggles end as a full repaint would leave them:

- diagnostics are compared as whole values (range, severity, message, source, code: the hover
  shows the last three), as multisets (two servers may say the same thing);
- text edited since the last paint with lines added or removed (``dirty_line``: the first
  line such an insert or delete touched, in the current text) moves the lines under it, and
  a kept diagnostic's LSP position no longer names the characters it painted; so everything
  from the first line that such a diagnostic touches (``clear_from_line``) is cleared and
  repainted. Lines above are the text painted before. An edit within a line
  (``edited_lines``: typing) moves no other line: that line is cleared and what touches it
  repainted, the rest kept (its bytes shifted, which the editor follows);
- clearing a removed diagnostic's range also clears a kept one's squiggle on the same layer
  where the two share a line (a squiggle is one indicator value per byte, not per
  diagnostic), so those kept ones are filled again (``refill``);
- when the changes are as many as the new set, a full repaint is as cheap (``full``).

Pure data in, pure data out; the editor maps positions to bytes and calls Scintilla. Cost: a
diagnostic is compared by a tuple of its fields read in C (``_KEY``), not the dataclass's own
hash and equality (Python code, ~1.7 us a call: they made the plan cost more than the paint)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from operator import attrgetter

from .diagnostics import Diagnostic, Severity

__all__ = ["PaintPlan", "layer_of", "plan"]


def layer_of(severity: Severity) -> int:
    """The squiggle layer a severity paints on: errors, warnings, information and hints
    together (the editor's indicators 20, 21, 22)."""
    return min(int(severity), int(Severity.INFORMATION))


# A diagnostic's identity as a flat tuple read in C (``severity._value_``: an IntEnum's own
# hash is Python code).
_KEY = attrgetter(
    "start.line",
    "start.character",
    "end.line",
    "end.character",
    "severity._value_",
    "message",
    "source",
    "code",
)
Key = tuple[int, int, int, int, int, str, str, str]


@dataclass(frozen=True)
class PaintPlan:
    """``full``: clear everything and fill ``fill`` (the whole new set). Otherwise clear the
    ranges of ``clear`` (painted before, gone now), clear every layer from the start of line
    ``clear_from_line`` to the end (None: nothing), then fill ``fill``: what is new, what
    lies in the cleared tail, and what a clear cut through (kept ones sharing a line).
    ``clear_lines``: lines edited since the paint, every layer cleared on each first.
    ``drop``: the indices in ``old`` whose painted ranges are no longer current (cleared or
    filled again); the others stay as painted (``kept``)."""

    full: bool
    clear: tuple[Diagnostic, ...] = ()
    clear_from_line: int | None = None
    fill: tuple[Diagnostic, ...] = ()
    drop: frozenset[int] = frozenset()
    kept: tuple[Diagnostic, ...] = ()
    clear_lines: tuple[int, ...] = ()  # edited lines: every layer cleared on each

    def calls(self) -> int:
        """Ranges this plan paints or clears (what it costs the UI thread, roughly)."""
        tail = 0 if self.clear_from_line is None else 3
        return len(self.clear) + tail + 3 * len(self.clear_lines) + len(self.fill)


def _first_line(k: Key) -> int:
    """The first line a squiggle may touch: an empty range is widened to a character,
    backwards at a line's end, so on an empty line it reaches the line before."""
    return max(0, k[0] - 1) if k[0:2] == k[2:4] else k[0]


def _tail_start(keys: Sequence[Key], dirty: int) -> int:
    """The first line of the repainted tail: ``dirty``, lowered to the start of any
    diagnostic (painted or new) that reaches it, until none does."""
    line = dirty
    changed = True
    while changed:
        changed = False
        for k in keys:
            if k[2] >= line and _first_line(k) < line:
                line, changed = _first_line(k), True
    return line


def _cut_by(
    removed: Sequence[Key], kept: Sequence[tuple[int, Key]], layer: Callable[[Severity], int]
) -> list[int]:
    """The kept diagnostics (index in old, key) a clear of ``removed`` may cut: the same
    layer and a line in common."""
    if not removed:
        return []
    of = {int(s): layer(s) for s in Severity}
    hit = {(of[k[4]], line) for k in removed for line in range(_first_line(k), k[2] + 1)}
    layers = {a for a, _line in hit}
    out: list[int] = []
    for i, k in kept:
        mine = of[k[4]]
        if mine in layers and any((mine, line) in hit for line in range(_first_line(k), k[2] + 1)):
            out.append(i)
    return out


def plan(
    old: Sequence[Diagnostic],
    new: Sequence[Diagnostic],
    dirty_line: int | None = None,
    layer: Callable[[Severity], int] = layer_of,
    edited_lines: Collection[int] = (),
) -> PaintPlan:
    """How to turn the squiggles of ``old`` (painted) into those of ``new``. Since the paint
    the text was edited from line ``dirty_line`` on with lines added or removed (None: not),
    and within ``edited_lines`` without (current line numbers): those lines are cleared and
    what touches them painted again; the other lines' diagnostics name the same characters
    as before (the editor shifts their painted byte ranges)."""
    if not old or not new:
        return PaintPlan(full=True, fill=tuple(new), drop=frozenset(range(len(old))))
    old_keys: list[Key] = list(map(_KEY, old))
    new_keys: list[Key] = list(map(_KEY, new))
    if dirty_line is None and not edited_lines and old_keys == new_keys:
        return PaintPlan(False, kept=tuple(old))
    tail = None if dirty_line is None else _tail_start([*old_keys, *new_keys], dirty_line)
    limit = tail if tail is not None else sys.maxsize
    edited = {line for line in edited_lines if line < limit}

    def touches(k: Key) -> bool:
        return bool(edited) and any(line in edited for line in range(_first_line(k), k[2] + 1))

    pool: dict[Key, list[int]] = {}
    drop: set[int] = set()
    stale: list[int] = []  # painted over an edited line: cleared by its range, repainted
    for i, k in enumerate(old_keys):
        if k[2] >= limit:
            drop.add(i)  # in the tail: cleared with it
        elif touches(k):
            stale.append(i)
        else:
            pool.setdefault(k, []).append(i)
    kept: list[tuple[int, Key]] = []
    fill: list[Diagnostic] = []
    for j, k in enumerate(new_keys):
        same = pool.get(k) if k[2] < limit and not touches(k) else None
        if same:
            kept.append((same.pop(), k))
        else:
            fill.append(new[j])  # new, in the tail or over an edited line
    removed = [i for ids in pool.values() for i in ids] + stale
    refill = _cut_by([old_keys[i] for i in removed], kept, layer)
    lines = tuple(sorted(edited))
    if len(removed) + len(fill) + len(refill) + len(lines) >= len(new):
        return PaintPlan(full=True, fill=tuple(new), drop=frozenset(range(len(old))))
    drop.update(removed, refill)
    return PaintPlan(
        False,
        clear=tuple(old[i] for i in removed),
        clear_from_line=tail,
        fill=(*fill, *(old[i] for i in refill)),
        drop=frozenset(drop),
        kept=tuple(d for i, d in enumerate(old) if i not in drop),
        clear_lines=lines,
    )
