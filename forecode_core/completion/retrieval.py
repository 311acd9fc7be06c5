"""Retrieved code for the completion prompt: the pure part of ``app.ui.retrieved_context``.

On a cursor pause the editor asks the codebase index (``forecode_core.index.codebase``) for code
like the
lines around the cursor, in the background; completions only ever read what is already cached.
This module holds the decisions, over plain data:

- the query (``build_query``): the cursor line and the ``QUERY_LINES_ABOVE`` lines above it and
  ``QUERY_LINES_BELOW`` below, blank lines left out, each stripped of its indentation, at most
  ``QUERY_MAX_CHARS`` characters (the lines nearest the cursor win). The lines above say what is
  being written (the signature, the names in scope), the cursor line what is being typed now;
  one or two below help when the cursor is inside existing code;
- the cache key (``region_of``): a file and a band of ``REGION_LINES`` lines, so moving within a
  function reuses its hits and a new region gets its own; a region is searched again when its
  query changed enough (``needs_search``: word sets with a Jaccard similarity below
  ``RESEARCH_BELOW``) — typing a few characters does not, rewriting the block does;
- what goes in the prompt (``retrieved_snippets``): the cached hits best first, without those of
  the edited file near the cursor (within ``forecode_core.completion.prompt.NEAR_LINES``: those
  lines are in
  the prompt already) or overlapping another snippet already given, each cut to
  ``SNIPPET_MAX_LINES`` lines, at most ``MAX_SNIPPETS``; kind ``retrieved``, which the renderer
  ranks below recent edits and open files.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from forecode_core.completion.prompt import NEAR_LINES, Snippet
from forecode_core.index.codebase import CodeHit

__all__ = [
    "MAX_SNIPPETS",
    "QUERY_LINES_ABOVE",
    "QUERY_LINES_BELOW",
    "QUERY_MAX_CHARS",
    "REGION_LINES",
    "RESEARCH_BELOW",
    "SNIPPET_MAX_LINES",
    "HitCache",
    "Region",
    "build_query",
    "needs_search",
    "region_of",
    "retrieved_snippets",
]

QUERY_LINES_ABOVE = 8
QUERY_LINES_BELOW = 2
QUERY_MAX_CHARS = 600
REGION_LINES = 16
RESEARCH_BELOW = 0.6
MAX_SNIPPETS = 3
SNIPPET_MAX_LINES = 40
CACHE_REGIONS = 64

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Region:
    path: str
    band: int  # (cursor line - 1) // REGION_LINES


def region_of(path: str, cursor_line: int) -> Region:
    """The cache key of a 1-based cursor line in ``path``."""
    return Region(path, max(0, cursor_line - 1) // REGION_LINES)


def build_query(lines: Sequence[str], cursor_line: int) -> str:
    """The search query around the 1-based ``cursor_line`` of ``lines`` (the module doc)."""
    index = cursor_line - 1
    if not 0 <= index < len(lines):
        return ""
    # nearest first: the cursor line, then alternately above and below
    order = [index]
    for d in range(1, max(QUERY_LINES_ABOVE, QUERY_LINES_BELOW) + 1):
        if d <= QUERY_LINES_ABOVE and index - d >= 0:
            order.append(index - d)
        if d <= QUERY_LINES_BELOW and index + d < len(lines):
            order.append(index + d)
    kept: list[int] = []
    used = 0
    for i in order:
        line = lines[i].strip()
        if not line:
            continue
        if used + len(line) + 1 > QUERY_MAX_CHARS:
            if not kept:  # one line longer than the whole query: its part nearest the cursor
                kept.append(i)
            break
        kept.append(i)
        used += len(line) + 1
    text = "\n".join(lines[i].strip() for i in sorted(kept))
    return text[-QUERY_MAX_CHARS:] if len(text) > QUERY_MAX_CHARS else text


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def needs_search(cached_query: str | None, query: str) -> bool:
    """True when ``query`` should be searched although ``cached_query`` was (None: never)."""
    if not query.strip():
        return False
    if cached_query is None:
        return True
    old, new = _words(cached_query), _words(query)
    if not old or not new:
        return old != new
    return len(old & new) / len(old | new) < RESEARCH_BELOW


class HitCache:
    """The hits of the last searches, per region (least recently used regions go first)."""

    def __init__(self, capacity: int = CACHE_REGIONS) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Region, tuple[str, tuple[CodeHit, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def query(self, region: Region) -> str | None:
        entry = self._entries.get(region)
        return entry[0] if entry is not None else None

    def hits(self, region: Region) -> tuple[CodeHit, ...]:
        entry = self._entries.get(region)
        if entry is None:
            return ()
        self._entries.move_to_end(region)
        return entry[1]

    def put(self, region: Region, query: str, hits: Iterable[CodeHit]) -> None:
        self._entries[region] = (query, tuple(hits))
        self._entries.move_to_end(region)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def _overlaps(a_first: int, a_last: int, b_first: int, b_last: int) -> bool:
    return a_first <= b_last and b_first <= a_last


def retrieved_snippets(
    hits: Iterable[CodeHit], path: str, cursor_line: int, others: Sequence[Snippet] = ()
) -> tuple[Snippet, ...]:
    """The ``retrieved`` snippets for a prompt at the 1-based ``cursor_line`` of ``path``
    (the module doc)."""
    out: list[Snippet] = []
    taken = [(s.path, s.start_line, s.end_line) for s in others]
    for hit in hits:
        if len(out) >= MAX_SNIPPETS:
            break
        text = hit.text.replace("\r\n", "\n").rstrip("\n")
        if not text.strip():
            continue
        first = max(1, hit.start_line)
        lines = text.split("\n")[:SNIPPET_MAX_LINES]
        last = first + len(lines) - 1
        if hit.path == path and _overlaps(
            first, last, cursor_line - NEAR_LINES, cursor_line + NEAR_LINES
        ):
            continue
        if any(p == hit.path and _overlaps(first, last, lo, hi) for p, lo, hi in taken):
            continue
        out.append(Snippet(hit.path, "\n".join(lines) + "\n", first, "retrieved"))
        taken.append((hit.path, first, last))
    return tuple(out)
