"""Find as a VS Code user's hands expect, in the real window offscreen: the current match is
visible while the bar has the focus, Ln/Col follows every find step, and Ctrl+H after Esc puts
the focus in Find with its text selected."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def win_doc(qtbot: QtBot, tmp_path: Path) -> tuple[MainWindow, Document]:
    ws = tmp_path / "ws"
    ws.mkdir()
    text = "".join(f"def func_{i}(param, params):\n    return param + {i}\n" for i in range(200))
    (ws / "big.py").write_text(text)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    win.open_folder(ws)
    doc = win.open_file(ws / "big.py")
    assert doc is not None
    win.activateWindow()
    doc.editor.focus()
    qtbot.waitUntil(lambda: doc.editor.hasFocus())
    return win, doc


def press(
    qtbot: QtBot,
    win: MainWindow,
    key: Qt.Key,
    mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    widget = win.focusWidget()
    assert widget is not None
    qtbot.keyClick(widget, key, mods)


def test_current_match_is_visible_while_the_find_bar_has_focus(
    qtbot: QtBot, win_doc: tuple[MainWindow, Document]
) -> None:
    win, doc = win_doc
    ed = doc.editor
    press(qtbot, win, Qt.Key.Key_F, CTRL)
    qtbot.keyClicks(win.focusWidget(), "return param + 150")
    assert win.focusWidget() is win.find_bar.query_edit
    start, end = ed.selectionStart(), ed.selectionEnd()
    assert ed.line_text(ed.lineFromPosition(start)).strip() == "return param + 150"
    assert win.find_bar.current_match() == (start, end)
    # scrolled into view
    line = ed.lineFromPosition(start)
    assert ed.firstVisibleLine() <= line < ed.firstVisibleLine() + ed.linesOnScreen()
    # and visible on screen: the match's pixels are not the plain caret-line background
    image = ed.grab().toImage()
    x0, x1 = ed.pointXFromPosition(start), ed.pointXFromPosition(end)
    y0 = ed.pointYFromPosition(start)
    height = ed.textHeight(line)
    caret_line = QColor(ed.theme.caret_line).rgb()
    pixels = [
        image.pixel(x, y) for x in range(x0 + 1, x1 - 1) for y in range(y0 + 1, y0 + height - 1)
    ]
    plain = sum(1 for p in pixels if p == caret_line) / len(pixels)
    assert plain < 0.2, f"{plain:.0%} of the current match's pixels are plain background"
    # moving the caret off the match drops the mark
    ed.gotoPos(0)
    ed._on_update_ui(0x2)
    win.find_bar._on_update_ui(0x2)
    assert win.find_bar.current_match() is None


def test_ln_col_follows_every_find_step(qtbot: QtBot, win_doc: tuple[MainWindow, Document]) -> None:
    win, doc = win_doc
    ed = doc.editor
    press(qtbot, win, Qt.Key.Key_F, CTRL)
    qtbot.keyClicks(win.focusWidget(), "params")
    seen = []
    for key, mods in (
        (Qt.Key.Key_F3, Qt.KeyboardModifier.NoModifier),
        (Qt.Key.Key_Return, Qt.KeyboardModifier.NoModifier),
        (Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier),
    ):
        press(qtbot, win, key, mods)  # in the find bar
        line, col = ed.caret_line_col()
        assert win.status_position.text() == f"Ln {line}, Col {col}"
        seen.append(line)
    press(qtbot, win, Qt.Key.Key_Escape)
    assert win.focusWidget() is ed
    for _ in range(3):
        press(qtbot, win, Qt.Key.Key_F3)  # in the editor, the window's shortcut
        line, col = ed.caret_line_col()
        assert win.status_position.text() == f"Ln {line}, Col {col}"
        seen.append(line)
    assert len(set(seen)) >= 4  # the steps really moved


def test_ctrl_h_after_escape_focuses_find_with_its_text_selected(
    qtbot: QtBot, win_doc: tuple[MainWindow, Document]
) -> None:
    win, doc = win_doc
    press(qtbot, win, Qt.Key.Key_F, CTRL)
    qtbot.keyClicks(win.focusWidget(), "params")
    press(qtbot, win, Qt.Key.Key_Return)
    press(qtbot, win, Qt.Key.Key_Escape)
    assert win.focusWidget() is doc.editor
    press(qtbot, win, Qt.Key.Key_H, CTRL)
    bar = win.find_bar
    assert bar.replace_edit.isVisible()
    assert win.focusWidget() is bar.query_edit
    assert bar.query_edit.selectedText() == "params"
    # Tab reaches Replace
    press(qtbot, win, Qt.Key.Key_Tab)
    assert win.focusWidget() is bar.replace_edit


def test_f3_searches_the_current_tab_after_the_bar_closed_on_another(
    qtbot: QtBot, win_doc: tuple[MainWindow, Document], tmp_path: Path
) -> None:
    win, doc = win_doc
    press(qtbot, win, Qt.Key.Key_F, CTRL)
    qtbot.keyClicks(win.focusWidget(), "params")
    press(qtbot, win, Qt.Key.Key_Escape)
    other_path = tmp_path / "ws" / "other.py"
    other_path.write_text("a = 1\nb = params\n")
    other = win.open_file(other_path)
    assert other is not None and win.current_document() is other
    other.editor.focus()
    qtbot.waitUntil(lambda: other.editor.hasFocus())
    before = (doc.editor.selectionStart(), doc.editor.selectionEnd())
    press(qtbot, win, Qt.Key.Key_F3)
    assert (
        other.editor.line_text(other.editor.lineFromPosition(other.editor.selectionStart()))
        == "b = params"
    )
    assert (doc.editor.selectionStart(), doc.editor.selectionEnd()) == before
    assert win.status_position.text() == "Ln 2, Col 11"


def test_f3_with_nothing_searched_opens_the_find_bar(
    qtbot: QtBot, win_doc: tuple[MainWindow, Document]
) -> None:
    win, _doc = win_doc
    press(qtbot, win, Qt.Key.Key_F3)
    assert win.find_bar.isVisible() and win.focusWidget() is win.find_bar.query_edit
