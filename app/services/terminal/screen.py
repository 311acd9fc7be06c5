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

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyte
from pyte.modes import DECAWM, IRM
from pyte.screens import Char, Margins

from forecode_core.terminal.marks import Mark, MarkKind, ShellStream
from forecode_core.terminal.records import CommandRecord

__all__ = ["BRACKETED_PASTE", "CURSOR_KEYS", "SLICE", "Snapshot", "TerminalScreen"]

SLICE = 512  # characters fed to pyte under one hold of the lock (then the GIL is offered)
CURSOR_KEYS = 1 << 5  # DECCKM (private mode 1) as pyte stores it: application cursor keys
BRACKETED_PASTE = 2004 << 5
_ALTERNATE = {47, 1047, 1049}  # private modes: the alternate screen (1049 also saves the cursor)

Row = Sequence[Char]


class _Screen(pyte.Screen):
    def __init__(
        self, columns: int, lines: int, scrollback: int, reply: Callable[[bytes], None] | None
    ) -> None:
        super().__init__(columns, lines)
        self.history: deque[Any] = deque(maxlen=scrollback)
        self.scrolled = 0  # lines that ever left the top (absolute line = scrolled + row)
        self._reply = reply
        self._cells_for: Any = None  # the attributes ``_cells`` were made with
        self._cells: dict[str, Any] = {}
        self._saved: tuple[dict[int, Any], Any] | None = None  # the main screen, while alternate

    def write_process_input(self, data: str) -> None:
        """The terminal's answers to queries (cursor position, device attributes)."""
        if self._reply is not None:
            self._reply(data.encode("utf-8"))

    # ----- the alternate screen (vim, less, htop): pyte has none ------------------------------
    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and _ALTERNATE & set(modes) and self._saved is None:
            self._saved = (dict(self.buffer), copy.copy(self.cursor))
            self.buffer.clear()  # the program draws on a blank screen; nothing goes to history
            self.dirty.update(range(self.lines))
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        super().reset_mode(*modes, **kwargs)
        if kwargs.get("private") and _ALTERNATE & set(modes) and self._saved is not None:
            rows, cursor = self._saved
            self._saved = None
            self.buffer.clear()
            self.buffer.update((y, row) for y, row in rows.items() if y < self.lines)
            self.cursor = cursor
            self.ensure_hbounds()
            self.ensure_vbounds()
            self.dirty.update(range(self.lines))

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        super().erase_in_display(how, *args, **kwargs)
        if how == 3 and self._saved is None:  # xterm's "erase saved lines" (`clear` sends it)
            self.history.clear()

    @property
    def alternate(self) -> bool:
        return self._saved is not None

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if self.cursor.y != bottom or top != 0 or self._saved is not None:
            super().index()
            return
        # pyte's own moves the rows one by one and marks every line dirty (the view does
        # not use ``dirty``): 2 of every 7 s of a `seq` flood. Same rows, moved in one update.
        buffer = self.buffer
        self.history.append(buffer[0])  # the row leaving the top
        self.scrolled += 1
        buffer.update(zip(range(bottom), [buffer[y] for y in range(1, bottom + 1)], strict=True))
        buffer.pop(bottom, None)

    def draw(self, data: str) -> None:
        """pyte's ``draw`` for printable ASCII in autowrap and replace mode (nearly all output)
        a line piece at a time, each character's cell made once per attributes; anything else
        goes to pyte's."""
        data = data.translate(self.g1_charset if self.charset else self.g0_charset)
        mode = self.mode
        if not (data.isascii() and data.isprintable()) or IRM in mode or DECAWM not in mode:
            super().draw(data)  # translating again changes nothing: the table maps bytes
            return
        cursor = self.cursor
        attrs = cursor.attrs
        if attrs is not self._cells_for:
            self._cells_for, self._cells = attrs, {}
        cells = self._cells
        columns, start, end = self.columns, 0, len(data)
        while start < end:
            if cursor.x >= columns:
                self.carriage_return()
                self.linefeed()
            x = cursor.x
            piece = data[start : start + columns - x]
            line = self.buffer[cursor.y]
            for offset, char in enumerate(piece):
                cell = cells.get(char)
                if cell is None:
                    cell = cells[char] = attrs._replace(data=char)
                line[x + offset] = cell
            cursor.x = x + len(piece)
            start += len(piece)
        self.dirty.add(cursor.y)

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


class _Stream(pyte.Stream):
    def _send_to_parser(self, data: str) -> bool | None:
        """A sequence pyte's handlers fail on is dropped and the terminal goes on; the error
        used to end the reader thread, leaving a blank, deaf tab. vim 9 sends ``CSI ? 4 m``
        (xterm's query of its key modifiers), which pyte hands to the SGR handler with a
        ``private`` argument it does not take; ``CSI 5 J`` fails inside pyte too."""
        try:
            return super()._send_to_parser(data)
        except Exception:  # pyte has already restarted its parser
            return self._taking_plain_text


@dataclass(frozen=True)
class Snapshot:
    rows: list[list[Char]]  # the lines shown, top to bottom, each ``columns`` cells
    columns: int
    first: int  # absolute line of rows[0]
    cursor: tuple[int, int] | None  # absolute line, column; None when hidden
    history: int  # lines in the scrollback
    at_prompt: bool
    input_line: str | None  # typed after the prompt (B) up to the cursor, when at_prompt
    version: int = 0  # the model's version it shows
    scrolled: int = 0  # lines that ever left the top: the live screen's first line


class TerminalScreen:
    def __init__(
        self,
        rows: int,
        columns: int,
        *,
        scrollback: int = 10_000,
        start_cwd: str = "",
        reply: Callable[[bytes], None] | None = None,
        nonce: str | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self._shell = ShellStream(start_cwd, nonce)
        self._screen = _Screen(columns, rows, scrollback, reply)
        self._vt = _Stream(self._screen)
        self.version = 0  # grows with every change the view may show
        self._prompt_at: tuple[int, int] | None = None
        self._wanted: tuple[int, int | None] | None = None  # a frame asked for while fed
        self._published: Snapshot | None = None
        self.on_published: Callable[[], None] | None = None  # called on the reader thread

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
                    self._publish()
                time.sleep(0)  # the GIL to the UI thread if it waits, after each slice
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

    def snapshot(self, scroll: int = 0, pin: int | None = None) -> Snapshot:
        """The screen ``scroll`` lines up into the scrollback (0: the live screen), or from
        the absolute line ``pin`` (the view scrolled up stays on its lines while output comes);
        waits for the slice being fed."""
        with self.lock:
            return self._snapshot(scroll, pin)

    def frame(self, scroll: int = 0, pin: int | None = None) -> Snapshot | None:
        """For the UI thread, never waiting: the snapshot now when no slice is being fed;
        else ``None``, and the reader makes it after its slice (``take_published``) and calls
        ``on_published``."""
        if self.lock.acquire(blocking=False):
            try:
                self._wanted = None
                return self._snapshot(scroll, pin)
            finally:
                self.lock.release()
        self._wanted = (scroll, pin)
        return None

    def take_published(self) -> Snapshot | None:
        published, self._published = self._published, None
        return published

    def _publish(self) -> None:  # the reader thread, holding the lock
        wanted, self._wanted = self._wanted, None
        if wanted is not None:
            self._published = self._snapshot(*wanted)
            if self.on_published is not None:
                self.on_published()

    def _snapshot(self, scroll: int, pin: int | None = None) -> Snapshot:
        screen = self._screen
        history = screen.history
        columns, lines = screen.columns, screen.lines
        if pin is not None:
            scroll = screen.scrolled - pin
        scroll = max(0, min(scroll, len(history)))
        start = len(history) - scroll
        rows: list[list[Char]] = []
        for i in range(start, start + lines):
            row = history[i] if i < len(history) else screen.buffer[i - len(history)]
            rows.append([row[x] for x in range(columns)])
        cursor = screen.cursor
        at_prompt = self._prompt_at is not None
        return Snapshot(
            rows,
            columns,
            screen.scrolled - scroll,
            None if cursor.hidden else (screen.scrolled + cursor.y, cursor.x),
            len(history),
            at_prompt,
            self._input_line() if at_prompt else None,
            self.version,
            screen.scrolled,
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
