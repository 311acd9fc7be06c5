"""The terminal's screen model: pyte's VT emulator fed on the PTY's thread, read by the view.

``TerminalScreen.feed`` runs on the session's reader thread: the shell-integration marks are
taken out first (``forecode_core.terminal.marks.ShellStream``), the rest goes to pyte in
slices of ``SLICE`` characters, each under ``lock``, so the view's snapshot (taken on the UI
thread on its repaint timer) never waits behind a whole flood. Lines that scroll off the top
of the whole screen go to the scrollback (``scrollback`` lines at most). Where the prompt's
B mark fell is kept as an absolute line (scrolled lines + row) and column, so the view can
read what the user has typed so far.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyte
from pyte.screens import Char, Margins

from forecode_core.terminal.marks import Mark, MarkKind, ShellStream
from forecode_core.terminal.records import CommandRecord

__all__ = ["BRACKETED_PASTE", "CURSOR_KEYS", "SLICE", "Snapshot", "TerminalScreen"]

SLICE = 2048  # characters fed to pyte under one hold of the lock
CURSOR_KEYS = 1 << 5  # DECCKM (private mode 1) as pyte stores it: application cursor keys
BRACKETED_PASTE = 2004 << 5

Row = Sequence[Char]


class _Screen(pyte.Screen):
    def __init__(
        self, columns: int, lines: int, scrollback: int, reply: Callable[[bytes], None] | None
    ) -> None:
        super().__init__(columns, lines)
        self.history: deque[Any] = deque(maxlen=scrollback)
        self.scrolled = 0  # lines that ever left the top (absolute line = scrolled + row)
        self._reply = reply

    def write_process_input(self, data: str) -> None:
        """The terminal's answers to queries (cursor position, device attributes)."""
        if self._reply is not None:
            self._reply(data.encode("utf-8"))

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y == bottom and top == 0:
            self.history.append(self.buffer[top])  # pyte drops this row object: keep it
            self.scrolled += 1
        super().index()

    def fit(self, rows: int, columns: int) -> None:
        """Resize keeping the cursor's line: when the screen gets shorter the lines above it go
        to the scrollback and blank ones below it are dropped (pyte's own ``resize`` drops the
        top lines and leaves the cursor where it was, off its text)."""
        if rows < self.lines:
            extra = max(0, self.cursor.y + 1 - rows)
            for y in range(extra):
                self.history.append(self.buffer[y])
            for y in range(self.lines):
                if y + extra < self.lines and y < rows:
                    self.buffer[y] = self.buffer[y + extra]
                else:
                    self.buffer.pop(y, None)
            self.cursor.y -= extra
            self.scrolled += extra
        if columns < self.columns:
            for line in self.buffer.values():
                for x in range(columns, self.columns):
                    line.pop(x, None)
        self.lines, self.columns = rows, columns
        self.set_margins()
        self.dirty.update(range(rows))
        self.ensure_hbounds()
        self.ensure_vbounds()


@dataclass(frozen=True)
class Snapshot:
    rows: list[list[Char]]  # the lines shown, top to bottom, each ``columns`` cells
    columns: int
    first: int  # absolute line of rows[0]
    cursor: tuple[int, int] | None  # absolute line, column; None when hidden
    history: int  # lines in the scrollback
    at_prompt: bool
    input_line: str | None  # typed after the prompt (B) up to the cursor, when at_prompt


class TerminalScreen:
    def __init__(
        self,
        rows: int,
        columns: int,
        *,
        scrollback: int = 10_000,
        start_cwd: str = "",
        reply: Callable[[bytes], None] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self._shell = ShellStream(start_cwd)
        self._screen = _Screen(columns, rows, scrollback, reply)
        self._vt = pyte.Stream(self._screen)
        self.version = 0  # grows with every change the view may show
        self._prompt_at: tuple[int, int] | None = None

    @property
    def columns(self) -> int:
        return int(self._screen.columns)

    @property
    def rows(self) -> int:
        return int(self._screen.lines)

    def mode(self, flag: int) -> bool:
        return flag in self._screen.mode

    # ----- the reader thread ------------------------------------------------------------------
    def feed(self, data: bytes) -> list[CommandRecord]:
        fed = self._shell.feed(data)
        for piece in fed.pieces:
            if isinstance(piece, Mark):
                self._mark(piece)
                continue
            for start in range(0, len(piece), SLICE):
                with self.lock:
                    self._vt.feed(piece[start : start + SLICE])
                    self.version += 1
        return fed.records

    def _mark(self, mark: Mark) -> None:
        with self.lock:
            if mark.kind is MarkKind.PROMPT_END:
                cursor = self._screen.cursor
                self._prompt_at = (self._screen.scrolled + cursor.y, cursor.x)
            elif mark.kind in (MarkKind.OUTPUT_START, MarkKind.PROMPT_START):
                self._prompt_at = None
            self.version += 1

    # ----- any thread -------------------------------------------------------------------------
    def resize(self, rows: int, columns: int) -> None:
        with self.lock:
            if (rows, columns) != (self._screen.lines, self._screen.columns):
                self._screen.fit(max(1, rows), max(1, columns))
                self.version += 1

    def snapshot(self, scroll: int = 0) -> Snapshot:
        """The screen ``scroll`` lines up into the scrollback (0: the live screen)."""
        with self.lock:
            screen = self._screen
            history = screen.history
            columns, lines = screen.columns, screen.lines
            scroll = max(0, min(scroll, len(history)))
            start = len(history) - scroll
            rows: list[list[Char]] = []
            for i in range(start, start + lines):
                row = history[i] if i < len(history) else screen.buffer[i - len(history)]
                rows.append([row[x] for x in range(columns)])
            first = screen.scrolled - scroll
            cursor = screen.cursor
            shown = None if cursor.hidden else (screen.scrolled + cursor.y, cursor.x)
            at_prompt = self._prompt_at is not None
            return Snapshot(
                rows,
                columns,
                first,
                shown,
                len(history),
                at_prompt,
                self._input_line() if at_prompt else None,
            )

    def input_line(self) -> str | None:
        """What the user has typed on the prompt line so far (B mark to the cursor)."""
        with self.lock:
            return self._input_line()

    def _input_line(self) -> str | None:
        if self._prompt_at is None:
            return None
        screen = self._screen
        line, column = self._prompt_at
        row = line - screen.scrolled
        end_row, end_column = screen.cursor.y, screen.cursor.x
        if row < 0:  # the prompt scrolled off: the typed text starts at the top
            row, column = 0, 0
        parts = []
        for y in range(row, end_row + 1):
            first = column if y == row else 0
            last = end_column if y == end_row else screen.columns
            buffer_row = screen.buffer[y]
            parts.append("".join(buffer_row[x].data for x in range(first, last)))
        return "".join(parts)

    def text(self) -> str:
        """The scrollback and the screen as plain text, trailing blanks trimmed (for tests
        and the copy of a whole terminal)."""
        with self.lock:
            screen = self._screen
            rows = [*screen.history, *(screen.buffer[y] for y in range(screen.lines))]
            return "\n".join(
                "".join(row[x].data for x in range(screen.columns)).rstrip() for row in rows
            ).rstrip()
