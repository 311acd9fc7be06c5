"""One terminal tab: the shell's screen drawn by our own painter over pyte's model.

The PTY's reads are parsed on the session's thread (``app.services.terminal``); this widget
only paints snapshots. A read asks for a frame with one queued signal at most per frame
(``_wake``); the frame timer (``FRAME_MS``) takes the snapshot, so a flood costs the UI
thread one snapshot and one paint a frame, whatever the shell prints.

Keys go to the shell, the window's shortcuts included (a ``ShortcutOverride`` is taken),
except ``WINDOW_KEYS`` (the terminal's toggle, the palette). Ctrl+Shift+C / Ctrl+Shift+V
copy the selection and paste (bracketed when the shell asked for it). Shift+PageUp/PageDown
and the wheel scroll the scrollback. ``set_suggestion`` shows ghost text after the cursor on
the prompt line; Right or End accepts it into the line (sent to the shell as if typed; the
user presses Enter). ``input_line_changed`` says what is typed after the prompt.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QFontMetrics,
    QFontMetricsF,
    QGuiApplication,
    QInputMethodEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QScrollBar, QWidget
from pyte.screens import Char

from app.services.terminal import Launch, PtySession
from app.services.terminal.screen import (
    BRACKETED_PASTE,
    CURSOR_KEYS,
    Snapshot,
    TerminalScreen,
)
from forecode_core.terminal.records import CommandRecord

from ..theme import Theme
from .keys import key_bytes
from .palette import TerminalPalette

__all__ = ["FRAME_MS", "WINDOW_KEYS", "TerminalView"]

FRAME_MS = 16
WINDOW_KEYS = ("Ctrl+`", "Ctrl+Shift+`", "Ctrl+Shift+P", "Ctrl+P", "F1")
_MODS = Qt.KeyboardModifier


class _Bridge(QObject):
    """Signals from the session's thread, queued to the UI thread."""

    wake = Signal()
    records = Signal(object)
    exited = Signal(object)


class TerminalView(QWidget):
    command_finished = Signal(object)  # CommandRecord
    input_line_changed = Signal(str)
    exited = Signal(object)  # the shell's exit status (None: unknown)

    def __init__(
        self,
        launch: Launch,
        cwd: Path,
        theme: Callable[[], Theme],  # the editor's theme now: read again when the palette changes
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_InputMethodEnabled)
        self.cwd = cwd
        self._theme = theme
        self.palette_ = TerminalPalette(theme())
        self._font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._font.setStyleHint(QFont.StyleHint.Monospace)
        # a whole-pixel cell: the glyphs' fractional advance (7.22 px for the 9 pt system font)
        # padded to it, else a run of text drifts right of its cells (a 140-column line by 30 px)
        advance = QFontMetricsF(self._font).horizontalAdvance("M")
        width = max(1, math.ceil(advance))
        self._font.setLetterSpacing(QFont.SpacingType.AbsoluteSpacing, width - advance)
        metrics = QFontMetrics(self._font)
        self._cell = (width, max(1, metrics.height()))
        self._ascent = metrics.ascent()
        # no parent: the session's thread may still emit after this widget is deleted
        self._bridge = _Bridge()
        self._bridge.wake.connect(self._schedule)
        self._bridge.records.connect(self._on_records)
        self._bridge.exited.connect(self._on_exited)
        self._wake_sent = threading.Event()
        self.model = TerminalScreen(
            24, 80, start_cwd=str(cwd), reply=self._write, nonce=launch.nonce
        )
        self.session = PtySession(launch, cwd, self._on_data, self._bridge.exited.emit)
        self.destroyed.connect(self.session.close)
        self.scrollbar = QScrollBar(Qt.Orientation.Vertical, self)
        self.scrollbar.valueChanged.connect(self._scrolled)
        self._scroll = 0  # lines up into the scrollback
        self._pin: int | None = None  # scrolled up: the absolute line kept at the top
        self._frame = QTimer(self)
        self._frame.setSingleShot(True)
        self._frame.timeout.connect(self._take_frame)
        self._snapshot: Snapshot = self.model.snapshot()
        self.model.on_published = self._bridge.wake.emit
        self._drawn_version = -1
        self._input_line: str | None = None
        self._suggestion = ""
        self._anchor: tuple[int, int] | None = None  # selection: absolute (line, column)
        self._caret: tuple[int, int] | None = None
        self.alive = True
        self.frames = 0  # snapshots taken (tests, the bench)

    # ----- the session ------------------------------------------------------------------------
    def start(self) -> None:
        self._fit()
        self.session.start()

    def kill(self) -> None:
        self.session.close()

    def _write(self, data: bytes) -> None:
        self.session.write(data)

    def _on_data(self, data: bytes) -> None:  # the session's thread
        records = self.model.feed(data)
        if records:
            self._bridge.records.emit(records)
        if not self._wake_sent.is_set():
            self._wake_sent.set()
            self._bridge.wake.emit()

    def _on_records(self, records: list[CommandRecord]) -> None:
        for record in records:
            self.command_finished.emit(record)

    def _on_exited(self, status: int | None) -> None:
        self.alive = False
        self._schedule()
        self.exited.emit(status)

    # ----- frames -----------------------------------------------------------------------------
    def _schedule(self) -> None:
        if not self._frame.isActive():
            self._frame.start(FRAME_MS)

    def _take_frame(self) -> None:
        self._wake_sent.clear()  # reads after this point ask for the next frame
        published = self.model.take_published()
        if published is not None and published.version > self._snapshot.version:
            self._show(published)
        version = self.model.version
        if version == self._drawn_version and self._snapshot.history == self.scrollbar.maximum():
            return
        snapshot = self.model.frame(self._scroll, self._pin)  # None: the reader makes it
        if snapshot is not None:
            self._show(snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        self._drawn_version = snapshot.version
        self._snapshot = snapshot
        if self._pin is not None:  # scrolled up: the same lines, further from the bottom
            self._scroll = snapshot.scrolled - snapshot.first
        self.frames += 1
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, snapshot.history)
        self.scrollbar.setPageStep(self.model.rows)
        self.scrollbar.setValue(snapshot.history - self._scroll)
        self.scrollbar.blockSignals(False)
        line = snapshot.input_line
        if line != self._input_line:
            self._input_line = line
            self._suggestion = ""
            self.input_line_changed.emit(line or "")
        self.update()

    def _scrolled(self, value: int) -> None:
        self._scroll = max(0, self.scrollbar.maximum() - value)
        self._pin = self._snapshot.scrolled - self._scroll if self._scroll else None
        self._drawn_version = -1
        self._take_frame()

    def input_line(self) -> str | None:
        return self._input_line

    # ----- ghost text -------------------------------------------------------------------------
    def set_suggestion(self, text: str) -> None:
        """Ghost text after the cursor on the prompt line ("" hides it)."""
        self._suggestion = text if self._input_line is not None else ""
        self.update()

    def suggestion(self) -> str:
        return self._suggestion

    def _accept_suggestion(self) -> bool:
        if not self._suggestion or self._input_line is None:
            return False
        text, self._suggestion = self._suggestion, ""
        self._write(text.encode("utf-8"))
        self.update()
        return True

    # ----- geometry ---------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def sizeHint(self) -> QSize:
        """80 columns by 15 rows: the panel's height when it first opens."""
        return QSize(80 * self._cell[0] + self.scrollbar.sizeHint().width(), 15 * self._cell[1])

    def grid(self) -> tuple[int, int]:
        width = self.width() - self.scrollbar.sizeHint().width()
        return max(2, self.height() // self._cell[1]), max(10, width // self._cell[0])

    def _fit(self) -> None:
        bar = self.scrollbar.sizeHint().width()
        self.scrollbar.setGeometry(self.width() - bar, 0, bar, self.height())
        rows, columns = self.grid()
        if (rows, columns) != (self.model.rows, self.model.columns):
            self.model.resize(rows, columns)
            self.session.resize(rows, columns)
            self._drawn_version = -1
            self._schedule()

    # ----- painting ---------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette_.background)
        painter.setFont(self._font)
        snap = self._snapshot
        for y, row in enumerate(snap.rows):
            self._paint_row(painter, y, row, snap.first + y)
        self._paint_cursor(painter, snap)
        painter.end()

    def _paint_row(self, painter: QPainter, y: int, row: list[Char], line: int) -> None:
        cw, ch = self._cell
        pal = self.palette_
        selected = self._selected_columns(line, len(row))
        x = 0
        while x < len(row):
            cell = row[x]
            key = (cell.fg, cell.bg, cell.bold, cell.reverse, cell.underscore, x in selected)
            end = x + 1
            while end < len(row):
                other = row[end]
                other_key = (other.fg, other.bg, other.bold, other.reverse, other.underscore)
                if other_key != key[:5] or (end in selected) != key[5]:
                    break
                end += 1
            fg = pal.color(cell.fg, pal.foreground)
            bg = pal.color(cell.bg, pal.background)
            if cell.reverse:
                fg, bg = bg, fg
            if key[5]:
                bg = pal.selection
            if bg is not pal.background:
                painter.fillRect(x * cw, y * ch, (end - x) * cw, ch, bg)
            text = "".join(c.data for c in row[x:end])
            if text.strip():
                font = painter.font()
                if font.bold() != cell.bold or font.underline() != cell.underscore:
                    font.setBold(cell.bold)
                    font.setUnderline(cell.underscore)
                    painter.setFont(font)
                painter.setPen(fg)
                painter.drawText(x * cw, y * ch + self._ascent, text)
            x = end

    def _paint_cursor(self, painter: QPainter, snap: Snapshot) -> None:
        if snap.cursor is None or not self.alive:
            return
        line, column = snap.cursor
        y = line - snap.first
        if not 0 <= y < len(snap.rows):
            return
        cw, ch = self._cell
        color = QColor(self.palette_.cursor)
        if self.hasFocus():
            color.setAlpha(160)
            painter.fillRect(column * cw, y * ch, cw, ch, color)
        else:
            painter.setPen(color)
            painter.drawRect(column * cw, y * ch, cw - 1, ch - 1)
        if self._suggestion and snap.at_prompt:  # over the cursor: its first letter shows
            painter.setPen(self.palette_.ghost)
            painter.drawText(column * cw, y * ch + self._ascent, self._suggestion)
            if self.hasFocus():  # on the block in the background's colour, as a terminal
                # draws the letter under its cursor (grey on the grey block, it could not be
                # read: seen in a user run under Xvfb)
                painter.setPen(self.palette_.background)
                painter.drawText(column * cw, y * ch + self._ascent, self._suggestion[0])

    # ----- selection and the clipboard --------------------------------------------------------
    def _cell_at(self, point: QPoint) -> tuple[int, int]:
        cw, ch = self._cell
        row = max(0, min(point.y() // ch, self.model.rows - 1))
        return self._snapshot.first + row, max(0, point.x() // cw)

    def _ordered(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        if self._anchor is None or self._caret is None or self._anchor == self._caret:
            return None
        return (min(self._anchor, self._caret), max(self._anchor, self._caret))

    def _selected_columns(self, line: int, width: int) -> range:
        span = self._ordered()
        if span is None or not span[0][0] <= line <= span[1][0]:
            return range(0)
        start = span[0][1] if line == span[0][0] else 0
        end = span[1][1] if line == span[1][0] else width
        return range(start, end)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        if event.button() == Qt.MouseButton.LeftButton:
            self._anchor = self._caret = self._cell_at(event.position().toPoint())
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._anchor is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._caret = self._cell_at(event.position().toPoint())
            self.update()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """The word under the mouse (a run of characters without blanks) is selected."""
        line, column = self._cell_at(event.position().toPoint())
        row = self._snapshot.rows[line - self._snapshot.first]
        text = "".join(cell.data or " " for cell in row)
        if column >= len(text) or text[column].isspace():
            return
        start = column
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        end = column
        while end < len(text) and not text[end].isspace():
            end += 1
        self.select((line, start), (line, end))

    def select(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        """Select from ``start`` to ``end`` (absolute line, column), as a drag would."""
        self._anchor, self._caret = start, end
        self.update()

    def selected_text(self) -> str:
        span = self._ordered()
        if span is None:
            return ""
        snap = self.model.snapshot(self._scroll, self._pin)
        lines = []
        for line in range(span[0][0], span[1][0] + 1):
            y = line - snap.first
            if not 0 <= y < len(snap.rows):
                continue
            columns = self._selected_columns(line, snap.columns)
            row = snap.rows[y]
            lines.append("".join(row[x].data for x in columns if x < len(row)).rstrip())
        return "\n".join(lines)

    def copy(self) -> None:
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        if not text:
            return
        data = text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8")
        if self.model.mode(BRACKETED_PASTE):
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self._write(data)

    # ----- keys -------------------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride:
            assert isinstance(event, QKeyEvent)
            if _combo(event) not in WINDOW_KEYS:
                event.accept()  # the key comes to keyPressEvent, not to a window shortcut
                return True
        if event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):  # not focus moves
                self.keyPressEvent(event)
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        combo = _combo(event)
        if combo == "Ctrl+Shift+C":
            self.copy()
        elif combo == "Ctrl+Shift+V":
            self.paste()
        elif combo in ("Shift+PgUp", "Shift+PgDown"):
            step = self.model.rows - 1
            self.scrollbar.setValue(self.scrollbar.value() + (-step if "Up" in combo else step))
        elif combo in ("Right", "End") and self._accept_suggestion():
            pass
        else:
            data = key_bytes(event, self.model.mode(CURSOR_KEYS))
            if data:
                self._suggestion = ""
                self._anchor = self._caret = None
                if self._scroll:
                    self.scrollbar.setValue(self.scrollbar.maximum())
                self._write(data)
            else:
                super().keyPressEvent(event)

    def inputMethodEvent(self, event: QInputMethodEvent) -> None:
        """Text composed by an input method (accents, CJK) goes to the shell when committed."""
        text = event.commitString()
        if text:
            self._suggestion = ""
            self._write(text.encode("utf-8"))
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        lines = -event.angleDelta().y() // 40
        self.scrollbar.setValue(self.scrollbar.value() + lines)

    def changeEvent(self, event: QEvent) -> None:
        """A theme switch sets the application's palette: the terminal's colours follow."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self.palette_ = TerminalPalette(self._theme())
            self.update()

    def focusInEvent(self, event: object) -> None:
        super().focusInEvent(event)  # type: ignore[arg-type]
        self.update()

    def focusOutEvent(self, event: object) -> None:
        super().focusOutEvent(event)  # type: ignore[arg-type]
        self.update()


def _combo(event: QKeyEvent) -> str:
    """The key as the command table writes it ("Ctrl+Shift+C")."""
    mods = event.modifiers()
    parts = [
        name
        for flag, name in (
            (_MODS.ControlModifier, "Ctrl"),
            (_MODS.AltModifier, "Alt"),
            (_MODS.ShiftModifier, "Shift"),
        )
        if mods & flag
    ]
    key = event.key()
    names = {
        Qt.Key.Key_QuoteLeft: "`",
        Qt.Key.Key_AsciiTilde: "`",
        Qt.Key.Key_PageUp: "PgUp",
        Qt.Key.Key_PageDown: "PgDown",
        Qt.Key.Key_Right: "Right",
        Qt.Key.Key_End: "End",
        Qt.Key.Key_F1: "F1",
    }
    if key in names:
        parts.append(names[Qt.Key(key)])
    elif Qt.Key.Key_A <= key <= Qt.Key.Key_Z:
        parts.append(chr(key))
    else:
        return ""
    return "+".join(parts)
