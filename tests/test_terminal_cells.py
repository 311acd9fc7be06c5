"""The terminal's text stays on its cells: a full-width line drawn by the real view (real bash on
a PTY, the widget offscreen) ends inside the last column. The system's fixed font advances a
fractional 7.22 px per glyph; drawn on a 7 px grid, a line ran 30 px past its last cell, under
the scrollbar, and each colour run overlapped the next one's first letter (seen under Xvfb on
pytest's output: "[100%]" hidden, "is_success(" over "200")."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QFont, QFontMetricsF
from pytestqt.qtbot import QtBot

from app.ui.terminal.view import TerminalView
from tests.helpers.terminal_view import WAIT, bash_view


def _ink_right_edge(view: TerminalView, row: int) -> int:
    """The rightmost x of a pixel that is not the background, in the given row of cells."""
    image = view.grab().toImage()
    background = QColor(view.palette_.background).rgb()
    ch = view._cell[1]
    right = -1
    for y in range(row * ch, (row + 1) * ch):
        for x in range(image.width() - view.scrollbar.width()):
            if image.pixel(x, y) != background:
                right = max(right, x)
    return right


def test_a_full_width_line_ends_in_its_last_cell(qtbot: QtBot, tmp_path: Path) -> None:
    with bash_view(qtbot, tmp_path, (1100, 300)) as view:
        cw, _ = view._cell
        for bold in (False, True):  # a bold run is drawn with the same cells
            font = QFont(view._font)
            font.setBold(bold)
            assert abs(QFontMetricsF(font).horizontalAdvance("M" * 100) - 100 * cw) < 1
        columns = view.grid()[1]
        view.session.write(f"clear; printf 'M%.0s' $(seq 1 {columns}); echo; read\r".encode())
        qtbot.waitUntil(lambda: view.model.text().startswith("M" * columns), timeout=WAIT)
        qtbot.waitUntil(lambda: _ink_right_edge(view, 0) > (columns - 1) * cw, timeout=WAIT)
        assert _ink_right_edge(view, 0) < columns * cw


def test_the_ghosts_first_letter_reads_on_the_cursor_block(qtbot: QtBot, tmp_path: Path) -> None:
    """It is drawn in the background's colour on the block (it was grey on the grey block)."""
    with bash_view(qtbot, tmp_path, (700, 200)) as view:
        view.activateWindow()
        view.setFocus()
        qtbot.waitUntil(view.hasFocus, timeout=WAIT)
        view.set_suggestion("python -m pytest -q")
        snap = view._snapshot
        assert snap.cursor is not None
        line, column = snap.cursor
        cw, ch = view._cell
        image = view.grab().toImage()
        background = QColor(view.palette_.background)
        near = 0
        for y in range((line - snap.first) * ch, (line - snap.first + 1) * ch):
            for x in range(column * cw, (column + 1) * cw):
                c = image.pixelColor(x, y)
                gap = abs(c.red() - background.red()) + abs(c.green() - background.green())
                near += gap + abs(c.blue() - background.blue()) < 60
        assert near >= 4  # the letter's strokes, in the background's colour
