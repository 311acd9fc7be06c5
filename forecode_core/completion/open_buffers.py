"""Which open buffers enter the completion prompt, and which of their lines: the completion
context policy, over plain data (the editor's side is ``app.ui.owners.engine``).

- the other open tabs give at most ``MAX_OPEN_SNIPPETS`` snippets: the tabs of the current
  file's related files first (``related``: the files that usually change with it, most likely
  first; ``forecode_core.next_edit.related``), then the others in tab order; the current tab
  and read-only tabs (binary, undecodable, large-file mode) give none;
- each snippet is the ``RADIUS`` lines above and below that buffer's caret line (clipped to the
  buffer), without the last line's line ending;
- a modified buffer's snippet is a ``recent_edit``, a clean one's an ``open_file``; recent edits
  come first, each group in the order taken (the renderer ranks recent edits above open
  files, and keeps the input order within a kind: related files first).

Retrieved code (``forecode_core.completion.retrieval``) is appended after these by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .prompt import Snippet

__all__ = [
    "MAX_OPEN_SNIPPETS",
    "RADIUS",
    "OpenBuffer",
    "TextBuffer",
    "line_window",
    "open_buffer_snippets",
]

MAX_OPEN_SNIPPETS = 3
RADIUS = 20
_LINE_END = re.compile(r"(\r\n|\r|\n)")  # Scintilla's line endings


class OpenBuffer(Protocol):
    """One open tab, as the policy sees it (the editor's adapter reads lines lazily: only the
    chosen buffers' windows are ever read)."""

    @property
    def path(self) -> str: ...  # workspace-relative POSIX path (its name outside it)

    @property
    def dirty(self) -> bool: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def caret_line(self) -> int: ...  # 0-based

    @property
    def line_count(self) -> int: ...

    def lines(self, first: int, last: int) -> str:
        """Lines ``first`` to ``last`` (0-based, inclusive), without the last one's ending."""
        ...


@dataclass(frozen=True)
class TextBuffer:
    """An ``OpenBuffer`` over a string (tests, benchmarks)."""

    path: str
    text: str
    caret_line: int = 0
    dirty: bool = False
    read_only: bool = False

    @property
    def line_count(self) -> int:
        return len(_LINE_END.split(self.text)) // 2 + 1

    def lines(self, first: int, last: int) -> str:
        parts = _LINE_END.split(self.text)  # line, ending, line, ending, ..., last line
        return "".join(parts[2 * first : 2 * last + 1])


def line_window(caret_line: int, line_count: int, radius: int = RADIUS) -> tuple[int, int]:
    """The first and last line (0-based, inclusive) of the snippet around ``caret_line``."""
    return max(0, caret_line - radius), min(line_count - 1, caret_line + radius)


def open_buffer_snippets(
    buffers: Iterable[OpenBuffer],
    current: int,
    *,
    limit: int = MAX_OPEN_SNIPPETS,
    radius: int = RADIUS,
    related: Sequence[str] = (),
) -> list[Snippet]:
    """The snippets of the open buffers other than ``buffers[current]`` (see the module
    docstring); ``current`` is -1 when no buffer is current. Without ``related``, ``buffers``
    is read only as far as needed (an editor's adapters can be made lazily)."""
    snippets: list[Snippet] = []
    order: Iterable[tuple[int, OpenBuffer]] = enumerate(buffers)
    if related:
        rank = {path: n for n, path in enumerate(related)}
        listed = list(order)
        order = sorted(listed, key=lambda item: rank.get(item[1].path, len(rank)))  # stable
    for index, buffer in order:
        if len(snippets) >= limit:
            break
        if index == current or buffer.read_only:
            continue
        first, last = line_window(buffer.caret_line, buffer.line_count, radius)
        kind = "recent_edit" if buffer.dirty else "open_file"
        snippets.append(Snippet(buffer.path, buffer.lines(first, last), first + 1, kind))
    snippets.sort(key=lambda s: s.kind != "recent_edit")
    return snippets
