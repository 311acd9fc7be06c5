"""What a new diagnostics report must repaint: the squiggles that changed, not the file's all.

A report replaces a document's diagnostics; the editor used to clear every squiggle and paint
the whole set again (1,000 diagnostics: 15-18 ms of the UI thread on each report). ``plan``
compares the set painted (``old``) with the new one and says which ranges to clear and which
to fill so that the squiggles end as a full repaint would leave them:

- diagnostics are compared as whole values (range, severity, message, source, code: the hover
  shows the last three), as multisets (two servers may say the same thing);
- text edited since the last paint (``dirty_line``: the first line any insert or delete
  touched, in the current text) moves squiggles under and after it, and a kept diagnostic's
  LSP position no longer names the bytes it painted; so everything from the first line that
  such a diagnostic touches (``clear_from_line``) is cleared and repainted. Lines above are
  the text painted before, so their diagnostics' ranges still name the same bytes;
- clearing a removed diagnostic's range also clears a kept one's squiggle on the same layer
  where the two share a line (a squiggle is one indicator value per byte, not per
  diagnostic), so those kept ones are filled again (``refill``);
- when the changes are as many as the new set, a full repaint is as cheap (``full``).

Pure data in, pure data out; the editor maps positions to bytes and calls Scintilla."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .diagnostics import Diagnostic, Severity

__all__ = ["PaintPlan", "layer_of", "plan"]


def layer_of(severity: Severity) -> int:
    """The squiggle layer a severity paints on: errors, warnings, information and hints
    together (the editor's indicators 20, 21, 22)."""
    return min(int(severity), int(Severity.INFORMATION))


@dataclass(frozen=True)
class PaintPlan:
    """``full``: clear everything and fill ``fill`` (the whole new set). Otherwise clear the
    ranges of ``clear`` (painted before, gone now), clear every layer from the start of line
    ``clear_from_line`` to the end (None: nothing), then fill ``fill``: what is new, what
    lies in the cleared tail, and what a clear cut through (kept ones sharing a line)."""

    full: bool
    clear: tuple[Diagnostic, ...] = ()
    clear_from_line: int | None = None
    fill: tuple[Diagnostic, ...] = ()
    kept: tuple[Diagnostic, ...] = ()  # painted before, unchanged and untouched: not repainted

    def calls(self) -> int:
        """Ranges this plan paints or clears (what it costs the UI thread, roughly)."""
        tail = 0 if self.clear_from_line is None else 3
        return len(self.clear) + tail + len(self.fill)


def _tail_start(old: Sequence[Diagnostic], new: Sequence[Diagnostic], dirty: int) -> int:
    """The first line of the repainted tail: ``dirty``, lowered to the start of any
    diagnostic (painted or new) that reaches it, until none does."""
    line = dirty
    changed = True
    while changed:
        changed = False
        for d in (*old, *new):
            if d.end.line >= line and _first_line(d) < line:
                line, changed = _first_line(d), True
    return line


def _first_line(d: Diagnostic) -> int:
    """The first line ``d``'s squiggle may touch: an empty range is widened to a character,
    backwards at a line's end, so on an empty line it reaches the line before."""
    return max(0, d.start.line - 1) if d.start == d.end else d.start.line


def _lines(d: Diagnostic) -> range:
    return range(_first_line(d), d.end.line + 1)


def _cut_by(
    cleared: Sequence[Diagnostic], kept: Counter[Diagnostic], layer: Callable[[Severity], int]
) -> list[Diagnostic]:
    """The kept diagnostics a clear of ``cleared`` may cut: same layer, a line in common."""
    by_line: dict[tuple[int, int], bool] = {}
    for d in cleared:
        for line in _lines(d):
            by_line[(layer(d.severity), line)] = True
    out: list[Diagnostic] = []
    for d, n in kept.items():
        if any((layer(d.severity), line) in by_line for line in _lines(d)):
            out.extend([d] * n)
    return out


def plan(
    old: Sequence[Diagnostic],
    new: Sequence[Diagnostic],
    dirty_line: int | None = None,
    layer: Callable[[Severity], int] = layer_of,
) -> PaintPlan:
    """How to turn the squiggles of ``old`` (painted, the text edited since from line
    ``dirty_line`` on, None: not edited) into those of ``new``."""
    if not old or not new:
        return PaintPlan(full=True, fill=tuple(new))
    tail = None if dirty_line is None else _tail_start(old, new, dirty_line)

    def above(d: Diagnostic) -> bool:
        return tail is None or d.end.line < tail

    before = Counter(d for d in old if above(d))
    after = Counter(d for d in new if above(d))
    removed = list((before - after).elements())
    added = list((after - before).elements())
    kept = before & after
    refill = _cut_by(removed, kept, layer)
    in_tail = [d for d in new if not above(d)]
    fill = (*added, *refill, *in_tail)
    if len(removed) + len(fill) >= len(new):
        return PaintPlan(full=True, fill=tuple(new))
    untouched = kept - Counter(refill)
    return PaintPlan(False, tuple(removed), tail, fill, tuple(untouched.elements()))
